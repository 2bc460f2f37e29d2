"""The registry JSON editor: a broken document shows the error where it is (line:column, rule,
fix), greys Apply and Next, and nothing reaches etcd; fixing it gives them back."""

from __future__ import annotations

import asyncio

import pytest
from tui_support import SIZE, WizardFactory, etcd_namespace

from backends.sandbox.layout import SandboxInfo
from tui.autopilot import apply_current, begin, screen_step, wait_for, wait_idle, walk
from tui.dialogs import ConfirmDialog, ErrorDialog
from tui.screens.registry import RegistryScreen
from widgets.json_editor import JsonEditor

pytestmark = [pytest.mark.docker]   # the agents are the sandbox's Docker daemons (root)


async def settle(pilot, editor: JsonEditor, text_before: str | None = None) -> None:  # type: ignore[no-untyped-def]
    await pilot.pause(0.3)   # the editor validates 150 ms after the last key
    await wait_idle(pilot)


async def test_broken_json_is_shown_where_it_is_and_blocks_apply(wizard: WizardFactory,
                                                                 fresh_sandbox: SandboxInfo) -> None:
    app = wizard()
    async with app.run_test(size=SIZE) as pilot:
        await begin(pilot)
        await walk(pilot, until="registry")
        screen = app.screen
        assert isinstance(screen, RegistryScreen)
        assert app.controller.status("registry") == "planned"
        assert screen.check_action("apply", ()) is True
        before = await etcd_namespace(fresh_sandbox)
        original = app.controller.cluster().plan.registry_json
        editor = screen.query_one("#editor", JsonEditor)
        assert '"password": "***"' in editor.text                 # the secret is not on screen
        assert fresh_sandbox.creds.harbor_password not in editor.text

        # e puts the cursor in the editor; line 6 is `"": "http://127.0.0.1:PORT",`: drop its comma
        await pilot.press("e")
        await pilot.press(*["down"] * 5, "end", "backspace")
        await settle(pilot, editor)
        assert not editor.ok
        err = editor.issues[0]
        assert (err.line, err.severity, err.rule) == (7, "error", "JSON syntax")
        assert "7:" in str(editor.query_one("#json-issues").get_option_at_index(0).prompt)
        assert screen.check_action("apply", ()) is False          # letters are hidden while typing
        await pilot.press("escape")                               # leave the editor: greyed, not hidden
        assert screen.check_action("apply", ()) is None and screen.check_action("next", ()) is None
        await pilot.press("a", "ctrl+n")                          # and pressing them does nothing
        await pilot.pause(0.2)
        assert app.screen is screen and not isinstance(app.screen, ConfirmDialog)

        # a rule error: the comma back, an unsupported registry type
        await pilot.press("e")
        # (typed so that no state in between is valid: a valid one would be adopted into the plan)
        await pilot.press(",", "down", "end", *["left"] * 2, "3", "left", "backspace")
        await settle(pilot, editor)
        assert '"type": "harbor3"' in editor.text
        rules = [(i.line, i.rule) for i in editor.issues if i.severity == "error"]
        assert rules == [(7, "type ∈ {docker, harbor, harbor2}")]
        assert "harbor2" in editor.issues[0].fix
        await pilot.press("escape")
        assert screen.check_action("apply", ()) is None
        await pilot.press("e")
        assert app.controller.cluster().plan.registry_json == original   # the plan never took it
        assert await etcd_namespace(fresh_sandbox) == before             # and nothing was written

        # fixed: Apply comes back (the text is the planned one again, so the plan is not stale)
        await pilot.press("2", "right", "backspace")
        await settle(pilot, editor)
        assert editor.ok
        assert app.controller.cluster().plan.registry_json == original
        assert not app.controller.stale("registry")
        await pilot.press("escape")
        assert screen.check_action("apply", ()) is True
        # maintenance froze new sessions: quitting says so and asks
        await pilot.press("ctrl+q")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmDialog), "the quit confirmation")
        assert app.screen.title_text == "Quit with new sessions frozen?"   # type: ignore[attr-defined]
        await pilot.press("y")
        for _ in range(200):
            if app.return_code is not None:
                break
            await asyncio.sleep(0.05)
        assert app.return_code == 0
    assert await etcd_namespace(fresh_sandbox) == before


async def test_valid_edit_makes_the_plan_stale_until_replanned(wizard: WizardFactory,
                                                               fresh_sandbox: SandboxInfo) -> None:
    app = wizard()
    async with app.run_test(size=SIZE) as pilot:
        await begin(pilot)
        await walk(pilot, until="registry")
        screen = app.screen
        editor = screen.query_one("#editor", JsonEditor)
        # "project": "stable,community" -> "stable": a valid document with a different plan
        await pilot.press("e", *["down"] * 7, "end", *["left"] * 2)
        await pilot.press(*["backspace"] * len(",community"))
        await settle(pilot, editor)
        assert editor.ok and '"project": "stable"' in editor.text
        assert app.controller.stale("registry")
        await pilot.press("escape")
        assert screen.check_action("apply", ()) is None
        state = str(screen.query_one("#step-state").render())
        assert "press p" in state
        await pilot.press("p")
        await wait_for(pilot, lambda: not app.controller.stale("registry"), "the new plan")
        await wait_idle(pilot)
        plan = app.controller.plan_of("registry")
        assert plan is not None
        assert plan.data["config_puts"]["config/docker/registry/cr.backend.ai/project"] == "stable"
        assert all("/community/" not in img for img in plan.data["images"])
        # the real password went into the plan, not the mask
        assert plan.data["config_puts"]["config/docker/registry/cr.backend.ai/password"] == \
            fresh_sandbox.creds.harbor_password
        assert screen.check_action("apply", ()) is True
        assert screen_step(pilot) == "registry"
        await pilot.press("ctrl+q")


async def test_failed_apply_shows_the_error_and_fix_and_writes_nothing(wizard: WizardFactory,
                                                                      fresh_sandbox: SandboxInfo) -> None:
    app = wizard()
    async with app.run_test(size=SIZE) as pilot:
        await begin(pilot)
        await walk(pilot, until="registry")
        before = await etcd_namespace(fresh_sandbox)
        (fresh_sandbox.path / "manager.fail-stop").write_text("")   # the sandbox's fault switch
        try:
            await pilot.press("a")
            await wait_for(pilot, lambda: isinstance(app.screen, ConfirmDialog), "the confirmation")
            await pilot.press("y")
            await wait_for(pilot, lambda: isinstance(app.screen, ErrorDialog)
                           and bool(app.screen.query(".dialog-line")), "the error dialog, composed")
        finally:
            (fresh_sandbox.path / "manager.fail-stop").unlink()
        dialog = app.screen
        assert "applying failed" in dialog.title_text                                  # type: ignore[attr-defined]
        lines = [str(w.render()) for w in dialog.query(".dialog-line")]
        assert "stop" in lines[0] and lines[1].startswith("Fix: ")                   # message, then the fix
        assert dialog.one_line == f"{lines[0]}; fix: {lines[1][5:]}"               # type: ignore[attr-defined]
        await pilot.press("enter")
        await wait_idle(pilot)
        assert app.controller.status("registry") == "failed"
        state = str(app.screen.query_one("#step-state").render())
        assert "failed" in state
        assert await etcd_namespace(fresh_sandbox) == before
        # the cause is gone: apply again (same plan) succeeds
        assert app.screen.check_action("apply", ()) is True
        assert await apply_current(pilot) == "verified"
        await pilot.press("ctrl+q")
