"""The step engine: order, state, resume, lock and the event stream, shared by UI and runner.

State is saved after every transition (status change, plan, backup, journal entry), so a
run killed at any point resumes where it stopped: a step found `applying` is applied again
with the plan the operator confirmed (steps are written to be resumable), a step found
`applied` is verified, a `verified` step is left alone.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from . import __version__
from .cluster import Cluster
from .ending import cluster_condition, unopened_notice
from .errors import EXIT_FAILED, EXIT_GATE, EXIT_OK, GateError, MigrateError
from .events import Emit, Event, LogLine, PlanReady, RunFinished, RunStarted, StepStatus, VerifyResult
from .lock import ClusterLock
from .plan_file import step_inputs
from .state import RunState, StateStore, default_state_dir
from .steps import STEP_CLASSES, STEP_ORDER
from .steps.base import Finding, Step, StepPlan, Verification
from .transcript import Transcript


class StepBlocked(GateError):
    def __init__(self, step: str, findings: list[Finding]) -> None:
        first = findings[0]
        more = f" (+{len(findings) - 1} more)" if len(findings) > 1 else ""
        super().__init__(f"step {step} is blocked: {first.message}{more}", fix=first.fix or None)
        self.step = step
        self.findings = findings


class StepFailed(MigrateError):
    def __init__(self, step: str, message: str, *, fix: str | None = None) -> None:
        super().__init__(f"step {step} failed: {message}", fix=fix)
        self.step = step


class Engine:
    def __init__(self, cluster: Cluster, state: RunState, store: StateStore | None, *,
                 sinks: Iterable[Emit] = (), transcript: Transcript | None = None) -> None:
        self.cluster = cluster
        self.state = state
        self.store = store
        self.sinks: list[Emit] = list(sinks)
        self.transcript = transcript
        self.lock: ClusterLock | None = None
        self._steps: dict[str, Step] = {}
        self.findings: dict[str, list[Finding]] = {}
        self.plans: dict[str, StepPlan] = {}
        self.verifications: dict[str, Verification] = {}

    # -- construction -------------------------------------------------------------------
    @classmethod
    async def open(cls, cluster: Cluster, *, state_dir: Path | None = None, resume: bool = True,
                   transcript_dir: Path | None = None, sinks: Iterable[Emit] = (), lock: bool = True,
                   steps: Iterable[str] | None = None, keep_finished: bool = False) -> Engine:
        """Connects, takes the cluster lock, loads or starts the run state.

        A finished run's state is archived and a new run starts, except with `keep_finished`
        (rollback): undoing a completed migration needs that run's backups.
        """
        await cluster.open()
        try:
            ns = cluster.settings.etcd.namespace
            store = None if cluster.dry_run else StateStore(state_dir or default_state_dir(ns),
                                                              vault=cluster.vault, redactor=cluster.redactor)
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
        """To the transcript and every sink; a transcript that cannot be written is raised, after
        the sinks (the operator's terminal) have the event."""
        failed: MigrateError | None = None
        if self.transcript is not None:
            try:
                self.transcript.write(event)
            except MigrateError as e:
                failed = e
        for sink in self.sinks:
            with contextlib.suppress(Exception):
                sink(event)
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

    def status_of(self, step_id: str) -> str:
        return self.state.step(step_id).status

    def _set(self, step_id: str, status: str, message: str = "", *, error: str | None = None) -> None:
        st = self.state.step(step_id)
        st.status = status
        if error is not None:
            st.error = self.cluster.redactor(error)
        if status == "applying" and st.started_at is None:
            st.started_at = time.time()
        if status in ("verified", "failed", "skipped", "blocked", "rolled-back"):
            st.finished_at = time.time()
        self.save()
        self.emit(StepStatus(step_id, status, self.cluster.redactor(message)))

    # -- the life cycle -------------------------------------------------------------------
    async def inspect(self, step_id: str) -> list[Finding]:
        step = self.step(step_id)
        st = self.state.step(step_id)
        if st.status == "pending":
            self._set(step_id, "inspecting")
        findings = await step.inspect()
        self.findings[step_id] = findings
        st.result = {**(st.result or {}), "findings": [f.to_json() for f in findings]}
        first_blocking = next((f for f in findings if f.severity == "blocking"), None)
        if first_blocking is not None and st.status in ("pending", "inspecting", "blocked"):
            self._set(step_id, "blocked", first_blocking.message)
        elif st.status in ("inspecting", "blocked"):
            self._set(step_id, "inspected")
        else:
            self.save()
        return findings

    def blocking(self, step_id: str) -> list[Finding]:
        return [f for f in self.findings.get(step_id, []) if f.severity == "blocking"]

    async def plan(self, step_id: str) -> StepPlan:
        step = self.step(step_id)
        plan = await step.plan()
        self.plans[step_id] = plan
        st = self.state.step(step_id)
        st.plan = plan.to_json()
        st.inputs = step_inputs(self.cluster.plan, step_id)   # what the plan was made from (wizard resume)
        if st.status not in ("applying", "applied") and not self.blocking(step_id):
            st.status = "planned"   # a blocked step stays blocked: a plan to read is not a way past the gate
        self.save()
        self.emit(PlanReady(step_id, plan.summary, [c.to_json() for c in plan.changes]))
        return plan

    async def apply(self, step_id: str) -> dict[str, Any]:
        """Applies the saved plan. On a dry run nothing is written; the overlay records it."""
        step = self.step(step_id)
        st = self.state.step(step_id)
        plan = self.plans.get(step_id) or (StepPlan.from_json(st.plan) if st.plan else None)
        if plan is None:
            plan = await self.plan(step_id)
        if self.blocking(step_id) and st.status != "applying":
            raise StepBlocked(step_id, self.blocking(step_id))
        st.attempts += 1
        self._set(step_id, "applying", "dry run: recording what would change" if self.cluster.dry_run else "")
        try:
            result = await step.apply(plan)
        except MigrateError as e:
            self._set(step_id, "failed", e.one_line(), error=e.one_line())
            raise
        except Exception as e:
            msg = self.cluster.redactor(f"{type(e).__name__}: {e}")
            self._set(step_id, "failed", msg, error=msg)
            raise StepFailed(step_id, msg, fix="see the transcript; fix the cause and resume") from e
        st.result = {**(st.result or {}), "apply": result}
        self._set(step_id, "applied")
        return result

    async def verify(self, step_id: str) -> Verification:
        step = self.step(step_id)
        st = self.state.step(step_id)
        plan = self.plans.get(step_id) or (StepPlan.from_json(st.plan) if st.plan else StepPlan("nothing to do"))
        v = await step.verify(plan)
        self.verifications[step_id] = v
        st.result = {**(st.result or {}), "verify": [c.to_json() for c in v.checks]}
        self.emit(VerifyResult(step_id, v.ok, [c.to_json() for c in v.checks]))
        self._set(step_id, "verified" if v.ok else "failed",
                  "" if v.ok else next((c.name + ": " + c.detail for c in v.checks if not c.ok), ""))
        return v

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
        self._set(step_id, "rolled-back", f"{len(changes)} change(s) undone"
                  + (f", {len(left)} secret key(s) not restored" if left else ""))
        return changes

    async def skip(self, step_id: str, reason: str = "") -> None:
        self._set(step_id, "skipped", reason)

    def log(self, step_id: str | None, level: str, message: str) -> None:
        self.emit(LogLine(step_id, level, self.cluster.redactor(message)))

    # -- headless: one step end to end ----------------------------------------------------
    async def run_step(self, step_id: str, *, confirm: Callable[[StepPlan], bool] | None = None) -> str:
        """inspect -> plan -> apply -> verify, resuming where the state says. Returns the status."""
        st = self.state.step(step_id)
        if st.status in ("verified", "skipped"):
            return st.status
        if st.status in ("applying", "applied") and st.plan is not None:
            # A warning, so a headless operator sees that an interrupted invocation is being finished.
            self.log(step_id, "warning", f"resuming step {step_id} (was {st.status}): an earlier invocation "
                                         "stopped inside it; continuing from its journal")
            if st.status == "applying":
                await self.apply(step_id)
            v = await self.verify(step_id)
            if not v.ok:
                raise StepFailed(step_id, "verification failed after resume")
            return "verified"
        await self.inspect(step_id)
        if self.blocking(step_id):
            raise StepBlocked(step_id, self.blocking(step_id))
        plan = await self.plan(step_id)
        if confirm is not None and not confirm(plan):
            await self.skip(step_id, "not confirmed")
            return "skipped"
        await self.apply(step_id)
        v = await self.verify(step_id)
        if not v.ok:
            bad = [c for c in v.checks if not c.ok]
            raise StepFailed(step_id, f"verification failed: {bad[0].name}: {bad[0].detail}",
                             fix="see the transcript for every check; fix the cause and resume")
        return "verified"

    async def finish_maintenance(self) -> None:
        """Undo the freeze and announcement if the maintenance step set them (end or abort)."""
        st = self.state.steps.get("maintenance")
        if st is None or st.status not in ("applying", "applied", "verified"):
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
