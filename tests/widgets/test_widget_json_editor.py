"""JsonEditor: highlighting smoke test, validation as you type, messages, cursor jumps."""

from __future__ import annotations

import json

import pytest
from textual.widgets import Button, OptionList, TextArea
from widget_harness import Harness, screen_text

from widgets import json_editor as json_editor_module
from widgets.items import IssueItem
from widgets.json_editor import JsonEditor

GOOD = '{\n  "url": "https://cr.backend.ai",\n  "type": "harbor2",\n  "project": "stable"\n}\n'


def validate(text: str) -> list[IssueItem]:
    """A stand-in for the registry validator: syntax errors and one field rule."""
    try:
        value = json.loads(text)
    except json.JSONDecodeError as e:
        return [IssueItem(e.lineno, e.colno, e.msg, rule="json-syntax", fix="fix the JSON syntax")]
    issues = []
    if not isinstance(value.get("project"), str):
        issues.append(IssueItem(4, 3, "`project` must be a comma-separated string [bold]",
                                rule="registry.project", fix='write "project": "a,b"'))
    if "[etcd]" in value:
        issues.append(IssueItem(2, 3, "unknown key `[etcd]`", rule="registry.keys", fix="remove it",
                                severity="warning"))
    return issues


def editor_app(text: str = GOOD, validator=validate, **kw) -> Harness:  # type: ignore[no-untyped-def]
    return Harness(lambda: [JsonEditor(text, validator, id="editor", cursor_blink=False, **kw),
                            Button("Next", id="next")])


def test_highlighting_is_available_in_this_environment() -> None:
    """tree-sitter 0.25 + tree-sitter-json are pinned; losing them silently loses highlighting."""
    assert json_editor_module.json_highlighting_available()


async def test_editor_constructs_with_json_highlighting() -> None:
    """Smoke test against the tree-sitter 0.26 segfault (docs/textual-notes.md#textarea-and-tree-sitter):
    building the editor with highlighting must not crash the interpreter."""
    app = editor_app()
    async with app.run_test(size=(80, 24)) as pilot:
        editor = app.query_one(JsonEditor)
        area = editor.text_area
        assert editor.highlighting and area.language == "json" and area.is_syntax_aware
        area.insert('  "x": 1,\n', (1, 0))  # reparse after an edit
        await pilot.pause()
        assert area.is_syntax_aware


