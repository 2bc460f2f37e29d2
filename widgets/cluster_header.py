"""One line saying which cluster this wizard is about to change, and whether it will.

Operators run this over SSH, often with several terminals open on several clusters; the
namespace and etcd address must be on screen at all times, and a dry run must be impossible to
mistake for a real one, hence the badge pinned to the right edge that never gets cropped.
"""

from __future__ import annotations

from rich.cells import cell_len
from textual.content import Content
from textual.geometry import Size
from textual.reactive import reactive
from textual.widget import Widget

from widgets._style import LABEL


class ClusterHeader(Widget):
    """`ns <namespace> · etcd <addr> · manager <version> · era <era>` plus a DRY RUN badge."""

    DEFAULT_CSS = """
    ClusterHeader {
        height: 1;
        width: 1fr;
        padding: 0 1;
    }
    """

    dry_run: reactive[bool] = reactive(False)

    def __init__(self, *, name: str | None = None, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(name=name, id=id, classes=classes)
        self._fields: list[tuple[str, str]] = []

    def update_identity(self, namespace: str, etcd: str, manager: str, era: str, dry_run: bool) -> None:
        """Show a (new) cluster identity; every value is data, never markup."""
        self._fields = [("ns", namespace), ("etcd", etcd), ("manager", manager), ("era", era)]
        self.dry_run = dry_run
        self.set_class(dry_run, "-dry-run")
        self.refresh()

    @property
    def identity(self) -> dict[str, str]:
        return dict(self._fields)

    def render(self) -> Content:
        width = max(self.content_region.width, 10)
        badge = Content.styled(" DRY RUN ", "bold $text-warning on $warning-muted") if self.dry_run else Content("")
        room = width - (badge.cell_length + 1 if self.dry_run else 0)
        if not self._fields:
            left = Content.styled("no cluster loaded", LABEL)
        else:
            parts: list[tuple[str, str] | str] = []
            for i, (label, value) in enumerate(self._fields):
                if i:
                    parts.append((" · ", LABEL))
                parts += [(f"{label} ", LABEL), (value or "?", "bold")]
            left = Content.assemble(*parts)
        if left.cell_length > room:
            # Keep the namespace whole if at all possible: it is what tells clusters apart.
            left = left.truncate(max(room, 1), ellipsis=True)
        if not self.dry_run:
            return left
        gap = max(1, width - left.cell_length - badge.cell_length)
        return Content.assemble(left, " " * gap, badge)

    def get_content_width(self, container: Size, viewport: Size) -> int:
        return sum(cell_len(label) + cell_len(value) + 4 for label, value in self._fields) + 10
