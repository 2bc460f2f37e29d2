"""`maintenance`: freeze new sessions and show an announcement while the migration runs.

The announcement is edited here: each change is posted to the controller as `SetAnnouncement`
(the plan goes out of date) and Enter plans again. The freeze is lifted and the previous
announcement restored at the end of the run, or with x (roll back). Optional: s skips it.
"""

from __future__ import annotations

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.widgets import Input, Static

from backends.statuses import Operation
from backends.steps.edits import SetAnnouncement
from widgets.change_table import ChangeTable

from .step import StepScreen


class MaintenanceScreen(StepScreen):
    STEP = "maintenance"
    BINDINGS = [Binding("e", "edit_announcement", "Edit announcement", id="edit",
                        tooltip="Put the cursor in the announcement (Enter plans again)")]

    def action_edit_announcement(self) -> None:
        field = self.query_one("#announcement", Input)
        if not field.disabled:
            field.focus()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "edit_announcement":
            return not self._text_focused() and not self.query_one("#announcement", Input).disabled
        return super().check_action(action, parameters)

    def help_notes(self) -> list[str]:
        return ["In the announcement: Enter plans again with it; Esc or Tab leaves the field."]

    def compose_body(self) -> ComposeResult:
        yield from self.compose_findings()
        yield from self.compose_checks()
        yield Static("Announcement shown to users while new sessions are frozen (e: edit · Enter: plan again)",
                     classes="section", markup=False)
        # like every other field: the cursor goes to the end and typing adds to the text (with
        # select-all on focus, the first key typed replaced the whole announcement)
        yield Input(self.announcement() or "", id="announcement", placeholder="no announcement",
                    select_on_focus=False)
        yield from self.compose_plan()

    def announcement(self) -> str | None:
        step = self.ctl.step_view(self.STEP)
        return step.announcement() if step is not None else None  # type: ignore[attr-defined]

    def refresh_step(self) -> None:
        field = self.query_one("#announcement", Input)
        field.disabled = self.announcement() is None or not self.status.plannable

    @on(Input.Changed, "#announcement")
    def _changed(self, event: Input.Changed) -> None:
        if self.status.plannable and event.value != self.announcement():
            self.ctl.edit(SetAnnouncement(event.value), replan=False)
            self.schedule_refresh()

    @on(Input.Submitted, "#announcement")
    def _submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.query_one("#changes", ChangeTable).table.focus()
        if self.ctl.stale(self.STEP):
            self.ctl.run(self.STEP, Operation.REFRESH)
