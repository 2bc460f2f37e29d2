"""`prepull`: pull the essential images (alias targets, images of recent sessions) onto every
agent before users need them; live grid, retry of failed cells, pause/resume. Optional (s)."""

from __future__ import annotations

from .grid import GridStepScreen


class PrepullScreen(GridStepScreen):
    STEP = "prepull"
    GRID_TITLE = "Pre-pull: agents × images"

    def matrix(self) -> tuple[list[str], list[str]]:
        plan = self.ctl.plan_of(self.STEP)
        if plan is None:
            return [], []
        return [a["id"] for a in plan.data.get("agents", [])], list(plan.data.get("images", []))

    def confirm_lines(self) -> list[str]:
        plan = self.ctl.plan_of(self.STEP)
        n = len(plan.data.get("agents", [])) * len(plan.data.get("images", [])) if plan else 0
        return [f"{n} pulls with bounded concurrency; each pull is confirmed by inspecting the image. "
                "One agent failing never stops the others; c pauses, r retries failed cells."]
