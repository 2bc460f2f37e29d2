"""The screen of a grid step (`prepull`, `agent-cleanup`): an agents x images grid of cells.

Which cells exist, and what each says, is the step's own view (`Grid`, `Cell`); the
controller keeps the latest state of every cell (the grid never owns it) and hands a batch
to the screen ten times a second; `PullGrid.update_cell` is O(1) and the grid redraws dirty
visible rows on its own timer, so thousands of events per second stay cheap. Pause cancels
the worker: cells finished so far are journaled, and Apply (or r, retry) resumes without
repeating them.
"""

from __future__ import annotations

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.content import Content
from textual.widget import Widget
from textual.widgets import Static

from backends.statuses import CellState, Operation, Status
from backends.steps.views import Cell
from widgets.pull_grid import PullGrid

from ..convert import short_image
from ..messages import CellsChanged, OpFinished
from .step import StepScreen


class GridStepScreen(StepScreen):
    """Shown for every step whose metadata says it has a grid."""

    BINDINGS = [
        Binding("r", "retry", "Retry failed", id="retry", tooltip="Apply again: only unfinished cells are redone"),
        Binding("ctrl+p", "pause", "Pause", id="pause", tooltip="Stop now; finished cells are kept, a resumes"),
    ]
    def __init__(self, step: str | None = None) -> None:
        super().__init__(step)
        self._matrix: tuple[tuple[str, ...], tuple[str, ...]] | None = None

    def compose_body(self) -> ComposeResult:
        # The grid before the plan's rows: it shows every pull of the plan (agent x image) and
        # then their progress, and at 80x24 it was below the fold under 27 rows of commands.
        yield from self.compose_findings()
        yield from self.compose_checks()
        yield Static(self.meta.grid_title, id="grid-title", classes="section", markup=False)
        yield PullGrid(id="grid")
        yield Static(id="cell-detail", markup=False)
        yield from self.compose_plan()

    def default_focus(self) -> Widget | None:
        """The grid, always shown (empty until the plan): arrows move over its cells, f finds a
        failure; focusing the plan's rows below it would scroll it away on a small terminal."""
        return self.query_one("#grid", PullGrid)

    # -- the matrix ------------------------------------------------------------------------------
    def refresh_step(self) -> None:
        g = self.ctl.grid(self.STEP)
        agents, images = (g.agents, g.images) if g else ([], [])
        key = (tuple(agents), tuple(images))
        grid = self.query_one("#grid", PullGrid)
        if key != self._matrix:
            self._matrix = key
            grid.set_matrix(agents, images, labels={i: short_image(i) for i in images})
            for agent, image in g.absent if g else []:
                grid.update_cell(agent, image, "skipped", message="not on this agent")
            self._draw(list(self.ctl.cells.get(self.STEP, {}).values()))
        self.query_one("#grid-title", Static).update(self.grid_title(g.summary if g else "", planned=g is not None))

    def grid_title(self, summary: str, *, planned: bool = True) -> Content:
        if not planned:
            return Content.assemble((self.meta.grid_title, "bold"), ("   made with the plan", "$foreground-muted"))
        counts: dict[CellState, int] = {}
        for c in self.ctl.cells.get(self.STEP, {}).values():
            counts[c.state] = counts.get(c.state, 0) + 1
        parts: list[tuple[str, str] | str] = [(self.meta.grid_title, "bold")]
        for state in (CellState.DONE, CellState.REMOVED, CellState.KEPT, CellState.FAILED, CellState.SKIPPED,
                      CellState.QUEUED, CellState.PULLING):
            if counts.get(state):
                style = {CellState.FAILED: "$text-error bold", CellState.DONE: "$text-success",
                         CellState.REMOVED: "$text-success"}.get(state, "$foreground-muted")
                parts += ["  ", (f"{counts[state]} {state}", style)]
        title = Content.assemble(*parts)
        return Content.assemble(title, ("   " + summary, "$text-success")) if summary else title

    def on_cells(self, u: CellsChanged) -> None:
        self._draw(u.cells)
        self.schedule_refresh()

    def _draw(self, cells: list[Cell]) -> None:
        if not self.is_attached or self._matrix is None:
            return
        grid = self.query_one("#grid", PullGrid)
        for c in cells:
            grid.update_cell(c.agent, c.image, str(c.state), done=c.done, total=c.total, message=c.message)

    @on(PullGrid.CellHighlighted)
    def _cell(self, event: PullGrid.CellHighlighted) -> None:
        line = Content.assemble((event.agent, "bold"), "  ", event.image, "  ", (event.state, "bold"),
                                ("  " + event.message if event.message else "", "$foreground-muted"))
        self.query_one("#cell-detail", Static).update(line)

    def on_mount(self) -> None:
        super().on_mount()
        if not self.ctl.cells.get(self.STEP) and self.ctl.plan_of(self.STEP) is not None:
            self.ctl.seed_cells(self.STEP)

    def on_op_finished(self, u: OpFinished) -> None:
        if u.op in (Operation.REFRESH, Operation.ROLLBACK) and u.succeeded:
            if self.status not in (Status.APPLYING, Status.APPLIED, Status.VERIFIED, Status.FAILED):
                self.ctl.seed_cells(self.STEP)

    # -- actions ---------------------------------------------------------------------------------
    def failed(self) -> int:
        return sum(c.state is CellState.FAILED for c in self.ctl.cells.get(self.STEP, {}).values())

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "retry":
            if self._text_focused() or self.ctl.engine is None:
                return False
            ok = (self.status in (Status.FAILED, Status.APPLIED) and not self.busy
                  and self.ctl.plan_of(self.STEP) is not None)
            return ok and self.failed() > 0
        if action == "pause":
            return self.busy is Operation.APPLY
        return super().check_action(action, parameters)

    def action_retry(self) -> None:
        if self.check_action("retry", ()) is True:
            self.ctl.run(self.STEP, Operation.APPLY)

    def action_pause(self) -> None:
        if self.check_action("pause", ()) is True:
            self.ctl.cancel(self.STEP)
            self.notify("paused: finished cells are kept; press a to resume", markup=False)

    def busy_hint(self) -> Content:
        return Content.styled("   ctrl+p pauses (finished cells are kept)", "$foreground-muted")
