"""The run transcript inside the app: a `Log`, because `Log` text can be selected and copied
with the mouse while `RichLog` cannot (docs/textual-notes.md#logs-and-selection), and
because `Log` never interprets markup, so a line quoting `[etcd]` or `[bold]` shows verbatim.
"""

from __future__ import annotations

from textual.widgets import Log


class TranscriptView(Log):
    """`append(line)`; multi-line strings become several lines; control characters are
    stripped by Log itself, so a hostile registry message cannot move the terminal cursor."""

    DEFAULT_CSS = """
    TranscriptView {
        height: 1fr;
    }
    """

    def __init__(
        self,
        *,
        max_lines: int | None = None,
        name: str | None = None,
        id: str | None = None,
        classes: str | None = None,
    ) -> None:
        super().__init__(highlight=False, max_lines=max_lines, auto_scroll=True, name=name, id=id, classes=classes)

    def append(self, line: str) -> None:
        """Add one entry. Scrolls to the end only when the view was already at the end, so an
        operator reading back is not yanked away by new lines (Log's auto_scroll behaviour)."""
        parts = line.splitlines() or [""]
        self.write_lines(parts)

    @property
    def text(self) -> str:
        return "\n".join(self.lines)
