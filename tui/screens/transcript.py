"""The transcript, viewable at any time (t): everything inspected, planned, changed, verified.

Fed from the controller's lines (the engine's events rendered as the headless runner prints
them), so it follows the run live; the files on disk (Markdown + JSON Lines) are the record
and ctrl+e exports them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from textual.app import ComposeResult
from textual.binding import Binding
from textual.content import Content
from textual.screen import Screen
from textual.widgets import Footer, Static

from widgets.transcript_view import TranscriptView

from ..messages import Update

if TYPE_CHECKING:
    from ..app import MigrationApp


class TranscriptScreen(Screen[None]):
    help_title = "Transcript"   # the help screen's heading
    BINDINGS = [
        Binding("escape,t", "close", "Close", id="close", tooltip="Back to the step"),
        Binding("ctrl+y", "copy_all", "Copy all", id="copy-all", tooltip="Copy the whole transcript (OSC 52)"),
    ]

    def __init__(self) -> None:
        super().__init__(id="transcript")
        self._seen = 0

    @property
    def wizard(self) -> MigrationApp:
        return self.app  # type: ignore[return-value]

    def compose(self) -> ComposeResult:
        yield Static(id="transcript-title", markup=False)
        yield TranscriptView(id="transcript-log", max_lines=50_000)
        yield Footer(show_command_palette=False, compact=self.app.size.width < 120)

    def on_mount(self) -> None:
        paths = self.wizard.controller.transcript_paths()
        where = f"  written to {paths[0].parent}" if paths else "  (not written yet: the run is not open)"
        self.query_one("#transcript-title", Static).update(
            Content.assemble(("Transcript", "bold"), (where, "$foreground-muted")))
        self._append_new()
        self.wizard.controller.updates.subscribe(self, self.hear)
        self.query_one(TranscriptView).focus()

    def hear(self, _u: Update) -> None:
        self._append_new()

    def _append_new(self) -> None:
        lines = self.wizard.controller.lines
        if self._seen > len(lines):   # trimmed at the front: start over
            self._seen = 0
        new = lines[self._seen:]
        self._seen = len(lines)
        if new:
            self.query_one(TranscriptView).write_lines(new)

    def action_close(self) -> None:
        self.dismiss()

    def action_copy_all(self) -> None:
        self.app.copy_to_clipboard("\n".join(self.wizard.controller.lines))
        self.notify("transcript copied (OSC 52)")

    def copy_text(self) -> str | None:
        return "\n".join(self.wizard.controller.lines)
