"""The step protocol: inspect, plan, apply, verify, rollback — the same for UI, runner and tests.

A step never talks to the operator. It reads (`inspect`), proposes concrete changes
(`plan`), performs them with a backup taken first (`apply`), proves them by reading back
(`verify`) and, where possible, undoes them (`rollback`). `apply` must be resumable: it may
be called again after a crash with the same plan and the step's journal, and must finish the
job without repeating or losing a write.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from ..cluster import Cluster
from ..events import Emit, FindingEvent, PlannedChange, Progress, StepStatus
from ..state import RunState, StepState


@dataclass
class Finding:
    severity: str        # blocking | warning | info
    code: str
    message: str
    fix: str = ""
    details: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {"severity": self.severity, "code": self.code, "message": self.message, "fix": self.fix,
                "details": self.details}

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> Finding:
        return cls(d["severity"], d["code"], d["message"], d.get("fix", ""), list(d.get("details", [])))


@dataclass
class StepPlan:
    summary: str
    changes: list[PlannedChange] = field(default_factory=list)
    data: dict[str, Any] = field(default_factory=dict)   # step-specific, JSON-able, saved for resume
    destructive: bool = False                             # needs a typed confirmation in the UI

    def to_json(self) -> dict[str, Any]:
        return {"summary": self.summary, "changes": [c.to_json() for c in self.changes], "data": self.data,
                "destructive": self.destructive}

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> StepPlan:
        return cls(d["summary"], [PlannedChange.from_json(c) for c in d.get("changes", [])],
                   dict(d.get("data", {})), bool(d.get("destructive", False)))

    @property
    def empty(self) -> bool:
        return not self.changes


@dataclass
class Check:
    name: str
    ok: bool
    detail: str = ""

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "ok": self.ok, "detail": self.detail}


@dataclass
class Verification:
    checks: list[Check] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(c.ok for c in self.checks)

    def add(self, name: str, ok: bool, detail: str = "") -> None:
        self.checks.append(Check(name, ok, detail))


class Step:
    id: ClassVar[str] = ""
    title: ClassVar[str] = ""
    runbook: ClassVar[str] = ""          # which runbook step this automates
    reversible: ClassVar[bool] = False
    writes: ClassVar[bool] = True
    optional: ClassVar[bool] = False

    def __init__(self, cluster: Cluster, state: StepState, emit: Emit,
                 save: Callable[[], None] | None = None) -> None:
        self.cluster = cluster
        self.state = state
        self.emit = emit
        self._save = save or (lambda: None)
        self.run: RunState | None = None     # the whole run, for steps that look at others (verify)
        self.backup_dir: Path | None = None  # where human-readable backup copies go (not on dry runs)

    # -- helpers for subclasses -----------------------------------------------------------
    @property
    def plan_file(self) -> Any:
        return self.cluster.plan

    def save(self) -> None:
        self._save()

    def journal(self, key: str, value: Any = True) -> None:
        """Records that a sub-action finished, and saves, before anything else happens."""
        self.state.journal.append({"key": key, "value": value})
        self.save()

    def done(self, key: str) -> bool:
        return self.state.journaled(key)

    def progress(self, phase: str, message: str, done: int = 0, total: int = 0, **counters: int) -> None:
        self.emit(Progress(self.id, phase, message, done, total, dict(counters)))

    def status(self, status: str, message: str = "") -> None:
        self.emit(StepStatus(self.id, status, message))

    def finding(self, f: Finding) -> Finding:
        self.emit(FindingEvent(self.id, f.severity, f.code, f.message, f.fix))
        return f

    # -- the protocol ---------------------------------------------------------------------
    async def inspect(self) -> list[Finding]:
        return []

    async def plan(self) -> StepPlan:
        return StepPlan("nothing to do")

    async def apply(self, plan: StepPlan) -> dict[str, Any]:
        return {}

    async def verify(self, plan: StepPlan) -> Verification:
        return Verification()

    async def rollback(self) -> list[PlannedChange]:
        raise NotImplementedError(f"step {self.id} cannot be rolled back")
