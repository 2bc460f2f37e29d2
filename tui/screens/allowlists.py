"""`allowlists`: each domain's `allowed_docker_registries`, before and after, editable per domain.

g toggles the target registry and h toggles index.docker.io on the highlighted domain; Enter
or e edits the whole list (comma-separated, each a registry host[:port]). Each is posted as
a command; the allowlists step checks it, records an explicit list for that domain in the
plan file and the step is planned again; the plan shows the exact SQL (one guarded UPDATE
per domain, in one transaction) before anything runs. Dropping Docker Hub while aliases
still resolve there is refused by the step itself (a blocking finding).
"""

from __future__ import annotations

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.reactive import var
from textual.widget import Widget
from textual.widgets import Static

from backends.steps.edits import Edit, SetDomainRegistries, ToggleDomainRegistry
from backends.steps.views import DomainView
from widgets.editable_table import EditableTable

from .step import StepScreen

COLUMNS = [("domain", "domain"), ("before", "allowed now"), ("after", "allowed after"), ("change", "change")]


class AllowlistsScreen(StepScreen):
    STEP = "allowlists"
    BINDINGS = [
        Binding("g", "toggle_target", "Toggle target", id="toggle-target",
                tooltip="Allow or disallow the target registry for the highlighted domain"),
        Binding("h", "toggle_hub", "Toggle Docker Hub", id="toggle-hub",
                tooltip="Allow or disallow index.docker.io for the highlighted domain"),
    ]

    # every domain as the table shows it; the table is rebuilt only when they change
    domain_rows: var[tuple[DomainView, ...]] = var((), init=False)

    def compose_body(self) -> ComposeResult:
        yield from self.compose_findings()
        yield from self.compose_checks()
        yield Static("Domains  (Enter or e: edit the list · g: toggle the target · h: toggle Docker Hub)",
                     classes="section", markup=False)
        table = EditableTable(id="domains", cursor_blink=self.wizard.cursor_blink)
        table.validator = self.validate_list
        yield table
        yield from self.compose_plan()

    def default_focus(self) -> Widget | None:
        return self.query_one("#domains", EditableTable).table

    def help_notes(self) -> list[str]:
        return ["Enter (or e) on a domain: edit its registries, comma-separated; Enter accepts, Esc cancels."]

    # -- data ------------------------------------------------------------------------------------
    def domains(self) -> list[DomainView]:
        step = self.ctl.step_view(self.STEP)
        return step.domains(self.ctl.plan_of(self.STEP)) if step is not None else []  # type: ignore[attr-defined]

    def refresh_step(self) -> None:
        self.domain_rows = tuple(self.domains())

    def watch_domain_rows(self, rows_in: tuple[DomainView, ...]) -> None:
        rows, styles = [], {}
        target = self.ctl.target()
        for d in rows_in:
            change = " ".join([*(f"+{r}" for r in d.added), *(f"-{r}" for r in d.dropped)]) or "unchanged"
            rows.append({"domain": d.domain, "before": ", ".join(d.before) or "(none)",
                         "after": ", ".join(d.after) or "(none)", "change": change})
            if target and target not in d.after:
                styles[d.domain] = "error"
            elif d.added or d.dropped:
                styles[d.domain] = "ok"
            else:
                styles[d.domain] = "muted"
        self.query_one("#domains", EditableTable).set_rows(COLUMNS, rows, row_key="domain", editable="after",
                                                           styles=styles)
        self.refresh_bindings()   # the table's own Edit key appears once it has rows

    # -- editing: commands to the controller ------------------------------------------------------
    def validate_list(self, domain: str, value: str) -> str | None:
        result = self.ctl.check_edit(SetDomainRegistries(domain, value))
        return None if result.taken else result.reason

    def _post(self, edit: Edit) -> None:
        result = self.ctl.edit(edit)
        if not result.taken:
            self.notify(result.reason, severity="error", markup=False)

    @on(EditableTable.Edited, "#domains")
    def _edited(self, event: EditableTable.Edited) -> None:
        self._post(SetDomainRegistries(event.row_id, event.value))

    def _toggle(self, *, hub: bool) -> None:
        domain = self.query_one("#domains", EditableTable).cursor_row_id
        if domain is not None:
            self._post(ToggleDomainRegistry(domain, hub=hub))

    def action_toggle_target(self) -> None:
        if self.check_action("toggle_target", ()) is True:
            self._toggle(hub=False)

    def action_toggle_hub(self) -> None:
        if self.check_action("toggle_hub", ()) is True:
            self._toggle(hub=True)

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action in ("toggle_target", "toggle_hub"):
            if self._text_focused() or self.ctl.engine is None or not self.status.plannable:
                return False
            return None if self.busy else True
        return super().check_action(action, parameters)
