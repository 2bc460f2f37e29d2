"""The dialogs on their own (a harness app, no cluster): answers by keys, typed confirmation
refusing anything but the word, data shown verbatim (no markup)."""

from __future__ import annotations

from typing import Any

from textual.app import App
from tui_support import fully_visible

from tui.dialogs import ConfirmDialog, ErrorDialog, ResumeDialog, TypedConfirmDialog


class Harness(App[None]):
    def __init__(self, dialog: Any) -> None:
        super().__init__()
        self.dialog = dialog
        self.results: list[object] = []

    def on_mount(self) -> None:
        self.push_screen(self.dialog, self.results.append)


async def test_typed_confirmation_needs_the_exact_word() -> None:
    app = Harness(TypedConfirmDialog("Apply cleanup?", ["deletes [bold]keys[/]"], "cleanup"))
    async with app.run_test() as pilot:
        assert "[bold]keys[/]" in str(app.screen.query(".dialog-line").first().render())
        await pilot.press(*"clean", "enter")
        await pilot.pause()
        assert app.results == [] and "type cleanup to confirm; you typed clean" in str(
            app.screen.query_one("#typed-error").render())
        await pilot.press("ctrl+u", *"cleanup", "enter")
        await pilot.pause()
    assert app.results == [True]


async def test_typed_confirmation_escape_cancels() -> None:
    app = Harness(TypedConfirmDialog("Apply agent-cleanup?", [], "agent-cleanup"))
    async with app.run_test() as pilot:
        await pilot.press("escape")
        await pilot.pause()
    assert app.results == [False]


async def test_confirm_keys() -> None:
    for key, want in (("y", True), ("enter", True), ("n", False), ("escape", False)):
        app = Harness(ConfirmDialog("Apply?", ["x"]))
        async with app.run_test() as pilot:
            await pilot.press(key)
            await pilot.pause()
        assert app.results == [want], key


async def test_resume_choices() -> None:
    from pathlib import Path

    for key, want in (("r", "resume"), ("n", "fresh"), ("escape", "cancel")):
        app = Harness(ResumeDialog("run x", Path("/tmp/state.json")))
        async with app.run_test() as pilot:
            await pilot.press(key)
            await pilot.pause()
        assert app.results == [want], key


async def test_error_dialog_shows_message_and_fix() -> None:
    app = Harness(ErrorDialog("Registry: applying failed", "the manager stop failed", "see [manager]"))
    async with app.run_test() as pilot:
        lines = [str(w.render()) for w in app.screen.query(".dialog-line")]
        assert lines == ["the manager stop failed", "Fix: see [manager]"]
        assert app.screen.one_line == "the manager stop failed; fix: see [manager]"  # type: ignore[attr-defined]
        await pilot.press("enter")
        await pilot.pause()
    assert app.results == [None]


async def test_a_long_dialog_fits_80x24_its_lines_scroll_and_the_answer_stays() -> None:
    """More lines than 80x24 holds: the box stays inside the terminal, its lines scroll (↓,
    PgDn, also while typing) and the input with its feedback never leaves the box."""
    lines = [f"change {i}: delete etcd key images/index.docker.io/lablup/python/{i}" for i in range(30)]
    app = Harness(TypedConfirmDialog("Apply agent cleanup?", lines, "agent-cleanup"))
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        box = app.screen.query_one(".dialog")
        typed, error = app.screen.query_one("#typed"), app.screen.query_one("#typed-error")
        assert fully_visible(box) and fully_visible(typed) and fully_visible(app.screen.query_one("#typed-prompt"))
        assert box.max_scroll_y > 0 and app.focused is typed
        await pilot.press("pagedown", "down")
        await pilot.pause()
        assert box.scroll_y > 0 and fully_visible(typed)
        await pilot.press(*"agent-clean", "enter")
        await pilot.pause()
        assert fully_visible(error) and "you typed agent-clean" in str(error.render())
        await pilot.press("end", "u", "p", "enter")              # agent-clean + up
        await pilot.pause()
    assert app.results == [True]

    app = Harness(ConfirmDialog("Apply?", lines))
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        box = app.screen.query_one(".dialog")
        assert fully_visible(box) and box.max_scroll_y > 0
        await pilot.press("end")
        await pilot.pause()
        assert box.scroll_y == box.max_scroll_y
        await pilot.press("y")
        await pilot.pause()
    assert app.results == [True]
