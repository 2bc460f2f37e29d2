"""A first look before a run opens (the wizard's start screen): configuration, connections, an unfinished run.

Everything here is read-only and returns plain data; a failure is one line with its fix
(MigrateError.one_line), because the operator reads it over SSH with nothing else to go on.
The probe connects with its own Cluster and closes it: the engine opens a fresh one.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .cluster import Cluster
from .config import Settings
from .errors import MigrateError
from .plan_file import PlanFile
from .state import STATE_FILE, default_state_dir
from .statuses import FINISHED
from .steps import STEP_ORDER


@dataclass
class Check:
    name: str
    ok: bool
    detail: str = ""
    required: bool = True


@dataclass
class Unfinished:
    """A run state left in the state directory: what the resume offer shows."""

    run_id: str
    updated_at: float
    statuses: dict[str, str]
    path: Path

    @property
    def current(self) -> str | None:
        return next((s for s, st in self.statuses.items() if st not in FINISHED), None)

    def describe(self) -> str:
        when = time.strftime("%Y-%m-%d %H:%M", time.localtime(self.updated_at))
        done = sum(st in FINISHED for st in self.statuses.values())
        cur = self.current
        where = f"; stopped at {cur} ({self.statuses[cur]})" if cur else ""
        return f"run {self.run_id}, last saved {when}: {done}/{len(self.statuses)} steps done{where}"


@dataclass
class ProbeResult:
    checks: list[Check] = field(default_factory=list)
    manager_version: str | None = None
    era: str | None = None
    unfinished: Unfinished | None = None
    state_dir: Path | None = None

    @property
    def ready(self) -> bool:
        """Begin is possible: configuration read and both stores reachable."""
        return bool(self.checks) and all(c.ok for c in self.checks if c.required)


def state_dir_for(settings: Settings, explicit: Path | None) -> Path:
    return explicit or default_state_dir(settings.etcd.namespace)


def peek_state(directory: Path) -> Unfinished | None:
    """Reads only the statuses of a saved run (no unsealing): is there one to resume?"""
    path = directory / STATE_FILE
    try:
        raw: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    steps = raw.get("steps") or {}
    # state.json is written with sorted keys: put the steps back in run order
    order = [s for s in STEP_ORDER if s in steps] + sorted(s for s in steps if s not in STEP_ORDER)
    statuses = {sid: str((steps[sid] or {}).get("status", "pending")) for sid in order}
    if raw.get("finished") or all(s == "pending" for s in statuses.values()):
        return None
    return Unfinished(str(raw.get("run_id", "?")), float(raw.get("updated_at") or 0.0), statuses, path)


async def probe(settings: Settings | None, plan: PlanFile | None, errors: dict[str, MigrateError], *,
                dry_run: bool, state_dir: Path | None) -> ProbeResult:
    out = ProbeResult()
    if settings is None:
        err = errors.get("config")
        out.checks.append(Check("manager.toml", False, err.one_line() if err else "not loaded"))
    else:
        extra = f" (overrides: {', '.join(settings.overridden)})" if settings.overridden else ""
        out.checks.append(Check("manager.toml", True, f"{settings.config_path}{extra}"))
    if plan is None:
        err = errors.get("plan")
        out.checks.append(Check("plan", False, err.one_line() if err else "not loaded"))
    else:
        out.checks.append(Check("plan", True, f"{plan.source or '(built-in defaults)'}: target {plan.target}"))
    if settings is None or plan is None:
        return out
    cluster = Cluster(settings, plan, dry_run=dry_run)
    try:
        try:
            await cluster.etcd.connect()
            version = await cluster.etcd.server_version()
            out.checks.append(Check("etcd", True, f"{settings.etcd.addr}, namespace {settings.etcd.namespace!r}"
                                    f" (etcd {version})"))
        except MigrateError as e:
            out.checks.append(Check("etcd", False, e.one_line()))
        try:
            await cluster.db.open()
            era = await cluster.db.schema_era()
            out.era = era.label
            out.checks.append(Check("PostgreSQL", True, f"{settings.db.addr}, database {settings.db.name!r} "
                                    f"as {settings.db.user!r}: {era.label}"))
        except MigrateError as e:
            out.checks.append(Check("PostgreSQL", False, e.one_line()))
        try:
            info = await cluster.manager.hello()
            out.manager_version = info.version
            out.checks.append(Check("manager", True, f"{info.version} (API {info.api_version}) at "
                                    f"{cluster.manager.url}", required=False))
        except MigrateError as e:
            out.checks.append(Check("manager", False, e.one_line() + " (preflight decides whether this blocks)",
                                    required=False))
    finally:
        await cluster.close()
    return with_run_state(out, settings, dry_run=dry_run, state_dir=state_dir)


def with_run_state(out: ProbeResult, settings: Settings, *, dry_run: bool, state_dir: Path | None) -> ProbeResult:
    """The local part of the probe: is there an unfinished run in this machine's state directory?"""
    out.checks = [c for c in out.checks if c.name != "run state"]
    out.state_dir = out.unfinished = None
    if dry_run:
        out.checks.append(Check("run state", True, "dry run: no state is read or written", required=False))
        return out
    out.state_dir = state_dir_for(settings, state_dir)
    out.unfinished = peek_state(out.state_dir)
    detail = (f"unfinished {out.unfinished.describe()}" if out.unfinished
              else f"no unfinished run in {out.state_dir}")
    out.checks.append(Check("run state", True, detail, required=False))
    return out
