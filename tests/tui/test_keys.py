"""Keys an operator can rely on at 80x24 over SSH and inside tmux: Back without tmux's prefix,
a help screen listing every key of the screen, the same editing rules in every field.
Replayed (tests/tui/recordings/dry-walk.jsonl): no services."""

from __future__ import annotations

from typing import Any

from conftest import DRY_WALK
from textual.widgets import Input
from tui_support import SMALL, WizardFactory, fully_visible, open_at, screen_lines

from backends.replay import Recording
from backends.statuses import Operation
from tui.autopilot import screen_step, wait_for, wait_idle
from tui.help import HelpScreen
from widgets.editable_table import EditableTable
from widgets.json_editor import JsonEditor


async def press_and_wait(pilot: Any, key: str, step: str) -> None:
    await pilot.press(key)
    await wait_for(pilot, lambda: screen_step(pilot) == step, f"{key} to show {step}")
    await wait_idle(pilot)


async def test_back_is_b_or_bracket_never_tmux_prefix(replay_wizard: WizardFactory) -> None:
    """ctrl+b is tmux's prefix: inside tmux it never reached the wizard. Back is `b` or `[`,
    next `ctrl+n` or `]`; while a text field has focus, `b` and `[` are typed, not obeyed."""
    app = replay_wizard(replay=Recording(DRY_WALK, start_at="aliases"))
    async with app.run_test(size=SMALL) as pilot:
        await open_at(pilot, "aliases")
        assert "b Back" in screen_lines(app)[-1]                       # the footer says so, at 80 columns
        await pilot.press("ctrl+b")
        await pilot.pause(0.1)
        assert screen_step(pilot) == "aliases"                          # no longer bound
        await press_and_wait(pilot, "b", "prepull")
        await press_and_wait(pilot, "left_square_bracket", "registry")
        await press_and_wait(pilot, "right_square_bracket", "prepull")
        await press_and_wait(pilot, "ctrl+n", "aliases")
        table = app.screen.query_one("#aliases", EditableTable)
        await pilot.press("enter", "end", "b", "left_square_bracket")  # typing in the edit box
        await pilot.pause(0.1)
        assert screen_step(pilot) == "aliases" and table.input.value.endswith("b[")
        await pilot.press("escape", "b")                                # out of the field: Back again
        await wait_for(pilot, lambda: screen_step(pilot) == "prepull", "b to go back")
        await pilot.press("ctrl+q")


async def test_help_lists_every_key_of_the_screen(replay_wizard: WizardFactory) -> None:
    """`?` and F1 open the keys of the current screen (the footer is cut at 80 columns), read
    from its active bindings: every key the footer offers, the greyed ones as "not now", the
    ones of the widget the cursor is in; Escape, `?` or F1 close it. In a text field `?` is
    typed, F1 still opens it, and it lists the field's keys, not the letters."""
    app = replay_wizard(replay=Recording(DRY_WALK, start_at="aliases"))
    async with app.run_test(size=SMALL) as pilot:
        await open_at(pilot, "aliases")
        step_screen = app.screen
        offered = {b.binding.description for b in step_screen.active_bindings.values()
                   if b.binding.description and not b.binding.system}
        await pilot.press("question_mark")
        await wait_for(pilot, lambda: isinstance(app.screen, HelpScreen), "the help screen")
        await pilot.pause(0.1)
        help_screen = app.screen
        assert isinstance(help_screen, HelpScreen)
        rows = {description: (keys, enabled) for keys, description, enabled in help_screen.rows()}
        assert offered <= set(rows), offered - set(rows)                  # every key, none left out
        assert rows["Back"] == ("b [", True) and rows["Next"] == ("ctrl+n ]", False)   # greyed: not done yet
        assert rows["Remove/keep alias"][0] == "d" and rows["Edit"][0] == "e" and rows["Quit"][0] == "ctrl+q"
        assert rows["Help"][0] == "? F1"
        assert [g.title for g in help_screen.groups][0] == "This screen" and help_screen.groups[-1].title == "Everywhere"
        box = help_screen.query_one("#help-body")
        assert fully_visible(box) and app.focused is box                 # fits 80x24; the arrows scroll it
        text = "\n".join(screen_lines(app))
        assert "Keys: Image aliases" in text and "(not now)" in text
        await pilot.press("end")
        await pilot.pause(0.1)
        assert box.scroll_y == box.max_scroll_y > 0
        assert "Enter (or e) on an alias" in "\n".join(screen_lines(app))   # the screen's own note, at the end
        for close, reopen in (("escape", "f1"), ("question_mark", "f1"), ("f1", None)):
            await pilot.press(close)
            await wait_for(pilot, lambda: app.screen is step_screen, f"{close} to close the help")
            if reopen:
                await pilot.press(reopen)
                await wait_for(pilot, lambda: isinstance(app.screen, HelpScreen), f"{reopen} to open it")

        table = step_screen.query_one("#aliases", EditableTable)
        await pilot.press("enter", "end", "question_mark")               # in the edit field: ? is a character
        await pilot.pause(0.1)
        assert app.screen is step_screen and table.input.value.endswith("?")
        await pilot.press("f1")
        await wait_for(pilot, lambda: isinstance(app.screen, HelpScreen), "F1 to open the help from a field")
        rows = {description: keys for keys, description, _ in app.screen.rows()}
        assert rows["Cancel edit"] == "esc" and rows["Help"] == "F1" and "Back" not in rows and "Plan" not in rows
        await pilot.press("escape")
        await wait_for(pilot, lambda: app.screen is step_screen, "the help to close")
        assert table.editing == "julia"                                   # the edit was left as it was
        await pilot.press("ctrl+q")


