"""`aliases`: every alias with its current and proposed target; edit a target inline.

An edited target is posted to the controller as `SetAliasTarget`; the aliases step checks
it (it must parse as 20.09 parses image references and name an image in the target
registry's rescanned metadata) and either takes it, and the step is planned again, or
refuses it with the reason and the closest existing image, shown under the input, and
nothing changes. Unresolved aliases are red, risky ones (names 20.09 never finds because of
quoting) yellow.
"""

from __future__ import annotations

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.content import Content
from textual.reactive import var
from textual.widget import Widget
from textual.widgets import Static

from backends.steps.edits import SetAliasTarget, ToggleAliasRemoval
from backends.steps.views import AliasView
from widgets.editable_table import EditableTable

from .step import StepScreen

COLUMNS = [("alias", "alias"), ("current", "current target"), ("proposed", "proposed target"),
           ("status", "status")]
STYLE = {"unresolvable": "error", "remap": "ok", "override": "ok", "remove": "warning", "migrated": "muted",
         "chain": "muted", "other-registry": "muted", "skip": "muted"}


def short_ref(ref: str, width: int = 34) -> str:
    """A long current target, cut in the middle: registry and name:tag stay recognisable; the
    full value is in the detail line under the table."""
    if len(ref) <= width:
        return ref
    head, _, tail = ref.partition("/")
    last = ref.rsplit("/", 1)[-1]
    short = f"{head}/…/{last}" if tail and len(head) + len(last) + 3 <= width else f"…/{last}"
    return short if len(short) <= width else short[: width - 1] + "…"


class AliasesScreen(StepScreen):
    STEP = "aliases"
    BINDINGS = [
        Binding("d", "toggle_remove", "Remove/keep alias", id="remove",
                tooltip="Delete the highlighted alias (dealias), or keep it again"),
    ]

    # the aliases as the table shows them; the table is rebuilt only when they change
    alias_rows: var[tuple[AliasView, ...]] = var((), init=False)

    def __init__(self) -> None:
        super().__init__()
        self._highlighted: str | None = None

    def compose_body(self) -> ComposeResult:
        yield from self.compose_findings()
        yield from self.compose_checks()
        yield Static("Aliases  (Enter or e: edit the proposed target · d: remove/keep)", classes="section",
                     markup=False)
        table = EditableTable(id="aliases", cursor_blink=self.wizard.cursor_blink)
        table.validator = self.validate_target
        yield table
        yield Static(id="alias-detail", markup=False)
        yield from self.compose_plan()

    def default_focus(self) -> Widget | None:
        return self.query_one("#aliases", EditableTable).table

    def help_notes(self) -> list[str]:
        return ["Enter (or e) on an alias: edit its proposed target; Enter accepts, Esc cancels. A target that "
                "is not in the rescanned metadata is refused under the field, with the closest image."]

    # -- data ------------------------------------------------------------------------------------
    def rows(self) -> list[AliasView]:
        step = self.ctl.step_view(self.STEP)
        return step.rows(self.ctl.plan_of(self.STEP)) if step is not None else []  # type: ignore[attr-defined]

    def refresh_step(self) -> None:
        self.alias_rows = tuple(self.rows())
        self._show_detail()

    def watch_alias_rows(self, rows: tuple[AliasView, ...]) -> None:
        table_rows, styles = [], {}
        for r in rows:
            status = r.status + (" · risky name" if r.risky else "")
            proposed = r.proposed or ("(delete)" if r.removed else "(choose a target)" if r.unresolved else "")
            table_rows.append({"alias": r.alias, "current": short_ref(r.current, 24), "proposed": proposed,
                               "status": status})
            style = STYLE.get(r.status, "")
            if r.risky and style != "error":
                style = "warning"
            if style:
                styles[r.alias] = style
        self.query_one("#aliases", EditableTable).set_rows(COLUMNS, table_rows, row_key="alias",
                                                           editable="proposed", styles=styles)
        self.refresh_bindings()   # the table's own Edit key appears once it has rows

    def _show_detail(self) -> None:
        alias = self._highlighted
        row = next((r for r in self.rows() if r.alias == alias), None)
        detail = self.query_one("#alias-detail", Static)
        if row is None:
            detail.update(Content.styled("move over an alias to see how it resolves", "$foreground-muted"))
            return
        parts: list[tuple[str, str] | str] = [(row.alias, "bold"), " → ", row.current]
        if row.resolved:
            parts += [("  resolves to ", "$foreground-muted"), row.resolved]
        lines = [Content.assemble(*parts)]
        if row.note:
            lines.append(Content.styled(row.note, "$text-error" if row.unresolved else "$foreground-muted"))
        if row.risk:
            lines.append(Content.styled(row.risk, "$text-warning"))
        detail.update(Content("\n").join(lines))

    @on(EditableTable.RowHighlighted, "#aliases")
    def _row(self, event: EditableTable.RowHighlighted) -> None:
        self._highlighted = event.row_id
        self._show_detail()

    # -- editing: commands to the controller ------------------------------------------------------
    def validate_target(self, alias: str, value: str) -> str | None:
        """None to accept; else why not (shown under the input, and nothing changes)."""
        result = self.ctl.check_edit(SetAliasTarget(alias, value))
        return None if result.taken else result.reason

    @on(EditableTable.Edited, "#aliases")
    def _edited(self, event: EditableTable.Edited) -> None:
        result = self.ctl.edit(SetAliasTarget(event.row_id, event.value))
        if not result.taken:
            self.notify(result.reason, severity="error", markup=False)

    def action_toggle_remove(self) -> None:
        if self.check_action("toggle_remove", ()) is not True:
            return
        alias = self.query_one("#aliases", EditableTable).cursor_row_id
        if alias is not None:
            self.ctl.edit(ToggleAliasRemoval(alias))

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "toggle_remove":
            if self._text_focused() or self.ctl.engine is None or not self.status.plannable:
                return False
            return None if self.busy else True
        return super().check_action(action, parameters)
