"""A table with one editable column, edited inline in an Input under the table.

Modelled on posting's key/value editor (table plus inputs below it, Enter loads the row, Escape
cancels; darrenburns/posting src/posting/widgets/key_value.py): no modal, so the operator keeps
the other rows in sight while typing, which matters when choosing an alias target by looking at
its neighbours.

The caller's validator decides; a refused value stays in the Input with the reason right
under it, the cell keeps its old value and nothing is posted, so a wrong target can never reach
the plan. After a refusal the reason is re-checked as you type so it disappears once fixed.
Rows are addressed by their id (`row_key`), never by position (Textual docs,
widgets/data_table.md, "Keys": sorting and deletion move rows).
"""

from __future__ import annotations

from collections.abc import Callable

from rich.cells import cell_len
from rich.style import Style
from rich.text import Text
from textual import events, on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.content import Content
from textual.message import Message
from textual.widget import Widget
from textual.widgets import DataTable, Input, Static

from widgets._style import ERROR, LABEL, foreground_only

RowValidator = Callable[[str, str], "str | None"]

STYLE_NAMES: tuple[str, ...] = ("ok", "warning", "error", "muted")
MAX_COLUMN_WIDTH = 64     # longer values end in an ellipsis; the full value is the caller's detail line


class EditableTable(Widget):
    """`set_rows(...)`; Enter or `e` edits the highlighted row's editable cell; Enter submits,
    Escape cancels; posts `Edited(row_id, value)` for accepted values and `RowHighlighted`."""

    DEFAULT_CSS = """
    EditableTable {
        height: 1fr;
        layout: vertical;
    }
    EditableTable > DataTable {
        height: 1fr;
        min-height: 3;
    }
    EditableTable > #edit-area {
        height: auto;
        display: none;
        padding: 0 1;
    }
    EditableTable.-editing > #edit-area {
        display: block;
    }
    EditableTable #edit-error {
        height: auto;
    }
    EditableTable #edit-input.-invalid, EditableTable #edit-input.-invalid:focus {
        border: tall $error;
    }
    EditableTable > .editable-table--ok { color: $text-success; }
    EditableTable > .editable-table--warning { color: $text-warning; }
    EditableTable > .editable-table--error { color: $text-error; text-style: bold; }
    EditableTable > .editable-table--muted { color: $text-muted; text-style: italic; }
    EditableTable > .editable-table--editing { text-style: italic reverse; }
    """

    COMPONENT_CLASSES = {
        "editable-table--ok", "editable-table--warning", "editable-table--error",
        "editable-table--muted", "editable-table--editing",
    }

    BINDINGS = [
        Binding("e", "start_edit", "Edit", tooltip="Edit the highlighted row"),
        Binding("escape", "cancel_edit", "Cancel edit", tooltip="Discard the value being typed"),
    ]

    class Edited(Message):
        """An accepted edit: `value` passed the validator and is now in the cell."""

        def __init__(self, editable_table: EditableTable, row_id: str, value: str) -> None:
            super().__init__()
            self.editable_table = editable_table
            self.row_id = row_id
            self.value = value

        @property
        def control(self) -> EditableTable:
            return self.editable_table

    class RowHighlighted(Message):
        def __init__(self, editable_table: EditableTable, row_id: str) -> None:
            super().__init__()
            self.editable_table = editable_table
            self.row_id = row_id

        @property
        def control(self) -> EditableTable:
            return self.editable_table

    def __init__(
        self,
        *,
        validator: RowValidator | None = None,
        name: str | None = None,
        id: str | None = None,
        classes: str | None = None,
        cursor_blink: bool = True,
    ) -> None:
        super().__init__(name=name, id=id, classes=classes)
        self.validator: RowValidator | None = validator
        """`(row_id, new_value) -> None` to accept, or the reason to refuse."""
        self._columns: list[tuple[str, str]] = []
        self._rows: dict[str, dict[str, str]] = {}
        self._order: list[str] = []
        self._row_key = ""
        self._editable = ""
        self._styles: dict[str, str] = {}
        self._editing: str | None = None
        self._refused = False
        self._cursor_blink = cursor_blink
        self._last_highlight: str | None = None

    # -- composition -------------------------------------------------------------------------

    def compose(self) -> ComposeResult:
        yield DataTable(id="edit-rows", cursor_type="row", zebra_stripes=True)
        with Vertical(id="edit-area"):
            yield Static(Content(""), id="edit-label")
            edit_input = Input(id="edit-input", select_on_focus=False)
            edit_input.cursor_blink = self._cursor_blink
            yield edit_input
            yield Static(Content(""), id="edit-error")

    @property
    def table(self) -> DataTable:
        return self.query_one("#edit-rows", DataTable)

    @property
    def input(self) -> Input:
        return self.query_one("#edit-input", Input)

    def on_mount(self) -> None:
        self.app.theme_changed_signal.subscribe(self, lambda _theme: self._theme_changed())
        if self._columns:
            self._rebuild()

    # -- data ----------------------------------------------------------------------------------

    def set_rows(
        self,
        columns: list[tuple[str, str]],
        rows: list[dict[str, str]],
        *,
        row_key: str,
        editable: str,
        styles: dict[str, str] | None = None,
    ) -> None:
        """Show `rows` (dicts keyed by column key); `row_key` names the field that identifies a
        row, `editable` the column the operator may change; `styles` maps row id -> ok, warning,
        error or muted. The cursor stays on the same row id when it still exists."""
        if editable not in {key for key, _ in columns}:
            raise ValueError(f"editable column {editable!r} is not among the columns")
        keep = self.cursor_row_id or self._last_highlight  # before the row order changes
        self._columns = list(columns)
        self._row_key = row_key
        self._editable = editable
        self._order = [str(r[row_key]) for r in rows]
        self._rows = {str(r[row_key]): dict(r) for r in rows}
        self._styles = dict(styles or {})
        if self._editing is not None and self._editing not in self._rows:
            self._stop_editing()
        if self.is_mounted:
            self._rebuild(keep)

    def row(self, row_id: str) -> dict[str, str]:
        return dict(self._rows[row_id])

    @property
    def rows(self) -> list[dict[str, str]]:
        return [dict(self._rows[r]) for r in self._order]

    @property
    def cursor_row_id(self) -> str | None:
        if not self.is_mounted or not self._order:
            return None
        index = self.table.cursor_row
        return self._order[index] if 0 <= index < len(self._order) else None

    @property
    def editing(self) -> str | None:
        """Row id being edited, or None."""
        return self._editing

    def move_to(self, row_id: str) -> None:
        """Put the cursor on `row_id` (e.g. the first unresolved alias)."""
        if row_id in self._rows:
            self.table.move_cursor(row=self._order.index(row_id))

    def _cell(self, row_id: str, key: str) -> Text:
        value = self._rows[row_id].get(key, "")
        style_name = self._styles.get(row_id)
        style: Style | str = ""
        if style_name in STYLE_NAMES:
            style = foreground_only(self.get_component_rich_style(f"editable-table--{style_name}"))
        if key == self._editable and row_id == self._editing:
            style = foreground_only(self.get_component_rich_style("editable-table--editing"))
        return Text(value, style=style, no_wrap=True, overflow="ellipsis")

    def _rebuild(self, keep: str | None = None) -> None:
        table = self.table
        if keep is None:
            keep = self.cursor_row_id if table.row_count else self._last_highlight
        with self.app.batch_update():
            table.clear(columns=True)
            for key, label in self._columns:
                table.add_column(Text(label), key=key, width=self._width_of(key, label))
            for row_id in self._order:
                table.add_row(*(self._cell(row_id, key) for key, _ in self._columns), key=row_id)
            if keep in self._rows:
                table.move_cursor(row=self._order.index(keep), animate=False)

    def _width_of(self, key: str, label: str) -> int:
        """Widths are set here, from the data, rather than measured by DataTable when it next
        idles: a busy screen could draw (and be screenshotted) with the header widths only."""
        values = [cell_len(self._rows[r].get(key, "")) for r in self._order]
        return min(MAX_COLUMN_WIDTH, max([cell_len(label), *values]))

    def _refresh_row(self, row_id: str) -> None:
        widths = {key: self.table.columns[key].width for key, _ in self._columns}
        if any(self._width_of(key, label) != widths[key] for key, label in self._columns):
            self._rebuild(row_id)
            return
        for key, _ in self._columns:
            self.table.update_cell(row_id, key, self._cell(row_id, key))

    def _theme_changed(self) -> None:
        # Row colours are baked into the Text cells: rebuild them from the new theme. (Not on
        # notify_style_update, which also fires on every focus and hover change.)
        if self._columns:
            self._rebuild()

    # -- highlight -----------------------------------------------------------------------------

    @on(DataTable.RowHighlighted, "#edit-rows")
    def _row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        event.stop()
        row_id = event.row_key.value
        if row_id is None or row_id == self._last_highlight:
            return
        self._last_highlight = row_id
        self.post_message(self.RowHighlighted(self, row_id))

    # -- editing -------------------------------------------------------------------------------

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        # Escape only means something while editing; otherwise let it reach the screen.
        if action == "cancel_edit":
            return self._editing is not None
        if action == "start_edit":
            return self._editing is None and bool(self._order)
        return True

    @on(DataTable.RowSelected, "#edit-rows")
    def _row_selected(self, event: DataTable.RowSelected) -> None:
        event.stop()
        self.action_start_edit()

    def action_start_edit(self) -> None:
        row_id = self.cursor_row_id
        if row_id is None or self._editing is not None:
            return
        self._editing = row_id
        self._refused = False
        label = dict(self._columns).get(self._editable, self._editable)
        self.query_one("#edit-label", Static).update(Content.assemble(
            ("Editing ", LABEL), (label, "bold"), (" of ", LABEL), (row_id, "bold"),
            ("   Enter accepts · Esc cancels", LABEL),
        ))
        self._show_error(None)
        edit_input = self.input
        edit_input.value = self._rows[row_id].get(self._editable, "")
        edit_input.cursor_position = len(edit_input.value)
        self.add_class("-editing")
        self._refresh_row(row_id)
        edit_input.focus()
        self.refresh_bindings()
        self._reveal_edit_area()

    def action_cancel_edit(self) -> None:
        if self._editing is None:
            return
        self._stop_editing()
        self.table.focus()

    def _stop_editing(self) -> None:
        row_id, self._editing = self._editing, None
        self._refused = False
        self.remove_class("-editing")
        self._show_error(None)
        if row_id is not None and row_id in self._rows and self.is_mounted:
            self._refresh_row(row_id)
        self.refresh_bindings()

    def _check(self, row_id: str, value: str) -> str | None:
        if self.validator is None:
            return None
        try:
            return self.validator(row_id, value)
        except Exception as error:  # noqa: BLE001 - a validator bug must refuse, not crash
            return f"cannot check this value ({type(error).__name__}: {error})"

    def _show_error(self, message: str | None) -> None:
        self.query_one("#edit-error", Static).update(
            Content.assemble(("✗ ", f"{ERROR} bold"), (message, ERROR)) if message else Content("")
        )
        self.input.set_class(message is not None, "-invalid")

    @on(Input.Changed, "#edit-input")
    def _input_changed(self, event: Input.Changed) -> None:
        event.stop()
        if self._editing is not None and self._refused:
            self._show_error(self._check(self._editing, event.value))

    @on(Input.Submitted, "#edit-input")
    def _input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        row_id = self._editing
        if row_id is None:
            return
        value = event.value
        error = self._check(row_id, value)
        if error is not None:
            self._refused = True
            self._show_error(error)
            self.input.focus()
            self._reveal_edit_area()
            return
        self._rows[row_id][self._editable] = value
        self._stop_editing()
        self.table.focus()
        self.post_message(self.Edited(self, row_id, value))

    def _reveal_edit_area(self) -> None:
        """Scroll whatever holds this table so the label, the input and the reason are all on
        screen, once they are laid out. Focus alone scrolls to the input, and on a small
        terminal (80x24) the reason under it stayed below the fold: the operator saw Enter do
        nothing."""
        def reveal() -> None:
            if self._editing is not None and self.is_mounted:
                self.query_one("#edit-area").scroll_visible(animate=False, immediate=True)

        self.call_after_refresh(reveal)

    def _on_descendant_blur(self, event: events.DescendantBlur) -> None:
        # Focus left the input for somewhere outside this widget (mouse, screen key): an edit
        # nobody is looking at must not linger and be submitted later by surprise.
        if self._editing is not None and event.widget is self.input:
            self.call_after_refresh(self._cancel_if_focus_left)

    def _cancel_if_focus_left(self) -> None:
        focused = self.screen.focused
        if self._editing is not None and (focused is None or self not in focused.ancestors_with_self):
            self._stop_editing()
