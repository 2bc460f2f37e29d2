"""What the engine reports while it works: plain dataclasses, JSON-able, UI-agnostic.

The headless runner prints them, the transcript writes them, the wizard turns them into
Textual messages. Nothing here knows who listens.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any, ClassVar


@dataclass
class Event:
    kind: ClassVar[str] = "event"
    ts: float = field(default_factory=time.time, kw_only=True)

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        d["kind"] = self.kind
        return d


@dataclass
class RunStarted(Event):
    kind: ClassVar[str] = "run-started"
    run_id: str
    namespace: str
    dry_run: bool
    version: str
    plan: str | None
    resumed: bool = False


@dataclass
class RunFinished(Event):
    kind: ClassVar[str] = "run-finished"
    status: str          # a backends.statuses.Outcome
    exit_code: int
    message: str = ""
    cluster: str = ""    # the cluster's condition at the end: frozen or not, manager up or down


@dataclass
class StepStatus(Event):
    kind: ClassVar[str] = "step-status"
    step: str
    status: str          # pending | inspecting | planned | applying | applied | verified | skipped | failed | blocked | rolled-back
    message: str = ""


@dataclass
class FindingEvent(Event):
    kind: ClassVar[str] = "finding"
    step: str
    severity: str        # blocking | warning | info
    code: str
    message: str
    fix: str = ""


@dataclass
class PlannedChange:
    """One concrete change: the operator sees target, before, after and the manual equivalent."""

    target: str          # e.g. "etcd config/docker/registry/cr.backend.ai/type", "sql domains[research]"
    action: str          # put | delete | update | pull | remove | command | tag
    before: str | None
    after: str | None
    command: str         # the equivalent manual command
    note: str = ""

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> PlannedChange:
        return cls(**{k: d.get(k) for k in ("target", "action", "before", "after", "command")},
                   note=d.get("note", ""))


@dataclass
class PlanReady(Event):
    kind: ClassVar[str] = "plan"
    step: str
    summary: str
    changes: list[dict[str, Any]]


@dataclass
class ChangeApplied(Event):
    kind: ClassVar[str] = "applied"
    step: str
    target: str
    action: str
    before: str | None
    after: str | None
    command: str


@dataclass
class Progress(Event):
    kind: ClassVar[str] = "progress"
    step: str
    phase: str
    message: str
    done: int = 0
    total: int = 0
    counters: dict[str, int] = field(default_factory=dict)


@dataclass
class PullProgress(Event):
    """One agent x image cell of the pre-pull (or removal) grid."""

    kind: ClassVar[str] = "pull"
    step: str
    agent: str
    image: str
    state: str           # queued | pulling | extracting | done | failed | skipped | removed | kept
    layers_done: int = 0
    layers_total: int = 0
    bytes_done: int = 0
    bytes_total: int = 0
    message: str = ""


@dataclass
class VerifyResult(Event):
    kind: ClassVar[str] = "verify"
    step: str
    ok: bool
    checks: list[dict[str, Any]]


@dataclass
class LogLine(Event):
    kind: ClassVar[str] = "log"
    step: str | None
    level: str
    message: str


Emit = Callable[[Event], None]


def null_emit(_e: Event) -> None:
    return None


def _event_classes() -> dict[str, type[Event]]:
    out: dict[str, type[Event]] = {}
    todo: list[type[Event]] = [Event]
    while todo:
        cls = todo.pop()
        out[cls.kind] = cls
        todo.extend(cls.__subclasses__())
    return out


def event_from_json(d: dict[str, Any]) -> Event:
    """An event as `to_json` wrote it (a transcript line, a recording), back as its own type."""
    cls = _event_classes().get(d.get("kind", ""))
    if cls is None:
        raise ValueError(f"unknown event kind {d.get('kind')!r}")
    return cls(**{k: v for k, v in d.items() if k != "kind"})
