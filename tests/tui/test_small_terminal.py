"""The wizard at 80x24, the smallest terminal an operator uses over SSH (often inside tmux):
every refusal, confirmation and live view must be on screen there, not merely somewhere in the
layout. Replayed (tests/tui/recordings/dry-walk.jsonl): no services.

"On screen" is checked twice: the widget's whole region is inside the terminal and not
clipped by a container (`fully_visible`), and its words are in what the terminal shows
(`screen_lines`).
"""

from __future__ import annotations

from typing import Any

from conftest import DRY_WALK
from textual.widgets import DataTable, Input, Static
from tui_support import WizardFactory, fully_visible, screen_lines

from backends.replay import Recording
from tui.autopilot import begin, wait_for, wait_idle, walk
from tui.dialogs import TypedConfirmDialog
from tui.screens.aliases import AliasesScreen
from widgets.change_table import ChangeTable
from widgets.editable_table import EditableTable

SMALL = (80, 24)


async def open_at(pilot: Any, step: str) -> None:
    await begin(pilot)
    await walk(pilot, until=step)
    await wait_idle(pilot)
    await pilot.pause(0.2)


def shown(pilot: Any) -> str:
    return "\n".join(screen_lines(pilot.app))


async def test_a_refused_alias_target_is_on_screen(replay_wizard: WizardFactory) -> None:
    """Enter on a target that is not in the rescanned metadata: the reason and the closest
    image are read at 80x24 (they were below the fold, and Enter seemed to do nothing)."""
    app = replay_wizard(replay=Recording(DRY_WALK, start_at="aliases"))
    async with app.run_test(size=SMALL) as pilot:
        await open_at(pilot, "aliases")
        assert isinstance(app.screen, AliasesScreen)
        table = app.screen.query_one("#aliases", EditableTable)
        await pilot.press("enter", "ctrl+u", *"cr.backend.ai/community/julia:9.9", "enter")
        await pilot.pause(0.3)
        assert table.editing == "julia"                                    # refused: still editing
        error = table.query_one("#edit-error", Static)
        assert "closest: cr.backend.ai/community/julia:1.5-ubuntu20.04" in str(error.render())
        assert fully_visible(error) and fully_visible(table.input)
        text = shown(pilot)
        assert "is not in" in text and "closest:" in text and "julia:1.5-ubuntu20.04" in text
        assert fully_visible(table.table) and table.table.cursor_row == 0   # the row being edited stays in sight
        await pilot.press("escape")
        await pilot.pause(0.1)
        assert table.editing is None
        await pilot.press("ctrl+q")


async def test_the_typed_confirmation_is_whole_and_answers_a_typo(replay_wizard: WizardFactory) -> None:
    """Cleanup deletes Docker Hub's metadata: the operator types its name. At 80x24 the box
    was cut to the input's top border. Now the prompt, what was typed and the answer to a typo
    are all on screen, and the right word applies. (Not a dry run for the wizard, so the
    typed confirmation is asked; the replayed engine writes nothing anyway.)"""
    app = replay_wizard(replay=Recording(DRY_WALK, start_at="cleanup"), dry_run=False)
    async with app.run_test(size=SMALL) as pilot:
        await open_at(pilot, "cleanup")
        assert app.controller.status("cleanup") == "blocked"              # the gate, as recorded
        await pilot.press("p")                                            # sessions ended: plan again
        await pilot.pause(0.1)
        await wait_idle(pilot)
        await pilot.press("a")
        await wait_for(pilot, lambda: isinstance(app.screen, TypedConfirmDialog), "the typed confirmation")
        dialog = app.screen
        await pilot.pause(0.2)
        typed = dialog.query_one("#typed", Input)
        assert app.focused is typed
        await pilot.press(*"clenaup", "enter")
        await pilot.pause(0.2)
        assert app.screen is dialog                                      # a typo confirms nothing
        prompt, error = dialog.query_one("#typed-prompt", Static), dialog.query_one("#typed-error", Static)
        for widget in (prompt, typed, error):
            assert fully_visible(widget), widget
        text = shown(pilot)
        assert "Type cleanup and press Enter to confirm" in text
        assert "clenaup" in typed.value and "type cleanup to confirm; you typed clenaup" in text
        assert "Nothing was" in text
        await pilot.press("ctrl+u", *"cleanup", "enter")
        await pilot.pause(0.1)
        await wait_idle(pilot)
        assert app.screen is not dialog
        assert app.controller.status("cleanup") == "verified"
        await pilot.press("ctrl+q")


async def test_plan_rows_read_differently(replay_wizard: WizardFactory) -> None:
    """The registry plan's keys share `etcd config/docker/registry/cr.backend.ai`: each row must
    still say which key it writes at 80x24 (they read `etcd config/docke…` five times)."""
    app = replay_wizard(replay=Recording(DRY_WALK, start_at="registry"))
    async with app.run_test(size=SMALL) as pilot:
        await open_at(pilot, "registry")
        table = app.screen.query_one("#changes", ChangeTable)
        rows = table.query_one(DataTable)
        targets = [str(rows.get_row_at(r)[0]) for r in range(rows.row_count)]
        # one cell per distinct target (the manager is stopped and started: two rows, one target)
        assert len(set(targets)) == len({i.target for i in table.items}) == 7, targets
        for key in ("/type", "/project", "/username", "/password"):
            assert any(t.startswith("etcd …") and t.endswith(key) for t in targets), (key, targets)
        text = shown(pilot)
        assert any(t in text for t in targets if t.endswith("/cr.backend.ai"))   # on screen, not only in data
        assert rows.virtual_size.width <= rows.size.width                        # no column under a scrollbar
        await pilot.press("ctrl+q")
