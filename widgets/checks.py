"""Yes/no checks (connections at start, verification at the end) as ✓/✗ lines.

A failed check must be readable without colour: the glyph differs, and failures are bold.
The detail says what was actually seen (an address, a version, an error), never markup.
"""

from __future__ import annotations

from rich.cells import cell_len
from textual.content import Content
from textual.geometry import Size
from textual.widget import Widget

from widgets._style import ERROR, LABEL, MUTED, OK
from widgets.items import CheckItem


class ChecksView(Widget):
    """`show(items)`: one line per check, names aligned so the details form a column."""

    DEFAULT_CSS = """
    ChecksView {
        height: auto;
        width: 1fr;
    }
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

    @property
    def items(self) -> list[CheckItem]:
        return list(self._items)

    @property
    def all_ok(self) -> bool:
        return all(i.ok for i in self._items)

    def show(self, items: list[CheckItem]) -> None:
        self._items = list(items)
        self.set_class(not self.all_ok, "-failed")
        self.refresh(layout=True)

    def get_content_height(self, container: Size, viewport: Size, width: int) -> int:
        return max(1, self.render().get_height(self.styles, width))

    def render(self) -> Content:
        if not self._items:
            return Content.styled("no checks yet", MUTED)
        name_w = min(max(cell_len(i.name) for i in self._items), 28)
        lines = []
        for item in self._items:
            glyph, style = ("✓", OK) if item.ok else ("✗", f"{ERROR} bold")
            name = item.name if cell_len(item.name) <= name_w else item.name[: name_w - 1] + "…"
            parts: list[tuple[str, str] | str] = [(f"{glyph} ", style), (name.ljust(name_w), "" if item.ok else "bold")]
            if item.detail:
                parts += ["  ", (item.detail, LABEL if item.ok else ERROR)]
            lines.append(Content.assemble(*parts))
        return Content("\n").join(lines)
