"""A JSON editor that validates as you type and points at the problem.

The registry step asks the operator for a JSON document; a mistake there is written to etcd and
breaks image resolution for the whole cluster, so the editor must say *where* (line:column),
*which rule* and *how to fix it*, and the screen must be able to block Next while it is wrong.

- Highlighting needs tree-sitter + tree-sitter-json. Without tree-sitter, TextArea silently
  falls back to plain text; with tree-sitter but no JSON grammar it raises
  LanguageDoesNotExist; tree-sitter 0.26 segfaults (docs/textual-notes.md#textarea-and-tree-sitter).
  We ask for JSON only when the grammar loads, and a smoke test constructs the editor.
- Validation is debounced (~150 ms) so a burst of typing costs one validator run, and the
  validator is a plain function `str -> list[IssueItem]` supplied by the caller (the widget
  knows nothing of Backend.AI's registry schema).
- Tab moves focus, as in every other field (`tab_behavior="focus"`; in indent mode TextArea eats
  Tab and Escape, Textual docs, widgets/text_area.md, "Tab and Escape behavior", and Tab
  inserted spaces where the operator expected to leave). JSON needs no tab: indentation is
  typed as spaces. Escape leaves the text for the issue list when there are
  issues (Enter there jumps back into the text at that issue), else for the next widget.
  F8 / shift+F8 jump to the next / previous issue from anywhere inside the editor.
- Syntax colours come from the App's theme variables (a TextAreaTheme rebuilt on theme change),
  not from the fixed "monokai" palette, so light themes stay legible.
"""

from __future__ import annotations

from collections.abc import Callable

from rich.style import Style
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.color import Color
from textual.content import Content
from textual.message import Message
from textual.timer import Timer
from textual.widget import Widget
from textual.widgets import OptionList, Static, TextArea
from textual.widgets.text_area import TextAreaTheme

from widgets._style import LABEL, OK, SEVERITY_GLYPH, SEVERITY_STYLE
from widgets.items import IssueItem

Validator = Callable[[str], list[IssueItem]]

THEME_NAME = "bairm-json"


def json_highlighting_available() -> bool:
    """True when TextArea can highlight JSON here (tree-sitter and its JSON grammar load)."""
    try:
        from textual._tree_sitter import TREE_SITTER, get_language
    except ImportError:  # a future Textual moved the private module: plain text is fine
        return False
    return bool(TREE_SITTER) and get_language("json") is not None


def _issue_sort_key(issue: IssueItem) -> tuple[int, int, int]:
    rank = {"error": 0, "warning": 1}.get(issue.severity, 2)
    return (rank, issue.line, issue.column)


def issue_content(issue: IssueItem) -> Content:
    """`✗ 7:20  message  [rule]` then `fix: ...` on a second line."""
    glyph = SEVERITY_GLYPH.get(issue.severity, "?")
    style = SEVERITY_STYLE.get(issue.severity, LABEL)
    head = Content.assemble(
        (f"{glyph} ", style), (f"{issue.line}:{issue.column}", f"{style}"), "  ", issue.message,
        ("  [", LABEL), (issue.rule, LABEL), ("]", LABEL),
    )
    if not issue.fix:
        return head
    return Content("\n").join([head, Content.assemble(("    fix: ", f"{OK}"), issue.fix)])


