"""Headless runs: `run --yes` executes the steps, `plan` prints every planned change and writes nothing.

Plain, line-oriented output that reads well in a CI log or over a flaky SSH link. Exit
status: 0 all verified; 1 a step failed (and what was rolled back is said); 2 bad usage or
configuration; 3 stopped at a gate (e.g. live sessions still on old images) or the cluster
lock was lost; 128 + N ended by signal N (130 Ctrl-C, 143 SIGTERM, 129 SIGHUP), resumable.

Every ending is recorded as what it was (backends/ending.py): the last line, the transcript's
`run-finished` and the exit status agree, and state the cluster's condition. SIGTERM and SIGHUP
(a closed SSH session) stop a run the way Ctrl-C does: the step in progress is left as the
journal has it, for the next invocation to resume.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sys
import time
import traceback
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from .cluster import Cluster
from .config import load_settings
from .ending import outcome_of, signal_exit, signal_name
from .engine import Engine
from .errors import (
    EXIT_FAILED,
    EXIT_GATE,
    EXIT_OK,
    EXIT_USAGE,
    ConfigError,
    MigrateError,
    StepBlocked,
)
from .events import (
    ChangeApplied,
    Event,
    FindingEvent,
    LogLine,
    PlanReady,
    Progress,
    PullProgress,
    RunFinished,
    RunStarted,
    StepStatus,
    VerifyResult,
)
from .lock import LockLost
from .plan_file import PlanFile, load_plan
from .registry_document import validate
from .statuses import Outcome, Status
from .steps import STEP_CLASSES, STEP_ORDER
from .textsafe import safe_event, terminal_safe


@dataclass
class RunOptions:
    config: str | None = None
    plan: str | None = None
    state_dir: str | None = None
    transcript: str | None = None
    steps: Sequence[str] | None = None
    dry_run: bool = False
    yes: bool = False
    manager_version: str | None = None
    fresh: bool = False


class Printer:
    """Events to plain lines. Pull progress is printed only when a cell finishes."""

    def __init__(self, out: TextIO | None = None, *, verbose: bool = False, dry_run: bool = False) -> None:
        self.out = out or sys.stdout
        self.verbose = verbose
        self.dry_run = dry_run
        self._last_progress = 0.0

    def __call__(self, e: Event) -> None:
        line = self.render(e)
        if line:
            say(self.out, line)

    def render(self, e: Event) -> str | None:
        # Text from the cluster or the plan (announcement, domain and session names, error
        # bodies) is shown with its control characters escaped, never sent to the terminal.
        e = safe_event(e)
        if isinstance(e, RunStarted):
            if e.resumed:
                return (f"resuming run {e.run_id}: verified steps are kept, an interrupted or failed step "
                        "continues from its journal")
            return None
        if isinstance(e, StepStatus):
            return f"[{e.step}] {e.status}" + (f": {e.message}" if e.message else "")
        if isinstance(e, FindingEvent):
            if e.severity == "info" and not self.verbose:
                return f"[{e.step}]   · {e.message}"
            fix = f"\n[{e.step}]     fix: {e.fix}" if e.fix else ""
            return f"[{e.step}]   {e.severity.upper()}: {e.message}{fix}"
        if isinstance(e, PlanReady):
            lines = [f"[{e.step}] plan: {e.summary}"]
            for c in e.changes:
                before = "(absent)" if c.get("before") is None else c["before"]
                after = "(absent)" if c.get("after") is None else c["after"]
                lines.append(f"[{e.step}]   {c['action']:<7} {c['target']}: {before} -> {after}")
                lines.append(f"[{e.step}]           $ {c['command']}")
            return "\n".join(lines)
        if isinstance(e, ChangeApplied):
            verb = "would apply" if self.dry_run else "applied"
            return f"[{e.step}]   {verb} {e.action} {e.target}"
        if isinstance(e, Progress):
            if e.phase in ("phase", "summary", "wait"):
                return f"[{e.step}]   {e.message}"
            now = time.monotonic()
            if self.verbose or now - self._last_progress > 2.0:
                self._last_progress = now
                counters = " ".join(f"{k}={v}" for k, v in e.counters.items())
                return f"[{e.step}]   {e.message} {counters}".rstrip()
            return None
        if isinstance(e, PullProgress):
            if e.state in ("done", "failed", "removed", "kept", "skipped"):
                return f"[{e.step}]   {e.agent}: {e.image}: {e.state}" + (f" ({e.message})" if e.message else "")
            return None
        if isinstance(e, VerifyResult):
            return "\n".join(f"[{e.step}]   {'ok  ' if c['ok'] else 'FAIL'} {c['name']}: {c.get('detail', '')}"
                             for c in e.checks)
        if isinstance(e, LogLine):
            if e.level in ("warning", "error") or self.verbose:
                return f"[{e.step or 'run'}] {e.level}: {e.message}"
            return None
        if isinstance(e, RunFinished):
            return (f"run {e.status} (exit {e.exit_code})" + (f": {e.message}" if e.message else "")
                    + (f"; cluster: {e.cluster}" if e.cluster else ""))
        return None


def say(out: TextIO, line: str) -> None:
    """Prints one line of the run, escaped; a terminal that went away (SIGHUP, a closed pipe) is
    not an error of the run: the transcript has every line."""
    with contextlib.suppress(OSError, ValueError):
        print(terminal_safe(line, keep_newlines=True), file=out, flush=True)


class Stopper:
    """SIGINT, SIGTERM and SIGHUP cancel the run's main task, once; so does the loss of the lock.

    The run then records the ending and releases the lock in its `finally`; the cleanup is
    bounded in time (each read of the cluster's condition, the lock release), so a second
    signal is only acknowledged."""

    SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)

    def __init__(self, out: TextIO) -> None:
        self.out = out
        self.signum: int | None = None
        self.lock_lost: LockLost | None = None
        self.closing = False      # recording the ending: nothing cancels that any more
        self._task: asyncio.Task[object] | None = None
        self._installed: list[int] = []

    def install(self) -> None:
        self._task = asyncio.current_task()
        loop = asyncio.get_running_loop()
        for sig in self.SIGNALS:
            with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
                loop.add_signal_handler(sig, self._on_signal, sig)
                self._installed.append(sig)

    def remove(self) -> None:
        loop = asyncio.get_running_loop()
        for sig in self._installed:
            loop.remove_signal_handler(sig)
        self._installed.clear()

    @property
    def stopping(self) -> bool:
        return self.signum is not None or self.lock_lost is not None

    def _on_signal(self, sig: int) -> None:
        if self.stopping or self.closing:
            say(self.out, f"bai-registry-migrate: {signal_name(sig)}: already stopping (recording how the run "
                          "ended, releasing the lock)")
            return
        self.signum = sig
        say(self.out, f"bai-registry-migrate: {signal_name(sig)}: stopping; the step in progress stays resumable")
        if self._task is not None:
            self._task.cancel()

    def on_lock_lost(self, err: LockLost) -> None:
        if self.stopping or self.closing:
            return
        self.lock_lost = err
        if self._task is not None:
            self._task.cancel()

    def absorb(self) -> None:
        """The cancellation came from us: let the task await its cleanup normally."""
        if self._task is not None:
            while self._task.uncancel() > 0:
                pass


def _select(steps: Sequence[str] | None) -> list[str]:
    if not steps:
        return list(STEP_ORDER)
    unknown = [s for s in steps if s not in STEP_ORDER]
    if unknown:
        raise ConfigError(f"unknown step {unknown[0]!r}", key="--steps", fix=f"use some of: {', '.join(STEP_ORDER)}")
    return [s for s in STEP_ORDER if s in steps]


def check_registry_json(plan: PlanFile) -> None:
    """Refuses an invalid registry JSON before anything is written.

    The wizard lets the operator correct the document in its editor, so the engine checks it
    only in the registry step; a headless run would by then have frozen the cluster
    (maintenance), so it is refused up front, naming the field, the rule and the fix.
    """
    v = validate(plan.registry_json, target=plan.target)
    if v.ok:
        return
    first = v.errors[0]
    more = f" (+{len(v.errors) - 1} more)" if len(v.errors) > 1 else ""
    where = "/".join(first.path) or "the document"
    raise ConfigError(f"line {first.line}:{first.column}: {where}: {first.message} (rule: {first.rule}){more}",
                      file=plan.source, key="registry.json", fix=first.fix)


async def _open(opts: RunOptions, sinks: list, *, keep_finished: bool = False, existing_only: bool = False
                ) -> Engine:
    settings = load_settings(opts.config)
    plan = load_plan(opts.plan)
    if not keep_finished:
        check_registry_json(plan)
    if opts.manager_version:
        plan.manager.version = opts.manager_version
    cluster = Cluster(settings, plan, dry_run=opts.dry_run)
    return await Engine.open(cluster, state_dir=Path(opts.state_dir) if opts.state_dir else None,
                             resume=not opts.fresh, transcript_dir=Path(opts.transcript) if opts.transcript else None,
                             sinks=sinks, keep_finished=keep_finished, existing_only=existing_only)


async def run(opts: RunOptions, out: TextIO | None = None) -> int:
    # sys.stdout as of the call, not of the import (an embedding program may have replaced it).
    out = out or sys.stdout
    if not opts.yes and not opts.dry_run:
        say(out, "bai-registry-migrate run: refusing to write without --yes (use --dry-run to see the plan)")
        return EXIT_USAGE
    selected = _select(opts.steps)
    printer = Printer(out, dry_run=opts.dry_run)
    stopper = Stopper(out)
    stopper.install()
    try:
        return await _run(opts, out, selected, printer, stopper)
    finally:
        stopper.remove()


async def _run(opts: RunOptions, out: TextIO, selected: list[str], printer: Printer, stopper: Stopper) -> int:
    try:
        engine = await _open(opts, [printer])
    except MigrateError as e:
        say(out, f"bai-registry-migrate: error: {e.one_line()}")
        return e.exit_code
    except asyncio.CancelledError:
        if stopper.signum is None:
            raise
        stopper.absorb()
        say(out, f"bai-registry-migrate: stopped by {signal_name(stopper.signum)} before the run started; "
                 "nothing was written to the cluster")
        return signal_exit(stopper.signum)
    except Exception as e:  # noqa: BLE001 - nothing is open yet: say what it was, without a traceback
        say(out, f"bai-registry-migrate: error: unexpected {type(e).__name__} while opening the run: {e}; "
                 "nothing was written")
        return EXIT_FAILED
    if engine.lock is not None:
        engine.lock.on_lost(stopper.on_lock_lost)
    outcome, code, message = await _steps(engine, opts, out, selected, stopper)
    stopper.closing = True
    try:
        await engine.close(outcome, code, message)
    except Exception as e:  # noqa: BLE001 - the ending is already on the terminal; the state is kept
        say(out, f"bai-registry-migrate: while closing: {_describe(engine, e)}")
    return code


def _describe(engine: Engine, e: BaseException) -> str:
    if isinstance(e, MigrateError):
        return e.one_line()
    return engine.cluster.redactor(f"unexpected {type(e).__name__}: {e}")


async def _steps(engine: Engine, opts: RunOptions, out: TextIO, selected: list[str],
                 stopper: Stopper) -> tuple[Outcome, int, str]:
    """Runs the selected steps; returns how it ended. Nothing escapes but a foreign cancellation."""
    try:
        for sid in selected:
            if sid not in engine.state.steps:
                continue
            if sid == "maintenance" and not engine.cluster.plan.maintenance.enabled:
                if engine.status_of(sid) not in ("verified", "skipped"):
                    await engine.skip(sid, "maintenance mode is off in the plan")
                continue
            if sid == "agent-cleanup" and not engine.cluster.plan.agent_cleanup.enabled:
                if engine.status_of(sid) not in ("verified", "skipped"):
                    await engine.skip(sid, "agent cleanup is off in the plan")
                continue
            await engine.run_step(sid)
        complete = all(engine.status_of(s) in ("verified", "skipped") for s in engine.step_ids())
        if complete:
            # The freeze lasts for the whole migration, not for one invocation of --steps.
            await engine.finish_maintenance()
        if opts.dry_run:
            return Outcome.DRY_RUN, EXIT_OK, "nothing was written"
        if complete:
            engine.state.finished = True
            engine.save()
            return Outcome.VERIFIED, EXIT_OK, ""
        left = [s for s in engine.step_ids() if engine.status_of(s) not in ("verified", "skipped")]
        return Outcome.VERIFIED, EXIT_OK, f"the selected steps are verified; not yet done: {', '.join(left)}"
    except asyncio.CancelledError:
        if not stopper.stopping:
            raise
        stopper.absorb()
        if stopper.lock_lost is not None:
            return await _lock_lost(engine, out, stopper.lock_lost)
        assert stopper.signum is not None
        # A freeze set by `maintenance` stays, as on a failure: the resume lifts it at the end.
        message = (f"stopped by {signal_name(stopper.signum)}; the step in progress is kept as its journal has "
                   "it: run the same command again to resume")
        say(out, f"bai-registry-migrate: {message}")
        return Outcome.ABORTED, signal_exit(stopper.signum), message
    except StepBlocked as e:
        for f in e.findings:
            for d in f.details:
                say(out, f"[{e.step}]     - {d}")
        if engine.lock is not None and engine.lock.lost is not None:
            return await _lock_lost(engine, out, engine.lock.lost)
        return Outcome.GATE, EXIT_GATE, e.one_line()
    except Exception as e:  # noqa: BLE001 - every ending is recorded as what it was, none as "verified"
        lost = e if isinstance(e, LockLost) else (engine.lock.lost if engine.lock is not None else None)
        if lost is not None:
            # Whatever error the loss surfaced as (a refused write, a failed restore), the
            # ending is the loss.
            return await _lock_lost(engine, out, lost, cause=None if lost is e else e)
        outcome, code = outcome_of(e)
        message = _describe(engine, e)
        if not isinstance(e, MigrateError):
            # Not anticipated: the traceback goes to the transcript (redacted), not the terminal.
            tb = "".join(traceback.format_exception(type(e), e, e.__traceback__))
            with contextlib.suppress(Exception):
                engine.log(None, "debug", engine.cluster.redactor(tb))
            message += ("; fix: the run state is kept and the traceback is in the transcript; fix the cause and "
                        "run the same command again to resume")
        say(out, f"bai-registry-migrate: {message}")
        if not opts.dry_run:
            say(out, "  the run state is kept: fix the cause and run the same command again to resume; "
                     "`rollback --steps NAME` undoes a reversible step")
        return outcome, code, message


async def _lock_lost(engine: Engine, out: TextIO, err: LockLost, *,
                     cause: BaseException | None = None) -> tuple[Outcome, int, str]:
    if engine.lock is not None:
        err = await engine.lock.explain(err)
    message = err.one_line()
    if cause is not None:
        message += f" (it surfaced as: {_describe(engine, cause)})"
    say(out, f"bai-registry-migrate: {message}")
    return Outcome.LOCK_LOST, EXIT_GATE, message


async def plan_only(opts: RunOptions, out: TextIO | None = None) -> int:
    """Prints every planned change of every selected step, as a dry run does, writing nothing."""
    return await run(RunOptions(**{**opts.__dict__, "dry_run": True, "yes": False}), out)


ROLLBACK_SHOWN = 20   # restored values printed per step; the transcript has all of them


def _reversible(steps: Sequence[str] | None) -> list[str]:
    """The steps to roll back, latest first. Naming a step that cannot be rolled back is a bad
    input (exit 2), not a rollback of nothing that reports success."""
    selected = _select(steps)
    if steps:
        fixed = [s for s in selected if not STEP_CLASSES[s].meta.reversible]
        if fixed:
            can = ", ".join(s for s in STEP_ORDER if STEP_CLASSES[s].meta.reversible)
            raise ConfigError(f"step {fixed[0]} cannot be rolled back: it keeps no backup to restore (what it did "
                              "stays done)", key="--steps", fix=f"roll back some of: {can}")
    return list(reversed([s for s in selected if STEP_CLASSES[s].meta.reversible]))


def _later_applied(engine: Engine, sid: str, selected: Sequence[str]) -> list[str]:
    """Reversible steps after `sid` that are applied in this run and not being rolled back:
    undoing `sid` under them leaves the cluster in a state no run ever had."""
    later = STEP_ORDER[STEP_ORDER.index(sid) + 1:] if sid in STEP_ORDER else ()
    return [s for s in later if s not in selected and STEP_CLASSES[s].meta.reversible
            and (st := engine.state.steps.get(s)) is not None and st.backup is not None
            and st.status in (Status.APPLYING, Status.APPLIED, Status.VERIFIED)]


async def rollback(opts: RunOptions, out: TextIO | None = None) -> int:
    out = out or sys.stdout
    try:
        selected = _reversible(opts.steps)
    except MigrateError as e:
        say(out, f"bai-registry-migrate: error: {e.one_line()}")
        return e.exit_code
    printer = Printer(out)
    stopper = Stopper(out)
    stopper.install()
    try:
        return await _rollback(opts, out, selected, printer, stopper)
    finally:
        stopper.remove()


async def _rollback(opts: RunOptions, out: TextIO, selected: list[str], printer: Printer, stopper: Stopper) -> int:
    try:
        # A completed run too: its backups are what a rollback after the migration restores.
        engine = await _open(opts, [printer], keep_finished=True, existing_only=True)
    except MigrateError as e:
        say(out, f"bai-registry-migrate: error: {e.one_line()}")
        return e.exit_code
    except asyncio.CancelledError:
        if stopper.signum is None:
            raise
        stopper.absorb()
        return signal_exit(stopper.signum)
    if engine.lock is not None:
        engine.lock.on_lost(stopper.on_lock_lost)
    outcome, code, message = Outcome.ROLLED_BACK, EXIT_OK, ""
    rolled = 0
    try:
        for sid in selected:
            st = engine.state.steps.get(sid)
            if st is None or st.backup is None:
                if opts.steps:
                    say(out, f"[{sid}] not rolled back: run {engine.state.run_id} has no backup of it "
                             f"(it is {st.status if st else 'not part of the run'}: nothing of it was written)")
                continue
            for later in _later_applied(engine, sid, selected):
                say(out, f"[{sid}] warning: {later} was applied after it and stays applied"
                         + (": Docker Hub's image metadata and registry entry stay deleted, so allowing or "
                            "aliasing index.docker.io again finds no image" if later == "cleanup" else "")
                         + f"; to undo both: rollback --steps {later},{sid}")
            changes = await engine.rollback(sid)
            rolled += 1
            say(out, f"[{sid}] rolled back: {len(changes)} change(s)")
            for c in changes[:ROLLBACK_SHOWN]:   # what is back (secret values masked by the step)
                shown = (f"  {c.target}: {c.before if c.before is not None else '(none)'} -> "
                         f"{c.after if c.after is not None else '(deleted)'}")
                say(out, terminal_safe(engine.cluster.redactor(shown)))
            if len(changes) > ROLLBACK_SHOWN:
                say(out, f"  ... and {len(changes) - ROLLBACK_SHOWN} more (every one is in the transcript)")
        if not rolled:
            outcome, code = Outcome.FAILED, EXIT_USAGE
            message = ("nothing was rolled back: no selected reversible step of run "
                       f"{engine.state.run_id} has a backup; fix: name the applied steps with --steps, or "
                       "pass --state-dir of the run that applied them")
            say(out, f"bai-registry-migrate: {message}")
        if engine.cluster.unrestored:
            # Everything else is back; these secret keys were neither checked nor restored, and
            # a script must not read exit 0 as "the cluster is as it was".
            now = []
            for k in engine.cluster.unrestored:
                present = await engine.cluster.kv_get(k) is not None
                now.append(f"{k} ({'present now, maybe not the backed-up value' if present else 'absent now'})")
            outcome, code = Outcome.FAILED, EXIT_FAILED
            message = (f"rolled back except {len(now)} secret key(s) whose backed-up value is sealed with a missing "
                       f"or other seal key: {', '.join(now)}; fix: set them by hand (backend.ai mgr etcd put KEY "
                       f"VALUE), or restore the seal key {engine.cluster.vault.key_path} and roll back again")
    except asyncio.CancelledError:
        if not stopper.stopping:
            raise
        stopper.absorb()
        if stopper.lock_lost is not None:
            outcome, code, message = await _lock_lost(engine, out, stopper.lock_lost)
        else:
            assert stopper.signum is not None
            outcome, code = Outcome.ABORTED, signal_exit(stopper.signum)
            message = f"stopped by {signal_name(stopper.signum)}; run the same rollback again to finish it"
    except Exception as e:  # noqa: BLE001 - recorded as what it was
        lost = e if isinstance(e, LockLost) else (engine.lock.lost if engine.lock is not None else None)
        if lost is not None:
            outcome, code, message = await _lock_lost(engine, out, lost, cause=None if lost is e else e)
        else:
            outcome, code = outcome_of(e)
            message = _describe(engine, e)
            say(out, f"bai-registry-migrate: {message}")
    stopper.closing = True
    try:
        await engine.close(outcome, code, message)
    except Exception as e:  # noqa: BLE001 - the ending is already on the terminal
        say(out, f"bai-registry-migrate: while closing: {_describe(engine, e)}")
    return code


def main_run(opts: RunOptions) -> int:
    return asyncio.run(run(opts))


def main_plan(opts: RunOptions) -> int:
    return asyncio.run(plan_only(opts))


def main_rollback(opts: RunOptions) -> int:
    return asyncio.run(rollback(opts))
