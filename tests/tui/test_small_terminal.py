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
from tui_support import SMALL, WizardFactory, fully_visible, open_at, screen_lines

from backends.replay import Recording
from tui.autopilot import wait_for, wait_idle
from tui.dialogs import ConfirmDialog, TypedConfirmDialog
from tui.screens.aliases import AliasesScreen
from widgets.change_table import ChangeTable
from widgets.checks import ChecksView
from widgets.editable_table import EditableTable
from widgets.pull_grid import PullGrid


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


async def test_connection_checks_and_what_to_do_are_on_screen(replay_wizard: WizardFactory,
                                                             replay_files: dict[str, Any]) -> None:
    """The start screen's verdict (each check, then Enter or the fix) at 80x24, when all is well
    and when manager.toml is broken (they were below the intro and the configuration)."""
    bad = replay_files["config"].with_name("broken.toml")
    bad.write_text("[etcd]\nnamespace = \"local\"\naddr = { host = \"127.0.0.1\", port = \n")
    for config, verdict in ((replay_files["config"], "Press Enter to begin"), (bad, "cannot start")):
        app = replay_wizard(config=str(config), dry_run=False)
        async with app.run_test(size=SMALL) as pilot:
            await wait_for(pilot, lambda: app.controller.probe_result is not None, "the checks")  # noqa: B023
            await wait_idle(pilot)
            await pilot.pause(0.2)
            checks = app.screen.query_one("#start-checks", ChecksView)
            assert checks.items and fully_visible(checks), config
            assert fully_visible(app.screen.query_one("#start-hint"))
            text = shown(pilot)
            assert verdict in text
            for item in checks.items:
                assert item.name in text
            if config == bad:
                assert not checks.all_ok and "manager.toml" in text
            await pilot.press("ctrl+q")


async def test_the_pull_grid_is_on_screen(replay_wizard: WizardFactory) -> None:
    """Pre-pull at 80x24: the agents x images grid, planned and then applied (it was under the
    plan's 27 rows, below the fold); it has the cursor, so the arrows move over its cells."""
    app = replay_wizard(replay=Recording(DRY_WALK, start_at="prepull"))
    async with app.run_test(size=SMALL) as pilot:
        await open_at(pilot, "prepull")
        grid = app.screen.query_one("#grid", PullGrid)
        assert fully_visible(grid) and fully_visible(app.screen.query_one("#grid-title"))
        assert app.focused is grid
        assert "27 queued" in shown(pilot) and "i-agent3" in shown(pilot)
        await pilot.press("a")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmDialog), "the apply confirmation")
        await pilot.press("y")
        await pilot.pause(0.1)
        await wait_idle(pilot)
        assert app.controller.status("prepull") == "verified"
        await pilot.pause(0.3)
        assert fully_visible(grid) and "27 skipped" in shown(pilot)     # a dry run pulls nothing
        await pilot.press("down")
        await pilot.pause(0.1)
        assert grid.cursor_row == 1 and "i-agent2" in str(app.screen.query_one("#cell-detail").render())
        await pilot.press("ctrl+q")
