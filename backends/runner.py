"""Headless runs: `run --yes` executes the steps, `plan` prints every planned change and writes nothing.

Plain, line-oriented output that reads well in a CI log or over a flaky SSH link. Exit
status: 0 all verified; 1 a step failed (and what was rolled back is said); 2 bad usage or
configuration; 3 stopped at a gate (e.g. live sessions still on old images).
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from .cluster import Cluster
from .config import load_settings
from .engine import Engine
from .errors import (
    EXIT_FAILED,
    EXIT_GATE,
    EXIT_OK,
    EXIT_USAGE,
    ConfigError,
    ConnectError,
    MigrateError,
    StepBlocked,
    StepFailed,
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
from .plan_file import PlanFile, load_plan
from .registry_document import validate
from .steps import STEP_ORDER


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
            print(line, file=self.out, flush=True)

    def render(self, e: Event) -> str | None:
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
            return f"run {e.status} (exit {e.exit_code})" + (f": {e.message}" if e.message else "")
        return None


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


async def _open(opts: RunOptions, sinks: list, *, keep_finished: bool = False) -> Engine:
    settings = load_settings(opts.config)
    plan = load_plan(opts.plan)
    if not keep_finished:
        check_registry_json(plan)
    if opts.manager_version:
        plan.manager.version = opts.manager_version
    cluster = Cluster(settings, plan, dry_run=opts.dry_run)
    return await Engine.open(cluster, state_dir=Path(opts.state_dir) if opts.state_dir else None,
                             resume=not opts.fresh, transcript_dir=Path(opts.transcript) if opts.transcript else None,
                             sinks=sinks, keep_finished=keep_finished)


async def run(opts: RunOptions, out: TextIO | None = None) -> int:
    # sys.stdout as of the call, not of the import (an embedding program may have replaced it).
    out = out or sys.stdout
    if not opts.yes and not opts.dry_run:
        print("bai-registry-migrate run: refusing to write without --yes (use --dry-run to see the plan)", file=out)
        return EXIT_USAGE
    selected = _select(opts.steps)
    printer = Printer(out, dry_run=opts.dry_run)
    try:
        engine = await _open(opts, [printer])
    except MigrateError as e:
        print(f"bai-registry-migrate: error: {e.one_line()}", file=out)
        return e.exit_code
    status, code, message = "verified", EXIT_OK, ""
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
            status, message = "dry-run", "nothing was written"
        elif complete:
            engine.state.finished = True
            engine.save()
    except StepBlocked as e:
        status, code, message = "gate", EXIT_GATE, e.one_line()
        for f in e.findings:
            for d in f.details:
                print(f"[{e.step}]     - {d}", file=out)
    except (StepFailed, MigrateError) as e:
        # A service lost while a step runs is a failed step (exit 1, resumable), not a bad
        # configuration: exit 2 is for what stops a run before it starts.
        code = EXIT_FAILED if isinstance(e, ConnectError) or e.exit_code == EXIT_OK else e.exit_code
        status, message = "failed", e.one_line()
        print(f"bai-registry-migrate: {message}", file=out)
        if not opts.dry_run:
            print("  the run state is kept: fix the cause and run the same command again to resume; "
                  "`rollback --steps NAME` undoes a reversible step", file=out)
    finally:
        try:
            # A freeze set by `maintenance` stays on a failed or gated run: the operator resumes
            # (which lifts it at the end) or rolls back `maintenance` explicitly.
            await engine.close(status, code, message)
        except MigrateError as e:
            print(f"bai-registry-migrate: while closing: {e.one_line()}", file=out)
    return code


async def plan_only(opts: RunOptions, out: TextIO | None = None) -> int:
    """Prints every planned change of every selected step, as a dry run does, writing nothing."""
    return await run(RunOptions(**{**opts.__dict__, "dry_run": True, "yes": False}), out)


async def rollback(opts: RunOptions, out: TextIO | None = None) -> int:
    out = out or sys.stdout
    selected = list(reversed(_select(opts.steps)))
    printer = Printer(out)
    try:
        # A completed run too: its backups are what a rollback after the migration restores.
        engine = await _open(opts, [printer], keep_finished=True)
    except MigrateError as e:
        print(f"bai-registry-migrate: error: {e.one_line()}", file=out)
        return e.exit_code
    code = EXIT_OK
    rolled = 0
    try:
        for sid in selected:
            st = engine.state.steps.get(sid)
            if st is None or st.backup is None:
                continue
            step = engine.step(sid)
            if not step.reversible:
                continue
            changes = await engine.rollback(sid)
            rolled += 1
            print(f"[{sid}] rolled back: {len(changes)} change(s)", file=out)
        if not rolled:
            print("nothing to roll back: no selected reversible step of this run has a backup", file=out)
    except MigrateError as e:
        code = e.exit_code
        print(f"bai-registry-migrate: {e.one_line()}", file=out)
    finally:
        await engine.close("rolled-back" if code == EXIT_OK else "failed", code)
    return code


def main_run(opts: RunOptions) -> int:
    return asyncio.run(run(opts))


def main_plan(opts: RunOptions) -> int:
    return asyncio.run(plan_only(opts))


def main_rollback(opts: RunOptions) -> int:
    return asyncio.run(rollback(opts))
