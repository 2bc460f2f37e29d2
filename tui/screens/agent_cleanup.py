"""`agent-cleanup`: remove the old lablup/* kernel images from every agent (runbook step 7).

The grid shows, per agent, which old tags are removed and which are kept and why (in use by a
container, infrastructure, keep list). Never forced: a 409 "in use" keeps the image. The plan
is destructive, so Apply asks for the step's name to be typed. Optional (s).
"""

from __future__ import annotations

from textual.content import Content

from ..convert import human_bytes
from .grid import GridStepScreen


class AgentCleanupScreen(GridStepScreen):
    STEP = "agent-cleanup"
    GRID_TITLE = "Old images on agents"

    def matrix(self) -> tuple[list[str], list[str]]:
        plan = self.ctl.plan_of(self.STEP)
        if plan is None:
            return [], []
        rows = plan.data.get("agents", [])
        images: dict[str, None] = {}
        for r in rows:
            for i in [*r.get("remove", []), *r.get("keep", [])]:
                images.setdefault(i["image"], None)
        return [r["agent"] for r in rows], sorted(images)

    def absent_cells(self) -> list[tuple[str, str]]:
        plan = self.ctl.plan_of(self.STEP)
        agents, images = self.matrix()
        have = {(r["agent"], i["image"]) for r in (plan.data.get("agents", []) if plan else [])
                for i in [*r.get("remove", []), *r.get("keep", [])]}
        return [(a, i) for a in agents for i in images if (a, i) not in have]

    def grid_title(self) -> Content:
        title = super().grid_title()
        msgs = self.ctl.phases.get(self.STEP) or []
        summary = next((m for m in reversed(msgs) if m.startswith("reclaimed")), None)
        if summary:
            return Content.assemble(title, ("   " + summary, "$text-success"))
        return title

    def confirm_lines(self) -> list[str]:
        plan = self.ctl.plan_of(self.STEP)
        rows = plan.data.get("agents", []) if plan else []
        n = sum(len(r.get("remove", [])) for r in rows)
        size = sum(i.get("size", 0) for r in rows for i in r.get("remove", []))
        return [f"{n} image tag(s) are removed with a plain `docker rmi` (never forced), up to {human_bytes(size)}. "
                "Images still used by a container are kept and reported."]
