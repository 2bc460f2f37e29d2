"""The review of a plan: every change as a row, and the highlighted one's full command below.

Before a write the operator must be able to check each change and copy the equivalent manual
command (runbooks, change tickets). Cells are cut to fit the terminal (80 columns is the floor),
so the panel under the table repeats the highlighted change in full: command, note, and the
before/after values when the table had to shorten them. `c` copies the command (OSC 52, which
works over SSH; `App.copy_to_clipboard`, docs/textual-notes.md#copy-over-ssh).

DataTable parses str cells as Rich markup (docs/textual-notes.md#markup-in-data), so every
cell is a `rich.text.Text` and the panel is built from `Content`: `[etcd]` stays `[etcd]`.
"""

from __future__ import annotations

from rich.cells import cell_len
from rich.style import Style
from rich.text import Text
from textual import events, on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.content import Content
from textual.message import Message
from textual.widget import Widget
from textual.widgets import DataTable, Static

from widgets._style import LABEL, MUTED, ellipsize, foreground_only
from widgets.items import ChangeItem

COLUMNS: tuple[tuple[str, str], ...] = (("target", "target"), ("action", "action"),
                                        ("before", "before"), ("after", "after"))

ACTION_CLASS: dict[str, str] = {
    "put": "new", "create": "new", "add": "new", "insert": "new",
    "update": "update", "tag": "update", "command": "update",
    "delete": "delete", "remove": "delete", "drop": "delete",
    "pull": "pull",
}
"""Action word -> colour class: creations green, modifications yellow, deletions red."""

ABSENT = "—"


def one_line(value: str) -> str:
    """Collapse whitespace so a multi-line JSON value fits one table row."""
    return " ".join(value.split())


