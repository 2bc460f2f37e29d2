"""Yes/no checks (connections at start, verification at the end) as ✓/✗ lines.

A failed check must be readable without colour: the glyph differs, and failures are bold.
The detail says what was actually seen (an address, a version, an error). Each check is a row
of two Statics so that a long detail (an error message, typically) wraps inside its own column
instead of under the glyph.
"""

from __future__ import annotations

from rich.cells import cell_len
from textual.app import ComposeResult
from textual.containers import HorizontalGroup, VerticalGroup
from textual.content import Content
from textual.widget import AwaitMount
from textual.widgets import Static

from widgets._style import ERROR, LABEL, MUTED, OK, ellipsize
from widgets.items import CheckItem

NAME_MAX = 28


class ChecksView(VerticalGroup):
    """`show(items)`: one row per check, names aligned so the details form a column."""

    DEFAULT_CSS = """
    ChecksView {
        height: auto;
        width: 1fr;
    }
    ChecksView > HorizontalGroup { height: auto; }
    ChecksView .check--name { width: auto; padding-right: 2; }
    ChecksView .check--detail { width: 1fr; }
    """

    def __init__(
        self,
        items: list[CheckItem] | None = None,
        *,
        name: str | None = None,
        id: str | None = None,
        classes: str | None = None,
    ) -> None:
        super().__init__(name=name, id=id, classes=classes)
        self._items: list[CheckItem] = list(items or [])
        self.set_class(not self.all_ok, "-failed")

    @property
    def items(self) -> list[CheckItem]:
        return list(self._items)

    @property
    def all_ok(self) -> bool:
        return all(i.ok for i in self._items)

    def compose(self) -> ComposeResult:
        yield from self._rows()

    def show(self, items: list[CheckItem]) -> AwaitMount:
        """Replace the checks. Returns the mount awaitable (await it before asserting)."""
        self._items = list(items)
        self.set_class(not self.all_ok, "-failed")
        with self.app.batch_update():
            self.remove_children()
            return self.mount_all(self._rows())

    def _rows(self) -> list[Static | HorizontalGroup]:
        if not self._items:
            return [Static(Content.styled("no checks yet", MUTED))]
        name_w = min(max(cell_len(i.name) for i in self._items), NAME_MAX)
        rows: list[Static | HorizontalGroup] = []
        for item in self._items:
            glyph, style = ("✓", OK) if item.ok else ("✗", f"{ERROR} bold")
            name = ellipsize(item.name, name_w).ljust(name_w)
            head = Content.assemble((f"{glyph} ", style), (name, "" if item.ok else "bold"))
            detail = Content.styled(item.detail, LABEL if item.ok else ERROR)
            rows.append(HorizontalGroup(Static(head, classes="check--name"),
                                        Static(detail, classes="check--detail")))
        return rows
