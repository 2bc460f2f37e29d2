"""The aliases table: a target that is not in the rescanned metadata is refused in the table
with the reason, and nothing changes (replayed: no services); a valid one becomes an override
and is what gets written (live, on the sandbox)."""

from __future__ import annotations

import pytest
from conftest import DRY_WALK
from tui_support import SIZE, WizardFactory, etcd_namespace

from backends.replay import Recording
from backends.sandbox.layout import SandboxInfo
from tui.autopilot import apply_current, begin, next_step, screen_step, wait_for, wait_idle, walk
from tui.dialogs import ConfirmDialog
from tui.screens.aliases import AliasesScreen
from widgets.editable_table import EditableTable


async def to_aliases(pilot) -> None:  # type: ignore[no-untyped-def]
    """Preflight, maintenance and registry applied; pre-pull skipped (s) to save the pulls."""
    await begin(pilot)
    await walk(pilot, until="prepull")
    await pilot.press("s")
    await wait_for(pilot, lambda: isinstance(pilot.app.screen, ConfirmDialog), "the skip confirmation")
    await pilot.press("y")
    await wait_idle(pilot)
    assert pilot.app.controller.status("prepull") == "skipped"
    assert await next_step(pilot) == "aliases"


async def test_unknown_target_is_refused_and_nothing_changes(replay_wizard: WizardFactory) -> None:
    """Replayed (no services): what is checked is the wizard and the aliases step's own rules;
    a refused edit reaches neither the plan file, nor the plan, nor the engine (no call is
    made: the recording's next aliases calls are all still there)."""
    app = replay_wizard(replay=Recording(DRY_WALK, start_at="aliases"))
    async with app.run_test(size=SIZE) as pilot:
        await begin(pilot)
        await walk(pilot, until="aliases")
        screen = app.screen
        assert isinstance(screen, AliasesScreen)
        table = screen.query_one("#aliases", EditableTable)
        assert table.cursor_row_id == "julia"
        engine = app.controller.engine
        calls_before = {k: len(v) for k, v in engine.recording.calls.items()}   # type: ignore[union-attr]
        plan_before = app.controller.plan_of("aliases").to_json()
        overrides_before = dict(app.controller.cluster().plan.aliases.overrides)
        proposed_before = table.row("julia")["proposed"]
        assert proposed_before == "cr.backend.ai/community/julia:1.5-ubuntu20.04"

        # Enter edits the proposed target; ctrl+u clears the input; a tag that does not exist
        await pilot.press("enter", "ctrl+u", *"cr.backend.ai/community/julia:9.9", "enter")
        await pilot.pause(0.2)
        assert table.editing == "julia"                       # still editing: refused
        error = str(table.query_one("#edit-error").render())
        assert "cr.backend.ai/community/julia:9.9 is not in cr.backend.ai's rescanned metadata" in error
        assert "closest: cr.backend.ai/community/julia:1.5-ubuntu20.04" in error
        # an image of another registry is refused too, with its own reason
        await pilot.press("ctrl+u", *"index.docker.io/lablup/julia:1.5-ubuntu20.04", "enter")
        await pilot.pause(0.2)
        assert "is on index.docker.io, not cr.backend.ai" in str(table.query_one("#edit-error").render())
        await pilot.press("escape")                           # cancel
        await pilot.pause(0.1)
        assert table.editing is None
        assert table.row("julia")["proposed"] == proposed_before
        assert app.controller.cluster().plan.aliases.overrides == overrides_before
        assert app.controller.plan_of("aliases").to_json() == plan_before
        assert not app.controller.stale("aliases")
        assert {k: len(v) for k, v in engine.recording.calls.items()} == calls_before   # type: ignore[union-attr]
        await pilot.press("ctrl+q")


@pytest.mark.docker   # the agents are the sandbox's Docker daemons (root)
async def test_valid_target_becomes_an_override_and_is_written(wizard: WizardFactory,
                                                               fresh_sandbox: SandboxInfo) -> None:
    app = wizard()
    async with app.run_test(size=SIZE) as pilot:
        await to_aliases(pilot)
        screen = app.screen
        table = screen.query_one("#aliases", EditableTable)
        new = "cr.backend.ai/stable/python:3.9-ubuntu20.04"
        await pilot.press("e", "ctrl+u", *new, "enter")
        await pilot.pause(0.1)
        await wait_idle(pilot)
        assert table.editing is None
        assert app.controller.cluster().plan.aliases.overrides == {"julia": new}
        rows = {r["alias"]: r for r in app.controller.plan_of("aliases").data["rows"]}
        assert rows["julia"]["status"] == "override" and rows["julia"]["proposed"] == new
        assert (await etcd_namespace(fresh_sandbox))["images/_aliases/julia"] == "julia:1.5-ubuntu20.04"
        assert await apply_current(pilot) == "verified"
        assert (await etcd_namespace(fresh_sandbox))["images/_aliases/julia"] == new
        # d on a row marks it for removal; the step is applied, so the table refuses edits now
        assert screen.check_action("toggle_remove", ()) is False
        assert screen_step(pilot) == "aliases"
        await pilot.press("ctrl+q")