class ChangeTable(Widget):
    """`show(items)`; posts `Highlighted(index)` as the cursor moves; `c` copies the command."""

    DEFAULT_CSS = """
    ChangeTable {
        height: 1fr;
        layout: vertical;
    }
    ChangeTable > DataTable {
        height: 1fr;
        min-height: 3;
    }
    ChangeTable > #change-detail {
        height: auto;
        max-height: 12;
        padding: 0 1;
        background: $boost;
    }
    ChangeTable > .change-table--new { color: $text-success; }
    ChangeTable > .change-table--update { color: $text-warning; }
    ChangeTable > .change-table--delete { color: $text-error; text-style: bold; }
    ChangeTable > .change-table--pull { color: $text-primary; }
    ChangeTable > .change-table--absent { color: $text-muted; text-style: italic; }
    """

    COMPONENT_CLASSES = {
        "change-table--new", "change-table--update", "change-table--delete",
        "change-table--pull", "change-table--absent",
    }

    BINDINGS = [
        Binding("c", "copy_command", "Copy command", tooltip="Copy the highlighted change's command (OSC 52)"),
    ]

    class Highlighted(Message):
        """The cursor is on change `index` (an index into the list given to `show`)."""

        def __init__(self, change_table: ChangeTable, index: int, item: ChangeItem) -> None:
            super().__init__()
            self.change_table = change_table
            self.index = index
            self.item = item

        @property
        def control(self) -> ChangeTable:
            return self.change_table

    def __init__(
        self,
        items: list[ChangeItem] | None = None,
        *,
        name: str | None = None,
        id: str | None = None,
        classes: str | None = None,
    ) -> None:
        super().__init__(name=name, id=id, classes=classes)
        self._items: list[ChangeItem] = list(items or [])
        self._index: int | None = None
        self._built_width = 0

    @property
    def items(self) -> list[ChangeItem]:
        return list(self._items)

    @property
    def table(self) -> DataTable:
        return self.query_one("#change-rows", DataTable)

    @property
    def highlighted_index(self) -> int | None:
        return self._index

    def compose(self) -> ComposeResult:
        table: DataTable = DataTable(id="change-rows", cursor_type="row", zebra_stripes=True)
        for key, label in COLUMNS:
            table.add_column(label, key=key)
        yield table
        yield Static(Content(""), id="change-detail")

    def on_mount(self) -> None:
        self.app.theme_changed_signal.subscribe(self, lambda _theme: self._theme_changed())
        self._rebuild(keep=0)

    def show(self, items: list[ChangeItem]) -> None:
        """Replace the changes; the cursor stays at the same index when it still exists."""
        self._items = list(items)
        self._rebuild(keep=self._index or 0)

    def _on_resize(self, event: events.Resize) -> None:
        # Cell cut-offs depend on the width: rebuild when it changes noticeably.
        if abs(event.size.width - self._built_width) >= 4:
            self._rebuild(keep=self._index or 0)

    def _theme_changed(self) -> None:
        # Cell colours are baked into the Text cells: rebuild them from the new theme. (Not on
        # notify_style_update, which also fires on every focus and hover change.)
        if self._items:
            self._rebuild(keep=self._index or 0)

    def _caps(self) -> tuple[int, int]:
        width = self.size.width or 80
        target = max(16, int(width * 0.34))
        value = max(10, int((width - target - 14) / 2))
        return target, value

    def _style(self, name: str) -> Style:
        return foreground_only(self.get_component_rich_style(f"change-table--{name}"))

    def _cells(self, item: ChangeItem, target_cap: int, value_cap: int) -> list[Text]:
        action_class = ACTION_CLASS.get(item.action.lower(), "update")

        def value(v: str | None) -> Text:
            if v is None:
                return Text(ABSENT, style=self._style("absent"), no_wrap=True)
            return Text(ellipsize(one_line(v), value_cap), no_wrap=True)

        return [
            Text(ellipsize(item.target, target_cap), no_wrap=True),
            Text(item.action, style=self._style(action_class), no_wrap=True),
            value(item.before),
            value(item.after),
        ]

    def _rebuild(self, keep: int = 0) -> None:
        if not self.is_mounted:
            return
        table = self.table
        self._built_width = self.size.width
        target_cap, value_cap = self._caps()
        rows = [self._cells(item, target_cap, value_cap) for item in self._items]
        with self.app.batch_update():
            # Widths from the cells, set now: DataTable would measure new rows only when it next
            # idles, and a busy screen drew (and was screenshotted) with the header widths.
            table.clear(columns=True)
            for n, (key, label) in enumerate(COLUMNS):
                table.add_column(label, key=key, width=max([cell_len(label), *(r[n].cell_len for r in rows)]))
            for i, cells in enumerate(rows):
                table.add_row(*cells, key=str(i))
            if self._items:
                index = max(0, min(keep, len(self._items) - 1))
                table.move_cursor(row=index, animate=False)
            else:
                index = None
        changed = index != self._index
        self._index = index
        self._show_detail()
        if index is not None and changed:
            self.post_message(self.Highlighted(self, index, self._items[index]))

    @on(DataTable.RowHighlighted, "#change-rows")
    def _row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        event.stop()
        index = event.cursor_row
        if not 0 <= index < len(self._items) or index == self._index:
            return
        self._index = index
        self._show_detail()
        self.post_message(self.Highlighted(self, index, self._items[index]))

    def detail_content(self, index: int | None) -> Content:
        """What the panel shows for change `index`: the full command first, since it is what
        gets copied into runbooks, then the note, then before/after when the table cut them."""
        if index is None or not self._items:
            return Content.styled("No changes: this step has nothing to write.", MUTED)
        item = self._items[index]
        target_cap, value_cap = self._caps()
        lines: list[Content] = [
            Content.assemble(("$ ", LABEL), (item.command or "(no equivalent command)", "bold")),
        ]
        if item.note:
            lines.append(Content.assemble(("note: ", LABEL), item.note))
        if len(item.target) > target_cap:
            lines.append(Content.assemble(("target: ", LABEL), item.target))
        for label, v in (("before", item.before), ("after", item.after)):
            if v is not None and (len(one_line(v)) > value_cap or "\n" in v):
                lines.append(Content.assemble((f"{label}: ", LABEL), v))
        lines.append(Content.styled(f"change {index + 1} of {len(self._items)} · c copies the command", MUTED))
        return Content("\n").join(lines)

    def _show_detail(self) -> None:
        self.query_one("#change-detail", Static).update(self.detail_content(self._index))

    def action_copy_command(self) -> None:
        if self._index is None:
            return
        command = self._items[self._index].command
        self.app.copy_to_clipboard(command)
        self.app.notify(f"copied: {command}", title="Command", timeout=3, markup=False)
