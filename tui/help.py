"""The help screen (`?` or F1): every key of the screen it was opened on, and what each does.

At 80 columns the footer cannot hold a step screen's keys (it is cut after six or seven), so
the footer is a reminder and this is the list. It is read from the screen's active bindings
at the moment it opens (`Screen.active_bindings`: the focused widget's, the screen's, the
app's, each with its `check_action` state), never from a list kept here, so it cannot drift
from what the keys do: a key greyed in the footer is listed as "not now", a key hidden there
(say, letters while a text field has focus) is not listed. Screens may add a few notes for
keys that act through a widget (Enter on a table row) with `help_notes()`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import HorizontalGroup, VerticalScroll
from textual.content import Content
from textual.dom import DOMNode
from textual.screen import ModalScreen, Screen
from textual.widget import Widget
from textual.widgets import Footer, Input, Static, TextArea

# `?` is typed in a text field (it consumes printable keys); F1 works there too.
HELP_BINDING = Binding("question_mark,f1", "app.help", "Help", id="help",
                       tooltip="Every key of this screen and what it does")

# What to call the widget the cursor is in, by its class (the widget's own bindings are listed under it).
PLACES = {"DataTable": "the table", "ChangeTable": "the plan's rows", "EditableTable": "the table",
          "PullGrid": "the grid", "TextArea": "the editor", "JsonEditor": "the editor", "Input": "the text field",
          "VerticalScroll": "the page", "StepList": "the step list", "OptionList": "the list",
          "TranscriptView": "the transcript", "Log": "the transcript"}


@dataclass
class KeyRow:
    keys: list[str]
    description: str
    tooltip: str
    enabled: bool
    shown: bool = True


@dataclass
class KeyGroup:
    title: str
    rows: list[KeyRow] = field(default_factory=list)


def text_field(widget: Widget | None) -> bool:
    """A field that takes printable keys, so letter keys are typed, not obeyed: an Input, or a
    TextArea that can be typed into (a read-only one, like the applied registry JSON, leaves
    them to the screen)."""
    return isinstance(widget, Input) or (isinstance(widget, TextArea) and not widget.read_only)


def key_label(screen: Screen[object], binding: Binding) -> str:
    """The key as the footer shows it, with `^` spelled out: `ctrl+n`, `?`, `F1`, `[`."""
    label = re.sub(r"(^|\+)\^(?=.)", r"\1ctrl+", screen.app.get_key_display(binding))
    return re.sub(r"(^|\+)f(\d+)$", r"\1F\2", label)


def key_groups(screen: Screen[object]) -> list[KeyGroup]:
    """The screen's keys as they are now, grouped by where they act: this screen, the widget
    the cursor is in, everywhere (the app)."""
    app = screen.app
    by_node: dict[DOMNode, dict[str, KeyRow]] = {}
    for active in screen.active_bindings.values():
        binding = active.binding
        if binding.system or not binding.description:
            continue
        rows = by_node.setdefault(active.node, {})
        row = rows.get(binding.action)
        label = key_label(screen, binding)
        if row is None:
            rows[binding.action] = KeyRow([label], binding.description, active.tooltip or binding.tooltip,
                                          active.enabled, binding.show)
        elif label not in row.keys:
            row.keys.append(label)

    def ordered(rows: dict[str, KeyRow]) -> list[KeyRow]:
        # the footer's keys first (the step's own), then the ones it never shows (Tab, the cursor keys)
        return sorted(rows.values(), key=lambda r: not r.shown)

    groups: list[KeyGroup] = []
    if screen in by_node:
        groups.append(KeyGroup("This screen", ordered(by_node.pop(screen))))
    app_rows = by_node.pop(app, None)
    for node, rows in by_node.items():
        place = next((PLACES[c.__name__] for c in type(node).__mro__ if c.__name__ in PLACES), "where the cursor is")
        groups.append(KeyGroup(f"In {place}", ordered(rows)))
    if app_rows:
        groups.append(KeyGroup("Everywhere", ordered(app_rows)))
    return groups


class HelpScreen(ModalScreen[None]):
    """The keys of `screen`, read when this opens. Escape, `?` or F1 closes it; the arrows and
    PgUp/PgDn scroll it."""

    DEFAULT_CSS = """
    HelpScreen {
        align: center middle;
    }
    HelpScreen .dialog {
        width: 80%;
        max-width: 100;
        height: auto;
        max-height: 90%;
    }
    HelpScreen .help-row {
        height: auto;
    }
    HelpScreen .help-keys {
        width: 16;
    }
    HelpScreen .help-what {
        width: 1fr;
    }
    HelpScreen .help-foot {
        margin-top: 1;
    }
    """

    BINDINGS = [Binding("escape,question_mark,f1", "close", "Close", id="close-help")]
    AUTO_FOCUS = "#help-body"

    def __init__(self, screen: Screen[object]) -> None:
        super().__init__(id="help")
        self.groups = key_groups(screen)
        notes = getattr(screen, "help_notes", None)
        self.notes: list[str] = list(notes()) if callable(notes) else []
        self.about = getattr(screen, "help_title", None) or type(screen).__name__

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="help-body", classes="dialog"):
            yield Static(Content.assemble(("Keys: ", "bold"), (str(self.about), "bold")), classes="dialog-title")
            for group in self.groups:
                yield Static(group.title, classes="section", markup=False)
                for row in group.rows:
                    keys = Content.styled(" ".join(row.keys), "bold" if row.enabled else "$foreground-muted")
                    what: list[tuple[str, str] | str] = [(row.description, "" if row.enabled else "$foreground-muted")]
                    if row.tooltip and row.tooltip != row.description:
                        what += [("  " + row.tooltip, "$foreground-muted")]
                    if not row.enabled:
                        what += [("  (not now)", "$foreground-muted italic")]
                    yield HorizontalGroup(Static(keys, classes="help-keys"), Static(Content.assemble(*what),
                                                                                    classes="help-what"),
                                          classes="help-row")
            if self.notes:
                yield Static("Also", classes="section", markup=False)
                for note in self.notes:
                    yield Static(note, markup=False)
            yield Static(Content.styled("Letter keys act when no text field has the cursor: Esc or Tab leaves a "
                                        "field. Esc, ? or F1 closes this.", "$foreground-muted"), classes="help-foot")
        yield Footer(show_command_palette=False, compact=self.app.size.width < 120)

    def action_close(self) -> None:
        self.dismiss(None)

    def rows(self) -> list[tuple[str, str, bool]]:
        """(keys, description, enabled) of every listed key, for tests."""
        return [(" ".join(r.keys), r.description, r.enabled) for g in self.groups for r in g.rows]