class JsonEditor(Widget):
    """TextArea + issue list; posts `Validated(text, issues)` after each (debounced) check."""

    DEFAULT_CSS = """
    JsonEditor {
        height: 1fr;
        layout: vertical;
    }
    JsonEditor > TextArea {
        height: 1fr;
        min-height: 4;
    }
    JsonEditor.-invalid > TextArea, JsonEditor.-invalid > TextArea:focus {
        border: tall $error;
    }
    JsonEditor > #json-status {
        height: 1;
        padding: 0 1;
    }
    JsonEditor > #json-issues {
        height: auto;
        max-height: 8;
    }
    JsonEditor > #json-issues.-empty {
        display: none;
    }
    """

    BINDINGS = [
        Binding("f8", "next_issue", "Next issue", tooltip="Move the cursor to the next problem"),
        Binding("shift+f8", "previous_issue", "Previous issue", show=False),
        Binding("escape", "leave_text", "Leave the editor", show=False),
    ]

    class Validated(Message):
        """The text was checked. `ok` is False while any issue has severity "error"."""

        def __init__(self, json_editor: JsonEditor, text: str, issues: list[IssueItem]) -> None:
            super().__init__()
            self.json_editor = json_editor
            self.text = text
            self.issues = issues

        @property
        def ok(self) -> bool:
            return not any(i.severity == "error" for i in self.issues)

        @property
        def control(self) -> JsonEditor:
            return self.json_editor

    def __init__(
        self,
        text: str,
        validator: Validator,
        *,
        id: str | None = None,
        name: str | None = None,
        classes: str | None = None,
        debounce: float = 0.15,
        cursor_blink: bool = True,
    ) -> None:
        super().__init__(name=name, id=id, classes=classes)
        self._initial_text = text
        self.validator = validator
        self.debounce = debounce
        self._cursor_blink = cursor_blink
        self._issues: list[IssueItem] = []
        self._issue_index = -1
        self._timer: Timer | None = None
        self._validated_text: str | None = None
        self.highlighting = json_highlighting_available()
        """Whether JSON syntax highlighting is on (False: tree-sitter or its grammar missing)."""

    # -- composition -------------------------------------------------------------------------

    def compose(self) -> ComposeResult:
        area = TextArea.code_editor(
            self._initial_text,
            language="json" if self.highlighting else None,
            theme="css",
            tab_behavior="focus",
            soft_wrap=False,
            id="json-text",
        )
        area.cursor_blink = self._cursor_blink
        yield area
        yield Static(Content(""), id="json-status")
        yield OptionList(id="json-issues", markup=False, classes="-empty")

    def on_mount(self) -> None:
        self._apply_theme()
        # The signal fires after the new theme's variables are in place (a watcher on
        # `App.theme` would run before, and read the old ones).
        self.app.theme_changed_signal.subscribe(self, lambda _theme: self._apply_theme())
        self._validate_now()

    @property
    def text_area(self) -> TextArea:
        return self.query_one("#json-text", TextArea)

    def _apply_theme(self) -> None:
        """Syntax colours from the theme's variables: keys primary, strings success, numbers
        and literals warning, errors error. Base, gutter and cursor come from TextArea's CSS."""
        variables = self.app.theme_variables
        background = Color.parse(variables.get("surface", "#1e1e1e"))

        def style(var: str, **kw: bool) -> Style:
            try:
                color = background + Color.parse(variables[var])
            except (KeyError, ValueError):
                return Style(**kw)
            return Style(color=color.rich_color, **kw)

        theme = TextAreaTheme(
            name=THEME_NAME,
            syntax_styles={
                "json.label": style("text-primary", bold=True),
                "string": style("text-success"),
                "string.escape": style("text-warning"),
                "number": style("text-warning"),
                "boolean": style("text-warning", italic=True),
                "json.null": style("text-warning", italic=True),
                "punctuation.bracket": style("foreground-muted"),
                "punctuation.delimiter": style("foreground-muted"),
                "json.error": style("text-error", underline=True),
            },
        )
        area = self.text_area
        area.register_theme(theme)
        area.theme = THEME_NAME

    # -- public API ----------------------------------------------------------------------------

    @property
    def text(self) -> str:
        return self.text_area.text if self.is_mounted else self._initial_text

    @property
    def issues(self) -> list[IssueItem]:
        return list(self._issues)

    @property
    def ok(self) -> bool:
        return not any(i.severity == "error" for i in self._issues)

    def load_text(self, text: str) -> None:
        """Replace the whole document (e.g. "reset to what etcd has"); validation follows."""
        self.text_area.load_text(text)
        self._validate_now()

    def goto_issue(self, index: int) -> None:
        """Put the cursor where issue `index` is (1-based line:column) and focus the text."""
        if not self._issues:
            return
        index %= len(self._issues)
        issue = self._issues[index]
        area = self.text_area
        document = area.document
        row = max(0, min(issue.line - 1, document.line_count - 1))
        column = max(0, min(issue.column - 1, len(document.get_line(row))))
        area.move_cursor((row, column), center=True)
        area.focus()
        self._issue_index = index
        self.query_one("#json-issues", OptionList).highlighted = index

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "leave_text":
            return self.is_mounted and self.text_area.has_focus   # elsewhere Escape is the app's
        return True

    def action_leave_text(self) -> None:
        if self._issues:
            self.query_one("#json-issues", OptionList).focus()
        else:
            self.screen.focus_next()

    def action_next_issue(self) -> None:
        self.goto_issue(self._issue_index + 1)

    def action_previous_issue(self) -> None:
        self.goto_issue(self._issue_index - 1 if self._issue_index >= 0 else -1)

    # -- validation ----------------------------------------------------------------------------

    @on(TextArea.Changed, "#json-text")
    def _text_changed(self, event: TextArea.Changed) -> None:
        event.stop()
        if self.text_area.text == self._validated_text:
            return  # theme changes post Changed too; nothing to re-check
        if self._timer is not None:
            self._timer.stop()
        self._timer = self.set_timer(self.debounce, self._validate_now, name="json-validate")

    def _validate_now(self) -> None:
        self._timer = None
        text = self.text_area.text
        try:
            issues = list(self.validator(text))
        except Exception as error:  # noqa: BLE001 - a validator bug must not kill the wizard
            issues = [IssueItem(1, 1, f"the validator failed: {type(error).__name__}: {error}",
                                rule="internal", fix="this is a bug in the wizard; report it with the transcript")]
        issues.sort(key=_issue_sort_key)
        self._validated_text = text
        self._issues = issues
        self._issue_index = -1
        self._show_issues()
        self.post_message(self.Validated(self, text, list(issues)))

    def _show_issues(self) -> None:
        errors = sum(1 for i in self._issues if i.severity == "error")
        others = len(self._issues) - errors
        self.set_class(errors > 0, "-invalid")
        status = self.query_one("#json-status", Static)
        if not self._issues:
            status.update(Content.assemble(("✓ ", OK), ("valid", f"{OK} bold")))
        else:
            parts: list[tuple[str, str] | str] = []
            if errors:
                parts.append((f"✗ {errors} error{'s' if errors != 1 else ''}", SEVERITY_STYLE["error"]))
            if others:
                if parts:
                    parts.append((" · ", LABEL))
                parts.append((f"! {others} warning{'s' if others != 1 else ''}", SEVERITY_STYLE["warning"]))
            parts.append(("  F8 next issue · Esc then Enter to jump", LABEL))
            status.update(Content.assemble(*parts))
        issues = self.query_one("#json-issues", OptionList)
        issues.clear_options()
        issues.add_options([issue_content(i) for i in self._issues])
        issues.set_class(not self._issues, "-empty")

    @on(OptionList.OptionSelected, "#json-issues")
    def _issue_selected(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        self.goto_issue(event.option_index)
