"""Shared by `prepull` and `agent-cleanup`: an agents x images grid fed with coalesced cell states.

The controller keeps the latest state of every cell (the grid never owns it) and hands a batch
to the screen ten times a second; `PullGrid.update_cell` is O(1) and the grid redraws dirty
visible rows on its own timer, so thousands of events per second stay cheap. Pause cancels the
worker: cells finished so far are journaled, and Apply (or r, retry) resumes without repeating
them.
"""

from __future__ import annotations

from typing import Any

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.content import Content
from textual.widgets import Static

from widgets.pull_grid import PullGrid

from ..cells import Cell
from ..convert import short_image
from ..messages import Update
from .step import StepScreen


class GridStepScreen(StepScreen):
    BINDINGS = [
        Binding("r", "retry", "Retry failed", id="retry", tooltip="Apply again: only unfinished cells are redone"),
        Binding("ctrl+p", "pause", "Pause", id="pause", tooltip="Stop now; finished cells are kept, a resumes"),
    ]
    GRID_TITLE = "Agents × images"

    def __init__(self) -> None:
        super().__init__()
        self._matrix: tuple[tuple[str, ...], tuple[str, ...]] | None = None

    def compose_body(self) -> ComposeResult:
        yield from self.compose_findings()
        yield from self.compose_checks()
        yield from self.compose_plan()
        yield Static(self.GRID_TITLE, id="grid-title", classes="section", markup=False)
        yield PullGrid(id="grid")
        yield Static(id="cell-detail", markup=False)

    # -- the matrix ------------------------------------------------------------------------------
    def matrix(self) -> tuple[list[str], list[str]]:
        raise NotImplementedError

    def absent_cells(self) -> list[tuple[str, str]]:
        """Cells that exist in the matrix but not in the plan (an image not on that agent)."""
        return []

    def refresh_step(self) -> None:
        agents, images = self.matrix()
        key = (tuple(agents), tuple(images))
        grid = self.query_one("#grid", PullGrid)
        if key != self._matrix:
            self._matrix = key
            grid.set_matrix(agents, images, labels={i: short_image(i) for i in images})
            for agent, image in self.absent_cells():
                grid.update_cell(agent, image, "skipped", message="not on this agent")
            self.on_pulls(list(self.ctl.cells.get(self.STEP, {}).values()))
        visible = bool(agents and images)
        grid.display = visible
        self.query_one("#grid-title", Static).display = visible
        self.query_one("#grid-title", Static).update(self.grid_title())

    def grid_title(self) -> Content:
        cells = self.ctl.cells.get(self.STEP, {})
        counts: dict[str, int] = {}
        for c in cells.values():
            counts[c.state] = counts.get(c.state, 0) + 1
        parts: list[tuple[str, str] | str] = [(self.GRID_TITLE, "bold")]
        for state in ("done", "removed", "kept", "failed", "skipped", "queued", "pulling"):
            if counts.get(state):
                style = {"failed": "$text-error bold", "done": "$text-success", "removed": "$text-success"}.get(
                    state, "$foreground-muted")
                parts += ["  ", (f"{counts[state]} {state}", style)]
        return Content.assemble(*parts)

    def on_pulls(self, cells: list[Any]) -> None:
        if not self.is_attached or self._matrix is None:
            return
        grid = self.query_one("#grid", PullGrid)
        for c in cells:
            if isinstance(c, Cell):
                grid.update_cell(c.agent, c.image, c.state, done=c.done, total=c.total, message=c.message)
        self.schedule_refresh()

    @on(PullGrid.CellHighlighted)
    def _cell(self, event: PullGrid.CellHighlighted) -> None:
        line = Content.assemble((event.agent, "bold"), "  ", event.image, "  ", (event.state, "bold"),
                                ("  " + event.message if event.message else "", "$foreground-muted"))
        self.query_one("#cell-detail", Static).update(line)

    def on_mount(self) -> None:
        super().on_mount()
        if not self.ctl.cells.get(self.STEP) and self.ctl.plan_of(self.STEP) is not None:
            self.ctl.seed_cells(self.STEP)

    def on_step_update(self, u: Update) -> None:
        if u.kind == "op" and u.op in ("refresh", "rollback") and not u.error and not u.cancelled:
            if self.status not in ("applying", "applied", "verified", "failed"):
                self.ctl.seed_cells(self.STEP)

    # -- actions ---------------------------------------------------------------------------------
    def failed(self) -> int:
        return sum(c.state == "failed" for c in self.ctl.cells.get(self.STEP, {}).values())

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "retry":
            if self._text_focused() or self.ctl.engine is None:
                return False
            ok = self.status in ("failed", "applied") and not self.busy and self.ctl.plan_of(self.STEP) is not None
            return ok and self.failed() > 0
        if action == "pause":
            return self.busy == "apply"
        return super().check_action(action, parameters)

    def action_retry(self) -> None:
        if self.check_action("retry", ()) is True:
            self.ctl.run(self.STEP, "apply")

    def action_pause(self) -> None:
        if self.check_action("pause", ()) is True:
            self.ctl.cancel(self.STEP)
            self.notify("paused: finished cells are kept; press a to resume", markup=False)

    def busy_hint(self) -> Content:
        return Content.styled("   ctrl+p pauses (finished cells are kept)", "$foreground-muted")