async def test_plain_text_fallback_without_tree_sitter(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(json_editor_module, "json_highlighting_available", lambda: False)
    app = editor_app()
    async with app.run_test(size=(80, 24)) as pilot:
        editor = app.query_one(JsonEditor)
        assert not editor.highlighting and editor.text_area.language is None
        await pilot.pause()
        assert editor.ok


async def test_valid_text_posts_ok_and_shows_valid() -> None:
    app = editor_app()
    async with app.run_test(size=(80, 24), message_hook=lambda m: app.record(m)) as pilot:
        await pilot.pause()
        validated = app.of_type(JsonEditor.Validated)
        assert validated and validated[-1].ok and validated[-1].issues == []
        assert validated[-1].text == GOOD
        assert "✓ valid" in screen_text(app)
        assert not app.query_one(JsonEditor).has_class("-invalid")


async def test_typing_breaks_json_shows_line_column_rule_and_fix_then_recovers() -> None:
    app = editor_app(debounce=0.05)
    async with app.run_test(size=(80, 24), message_hook=lambda m: app.record(m)) as pilot:
        editor = app.query_one(JsonEditor)
        area = editor.text_area
        area.focus()
        area.move_cursor((1, len('  "url": "https://cr.backend.ai"')))
        await pilot.press("backspace")  # delete the closing quote of the url string
        await pilot.pause(0.2)
        last = app.of_type(JsonEditor.Validated)[-1]
        assert not last.ok and not editor.ok
        issue = last.issues[0]
        assert issue.rule == "json-syntax" and issue.line >= 2
        text = screen_text(app)
        assert f"{issue.line}:{issue.column}" in text and "[json-syntax]" in text
        assert "fix: fix the JSON syntax" in text and "✗ 1 error" in text
        assert editor.has_class("-invalid")
        await pilot.press('"')
        await pilot.pause(0.2)
        assert app.of_type(JsonEditor.Validated)[-1].ok
        assert not editor.has_class("-invalid")


async def test_validation_is_debounced() -> None:
    calls: list[str] = []

    def counting(text: str) -> list[IssueItem]:
        calls.append(text)
        return []

    app = editor_app(validator=counting, debounce=0.3)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        assert len(calls) == 1  # the initial check on mount
        area = app.query_one(JsonEditor).text_area
        area.focus()
        area.move_cursor((0, 1))
        await pilot.press("a", "b", "c")
        await pilot.pause(0.05)
        assert len(calls) == 1, "no validation while still typing"
        await pilot.pause(0.5)
        assert len(calls) == 2 and "abc" in calls[-1]


async def test_rule_issue_is_markup_safe_and_goto_issue_moves_cursor() -> None:
    text = '{\n  "[etcd]": 1,\n  "url": "u",\n  "project": ["a"]\n}\n'
    app = editor_app(text)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        editor = app.query_one(JsonEditor)
        assert [i.severity for i in editor.issues] == ["error", "warning"], "errors sorted first"
        shown = screen_text(app)
        assert "must be a comma-separated string [bold]" in shown
        assert "unknown key `[etcd]`" in shown and "! 1 warning" in shown
        editor.goto_issue(0)
        await pilot.pause()
        assert editor.text_area.cursor_location == (3, 2)
        assert app.focused is editor.text_area
        editor.goto_issue(1)
        assert editor.text_area.cursor_location == (1, 2)


async def test_f8_cycles_issues_and_escape_enter_jumps_from_the_list() -> None:
    text = '{\n  "[etcd]": 1,\n  "url": "u",\n  "project": ["a"]\n}\n'
    app = editor_app(text)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        editor = app.query_one(JsonEditor)
        editor.text_area.focus()
        await pilot.press("f8")
        assert editor.text_area.cursor_location == (3, 2)
        await pilot.press("f8")
        assert editor.text_area.cursor_location == (1, 2)
        await pilot.press("f8")
        assert editor.text_area.cursor_location == (3, 2), "wraps to the first issue"
        # Escape leaves the text for the issue list, where Enter jumps back to the issue.
        await pilot.press("escape")
        issues = app.query_one("#json-issues", OptionList)
        assert app.focused is issues
        await pilot.press("down", "enter")
        assert app.focused is editor.text_area
        assert editor.text_area.cursor_location == (1, 2)


async def test_goto_issue_clamps_positions_outside_the_text() -> None:
    app = editor_app(validator=lambda t: [IssueItem(99, 99, "past the end", rule="r", fix="")])
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        editor = app.query_one(JsonEditor)
        editor.goto_issue(0)
        last_line = editor.text_area.document.line_count - 1
        assert editor.text_area.cursor_location[0] == last_line


async def test_a_crashing_validator_becomes_an_issue_not_a_crash() -> None:
    def broken(text: str) -> list[IssueItem]:
        raise RuntimeError("boom")

    app = editor_app(validator=broken)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        editor = app.query_one(JsonEditor)
        assert not editor.ok and editor.issues[0].rule == "internal"
        assert "validator failed: RuntimeError: boom" in screen_text(app)


async def test_load_text_revalidates_and_text_property() -> None:
    app = editor_app()
    async with app.run_test(size=(80, 24), message_hook=lambda m: app.record(m)) as pilot:
        editor = app.query_one(JsonEditor)
        editor.load_text("{")
        await pilot.pause()
        assert editor.text == "{" and not editor.ok
        assert not app.of_type(JsonEditor.Validated)[-1].ok
        assert isinstance(editor.text_area, TextArea)


async def test_syntax_colours_follow_the_app_theme() -> None:
    app = editor_app()
    async with app.run_test(size=(80, 24)) as pilot:
        area = app.query_one(JsonEditor).text_area

        def string_colour() -> str:
            return area._theme.syntax_styles["string"].color.get_truecolor().hex.upper()

        assert area.theme == json_editor_module.THEME_NAME
        assert string_colour() == app.theme_variables["text-success"].upper()
        app.theme = "textual-light"
        await pilot.pause()
        assert string_colour() == app.theme_variables["text-success"].upper()


async def test_tab_moves_focus_and_inserts_nothing() -> None:
    """Tab leaves the editor as it leaves every other field (indent mode inserted spaces)."""
    app = editor_app(GOOD)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        editor = app.query_one(JsonEditor)
        editor.text_area.focus()
        await pilot.press("tab")
        await pilot.pause()
        assert app.focused is not editor.text_area and editor.text == GOOD
        await pilot.press("shift+tab")
        await pilot.pause()
        assert app.focused is editor.text_area
        await pilot.press("escape")                        # no issues: Escape moves on too
        await pilot.pause()
        assert app.focused is not editor.text_area and editor.text == GOOD
