"""The wizard's only owner of the engine: engine calls in App-level workers, events in, updates out.

Screens never call the engine themselves. They ask the controller to run an operation on a
step (`run(step, op)`); the call runs in a worker started on the App, so leaving a screen
never cancels a write half-way (workers die with the node that started them,
reference/textual.md s.2 "Workers"). Failures come back as `OpDone` messages with the
engine's one-line error, never as an exception that exits the app (`exit_on_error=False`).

Pull progress arrives far faster than a terminal can redraw (thousands of events per
second on big clusters): the sink keeps only the latest state per cell and a 10 Hz timer
flushes the batch; the grid widget then redraws only the dirty rows.
"""

from __future__ import annotations

import asyncio
import io
import json
import shutil
import tempfile
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from textual.signal import Signal

from backends.cluster import Cluster
from backends.config import Settings, load_settings
from backends.ending import outcome_of
from backends.engine import Engine
from backends.errors import EXIT_OK, MigrateError
from backends.etcd import nest_pairs, quote
from backends.events import Event, PullProgress, RunStarted
from backends.images import metadata_images
from backends.plan_file import PlanFile, load_plan, restore_step_inputs
from backends.runner import Printer
from backends.state import FINISHED
from backends.steps import STEP_CLASSES, STEP_ORDER
from backends.steps.base import Check, Finding, StepPlan, Verification
from backends.transcript import FINAL_PULL_STATES

from .cells import Cell, paused, plan_cells, result_cells
from .messages import EngineEvent, EngineOpened, OpDone, ProbeDone, Update
from .probe import ProbeResult, probe

if TYPE_CHECKING:
    from textual.app import App
    from textual.worker import Worker

MAX_LINES = 50_000
# Steps the operator may skip (runbook: maintenance and agent cleanup are optional; pre-pull
# only saves waiting time at session start).
SKIPPABLE = frozenset({"maintenance", "prepull", "agent-cleanup"})
GRID_STEPS = frozenset({"prepull", "agent-cleanup"})


@dataclass
class Identity:
    namespace: str = "?"
    etcd: str = "?"
    manager: str = "?"
    era: str = "?"
    dry_run: bool = False


