"""A one-line row of live counters (repositories, tags, kernel images found, skipped...).

Counters change many times a second during a rescan; a Static re-rendering one short Content
is cheap, and the Content is built from data (names are never parsed as markup).
"""

from __future__ import annotations

from textual.content import Content
from textual.widgets import Static

from widgets._style import LABEL, MUTED, ROW_STYLE


class CounterBar(Static):
    """`show(counters, title=...)`; `styles` optionally colours a counter ("ok", "warning",
    "error", "muted") so that e.g. a non-zero "failed" stands out."""

    DEFAULT_CSS = """
    CounterBar {
        height: auto;
        width: 1fr;
    }
    """

    def __init__(self, *, name: str | None = None, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(Content(""), markup=False, name=name, id=id, classes=classes)
        self._counters: dict[str, int] = {}
        self._title = ""

    @property
    def counters(self) -> dict[str, int]:
        return dict(self._counters)

    def show(self, counters: dict[str, int], *, title: str = "", styles: dict[str, str] | None = None) -> None:
        self._counters = dict(counters)
        self._title = title
        self.update(self.build(self._counters, title=title, styles=styles or {}))

    @staticmethod
    def build(counters: dict[str, int], *, title: str = "", styles: dict[str, str]) -> Content:
        parts: list[tuple[str, str] | str] = []
        if title:
            parts += [(title, "bold"), "  "]
        if not counters:
            parts.append(("nothing counted yet", MUTED))
        for i, (name, value) in enumerate(counters.items()):
            if i:
                parts.append((" · ", LABEL))
            style = ROW_STYLE.get(styles.get(name, ""), "bold")
            parts += [(f"{name} ", LABEL), (f"{value:,}", style)]
        return Content.assemble(*parts)