async def test_help_on_the_start_screen(replay_wizard: WizardFactory) -> None:
    app = replay_wizard()
    async with app.run_test(size=SMALL) as pilot:
        await wait_for(pilot, lambda: app.controller.probe_result is not None, "the checks")
        await wait_idle(pilot)
        await pilot.press("question_mark")
        await wait_for(pilot, lambda: isinstance(app.screen, HelpScreen), "the help screen")
        assert "Keys: Start" in "\n".join(screen_lines(app))
        rows = {description: keys for keys, description, _ in app.screen.rows()}
        assert rows["Begin"] == "⏎ ctrl+n" and rows["Check again"] == "ctrl+r" and rows["Quit"] == "ctrl+q"
        await pilot.press("escape")
        await pilot.pause(0.1)
        assert not isinstance(app.screen, HelpScreen)
        await pilot.press("ctrl+q")


async def test_fields_edit_alike_typing_appends_tab_and_escape_leave(replay_wizard: WizardFactory) -> None:
    """The announcement selected all its text on focus, so the first key typed wiped it; Tab
    in the registry JSON inserted spaces. Now every field appends where the cursor is, and Tab
    or Esc leaves it, after which letter keys act again."""
    app = replay_wizard(replay=Recording(DRY_WALK, start_at="maintenance"))
    async with app.run_test(size=SMALL) as pilot:
        await open_at(pilot, "maintenance")
        screen = app.screen
        field = screen.query_one("#announcement", Input)
        before = field.value
        assert before
        await pilot.press("e", *" Back at 14:00.")
        await pilot.pause(0.1)
        assert app.focused is field and field.value == before + " Back at 14:00."
        assert screen.check_action("plan", ()) is False                    # p is typed here, not obeyed
        await pilot.press("escape")
        await pilot.pause(0.1)
        assert not isinstance(app.focused, Input) and screen.check_action("plan", ()) is True
        await pilot.press("ctrl+q")

    app = replay_wizard(replay=Recording(DRY_WALK, start_at="registry"))
    async with app.run_test(size=SMALL) as pilot:
        await open_at(pilot, "registry")
        screen = app.screen
        editor = screen.query_one("#editor", JsonEditor)
        text = editor.text
        await pilot.press("e")
        await pilot.pause(0.1)
        assert app.focused is editor.text_area
        await pilot.press("tab")
        await pilot.pause(0.1)
        assert app.focused is not editor.text_area and editor.text == text   # left, nothing inserted
        assert screen.check_action("apply", ()) is True
        await pilot.press("e")
        await pilot.pause(0.1)
        assert app.focused is editor.text_area
        await pilot.press("escape")
        await pilot.pause(0.1)
        assert app.focused is not editor.text_area and screen.check_action("apply", ()) is True
        await pilot.press("ctrl+q")


async def test_verify_again_is_offered_on_a_verified_step(replay_wizard: WizardFactory) -> None:
    """The cluster can change after a step was verified: v reads it back again there too."""
    app = replay_wizard(replay=Recording(DRY_WALK, start_at="aliases"))
    async with app.run_test(size=SMALL) as pilot:
        await open_at(pilot, "aliases")
        await press_and_wait(pilot, "b", "prepull")
        screen = app.screen
        assert app.controller.status("prepull") == "verified"
        assert screen.check_action("verify", ()) is True and "v Verify" in screen_lines(app)[-1]
        asked: list[tuple[str, str]] = []
        # what v starts, without asking the recording for a verify it never made
        app.controller.run = lambda step, op: asked.append((step, op)) or True   # type: ignore[method-assign]
        await pilot.press("v")
        await pilot.pause(0.1)
        assert asked == [("prepull", Operation.VERIFY)]
        await pilot.press("ctrl+q")


async def test_e_on_an_applied_registry_step_says_why_instead_of_a_dead_editor(replay_wizard: WizardFactory) -> None:
    """Applied, the registry JSON is read-only: e used to put the cursor in an editor that
    ignored every key. Now it says why, and how to edit again; the letter keys stay usable."""
    app = replay_wizard(replay=Recording(DRY_WALK, start_at="aliases"))
    async with app.run_test(size=SMALL, notifications=True) as pilot:
        await open_at(pilot, "aliases")
        await press_and_wait(pilot, "b", "prepull")
        await press_and_wait(pilot, "b", "registry")
        screen = app.screen
        editor = screen.query_one("#editor", JsonEditor)
        assert app.controller.status("registry") == "verified" and editor.text_area.read_only
        await pilot.press("e")
        await pilot.pause(0.3)
        assert app.focused is not editor.text_area
        messages = [n.message for n in app._notifications]
        assert messages == ["the registry step is verified; roll it back (x) to edit the JSON"]
        toast = "\n".join(screen_lines(app))                                 # on screen at 80x24, wrapped
        assert "the registry step is verified; roll" in toast and "it back (x) to edit the JSON" in toast
        editor.text_area.focus()                                            # reached by Tab: read-only,
        await pilot.pause(0.1)
        assert screen.check_action("verify", ()) is True                    # so letters still act
        await pilot.press("ctrl+q")
