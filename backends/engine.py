"""The step engine: order, state, resume, lock and the event stream, shared by UI and runner.

State is saved after every transition (status change, plan, backup, journal entry), so a
run killed at any point resumes where it stopped: a step found `applying` is applied again
with the plan the operator confirmed (steps are written to be resumable), a step found
`applied` is verified, a `verified` step is left alone.
"""

from __future__ import annotations

import contextlib
import functools
import time
from collections.abc import Awaitable, Callable, Iterable
from pathlib import Path
from typing import Any, Protocol, TypeVar

from . import __version__
from .cluster import Cluster
from .ending import cluster_condition, unopened_notice
from .errors import (
    EXIT_FAILED,
    EXIT_GATE,
    EXIT_OK,
    ConfigError,
    GateError,
    MigrateError,
    StepBlocked,
    StepFailed,
)
from .events import (
    Emit,
    Event,
    LogLine,
    PlanReady,
    PullProgress,
    RunFinished,
    RunStarted,
    StepStatus,
    VerifyResult,
)
from .lock import ClusterLock
from .state import RunState, StateStore, default_state_dir
from .statuses import TERMINAL, Status
from .steps import STEP_CLASSES, STEP_ORDER
from .steps.base import Finding, Step, StepMeta, StepPlan, Verification
from .steps.edits import Edit, EditResult
from .steps.views import Cell, Grid
from .transcript import Transcript

_UNSET = object()
T = TypeVar("T")


class Recorder(Protocol):
    """Listens to the engine's life-cycle calls (see backends.replay): each call, the events it
    emitted, what it returned or raised, and the step's state after it."""

    def begin(self) -> None: ...

    def end(self, engine: Engine, step_id: str, method: str, value: Any = None,
            error: BaseException | None = None) -> None: ...


def recorded(fn: Callable[..., Awaitable[T]]) -> Callable[..., Awaitable[T]]:
    """Lets an attached recorder see one life-cycle call; costs nothing without one."""
    @functools.wraps(fn)
    async def call(self: Engine, step_id: str, *a: Any, **kw: Any) -> T:
        rec = self.recorder
        if rec is None:
            return await fn(self, step_id, *a, **kw)
        rec.begin()
        try:
            value = await fn(self, step_id, *a, **kw)
        except MigrateError as e:
            rec.end(self, step_id, fn.__name__, error=e)
            raise
        rec.end(self, step_id, fn.__name__, value=value)
        return value

    return call


def _edit_field(edit: Edit) -> tuple[str, str]:
    """Which field an edit sets: its type and the first of its values that names a thing."""
    values = list(vars(edit).values())
    return (type(edit).__name__, str(values[0]) if len(values) > 1 else "")


def _describe(edit: Edit) -> str:
    """An edit as the transcript records it; the registry document's text is not repeated
    (it carries a password, and its effect is in the next plan)."""
    fields = {k: v for k, v in vars(edit).items() if k != "text" or type(edit).__name__ != "SetRegistryDocument"}
    return type(edit).__name__ + " " + ", ".join(f"{k}={v!r}" for k, v in fields.items())