class Controller:
    def __init__(self, app: App[Any], *, config: str | None, plan: str | None, dry_run: bool,
                 state_dir: Path | None, transcript_dir: Path | None = None,
                 settings: Settings | MigrateError | None = None, plan_obj: PlanFile | MigrateError | None = None,
                 manager_version: str | None = None) -> None:
        self.app = app
        self.config_arg = config
        self.plan_arg = plan
        self.dry_run = dry_run
        self.state_dir = state_dir
        self.transcript_dir = transcript_dir
        self.manager_version = manager_version
        self.settings: Settings | None = None
        self.plan: PlanFile | None = None
        self.errors: dict[str, MigrateError] = {}
        self._preloaded = (settings, plan_obj)
        self.engine: Engine | None = None
        self.restored: list[str] = []      # steps whose edits came back from the interrupted session
        self.closed = False
        self.probe_result: ProbeResult | None = None
        self.busy: dict[str, str] = {}
        self.workers: dict[str, Worker[Any]] = {}
        self.lines: list[str] = []
        self.cells: dict[str, dict[tuple[str, str], Cell]] = defaultdict(dict)
        self.phases: dict[str, list[str]] = defaultdict(list)
        self.counters: dict[str, dict[str, int]] = {}
        self.extra: dict[str, dict[str, Any]] = defaultdict(dict)
        self._planned_key: dict[str, Any] = {}
        self._pending: dict[tuple[str, str, str], PullProgress] = {}
        self._printer = Printer(io.StringIO())
        self.updates: Signal[Update] = Signal(app, "engine-updates")
        self.run_status = "open"
        self.load()

    # -- configuration -------------------------------------------------------------------
    def load(self) -> None:
        """(Re)reads manager.toml and the plan; errors are kept for the start screen."""
        self.errors.clear()
        pre_settings, pre_plan = self._preloaded
        self._preloaded = (None, None)
        try:
            if isinstance(pre_settings, MigrateError):
                raise pre_settings
            self.settings = pre_settings or load_settings(self.config_arg)
        except MigrateError as e:
            self.settings = None
            self.errors["config"] = e
        try:
            if isinstance(pre_plan, MigrateError):
                raise pre_plan
            self.plan = pre_plan or load_plan(self.plan_arg)
            if self.manager_version:
                self.plan.manager.version = self.manager_version
        except MigrateError as e:
            self.plan = None
            self.errors["plan"] = e

    def identity(self) -> Identity:
        s = self.settings
        ident = Identity(dry_run=self.dry_run)
        if s is not None:
            ident.namespace, ident.etcd = s.etcd.namespace, str(s.etcd.addr)
        p = self.probe_result
        if p is not None:
            ident.manager = p.manager_version or "?"
            if p.era:
                ident.era = p.era.split(" (", 1)[0]
        return ident

    # -- start: probe and open -------------------------------------------------------------
    def run_probe(self) -> None:
        async def go() -> None:
            try:
                self.probe_result = await probe(self.settings, self.plan, self.errors, dry_run=self.dry_run,
                                                state_dir=self.state_dir)
            finally:
                self.app.post_message(ProbeDone())

        self.load()
        self.app.run_worker(go(), name="probe", group="probe", exclusive=True, exit_on_error=False)

    def open_engine(self, *, resume: bool) -> None:
        async def go() -> None:
            error = fix = None
            try:
                await self._open(resume)
            except MigrateError as e:
                error, fix = (e.message, e.fix) if e.fix else (e.one_line(), None)
            except Exception as e:  # noqa: BLE001 - shown to the operator, who decides
                error, fix = f"{type(e).__name__}: {e}", "see the transcript"
            self.app.post_message(EngineOpened(error=error, fix=fix))

        self.app.run_worker(go(), name="open", group="open", exclusive=True, exit_on_error=False)

    async def _open(self, resume: bool) -> None:
        assert self.settings is not None and self.plan is not None
        cluster = Cluster(self.settings, self.plan, dry_run=self.dry_run)
        tdir = self.transcript_dir
        if tdir is None and self.dry_run:
            # A dry run keeps no state; its transcript goes to a private temporary directory so
            # that it can still be read and exported. Nothing is written to the cluster.
            tdir = Path(tempfile.mkdtemp(prefix="bai-registry-migrate-dry-run-"))
        self.engine = await Engine.open(cluster, state_dir=self.state_dir, resume=resume, transcript_dir=tdir,
                                        sinks=[self.sink])
        self.restored = self._restore_edits()

    def _restore_edits(self) -> list[str]:
        """On resume, the operator's edits of the interrupted session come back (a dropped SSH
        link loses nothing that was planned): each step's inputs as its last plan saw them, and
        the registry entry of the registry step's plan (written or not). The plan file is the
        starting point of a new run only. Returns the steps whose inputs were restored."""
        eng = self.engine
        assert eng is not None
        restored = [sid for sid, st in eng.state.steps.items()
                    if st.inputs and restore_step_inputs(eng.cluster.plan, sid, st.inputs)]
        st = eng.state.steps.get("registry")
        puts = ((st.plan or {}).get("data") or {}).get("config_puts") or {} if st is not None else {}
        now = eng.cluster.target_validation()
        if puts and (not now.ok or now.flat() != puts):
            eng.cluster.set_registry_json(json.dumps(nest_pairs("", sorted(puts.items())), indent=2) + "\n")
            restored.insert(0, "registry")
        return restored

    # -- engine events ---------------------------------------------------------------------
    def sink(self, event: Event) -> None:
        """Called by the engine, on the event loop, for every event: post, never handle here."""
        if isinstance(event, PullProgress):
            self._pending[(event.step, event.agent, event.image)] = event
            return
        self.app.post_message(EngineEvent(event))

    def absorb(self, event: Event) -> None:
        """The App got an EngineEvent: keep what screens need to rebuild themselves."""
        from backends.events import Progress

        if isinstance(event, Progress):
            if event.counters:
                self.counters[event.step] = dict(event.counters)
            if event.phase in ("phase", "summary", "wait"):
                self.phases[event.step].append(event.message)
        if isinstance(event, RunStarted):
            self.phases.clear()
        self._line(self._printer.render(event))

    def _line(self, text: str | None) -> None:
        if not text:
            return
        self.lines.extend(text.split("\n"))
        if len(self.lines) > MAX_LINES:
            del self.lines[: len(self.lines) - MAX_LINES]

    def flush_pulls(self) -> None:
        """10 Hz: the latest state of every cell that changed, one update per step."""
        if not self._pending:
            return
        batch, self._pending = self._pending, {}
        by_step: dict[str, list[Cell]] = defaultdict(list)
        for (step, agent, image), e in batch.items():
            state = "removing" if step == "agent-cleanup" and e.state == "pulling" else e.state
            cell = Cell(agent, image, state, e.bytes_done, e.bytes_total, e.message)
            self.cells[step][(agent, image)] = cell
            by_step[step].append(cell)
            if e.state in FINAL_PULL_STATES:
                self._line(self._printer.render(e))
        for step, cells in by_step.items():
            self.updates.publish(Update("pulls", step, cells=cells))

    # -- operations --------------------------------------------------------------------------
    def run(self, step: str, op: str) -> bool:
        """Starts `op` on `step` in an App-level worker; False when busy or not open."""
        if self.engine is None or self.closed or step in self.busy:
            return False
        self.busy[step] = op
        worker = self.app.run_worker(self._op(step, op), name=f"{op} {step}", group=f"step-{step}",
                                     exit_on_error=False)
        self.workers[step] = worker
        self.updates.publish(Update("op-start", step, op=op))
        return True

    def cancel(self, step: str) -> bool:
        """Stops a running operation (pause of a pull or removal): finished cells stay journaled."""
        w = self.workers.get(step)
        if w is None or step not in self.busy:
            return False
        w.cancel()
        return True

    async def _op(self, step: str, op: str) -> None:
        error = fix = None
        cancelled = False
        try:
            await self._do(step, op)
        except asyncio.CancelledError:
            cancelled = True
            self._pause_cells(step)
            raise
        except MigrateError as e:
            # the dialog shows the message, then the fix on its own line (one_line() = both)
            error, fix = (e.message, e.fix) if e.fix else (e.one_line(), None)
        except Exception as e:  # noqa: BLE001 - an engine bug must not kill the operator's session
            redact = self.engine.cluster.redactor if self.engine else str
            error, fix = redact(f"{type(e).__name__}: {e}"), "see the transcript; fix the cause and try again"
        finally:
            self.busy.pop(step, None)
            self.workers.pop(step, None)
            self.flush_pulls()
            self.app.post_message(OpDone(step, op, error=error, fix=fix, cancelled=cancelled))

    async def _do(self, step: str, op: str) -> None:
        eng = self.engine
        assert eng is not None
        if op in ("refresh", "plan"):
            await eng.inspect(step)
            await self._gather_extra(step)
            if not eng.blocking(step):
                await eng.plan(step)
                self._planned_key[step] = self.inputs_key(step)
        elif op == "apply":
            if self.stale(step):
                raise MigrateError(f"the inputs of step {step} changed after the plan was made",
                                   fix="press p to plan again and review the new changes")
            if step in GRID_STEPS:
                self.seed_cells(step)
            await eng.apply(step)
            if step in GRID_STEPS:
                self._cells_from_result(step)
            await eng.verify(step)
        elif op == "verify":
            await eng.verify(step)
        elif op == "rollback":
            await eng.rollback(step)
            self._planned_key.pop(step, None)
        elif op == "skip":
            await eng.skip(step, self.disabled_by_plan(step) or "skipped by the operator")
        else:
            raise MigrateError(f"unknown operation {op!r}")

    async def _gather_extra(self, step: str) -> None:
        """Read-only facts a screen needs besides findings and plan (e.g. alias validation)."""
        eng = self.engine
        assert eng is not None
        cluster = eng.cluster
        if step == "aliases":
            target = cluster.plan.target
            images = metadata_images(await cluster.kv_flat(f"images/{quote(target)}/"))
            self.extra[step]["available"] = sorted(images)
            self.extra[step]["known"] = [*list(await cluster.registries()), target]
        elif step == "allowlists":
            self.extra[step]["domains"] = {d.name: list(d.allowed_docker_registries)
                                           for d in await cluster.domains()}

    def seed_cells(self, step: str) -> None:
        """The plan's cells before an apply (or on entering the step), journal included."""
        eng = self.engine
        plan = self.plan_of(step)
        if eng is None or plan is None:
            return
        self.cells[step] = plan_cells(step, plan, eng.state.step(step))
        self.updates.publish(Update("pulls", step, cells=list(self.cells[step].values())))

    def _cells_from_result(self, step: str) -> None:
        eng = self.engine
        assert eng is not None
        result = (eng.state.step(step).result or {}).get("apply") or {}
        fresh = result_cells(step, result, self.cells[step], dry_run=eng.cluster.dry_run)
        if fresh:
            self.cells[step].update(fresh)
            self.updates.publish(Update("pulls", step, cells=list(self.cells[step].values())))

    def _pause_cells(self, step: str) -> None:
        self._pending = {k: v for k, v in self._pending.items() if k[0] != step}
        changed = paused(self.cells.get(step, {}))
        if changed:
            self.updates.publish(Update("pulls", step, cells=changed))

    async def finish(self) -> None:
        """The end of the run: lift the freeze, mark the state finished, close (releases the lock)."""
        eng = self.engine
        if eng is None or self.closed:
            return
        status, code, message = "verified", EXIT_OK, ""
        try:
            await eng.finish_maintenance()
            if self.dry_run:
                status, message = "dry-run", "nothing was written"
            elif all(eng.status_of(s) in FINISHED for s in self.step_ids()):
                eng.state.finished = True
                eng.save()
            else:
                status, message = "aborted", "stopped before every step was done; the state is kept for a resume"
        except Exception as e:
            # Never "verified" for an ending that failed (issue 14): e.g. the lock lost meanwhile.
            outcome, code = outcome_of(e)
            status, message = str(outcome), e.one_line() if isinstance(e, MigrateError) else f"{type(e).__name__}"
            raise
        finally:
            self.run_status = status
            await self.close(status, code, message)

    async def close(self, status: str = "aborted", exit_code: int = EXIT_OK, message: str = "") -> None:
        """Cancels running work (a cancelled apply stays `applying`: a resume finishes it) and closes."""
        for w in list(self.workers.values()):
            w.cancel()
        for _ in range(50):
            if not self.busy:
                break
            await asyncio.sleep(0.02)
        eng = self.engine
        if eng is None or self.closed:
            return
        self.closed = True
        lost = eng.lock.lost if eng.lock is not None else None
        if lost is not None and status in ("aborted", "verified"):
            status, exit_code, message = "lock-lost", lost.exit_code, lost.one_line()
        if status == "aborted" and not message:
            message = "stopped by the operator; run the wizard again to resume"
        try:
            await eng.close(status, exit_code, message)
        except MigrateError as e:
            self._line(f"while closing: {e.one_line()}")

    # -- queries -----------------------------------------------------------------------------
    def status(self, step: str) -> str:
        if self.engine is None:
            return "pending"
        return self.engine.status_of(step)

    def statuses(self) -> dict[str, str]:
        if self.engine is None:
            return dict.fromkeys(STEP_ORDER, "pending")
        return {s: self.engine.status_of(s) for s in self.step_ids()}

    def step_ids(self) -> list[str]:
        """In run order. (A resumed state's steps come back in the state file's sorted-key order,
        so Engine.step_ids() cannot be used for order.)"""
        if self.engine is None:
            return list(STEP_ORDER)
        ids = self.engine.step_ids()
        return [s for s in STEP_ORDER if s in ids] + [s for s in ids if s not in STEP_ORDER]

    def title(self, step: str) -> str:
        cls_ = STEP_CLASSES.get(step)
        return cls_.title if cls_ else step

    def runbook(self, step: str) -> str:
        cls_ = STEP_CLASSES.get(step)
        return cls_.runbook if cls_ else ""

    def reversible(self, step: str) -> bool:
        cls_ = STEP_CLASSES.get(step)
        return bool(cls_ and cls_.reversible)

    def findings(self, step: str) -> list[Finding]:
        return list(self.engine.findings.get(step, [])) if self.engine else []

    def blocking(self, step: str) -> list[Finding]:
        return self.engine.blocking(step) if self.engine else []

    def plan_of(self, step: str) -> StepPlan | None:
        if self.engine is None:
            return None
        p = self.engine.plans.get(step)
        if p is None:
            raw = self.engine.state.step(step).plan
            p = StepPlan.from_json(raw) if raw else None
        return p

    def verification(self, step: str) -> Verification | None:
        if self.engine is None:
            return None
        v = self.engine.verifications.get(step)
        if v is not None:
            return v
        raw = (self.engine.state.step(step).result or {}).get("verify")
        if raw:
            return Verification([Check(c["name"], bool(c["ok"]), c.get("detail", "")) for c in raw])
        return None

    def error_of(self, step: str) -> str | None:
        return self.engine.state.step(step).error if self.engine else None

    def has_backup(self, step: str) -> bool:
        return bool(self.engine and self.engine.state.step(step).backup)

    def current_step(self) -> str:
        """The first step not done (verified or skipped): where the operator works."""
        statuses = self.statuses()
        return next((s for s, st in statuses.items() if st not in FINISHED), "")

    def all_done(self) -> bool:
        return self.engine is not None and not self.current_step()

    def reachable(self, step: str) -> bool:
        """Steps up to the first one not done can be shown; later ones wait their turn."""
        ids = self.step_ids()
        cur = self.current_step()
        if not cur:
            return True
        return step in ids and ids.index(step) <= ids.index(cur)

    def cluster(self) -> Cluster | None:
        return self.engine.cluster if self.engine else None

    def disabled_by_plan(self, step: str) -> str | None:
        """Why the plan file turns this step off (the headless runner skips it then, so do we)."""
        c = self.cluster()
        if c is None:
            return None
        if step == "maintenance" and not c.plan.maintenance.enabled:
            return "maintenance mode is off in the plan"
        if step == "agent-cleanup" and not c.plan.agent_cleanup.enabled:
            return "agent cleanup is off in the plan"
        return None

    def inputs_key(self, step: str) -> Any:
        """The plan-file fields a step's plan was made from: a change makes the plan stale."""
        c = self.cluster()
        if c is None:
            return None
        p = c.plan
        if step == "maintenance":
            return (p.maintenance.enabled, p.maintenance.announcement)
        if step == "registry":
            return p.registry_json
        if step == "prepull":
            return tuple(p.prepull.images)
        if step == "aliases":
            return (tuple(sorted(p.aliases.overrides.items())), tuple(p.aliases.skip), tuple(p.aliases.remove))
        if step == "allowlists":
            return (tuple(p.allowlists.add), tuple(p.allowlists.remove),
                    tuple(sorted((k, tuple(v)) for k, v in p.allowlists.domains.items())))
        return None

    def stale(self, step: str) -> bool:
        return step in self._planned_key and self._planned_key[step] != self.inputs_key(step)

    def transcript_paths(self) -> list[Path]:
        t = self.engine.transcript if self.engine else None
        return [t.md_path, t.jsonl_path] if t else []

    def export(self, dest: Path) -> list[Path]:
        """Copies the transcript (Markdown + JSON Lines) to `dest`, private like the originals."""
        src = self.transcript_paths()
        if not src:
            raise MigrateError("there is no transcript yet", fix="open the run first (Begin on the start screen)")
        try:
            dest.mkdir(parents=True, exist_ok=True, mode=0o700)
            out = []
            run_id = self.engine.state.run_id if self.engine else "run"
            for p in src:
                target = dest / f"{run_id}-{p.name}"
                shutil.copyfile(p, target)
                target.chmod(0o600)
                out.append(target)
        except OSError as e:
            raise MigrateError(f"cannot write the transcript to {dest} ({e.strerror})",
                               fix="choose a writable directory") from None
        return out
