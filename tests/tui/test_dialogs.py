"""The dialogs on their own (a harness app, no cluster): answers by keys, typed confirmation
refusing anything but the word, data shown verbatim (no markup)."""

from __future__ import annotations

from typing import Any

from textual.app import App

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
        assert app.results == [] and "that is not 'cleanup'" in str(app.screen.query_one("#typed-error").render())
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
