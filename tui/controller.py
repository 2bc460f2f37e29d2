"""The wizard's only owner of the engine: engine calls in App-level workers, events in, updates out.

Screens never call the engine themselves. They ask the controller to run an operation on a
step (`run(step, op)`); the call runs in a worker started on the App, so leaving a screen
never cancels a write half-way (a worker is cancelled with the DOM node that started it:
https://textual.textualize.io/guide/workers/). Failures come back as `OpDone` messages with
the engine's one-line error, never as an exception that exits the app (`exit_on_error=False`).
Edits are commands (`edit(SetAliasTarget(...))`): the engine's step checks and records them
and answers with an `EditResult`; no screen touches the plan file, the plan or the cluster.
Everything a screen shows comes from the engine's step contract (metadata, plan, grid,
views), never from the steps' storage.

Pull progress arrives far faster than a terminal can redraw (thousands of events per
second on big clusters): the sink keeps only the latest state per cell and a 10 Hz timer
flushes the batch; the grid widget then redraws only the dirty rows.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import shutil
import tempfile
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from textual.signal import Signal
from textual.worker import WorkerCancelled, WorkerFailed

from backends.cluster import Cluster
from backends.config import Settings, load_settings
from backends.ending import outcome_of
from backends.engine import Engine
from backends.errors import EXIT_OK, MigrateError
from backends.events import Event, Progress, PullProgress, RunStarted
from backends.plan_file import PlanFile, load_plan
from backends.probe import ProbeResult, probe, with_run_state
from backends.replay import Recorder, Recording, ReplayEngine
from backends.runner import Printer
from backends.statuses import Operation, Outcome, Status
from backends.steps import STEP_CLASSES, STEP_ORDER
from backends.steps.base import Finding, Step, StepMeta, StepPlan, Verification
from backends.steps.edits import Edit, EditResult
from backends.steps.views import Cell, Grid

from .messages import CellsChanged, EngineEvent, EngineOpened, OpDone, OpStarted, ProbeDone, Update

if TYPE_CHECKING:
    from textual.app import App
    from textual.worker import Worker

MAX_LINES = 50_000
CLOSE_WAIT = 5.0   # seconds a cancelled worker gets to end before the engine closes anyway


def _text(path: str | Path | None) -> str:
    """A small configuration file, read for a recording's header (a local file: no waiting)."""
    return Path(path).read_text(encoding="utf-8") if path else ""


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
                 manager_version: str | None = None, replay: Recording | None = None,
                 record: Path | None = None) -> None:
        self.app = app
        self.replay = replay          # answer from a recorded run instead of a cluster
        self.record = record          # record this run's engine calls here (backends.replay)
        self.recorder: Recorder | None = None
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
        self.busy: dict[str, Operation] = {}
        self.workers: dict[str, Worker[Any]] = {}
        self.lines: list[str] = []
        self.cells: dict[str, dict[tuple[str, str], Cell]] = defaultdict(dict)
        self.phases: dict[str, list[str]] = defaultdict(list)
        self.counters: dict[str, dict[str, int]] = {}
        self._pending: dict[tuple[str, str, str], PullProgress] = {}
        self._printer = Printer(io.StringIO())
        self.updates: Signal[Update] = Signal(app, "engine-updates")
        self.run_status: Outcome | None = None   # how the run ended, once it has
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
                if self.replay is not None and self.settings is not None and self.plan is not None:
                    # the cluster's answers as recorded; this machine's state directory as it is
                    self.probe_result = with_run_state(self.replay.probe, self.settings, dry_run=self.dry_run,
                                                       state_dir=self.state_dir)
                else:
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
        if self.replay is not None:
            self.engine = await ReplayEngine.replay(self.replay, self.settings, self.plan, transcript_dir=tdir,
                                                    sinks=[self.sink])
        else:
            self.engine = await Engine.open(cluster, state_dir=self.state_dir, resume=resume, transcript_dir=tdir,
                                            sinks=[self.sink])
        if self.record is not None:
            self.recorder = Recorder(self.record)
            self.recorder.header(engine=self.engine, probe=self.probe_result or ProbeResult(),
                                 manager_toml=_text(self.settings.config_path), plan_toml=_text(self.plan.source))
            self.engine.recorder = self.recorder
            self.engine.sinks.append(self.recorder)
        self.restored = self.engine.restore_edits()

    # -- engine events ---------------------------------------------------------------------
    def sink(self, event: Event) -> None:
        """Called by the engine, on the event loop, for every event: post, never handle here."""
        if isinstance(event, PullProgress):
            self._pending[(event.step, event.agent, event.image)] = event
            return
        self.app.post_message(EngineEvent(event))

    def absorb(self, event: Event) -> None:
        """The App got an EngineEvent: keep what screens need to rebuild themselves."""
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
        if not self._pending or self.engine is None:
            return
        batch, self._pending = self._pending, {}
        by_step: dict[str, list[Cell]] = defaultdict(list)
        for e in batch.values():
            cell = self.engine.cell_of(e)
            self.cells[e.step][cell.key] = cell
            by_step[e.step].append(cell)
            if cell.state.final:
                self._line(self._printer.render(e))
        for step, cells in by_step.items():
            self.updates.publish(CellsChanged(step, cells))

    # -- operations --------------------------------------------------------------------------
    def run(self, step: str, op: Operation) -> bool:
        """Starts `op` on `step` in an App-level worker; False when busy or not open."""
        if self.engine is None or self.closed or step in self.busy:
            return False
        op = Operation(op)
        self.busy[step] = op
        worker = self.app.run_worker(self._op(step, op), name=f"{op} {step}", group=f"step-{step}",
                                     exit_on_error=False)
        self.workers[step] = worker
        self.updates.publish(OpStarted(step, op))
        return True

    def cancel(self, step: str) -> bool:
        """Stops a running operation (pause of a pull or removal): finished cells stay journaled."""
        w = self.workers.get(step)
        if w is None or step not in self.busy:
            return False
        w.cancel()
        return True

    def check_edit(self, edit: Edit) -> EditResult:
        """Whether the step would take `edit` (as the operator types); changes nothing."""
        return self._edit_refusal(edit) or self.engine.check_edit(edit)  # type: ignore[union-attr]

    def edit(self, edit: Edit, *, replan: bool = True) -> EditResult:
        """The operator's edit, through the engine into the plan file; with `replan`, a taken edit
        plans the step again at once (otherwise the plan is stale until the operator presses p)."""
        refused = self._edit_refusal(edit)
        if refused is not None:
            return refused
        assert self.engine is not None
        result = self.engine.edit(edit)
        if result.taken and result.changed and replan:
            self.run(edit.step, Operation.REFRESH)
        return result

    def _edit_refusal(self, edit: Edit) -> EditResult | None:
        if self.engine is None or self.closed:
            return EditResult.refused("the run is not open")
        if edit.step in self.busy or not self.status(edit.step).plannable:
            return EditResult.refused(f"this step is applied; roll it back (x) to change "
                                      f"{self.short_title(edit.step).lower()}")
        return None

    async def _op(self, step: str, op: Operation) -> None:
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

    async def _do(self, step: str, op: Operation) -> None:
        eng = self.engine
        assert eng is not None
        grid = eng.meta(step).grid
        if op is Operation.REFRESH:
            await eng.inspect(step)
            await eng.load_edit_context(step)
            if not eng.blocking(step):
                await eng.plan(step)
                if grid:
                    self.seed_cells(step)
        elif op is Operation.APPLY:
            if eng.stale(step):
                raise MigrateError(f"the inputs of step {step} changed after the plan was made",
                                   fix="press p to plan again and review the new changes")
            if grid:
                self.seed_cells(step)
            await eng.apply(step)
            if grid:
                self._cells_from_result(step)
            await eng.verify(step)
        elif op is Operation.VERIFY:
            await eng.verify(step)
        elif op is Operation.ROLLBACK:
            await eng.rollback(step)
            eng.forget_plan_inputs(step)
        elif op is Operation.SKIP:
            await eng.skip(step, eng.disabled_reason(step) or "skipped by the operator")
        else:
            raise MigrateError(f"unknown operation {op!r}")

    def seed_cells(self, step: str) -> None:
        """The plan's cells before an apply (or on entering the step), journal included."""
        grid = self.grid(step)
        if grid is None:
            return
        self.cells[step] = {c.key: c for c in grid.cells}
        self.updates.publish(CellsChanged(step, list(grid.cells)))

    def _cells_from_result(self, step: str) -> None:
        """After an apply, the step's result is the truth; bytes and a message seen live are kept."""
        assert self.engine is not None
        old = self.cells[step]
        fresh = {}
        for c in self.engine.result_cells(step):
            prev = old.get(c.key)
            fresh[c.key] = Cell(c.agent, c.image, c.state, prev.done if prev else 0, prev.total if prev else 0,
                                c.message or (prev.message if prev else ""))
        if fresh:
            old.update(fresh)
            self.updates.publish(CellsChanged(step, list(old.values())))

    def _pause_cells(self, step: str) -> None:
        self._pending = {k: v for k, v in self._pending.items() if k[0] != step}
        cells = self.cells.get(step, {})
        changed = [c.paused() for c in cells.values() if not c.state.final]
        for c in changed:
            cells[c.key] = c
        if changed:
            self.updates.publish(CellsChanged(step, changed))

    async def finish(self) -> None:
        """The end of the run: lift the freeze, mark the state finished, close (releases the lock)."""
        eng = self.engine
        if eng is None or self.closed:
            return
        status, code, message = Outcome.VERIFIED, EXIT_OK, ""
        try:
            await eng.finish_maintenance()
            if self.dry_run:
                status, message = Outcome.DRY_RUN, "nothing was written"
            elif all(eng.status_of(s).finished for s in self.step_ids()):
                eng.state.finished = True
                eng.save()
            else:
                status, message = Outcome.ABORTED, "stopped before every step was done; the state is kept for a resume"
        except Exception as e:
            # Never "verified" for an ending that failed (issue 14): e.g. the lock lost meanwhile.
            outcome, code = outcome_of(e)
            status, message = outcome, e.one_line() if isinstance(e, MigrateError) else f"{type(e).__name__}"
            raise
        finally:
            self.run_status = status
            await self.close(status, code, message)

    async def close(self, status: Outcome = Outcome.ABORTED, exit_code: int = EXIT_OK, message: str = "") -> None:
        """Cancels running work and waits for it to end (a cancelled apply stays `applying`: a
        resume finishes it), then closes the engine, which releases the lock."""
        workers = list(self.workers.values())
        for w in workers:
            w.cancel()
        for w in workers:
            # A worker ends at its next await once cancelled; the wait is bounded so that a
            # stuck engine call can never keep the operator's terminal from coming back.
            with contextlib.suppress(WorkerCancelled, WorkerFailed, TimeoutError, asyncio.CancelledError):
                await asyncio.wait_for(w.wait(), CLOSE_WAIT)
        eng = self.engine
        if eng is None or self.closed:
            return
        self.closed = True
        lost = eng.lock.lost if eng.lock is not None else None
        if lost is not None and status in (Outcome.ABORTED, Outcome.VERIFIED):
            status, exit_code, message = Outcome.LOCK_LOST, lost.exit_code, lost.one_line()
        if status is Outcome.ABORTED and not message:
            message = "stopped by the operator; run the wizard again to resume"
        try:
            await eng.close(status, exit_code, message)
        except MigrateError as e:
            self._line(f"while closing: {e.one_line()}")
        finally:
            if self.recorder is not None:
                self.recorder.close()

    # -- queries: each step's contract, asked of the engine ----------------------------------
    def status(self, step: str) -> Status:
        if self.engine is None:
            return Status.PENDING
        return self.engine.status_of(step)

    def statuses(self) -> dict[str, Status]:
        if self.engine is None:
            return dict.fromkeys(STEP_ORDER, Status.PENDING)
        return {s: self.engine.status_of(s) for s in self.step_ids()}

    def step_ids(self) -> list[str]:
        """In run order. (A resumed state's steps come back in the state file's sorted-key order,
        so Engine.step_ids() cannot be used for order.)"""
        if self.engine is None:
            return list(STEP_ORDER)
        ids = self.engine.step_ids()
        return [s for s in STEP_ORDER if s in ids] + [s for s in ids if s not in STEP_ORDER]

    @staticmethod
    def meta(step: str) -> StepMeta:
        return Engine.meta(step)

    def title(self, step: str) -> str:
        return self.meta(step).title if step in STEP_CLASSES else step

    def short_title(self, step: str) -> str:
        return self.meta(step).short_title if step in STEP_CLASSES else step

    def findings(self, step: str) -> list[Finding]:
        return list(self.engine.findings.get(step, [])) if self.engine else []

    def blocking(self, step: str) -> list[Finding]:
        return self.engine.blocking(step) if self.engine else []

    def plan_of(self, step: str) -> StepPlan | None:
        return self.engine.plan_of(step) if self.engine else None

    def verification(self, step: str) -> Verification | None:
        return self.engine.verification_of(step) if self.engine else None

    def error_of(self, step: str) -> str | None:
        return self.engine.error_of(step) if self.engine else None

    def has_backup(self, step: str) -> bool:
        return bool(self.engine and self.engine.has_backup(step))

    def stale(self, step: str) -> bool:
        return bool(self.engine and self.engine.stale(step))

    def disabled_reason(self, step: str) -> str | None:
        return self.engine.disabled_reason(step) if self.engine else None

    def confirm_lines(self, step: str) -> list[str]:
        return self.engine.confirm_lines(step) if self.engine else []

    def grid(self, step: str) -> Grid | None:
        return self.engine.grid(step) if self.engine else None

    def step_view(self, step: str) -> Step | None:
        """The step itself, for the views only it can give (alias rows, domains, registry phases):
        read-only by contract; edits go through `edit`."""
        return self.engine.step(step) if self.engine else None

    def target(self) -> str:
        c = self.cluster()
        return c.plan.target if c else ""

    def current_step(self) -> str:
        """The first step not done (verified or skipped): where the operator works."""
        statuses = self.statuses()
        return next((s for s, st in statuses.items() if not st.finished), "")

    def all_done(self) -> bool:
        return self.engine is not None and not self.current_step()

    def reachable(self, step: str) -> bool:
        """Steps up to the first one not done can be shown; later ones wait their turn."""
        ids = self.step_ids()
        cur = self.current_step()
        if not cur:
            return True
        return step in ids and ids.index(step) <= ids.index(cur)

    def frozen(self) -> bool:
        return bool(self.engine and self.engine.frozen())

    def freeze_lifted(self) -> bool:
        return bool(self.engine and self.engine.freeze_lifted())

    def cluster(self) -> Cluster | None:
        return self.engine.cluster if self.engine else None

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
