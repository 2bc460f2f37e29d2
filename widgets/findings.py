"""What an inspection found, most severe first, each with its fix.

A blocking finding stops a step; the operator has to see at a glance *that* something blocks,
*why*, and *what to do*, so blocking findings come first, carry a glyph and the word "blocking"
(NO_COLOR and colour-blind safe), and their fix is on its own indented line. The body of each
finding is a separate Static with a left padding so long messages wrap under their own text
(a hanging indent), which a single rendered Content cannot do.
"""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import VerticalScroll
from textual.content import Content
from textual.widget import AwaitMount
from textual.widgets import Static

from widgets._style import ERROR, LABEL, MUTED, OK, SEVERITY_GLYPH, SEVERITY_STYLE, WARNING
from widgets.items import SEVERITIES, FindingItem


def _rank(item: FindingItem) -> int:
    return SEVERITIES.index(item.severity) if item.severity in SEVERITIES else len(SEVERITIES)


def sort_findings(items: list[FindingItem]) -> list[FindingItem]:
    """Blocking, then warning, then info, then anything unknown; stable within a severity so the
    engine's order (usually the order things were checked) is kept."""
    return sorted(items, key=_rank)


def summary_line(items: list[FindingItem]) -> Content:
    counts = {s: sum(1 for i in items if i.severity == s) for s in SEVERITIES}
    if not items:
        return Content.assemble(("✓ ", OK), ("nothing found that needs attention", ""))
    parts: list[tuple[str, str] | str] = []
    for severity, style in (("blocking", ERROR), ("warning", WARNING), ("info", LABEL)):
        n = counts[severity]
        if parts:
            parts.append((" · ", LABEL))
        word = severity if severity != "warning" or n == 1 else "warnings"
        parts.append((f"{n} {word}", f"{style} bold" if n and severity == "blocking" else (style if n else MUTED)))
    return Content.assemble(*parts)


class FindingsView(VerticalScroll):
    """`show(items)` replaces the list; `has_blocking` tells the screen whether to stop.

    A VerticalScroll (a Widget) so it takes focus and scrolls with the keyboard when the list is
    longer than the space the screen gives it.
    """

    DEFAULT_CSS = """
    FindingsView {
        height: auto;
        max-height: 100%;
    }
    FindingsView > .finding--summary { margin-bottom: 1; }
    FindingsView > .finding--head { height: auto; }
    FindingsView > .finding--body { height: auto; padding-left: 4; margin-bottom: 1; }
    """

    def __init__(
        self,
        items: list[FindingItem] | None = None,
        *,
        name: str | None = None,
        id: str | None = None,
        classes: str | None = None,
    ) -> None:
        super().__init__(name=name, id=id, classes=classes)
        self._items: list[FindingItem] = sort_findings(list(items or []))
        self.set_class(self.has_blocking, "-blocking")

    @property
    def items(self) -> list[FindingItem]:
        return list(self._items)

    @property
    def has_blocking(self) -> bool:
        return any(i.severity == "blocking" for i in self._items)

    def compose(self) -> ComposeResult:
        yield from self._build()

    def show(self, items: list[FindingItem]) -> AwaitMount:
        """Replace the findings. Returns the mount awaitable (await it in tests before asserting)."""
        self._items = sort_findings(list(items))
        self.set_class(self.has_blocking, "-blocking")
        with self.app.batch_update():
            self.remove_children()
            return self.mount_all(list(self._build()))

    def _build(self) -> list[Static]:
        widgets: list[Static] = [Static(summary_line(self._items), classes="finding--summary")]
        for item in self._items:
            glyph = SEVERITY_GLYPH.get(item.severity, "?")
            style = SEVERITY_STYLE.get(item.severity, MUTED)
            head = Content.assemble(
                (f"{glyph} ", style), (f"{item.severity:<8}", style), "  ", (item.code, "bold"),
            )
            body_lines: list[Content] = [Content(item.message)]
            if item.fix:
                body_lines.append(Content.assemble(("fix: ", f"{OK} bold"), item.fix))
            body_lines += [Content.assemble(("- ", LABEL), (d, MUTED)) for d in item.details]
            widgets.append(Static(head, classes="finding--head"))
            widgets.append(Static(Content("\n").join(body_lines), classes="finding--body"))
        return widgets