class Engine:
    def __init__(self, cluster: Cluster, state: RunState, store: StateStore | None, *,
                 sinks: Iterable[Emit] = (), transcript: Transcript | None = None) -> None:
        self.cluster = cluster
        self.state = state
        self.store = store
        self.sinks: list[Emit] = list(sinks)
        self.transcript = transcript
        self.lock: ClusterLock | None = None
        self.recorder: Recorder | None = None
        self._steps: dict[str, Step] = {}
        self.findings: dict[str, list[Finding]] = {}
        self.plans: dict[str, StepPlan] = {}
        self.verifications: dict[str, Verification] = {}
        # What each plan of this session was made from: an edit since makes it stale.
        self._planned_from: dict[str, object] = {}
        self._edits: dict[str, dict[tuple[str, str], str]] = {}   # step -> field -> edit, until planned

    # -- construction -------------------------------------------------------------------
    @classmethod
    async def open(cls, cluster: Cluster, *, state_dir: Path | None = None, resume: bool = True,
                   transcript_dir: Path | None = None, sinks: Iterable[Emit] = (), lock: bool = True,
                   steps: Iterable[str] | None = None, keep_finished: bool = False,
                   existing_only: bool = False) -> Engine:
        """Connects, takes the cluster lock, loads or starts the run state.

        A finished run's state is archived and a new run starts, except with `keep_finished`
        (rollback): undoing a completed migration needs that run's backups. `existing_only`
        (rollback): without a saved run there is nothing to undo, and a new empty run is not
        started in its place (it used to be, and the rollback then reported success).
        """
        await cluster.open()
        try:
            ns = cluster.settings.etcd.namespace
            store = None if cluster.dry_run else StateStore(state_dir or default_state_dir(ns),
                                                              vault=cluster.vault, redactor=cluster.redactor)
            if existing_only and (store is None or not store.exists()):
                where = store.dir if store is not None else default_state_dir(ns)
                raise ConfigError(f"there is no run to roll back in {where}: nothing was changed",
                                  key="--state-dir",
                                  fix="pass --state-dir DIR, the state directory of the run to undo (the wizard "
                                      "and `run` name it in their transcript); the default is "
                                      "$XDG_STATE_HOME/bai-registry-migrate/<namespace>")
            if store is not None:
                # What a run cannot do without is checked before the lock and before any write
                # (exit 2, nothing written): a state directory it can write, a usable seal key.
                store.check_writable()
                cluster.vault.ensure_key()
            held: ClusterLock | None = None
            if lock and not cluster.dry_run:
                # Before anything is read-modified or written (state archive, state, transcript):
                # a refused run leaves no trace. The lock names this process, not a run id.
                held = ClusterLock(cluster.etcd, run_id="(starting)")
                await held.acquire()
                cluster.fence_writes(held)
            transcript: Transcript | None = None
            try:
                state = None
                resumed = False
                if store is not None and store.exists():
                    state = store.load()
                    if state is not None and ((state.finished and not keep_finished) or not resume):
                        store.archive()
                        state = None
                    elif state is not None:
                        resumed = True
                if state is None:
                    state = RunState.new(ns, steps or STEP_ORDER, plan_source=cluster.plan.source,
                                         dry_run=cluster.dry_run)
                if held is not None:
                    held.run_id = state.run_id
                    await held.update_holder()
                tdir = transcript_dir or (store.dir / "transcripts" / state.run_id if store else None)
                transcript = Transcript(tdir, cluster.redactor) if tdir else None
                eng = cls(cluster, state, store, sinks=sinks, transcript=transcript)
                eng.lock = held
                eng.save()
                eng.emit(RunStarted(state.run_id, ns, cluster.dry_run, __version__, cluster.plan.source,
                                    resumed=resumed))
                if store is not None and store.unopened:
                    eng.log(None, "warning", unopened_notice(store.unopened, cluster.vault))
            except BaseException:
                if transcript is not None:
                    transcript.close()
                cluster.fence_writes(None)
                if held is not None:
                    await held.release()
                raise
            for sid, st in state.steps.items():
                if st.plan is not None:
                    eng.plans[sid] = StepPlan.from_json(st.plan)
                if st.result and "findings" in st.result:
                    eng.findings[sid] = [Finding.from_json(f) for f in st.result["findings"]]
            return eng
        except BaseException:
            await cluster.close()
            raise

    async def close(self, status: str | None = None, exit_code: int = EXIT_OK, message: str = "", *,
                    condition: str | None = None) -> None:
        """Records how the run ended (with the cluster's condition), releases the lock, closes.

        Every part is attempted even when an earlier one fails (a full disk, etcd gone): the
        lock must not be held for a whole lease because the transcript could not be written."""
        try:
            if status is not None:
                if condition is None:
                    condition = await cluster_condition(self.cluster, self.state)
                try:
                    self.emit(RunFinished(status, exit_code, message, cluster=condition))
                except MigrateError as e:
                    # The sinks (the operator's terminal) have the ending; say it is not on file.
                    self.transcript = None
                    self.log(None, "error", f"the end of the run is not in the transcript: {e.one_line()}")
        finally:
            self.cluster.fence_writes(None)
            try:
                if self.lock is not None:
                    await self.lock.release()
            finally:
                try:
                    if self.transcript is not None:
                        self.transcript.close()
                finally:
                    await self.cluster.close()

    # -- plumbing -------------------------------------------------------------------------
    def emit(self, event: Event) -> None:
        """Writes the event to the transcript, then hands it to every listener. A listener that
        fails is never allowed to stop the engine mid-write, and never hidden: the failure is
        recorded in the transcript as an error line. A transcript that cannot be written is
        raised, after the listeners (the operator's terminal) have the event."""
        failed: MigrateError | None = None
        if self.transcript is not None:
            try:
                self.transcript.write(event)
            except MigrateError as e:
                failed = e
        for sink in self.sinks:
            try:
                sink(event)
            except Exception as e:  # noqa: BLE001 - recorded below; the engine's work goes on
                if self.transcript is not None and not isinstance(event, LogLine) and failed is None:
                    with contextlib.suppress(MigrateError):
                        self.transcript.write(LogLine(getattr(event, "step", None), "error", self.cluster.redactor(
                            f"a listener failed on a {event.kind} event: {type(e).__name__}: {e}")))
        if failed is not None:
            raise failed

    def save(self) -> None:
        if self.store is not None:
            if self.lock is not None:
                # Not even the local state once the lock is gone: another run may be resuming
                # this very state file (issue 14, finding 1).
                self.lock.check()
            self.store.save(self.state)

    def step(self, step_id: str) -> Step:
        if step_id not in self._steps:
            cls_ = STEP_CLASSES.get(step_id)
            if cls_ is None:
                raise MigrateError(f"unknown step {step_id!r}", fix=f"use one of: {', '.join(STEP_ORDER)}")
            inst = cls_(self.cluster, self.state.step(step_id), self.emit, self.save)
            inst.run = self.state
            if self.store is not None:
                inst.backup_dir = self.store.dir / "backups" / self.state.run_id
            self._steps[step_id] = inst
        return self._steps[step_id]

    def step_ids(self) -> list[str]:
        return list(self.state.steps)

    def status_of(self, step_id: str) -> Status:
        return Status(self.state.step(step_id).status)

    def _set(self, step_id: str, status: Status, message: str = "", *, error: str | None = None) -> None:
        st = self.state.step(step_id)
        st.status = status
        if error is not None:
            st.error = self.cluster.redactor(error)
        if status is Status.APPLYING and st.started_at is None:
            st.started_at = time.time()
        if status in TERMINAL:
            st.finished_at = time.time()
        self.save()
        self.emit(StepStatus(step_id, status, self.cluster.redactor(message)))

    # -- what the wizard asks: each step's contract, never its storage ------------------------
    @staticmethod
    def meta(step_id: str) -> StepMeta:
        cls_ = STEP_CLASSES.get(step_id)
        if cls_ is None:
            raise MigrateError(f"unknown step {step_id!r}", fix=f"use one of: {', '.join(STEP_ORDER)}")
        return cls_.meta

    def plan_of(self, step_id: str) -> StepPlan | None:
        """This session's plan, else the one saved in the state (a resumed run)."""
        p = self.plans.get(step_id)
        if p is None:
            raw = self.state.step(step_id).plan
            p = StepPlan.from_json(raw) if raw else None
        return p

    def verification_of(self, step_id: str) -> Verification | None:
        v = self.verifications.get(step_id)
        if v is not None:
            return v
        raw = (self.state.step(step_id).result or {}).get("verify")
        return Verification.from_json(raw) if raw else None

    def error_of(self, step_id: str) -> str | None:
        return self.state.step(step_id).error

    def has_backup(self, step_id: str) -> bool:
        return bool(self.state.step(step_id).backup)

    def disabled_reason(self, step_id: str) -> str | None:
        self.meta(step_id)   # an unknown id is refused with the list of known ones
        return STEP_CLASSES[step_id].disabled_reason(self.cluster.plan)

    def stale(self, step_id: str) -> bool:
        """The operator edited an input after this session's plan: apply must wait for a new one."""
        made = self._planned_from.get(step_id, _UNSET)
        return made is not _UNSET and made != STEP_CLASSES[step_id].input_key(self.cluster.plan)

    def forget_plan_inputs(self, step_id: str) -> None:
        self._planned_from.pop(step_id, None)

    def grid(self, step_id: str) -> Grid | None:
        plan = self.plan_of(step_id)
        return self.step(step_id).grid(plan) if plan is not None and self.meta(step_id).grid else None

    def cell_of(self, event: PullProgress) -> Cell:
        return self.step(event.step).cell_of(event)

    def result_cells(self, step_id: str) -> list[Cell]:
        plan = self.plan_of(step_id)
        return self.step(step_id).result_cells(plan) if plan is not None else []

    def confirm_lines(self, step_id: str) -> list[str]:
        plan = self.plan_of(step_id)
        return self.step(step_id).confirm_lines(plan) if plan is not None else []

    @recorded
    async def load_edit_context(self, step_id: str) -> None:
        step = self.step(step_id)
        step.edit_context = await step.load_edit_context()

    def check_edit(self, edit: Edit) -> EditResult:
        return self._editable(edit) or self.step(edit.step).check_edit(edit)

    def edit(self, edit: Edit) -> EditResult:
        """Records the operator's edit in the plan file (never the cluster) when the step takes it."""
        refused = self._editable(edit)
        if refused is not None:
            return refused
        result = self.step(edit.step).take_edit(edit)
        if result.taken and result.changed:
            # Recorded with the next plan of the step, the last edit of each field only (an
            # announcement typed letter by letter is one edit, not forty).
            self._edits.setdefault(edit.step, {})[_edit_field(edit)] = _describe(edit)
        return result

    def _editable(self, edit: Edit) -> EditResult | None:
        if not self.status_of(edit.step).plannable:
            return EditResult.refused(f"the {self.meta(edit.step).short_title.lower()} step is "
                                      f"{self.status_of(edit.step)}", "roll it back to change it")
        return None

    def restore_edits(self) -> list[str]:
        """On resume: each step's edits of the interrupted session back into the plan file."""
        return [sid for sid in [*STEP_ORDER, *self.state.steps] if sid in self.state.steps
                and sid in STEP_CLASSES and self.step(sid).restore_edits()]

    # -- the life cycle -------------------------------------------------------------------
    @recorded
    async def inspect(self, step_id: str) -> list[Finding]:
        step = self.step(step_id)
        st = self.state.step(step_id)
        if st.status == Status.PENDING:
            self._set(step_id, Status.INSPECTING)
        findings = await step.inspect()
        self.findings[step_id] = findings
        st.result = {**(st.result or {}), "findings": [f.to_json() for f in findings]}
        first_blocking = next((f for f in findings if f.blocking), None)
        if first_blocking is not None and st.status in (Status.PENDING, Status.INSPECTING, Status.BLOCKED):
            self._set(step_id, Status.BLOCKED, first_blocking.message)
        elif st.status in (Status.INSPECTING, Status.BLOCKED):
            self._set(step_id, Status.INSPECTED)
        else:
            self.save()
        return findings

    def blocking(self, step_id: str) -> list[Finding]:
        return [f for f in self.findings.get(step_id, []) if f.blocking]

    @recorded
    async def plan(self, step_id: str) -> StepPlan:
        step = self.step(step_id)
        for what in self._edits.pop(step_id, {}).values():
            self.log(step_id, "info", f"edited by the operator: {what}")
        plan = await step.plan()
        self.plans[step_id] = plan
        st = self.state.step(step_id)
        st.plan = plan.to_json()
        st.inputs = type(step).inputs(self.cluster.plan)   # what the plan was made from (wizard resume)
        self._planned_from[step_id] = type(step).input_key(self.cluster.plan)
        if st.status not in (Status.APPLYING, Status.APPLIED) and not self.blocking(step_id):
            st.status = Status.PLANNED   # a blocked step stays blocked: a plan to read is not a way past the gate
        self.save()
        self.emit(PlanReady(step_id, plan.summary, [c.to_json() for c in plan.changes]))
        return plan

    @recorded
    async def apply(self, step_id: str) -> dict[str, Any]:
        """Applies the saved plan. On a dry run nothing is written; the overlay records it."""
        step = self.step(step_id)
        st = self.state.step(step_id)
        plan = self.plans.get(step_id) or (StepPlan.from_json(st.plan) if st.plan else None)
        if plan is None:
            plan = await self.plan(step_id)
        if self.blocking(step_id) and st.status != Status.APPLYING:
            raise StepBlocked(step_id, self.blocking(step_id))
        st.attempts += 1
        self._set(step_id, Status.APPLYING, "dry run: recording what would change" if self.cluster.dry_run else "")
        try:
            result = await step.apply(plan)
        except MigrateError as e:
            self._set(step_id, Status.FAILED, e.one_line(), error=e.one_line())
            raise
        except Exception as e:
            msg = self.cluster.redactor(f"{type(e).__name__}: {e}")
            self._set(step_id, Status.FAILED, msg, error=msg)
            raise StepFailed(step_id, msg, fix="see the transcript; fix the cause and resume") from e
        st.result = {**(st.result or {}), "apply": result}
        self._set(step_id, Status.APPLIED)
        return result

    @recorded
    async def verify(self, step_id: str) -> Verification:
        step = self.step(step_id)
        st = self.state.step(step_id)
        plan = self.plans.get(step_id) or (StepPlan.from_json(st.plan) if st.plan else StepPlan("nothing to do"))
        v = await step.verify(plan)
        self.verifications[step_id] = v
        st.result = {**(st.result or {}), "verify": [c.to_json() for c in v.checks]}
        self.emit(VerifyResult(step_id, v.ok, [c.to_json() for c in v.checks]))
        self._set(step_id, Status.VERIFIED if v.ok else Status.FAILED,
                  "" if v.ok else next((c.name + ": " + c.detail for c in v.checks if not c.ok), ""))
        return v

    @recorded
    async def rollback(self, step_id: str) -> list[Any]:
        step = self.step(step_id)
        if not step.reversible:
            raise MigrateError(f"step {step_id} cannot be rolled back", fix="restore by hand from the backup")
        before = len(self.cluster.unrestored)
        changes = await step.rollback()
        left = self.cluster.unrestored[before:]
        if left:
            self.log(step_id, "warning", f"not restored: {', '.join(left)}: the backed-up value is sealed with a "
                                         f"seal key that is missing or another ({self.cluster.vault.key_path}); "
                                         "set it by hand (backend.ai mgr etcd put KEY VALUE)")
        self._set(step_id, Status.ROLLED_BACK, f"{len(changes)} change(s) undone"
                  + (f", {len(left)} secret key(s) not restored" if left else ""))
        return changes

    @recorded
    async def skip(self, step_id: str, reason: str = "") -> None:
        self._set(step_id, Status.SKIPPED, reason)

    def log(self, step_id: str | None, level: str, message: str) -> None:
        self.emit(LogLine(step_id, level, self.cluster.redactor(message)))

    # -- headless: one step end to end ----------------------------------------------------
    async def run_step(self, step_id: str, *, confirm: Callable[[StepPlan], bool] | None = None) -> str:
        """inspect -> plan -> apply -> verify, resuming where the state says. Returns the status."""
        st = self.state.step(step_id)
        if st.status in (Status.VERIFIED, Status.SKIPPED):
            return st.status
        if st.status in (Status.APPLYING, Status.APPLIED) and st.plan is not None:
            # A warning, so a headless operator sees that an interrupted invocation is being finished.
            self.log(step_id, "warning", f"resuming step {step_id} (was {st.status}): an earlier invocation "
                                         "stopped inside it; continuing from its journal")
            if st.status == Status.APPLYING:
                await self.apply(step_id)
            v = await self.verify(step_id)
            if not v.ok:
                raise StepFailed(step_id, "verification failed after resume")
            return Status.VERIFIED
        await self.inspect(step_id)
        if self.blocking(step_id):
            raise StepBlocked(step_id, self.blocking(step_id))
        plan = await self.plan(step_id)
        if confirm is not None and not confirm(plan):
            await self.skip(step_id, "not confirmed")
            return Status.SKIPPED
        await self.apply(step_id)
        v = await self.verify(step_id)
        if not v.ok:
            bad = [c for c in v.checks if not c.ok]
            raise StepFailed(step_id, f"verification failed: {bad[0].name}: {bad[0].detail}",
                             fix="see the transcript for every check; fix the cause and resume")
        return Status.VERIFIED

    def frozen(self) -> bool:
        """The maintenance step froze new sessions and the freeze is not lifted yet."""
        st = self.state.steps.get("maintenance")
        return (st is not None and st.status in (Status.APPLYING, Status.APPLIED, Status.VERIFIED)
                and not st.journaled("restored"))

    def freeze_lifted(self) -> bool:
        st = self.state.steps.get("maintenance")
        return st is not None and st.journaled("restored")

    async def finish_maintenance(self) -> None:
        """Undo the freeze and announcement if the maintenance step set them (end or abort)."""
        await self._lift_freeze("maintenance")

    @recorded
    async def _lift_freeze(self, step_id: str) -> None:
        st = self.state.steps.get(step_id)
        if st is None or st.status not in (Status.APPLYING, Status.APPLIED, Status.VERIFIED):
            return
        if st.journaled("restored"):
            return
        step = self.step("maintenance")
        await step.rollback()
        step.journal("restored")
        self.log("maintenance", "info", "new sessions allowed again; announcement restored")

    def exit_code_for(self, exc: BaseException | None) -> int:
        if exc is None:
            return EXIT_OK
        if isinstance(exc, GateError):
            return EXIT_GATE
        if isinstance(exc, MigrateError):
            return exc.exit_code
        return EXIT_FAILED
