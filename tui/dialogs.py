"""Modal dialogs: confirm, typed confirm, error, resume offer, transcript export.

Each is a `ModalScreen[T]` that dismisses with a typed result (frogmouth's pattern,
frogmouth/dialogs/yes_no_dialog.py); the caller passes a callback. Keys only: every choice is a
binding shown in the dialog's own footer. Data (messages, paths, commands) is rendered with
`markup=False`, so an error text containing `[...]` is shown as it is.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Footer, Input, Static


class _Dialog(ModalScreen[object]):
    """Common frame: a titled box in the middle, body lines, key hints.

    The box grows with its lines up to 90% of the terminal and then scrolls them (↑/↓, PgUp/PgDn),
    while what the operator answers with (an input, its feedback) is docked at the bottom of
    the box: at 80x24 the cleanup's typed confirmation was cut to the input's top border, and
    the operator typed blind.
    """

    # Structure only (colours and borders are in app.tcss): a dialog fits any terminal.
    DEFAULT_CSS = """
    _Dialog {
        align: center middle;
    }
    _Dialog .dialog {
        width: 80%;
        max-width: 100;
        height: auto;
        max-height: 90%;
    }
    _Dialog .dialog-answer {
        dock: bottom;
        height: auto;
    }
    """

    def __init__(self, title: str, lines: Sequence[str], *, classes: str = "") -> None:
        super().__init__(classes=classes)
        self.title_text = title
        self.lines = list(lines)

    def compose_body(self) -> ComposeResult:
        yield from ()

    def compose(self) -> ComposeResult:
        with VerticalScroll(classes="dialog"):
            yield Static(self.title_text, classes="dialog-title", markup=False)
            for line in self.lines:
                yield Static(line, classes="dialog-line", markup=False)
            with Vertical(classes="dialog-answer"):
                yield from self.compose_body()
        yield Footer(show_command_palette=False, compact=self.app.size.width < 120)


class ConfirmDialog(_Dialog):
    """Yes/no before a write. Enter or y confirms; Escape or n cancels."""

    BINDINGS = [
        Binding("y,enter", "answer(True)", "Yes, go ahead", id="yes"),
        Binding("n,escape", "answer(False)", "No", id="no"),
    ]

    def action_answer(self, value: bool) -> None:
        self.dismiss(value)


class TypedConfirmDialog(_Dialog):
    """Destructive plans (StepPlan.destructive): the operator types a word to confirm.

    A wrong word is answered under the input with what was typed, so a typo (`clenaup`) is
    seen as a typo and not as a confirmation that did nothing."""

    BINDINGS = [Binding("escape", "cancel", "Cancel", id="cancel")]
    AUTO_FOCUS = "#typed"

    def __init__(self, title: str, lines: Sequence[str], word: str) -> None:
        super().__init__(title, lines, classes="-danger")
        self.word = word

    def compose_body(self) -> ComposeResult:
        yield Static(f"Type {self.word} and press Enter to confirm; Escape cancels.", id="typed-prompt",
                     markup=False)
        yield Input(placeholder=self.word, id="typed", select_on_focus=False)
        yield Static("", id="typed-error", markup=False)

    def on_input_changed(self, event: Input.Changed) -> None:
        event.stop()
        self.query_one("#typed-error", Static).update("")

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        typed = event.value.strip()
        if typed == self.word:
            self.dismiss(True)
            return
        said = f"you typed {typed}" if typed else "you typed nothing"
        self.query_one("#typed-error", Static).update(f"✗ type {self.word} to confirm; {said}. Nothing was done.")

    def action_cancel(self) -> None:
        self.dismiss(False)


class ErrorDialog(_Dialog):
    """A failure, as the engine words it: the one-line message, then the fix on its own line."""

    BINDINGS = [
        Binding("enter,escape", "close", "Close", id="close"),
        Binding("ctrl+y", "copy", "Copy message", id="copy"),
    ]

    def __init__(self, title: str, message: str, fix: str | None = None) -> None:
        lines = [message]
        if fix:
            lines.append(f"Fix: {fix}")
        super().__init__(title, lines, classes="-error")
        self.message = message
        self.one_line = f"{message}; fix: {fix}" if fix else message   # MigrateError.one_line()

    def action_close(self) -> None:
        self.dismiss(None)

    def action_copy(self) -> None:
        self.app.copy_to_clipboard(self.one_line)
        self.notify("copied (OSC 52)")


class ResumeDialog(_Dialog):
    """An unfinished run was found: resume it, or start over (the old state is archived, not lost)."""

    BINDINGS = [
        Binding("r,enter", "choose('resume')", "Resume", id="resume"),
        Binding("n", "choose('fresh')", "Start over", id="fresh"),
        Binding("escape", "choose('cancel')", "Not now", id="cancel"),
    ]

    def __init__(self, description: str, state_path: Path) -> None:
        super().__init__("An unfinished migration run was found", [
            description,
            f"State: {state_path}",
            "Resume continues where it stopped: finished work (pulls, writes) is not repeated.",
            "Start over archives that state (it is kept next to it) and begins a new run.",
        ])

    def action_choose(self, choice: str) -> None:
        self.dismiss(choice)


class ExportDialog(_Dialog):
    """Copies the transcript (Markdown + JSON Lines) into a directory the operator names."""

    BINDINGS = [Binding("escape", "cancel", "Cancel", id="cancel")]
    AUTO_FOCUS = "#export-dir"

    def __init__(self, sources: Sequence[Path], default: Path) -> None:
        lines = ["The transcript is written as the run goes:", *[f"  {p}" for p in sources],
                 "Copy it to this directory (Enter):"]
        super().__init__("Export the transcript", lines)
        self.default = default

    def compose_body(self) -> ComposeResult:
        yield Input(str(self.default), id="export-dir")

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        value = event.value.strip()
        if value:
            self.dismiss(Path(value).expanduser())

    def action_cancel(self) -> None:
        self.dismiss(None)
