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
from widgets.distinct_cut import DistinctCut
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
        self._shown: list[tuple[str, str | None, str | None]] = []

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
        # Cell cut-offs depend on the width: rebuild when it shrinks at all (a scrollbar
        # appearing beside the table would otherwise push the last column under a horizontal
        # one) or grows noticeably.
        grown = event.size.width - self._built_width
        if grown < 0 or grown >= 4:
            self._rebuild(keep=self._index or 0)

    def _theme_changed(self) -> None:
        # Cell colours are baked into the Text cells: rebuild them from the new theme. (Not on
        # notify_style_update, which also fires on every focus and hover change.)
        if self._items:
            self._rebuild(keep=self._index or 0)

    def _cut(self) -> list[tuple[str, str | None, str | None]]:
        """Each change's target, before and after as the row shows them, cut to fit the width.

        The target gets its room first, 20 cells or two fifths of the columns: it is what tells
        the rows apart (`etcd …/cr.backend.ai`), while a value cut short is shown whole in the
        panel below. A value shorter than its share leaves the rest to the other value, then
        back to the target.
        Each cell is cut by `DistinctCut`, so rows that differ only in their middle or end
        still read differently (80 columns: `etcd …/project`, not `etcd config/docke…`)."""
        items = self._items
        if not items:
            return []
        targets = [i.target for i in items]
        befores = [one_line(i.before) if i.before is not None else ABSENT for i in items]
        afters = [one_line(i.after) if i.after is not None else ABSENT for i in items]
        action_w = max(cell_len(COLUMNS[1][1]), *(cell_len(i.action) for i in items))
        # each of the four columns is padded by one cell on both sides; 2 for the scrollbar
        room = max(30, (self.size.width or 80) - action_w - 2 * len(COLUMNS) - 2)
        t_want, b_want, a_want = want = [max(cell_len(label), *(cell_len(v) for v in col)) for label, col in
                                         (("target", targets), ("before", befores), ("after", afters))]
        if t_want + b_want + a_want <= room:
            t_cap, b_cap, a_cap = want
        else:
            t_cap = min(t_want, max(20, room * 2 // 5))
            rest = room - t_cap
            if b_want <= rest // 2:
                b_cap, a_cap = b_want, min(a_want, rest - b_want)
            elif a_want <= rest - rest // 2:
                a_cap, b_cap = a_want, min(b_want, rest - a_want)
            else:
                b_cap, a_cap = max(6, rest // 2), max(6, rest - rest // 2)
            t_cap = min(t_want, max(t_cap, room - b_cap - a_cap))
        cut_t = DistinctCut(targets, kind_word=True)
        # one index for both values: a before and an after that differ must not read the same
        cut_v = DistinctCut([*befores, *afters])

        def value(v: str | None, shown: str, cap: int) -> str | None:
            if v is None:
                return None
            # prose and JSON (they have spaces) read from their start; names and paths by their end
            return ellipsize(shown, cap) if " " in shown else cut_v.cut(shown, cap)

        return [(cut_t.cut(t, t_cap), value(i.before, b, b_cap), value(i.after, a, a_cap))
                for i, t, b, a in zip(items, targets, befores, afters, strict=True)]

    def _style(self, name: str) -> Style:
        return foreground_only(self.get_component_rich_style(f"change-table--{name}"))

    def _cells(self, item: ChangeItem, shown: tuple[str, str | None, str | None]) -> list[Text]:
        action_class = ACTION_CLASS.get(item.action.lower(), "update")

        def value(v: str | None) -> Text:
            if v is None:
                return Text(ABSENT, style=self._style("absent"), no_wrap=True)
            return Text(v, no_wrap=True)

        target, before, after = shown
        return [
            Text(target, no_wrap=True),
            Text(item.action, style=self._style(action_class), no_wrap=True),
            value(before),
            value(after),
        ]

    def _rebuild(self, keep: int = 0) -> None:
        if not self.is_mounted:
            return
        table = self.table
        self._built_width = self.size.width
        self._shown = self._cut()
        rows = [self._cells(item, shown) for item, shown in zip(self._items, self._shown, strict=True)]
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
        shown_target, *shown_values = self._shown[index] if index < len(self._shown) else (None, None, None)
        lines: list[Content] = [
            Content.assemble(("$ ", LABEL), (item.command or "(no equivalent command)", "bold")),
        ]
        if item.note:
            lines.append(Content.assemble(("note: ", LABEL), item.note))
        if shown_target != item.target:
            lines.append(Content.assemble(("target: ", LABEL), item.target))
        for label, v, shown in (("before", item.before, shown_values[0]), ("after", item.after, shown_values[1])):
            if v is not None and (shown != one_line(v) or "\n" in v):
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
