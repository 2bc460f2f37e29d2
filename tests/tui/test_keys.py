"""Keys an operator can rely on at 80x24 over SSH and inside tmux: Back without tmux's prefix,
a help screen listing every key of the screen, the same editing rules in every field.
Replayed (tests/tui/recordings/dry-walk.jsonl): no services."""

from __future__ import annotations

from typing import Any

from conftest import DRY_WALK
from tui_support import WizardFactory, screen_lines

from backends.replay import Recording
from tui.autopilot import begin, screen_step, wait_for, wait_idle, walk
from widgets.editable_table import EditableTable

SMALL = (80, 24)


async def open_at(pilot: Any, step: str) -> None:
    await begin(pilot)
    await walk(pilot, until=step)
    await wait_idle(pilot)
    await pilot.pause(0.1)


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
