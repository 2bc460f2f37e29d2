"""The agents x images cells of `prepull` and `agent-cleanup`, as the wizard keeps them.

The grid widget only draws; the latest state of every cell lives here (owned by the
controller), built from three sources: the plan and the step's journal before an apply (a
resume shows finished cells as done), the coalesced PullProgress events while it runs, and
the step's own result afterwards, which is the truth. Pure functions over engine data.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from backends.state import StepState
from backends.steps.base import StepPlan
from backends.transcript import FINAL_PULL_STATES

from .convert import human_bytes

Key = tuple[str, str]


@dataclass
class Cell:
    agent: str
    image: str
    state: str
    done: int = 0
    total: int = 0
    message: str = ""


def plan_cells(step: str, plan: StepPlan, st: StepState) -> dict[Key, Cell]:
    """Every cell of the plan: done ones from the journal, the rest queued with why they are
    there; for agent cleanup, kept images with why they are kept."""
    cells: dict[Key, Cell] = {}
    if step == "prepull":
        why = plan.data.get("why", {})
        for a in plan.data.get("agents", []):
            for img in plan.data.get("images", []):
                done = st.journaled(f"pull:{a['id']}:{img}")
                cells[(a["id"], img)] = Cell(a["id"], img, "done" if done else "queued", 0, 0,
                                             "done in an earlier attempt" if done else why.get(img, ""))
        return cells
    for r in plan.data.get("agents", []):
        for i in r.get("remove", []):
            val = st.journal_value(f"rmi:{r['agent']}:{i['image']}")
            cells[(r["agent"], i["image"])] = Cell(r["agent"], i["image"], str(val) if val else "queued",
                                                   message=f"to remove ({human_bytes(i.get('size', 0))})")
        for k in r.get("keep", []):
            cells[(r["agent"], k["image"])] = Cell(r["agent"], k["image"], "kept", message=k["why"])
    return cells


def result_cells(step: str, result: dict[str, Any], old: dict[Key, Cell], *, dry_run: bool) -> dict[Key, Cell]:
    """After an apply: each cell as the step's result says (`"failed: why"` carries the error)."""
    table = result.get("matrix") if step == "prepull" else result.get("results")
    out: dict[Key, Cell] = {}
    for agent, row in (table or {}).items():
        for image, value in row.items():
            state, _, msg = str(value).partition(": ")
            if state == "planned":
                state, msg = "skipped", "dry run: not removed"
            if dry_run and step == "prepull":
                state, msg = "skipped", "dry run: not pulled"
            prev = old.get((agent, image))
            out[(agent, image)] = Cell(agent, image, state, prev.done if prev else 0, prev.total if prev else 0,
                                       msg or (prev.message if prev else ""))
    return out


def paused(cells: dict[Key, Cell]) -> list[Cell]:
    """Cells still in flight when a pause (or quit) cancelled the apply: back to queued."""
    out = []
    for key, c in cells.items():
        if c.state not in FINAL_PULL_STATES:
            cells[key] = Cell(c.agent, c.image, "queued", c.done, c.total, "paused")
            out.append(cells[key])
    return out
