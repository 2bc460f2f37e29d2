"""`maintenance`: freeze new sessions and show an announcement while the migration runs.

The announcement is edited here (Enter plans again); the freeze is lifted and the previous
announcement restored at the end of the run, or with x (roll back). Optional: s skips it.
"""

from __future__ import annotations

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.widgets import Input, Static

from widgets.change_table import ChangeTable

from .step import PLANNABLE, StepScreen


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

    def compose_body(self) -> ComposeResult:
        yield from self.compose_findings()
        yield from self.compose_checks()
        yield Static("Announcement shown to users while new sessions are frozen (e: edit · Enter: plan again)",
                     classes="section", markup=False)
        cluster = self.ctl.cluster()
        yield Input(cluster.plan.maintenance.announcement if cluster else "", id="announcement",
                    placeholder="no announcement")
        yield from self.compose_plan()


    def refresh_step(self) -> None:
        cluster = self.ctl.cluster()
        field = self.query_one("#announcement", Input)
        field.disabled = not (cluster and cluster.plan.maintenance.enabled) or self.status not in PLANNABLE

    @on(Input.Changed, "#announcement")
    def _changed(self, event: Input.Changed) -> None:
        cluster = self.ctl.cluster()
        if cluster is not None and self.status in PLANNABLE:
            cluster.plan.maintenance.announcement = event.value
            self.schedule_refresh()

    @on(Input.Submitted, "#announcement")
    def _submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.query_one("#changes", ChangeTable).table.focus()
        if self.ctl.stale(self.STEP):
            self.ctl.run(self.STEP, "refresh")

    def confirm_lines(self) -> list[str]:
        return ["Users cannot start new sessions until the end of the run (running sessions are not affected)."]
