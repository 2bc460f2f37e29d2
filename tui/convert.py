"""Engine data -> the plain items `widgets/` displays. Pure functions.

Widgets know nothing of Backend.AI; this is the one place that maps findings, planned
changes, checks and validation issues onto their small dataclasses.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from backends.events import PlannedChange
from backends.registry_document import Issue, Validation
from backends.steps.base import Check, Finding
from widgets.items import ChangeItem, CheckItem, FindingItem, IssueItem, StepItem
from widgets.pull_grid import human_bytes  # noqa: F401 - re-exported for screens


def finding_items(findings: Iterable[Finding]) -> list[FindingItem]:
    return [FindingItem(str(f.severity), f.code, f.message, f.fix, list(f.details)) for f in findings]


def change_item(c: PlannedChange | Mapping[str, Any]) -> ChangeItem:
    d = c.to_json() if isinstance(c, PlannedChange) else dict(c)
    return ChangeItem(d["target"], d["action"], d.get("before"), d.get("after"), d.get("command") or "",
                      d.get("note") or "")


def change_items(changes: Iterable[PlannedChange | Mapping[str, Any]]) -> list[ChangeItem]:
    return [change_item(c) for c in changes]


def check_items(checks: Iterable[Check | Mapping[str, Any]]) -> list[CheckItem]:
    out = []
    for c in checks:
        d = c.to_json() if isinstance(c, Check) else dict(c)
        out.append(CheckItem(d["name"], bool(d["ok"]), d.get("detail") or ""))
    return out


def issue_item(i: Issue) -> IssueItem:
    return IssueItem(i.line, i.column, i.message, i.rule, i.fix, i.severity)


def issue_items(v: Validation) -> list[IssueItem]:
    return [issue_item(i) for i in v.issues]


def step_items(statuses: Mapping[str, str], title: Callable[[str], str]) -> list[StepItem]:
    return [StepItem(sid, title(sid), str(status)) for sid, status in statuses.items()]


def short_image(ref: str) -> str:
    """`cr.backend.ai/stable/python:3.9-ubuntu20.04` -> `python:3.9-ubuntu20.04` (grid column labels)."""
    return ref.rsplit("/", 1)[-1]
