"""Plain data the widgets display: small dataclasses, no Textual, no Backend.AI.

The widgets must not know the engine (docs/tui-contract.md), so `tui/` translates engine events
into these. Keeping them dumb (strings and ints) also keeps snapshot tests trivial to feed.
"""

from __future__ import annotations

from dataclasses import dataclass, field

SEVERITIES: tuple[str, ...] = ("blocking", "warning", "info")
"""Finding severities, most severe first; FindingsView sorts by this order."""

STEP_STATUSES: tuple[str, ...] = (
    "pending", "current", "inspecting", "inspected", "planned", "applying", "applied",
    "verified", "skipped", "failed", "blocked", "rolled-back",
)
"""Every status a StepItem may carry (the engine's StepStatus values plus `current`)."""


@dataclass
class FindingItem:
    """One thing an inspection found. `blocking` ones stop the step, so they carry a fix."""

    severity: str  # blocking | warning | info
    code: str
    message: str
    fix: str = ""
    details: list[str] = field(default_factory=list)


@dataclass
class ChangeItem:
    """One planned write, with the manual command an operator could run instead.

    `before`/`after` are None when the key or row does not exist on that side (a put of a new
    key has no before, a delete has no after); the table shows that as an em dash, not "None".
    """

    target: str
    action: str
    before: str | None
    after: str | None
    command: str
    note: str = ""


@dataclass
class IssueItem:
    """A validation problem in edited text. `line` and `column` are 1-based, as shown to people
    (the same convention as backends/jsonpos.py); JsonEditor converts them for the cursor."""

    line: int
    column: int
    message: str
    rule: str
    fix: str
    severity: str = "error"  # error | warning | info


@dataclass
class StepItem:
    """One wizard step in the side list; `status` is one of STEP_STATUSES."""

    id: str
    title: str
    status: str = "pending"


@dataclass
class CheckItem:
    """One yes/no check (a connection, a verification); `detail` says what was seen."""

    name: str
    ok: bool
    detail: str = ""
