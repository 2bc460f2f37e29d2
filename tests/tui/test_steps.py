"""Pilot tests for the step screens against the real sandbox: what each shows, what its keys do,
and what reaches the cluster (read back without the wizard)."""

from __future__ import annotations

from pathlib import Path

import pytest
from tui_support import SIZE, WizardFactory, agent_images, domains, etcd_namespace

from backends.sandbox.layout import SandboxInfo
from backends.transcript import read_jsonl
from tui.autopilot import apply_current, begin, next_step, screen_step, wait_for, wait_idle, walk
from tui.dialogs import ConfirmDialog, ExportDialog
from tui.screens.allowlists import AllowlistsScreen
from tui.screens.transcript import TranscriptScreen
from widgets.change_table import ChangeTable
from widgets.checks import ChecksView
from widgets.editable_table import EditableTable
from widgets.findings import FindingsView
from widgets.pull_grid import PullGrid
from widgets.step_list import StepList
from widgets.transcript_view import TranscriptView

pytestmark = [pytest.mark.docker]   # the agents are the sandbox's Docker daemons (root)


async def skip_current(pilot) -> None:  # type: ignore[no-untyped-def]
    await pilot.press("s")
    await wait_for(pilot, lambda: isinstance(pilot.app.screen, ConfirmDialog), "the skip confirmation")
    await pilot.press("y")
    await wait_idle(pilot)


async def test_preflight_findings_plan_apply_and_backup(wizard: WizardFactory, fresh_sandbox: SandboxInfo,
                                                        tmp_path: Path) -> None:
    app = wizard()
    async with app.run_test(size=SIZE) as pilot:
        await begin(pilot)
        screen = app.screen
        assert screen_step(pilot) == "preflight" and app.controller.status("preflight") == "planned"
        codes = {f.code for f in screen.query_one("#findings", FindingsView).items}
        assert {"manager-version", "version-gate", "storage-era", "credentials", "agent", "live-sessions"} <= codes
        changes = screen.query_one("#changes", ChangeTable).items
        assert [c.action for c in changes] == ["backup"]
        assert screen.check_action("next", ()) is None        # not done yet: greyed
        assert screen.check_action("skip", ()) is False       # preflight cannot be skipped
        steps = screen.query_one("#steps", StepList)
        assert steps.current == "preflight" and steps.status_of("preflight") == "planned"
        assert await apply_current(pilot) == "verified"
        checks = screen.query_one("#checks", ChecksView).items
        assert checks and all(c.ok for c in checks)
        assert steps.status_of("preflight") == "verified"
        assert screen.check_action("next", ()) is True
        assert screen.check_action("rollback", ()) is False   # not reversible
        await pilot.press("ctrl+q")
    backups = list((tmp_path / "state" / "backups").glob("*/etcd-namespace.json"))
    assert len(backups) == 1
    assert fresh_sandbox.creds.etcd_password not in backups[0].read_text()


async def test_maintenance_edit_apply_and_roll_back(wizard: WizardFactory, fresh_sandbox: SandboxInfo) -> None:
    app = wizard()
    async with app.run_test(size=SIZE) as pilot:
        await begin(pilot)
        await walk(pilot, until="maintenance")
        screen = app.screen
        await pilot.press("e", "ctrl+u", *"Registry move: back at 14:00", "enter")
        await pilot.pause(0.1)
        await wait_idle(pilot)
        plan = app.controller.plan_of("maintenance")
        assert plan is not None and plan.data["after"]["manager/announcement"] == "Registry move: back at 14:00"
        assert not app.controller.stale("maintenance")
        assert (await etcd_namespace(fresh_sandbox)).get("manager/status") != "frozen"
        assert await apply_current(pilot) == "verified"
        ns = await etcd_namespace(fresh_sandbox)
        assert ns["manager/status"] == "frozen" and ns["manager/announcement"] == "Registry move: back at 14:00"
        assert screen.check_action("rollback", ()) is True
        await pilot.press("x")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmDialog), "the rollback confirmation")
        await pilot.press("y")
        await pilot.pause(0.1)
        await wait_idle(pilot)
        assert app.controller.status("maintenance") == "rolled-back"
        ns = await etcd_namespace(fresh_sandbox)
        assert "manager/announcement" not in ns and ns.get("manager/status") != "frozen"
        assert screen.check_action("next", ()) is None
        await pilot.press("ctrl+q")


async def test_prepull_grid_pause_quit_confirmation_and_resume(wizard: WizardFactory,
                                                               fresh_sandbox: SandboxInfo, tmp_path: Path) -> None:
    text = fresh_sandbox.plan_toml.read_text().replace("concurrency = 6", "concurrency = 1") \
        .replace("concurrency_per_agent = 2", "concurrency_per_agent = 1")
    plan = tmp_path / "plan.toml"
    plan.write_text(text)
    app = wizard(plan_path=str(plan))
    async with app.run_test(size=SIZE) as pilot:
        await begin(pilot)
        await walk(pilot, until="prepull")
        screen = app.screen
        grid = screen.query_one("#grid", PullGrid)
        assert grid.agents == ["i-agent1", "i-agent2", "i-agent3"] and len(grid.images) == 9
        assert set(grid.snapshot().values()) == {"queued"}
        await pilot.press("a")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmDialog), "the apply confirmation")
        await pilot.press("y")
        await wait_for(pilot, lambda: "done" in grid.snapshot().values(), "the first pull in the grid")
        await pilot.press("ctrl+q")                           # a step is running: quitting asks first
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmDialog), "the quit confirmation")
        await pilot.press("n")                                # no: stay
        await pilot.pause(0.1)
        assert app.screen is screen
        if app.controller.busy.get("prepull"):
            await pilot.press("ctrl+p")                       # pause
            await wait_idle(pilot)
            # The last pulls may finish before the pause lands (then there is nothing to resume);
            # test_resume.py pauses right after the first pull and asserts the paused state.
            assert app.controller.status("prepull") in ("applying", "applied", "verified")
            if app.controller.status("prepull") == "applying":
                await pilot.press("a")                        # resume the confirmed plan
                await pilot.pause(0.1)
            elif app.controller.status("prepull") == "applied":
                await pilot.press("v")                        # the pause stopped it before its verification
                await pilot.pause(0.1)
        await wait_idle(pilot)
        assert app.controller.status("prepull") == "verified"
        assert set(grid.snapshot().values()) == {"done"}
        assert grid.counts().get("done") == 27
        assert screen.check_action("retry", ()) is False      # nothing failed
        await pilot.press("ctrl+q")
    images = await agent_images(fresh_sandbox)
    assert all("cr.backend.ai/stable/python:3.9-ubuntu20.04" in tags for tags in images.values())


async def test_prepull_failed_cells_are_retried_once_the_registry_is_fixed(wizard: WizardFactory,
                                                                           fresh_sandbox: SandboxInfo,
                                                                           tmp_path: Path) -> None:
    """A tag missing from Harbor fails its cells on every agent (with the registry's error) and
    the others finish; once the tag is back, r redoes the failed cells only."""
    plan = tmp_path / "plan.toml"
    plan.write_text(fresh_sandbox.plan_toml.read_text().replace("retries = 3", "retries = 1"))
    tags = (fresh_sandbox.path / "harbor-upstream" / "data" / "docker" / "registry" / "v2" / "repositories"
            / "stable" / "r-base" / "_manifests" / "tags")
    app = wizard(plan_path=str(plan))
    async with app.run_test(size=SIZE) as pilot:
        await begin(pilot)
        await walk(pilot, until="prepull")
        screen = app.screen
        grid = screen.query_one("#grid", PullGrid)
        missing = "cr.backend.ai/stable/r-base:4.0"
        assert missing in grid.images
        (tags / "4.0").rename(tmp_path / "r-base-4.0")          # the tag disappears from the registry
        try:
            assert await apply_current(pilot) == "failed"
            cells = grid.snapshot()
            assert {k for k, v in cells.items() if v == "failed"} == {(a, missing) for a in grid.agents}
            assert grid.counts().get("done") == 27 - 3
            cell = app.controller.cells["prepull"][("i-agent1", missing)]
            assert "r-base" in cell.message and ("not found" in cell.message or "unknown" in cell.message)
            assert screen.check_action("retry", ()) is True
        finally:
            (tmp_path / "r-base-4.0").rename(tags / "4.0")      # fixed
        await pilot.press("r")
        await pilot.pause(0.1)
        await wait_idle(pilot)
        assert app.controller.status("prepull") == "verified"
        assert set(grid.snapshot().values()) == {"done"}
        assert screen.check_action("retry", ()) is False
        jsonl = app.controller.transcript_paths()[1]
        await pilot.press("ctrl+q")
    kept = {(e["agent"], e["image"]) for e in read_jsonl(jsonl)
            if e["kind"] == "pull" and e["message"] == "done in an earlier attempt"}
    assert len(kept) == 24 and not any(image == missing for _, image in kept)   # only the failed were redone
    images = await agent_images(fresh_sandbox)
    assert all(missing in tags_ for tags_ in images.values())


async def test_allowlists_toggles_edits_sql_and_apply(wizard: WizardFactory, fresh_sandbox: SandboxInfo) -> None:
    app = wizard()
    async with app.run_test(size=SIZE) as pilot:
        await begin(pilot)
        await walk(pilot, until="prepull")
        await skip_current(pilot)
        assert await next_step(pilot) == "aliases"
        assert await apply_current(pilot) == "verified"
        assert await next_step(pilot) == "allowlists"
        screen = app.screen
        assert isinstance(screen, AllowlistsScreen)
        table = screen.query_one("#domains", EditableTable)
        assert [r["domain"] for r in table.rows] == ["archive", "default", "education", "partner", "research"]
        assert table.row("default")["after"] == "cr.backend.ai"
        sql = [c.command for c in screen.query_one("#changes", ChangeTable).items]
        assert all(s.startswith("UPDATE domains SET allowed_docker_registries") for s in sql) and len(sql) == 5
        before = await domains(fresh_sandbox)
        # h on "archive" (cursor on the first row) allows Docker Hub there too
        assert table.cursor_row_id == "archive"
        await pilot.press("h")
        await wait_idle(pilot)
        assert table.row("archive")["after"] == "cr.backend.ai, index.docker.io"
        # an invalid list is refused in the table
        await pilot.press("down", "down", "e", "ctrl+u", *"registry.education.local, bad_host!", "enter")
        await pilot.pause(0.2)
        assert table.editing == "education"
        assert "is not a valid host name" in str(table.query_one("#edit-error").render())
        await pilot.press("escape")
        # g drops the target from "education": it stays as it is, and the step warns
        await pilot.press("g")
        await wait_idle(pilot)
        assert table.row("education")["change"] == "unchanged"
        codes = [f.code for f in screen.query_one("#findings", FindingsView).items]
        assert "target-not-allowed" in codes
        await pilot.press("g")                                # and g again allows it again
        await wait_idle(pilot)
        assert table.row("education")["change"] == "+cr.backend.ai"
        assert await domains(fresh_sandbox) == before         # nothing written while editing
        assert await apply_current(pilot) == "verified"
        after = await domains(fresh_sandbox)
        assert after["archive"] == ["cr.backend.ai", "index.docker.io"]
        assert after["education"] == ["registry.education.local", "cr.backend.ai"]
        assert after["default"] == ["cr.backend.ai"]
        await pilot.press("ctrl+q")


async def test_transcript_view_and_export(wizard: WizardFactory, fresh_sandbox: SandboxInfo, tmp_path: Path,
                                          monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.chdir(tmp_path)
    app = wizard()
    async with app.run_test(size=SIZE) as pilot:
        await begin(pilot)
        await pilot.press("t")
        await wait_for(pilot, lambda: isinstance(app.screen, TranscriptScreen), "the transcript")
        view = app.screen.query_one(TranscriptView)
        assert any("[preflight] plan: back up" in line for line in view.lines)
        await pilot.press("escape")
        await wait_for(pilot, lambda: screen_step(pilot) == "preflight", "the step again")
        await pilot.press("ctrl+e")
        await wait_for(pilot, lambda: isinstance(app.screen, ExportDialog), "the export dialog")
        await pilot.press("ctrl+u", *str(tmp_path / "out"), "enter")
        await wait_for(pilot, lambda: (tmp_path / "out").exists(), "the export")
        files = sorted(p.name for p in (tmp_path / "out").iterdir())
        assert len(files) == 2 and files[0].endswith("transcript.jsonl") and files[1].endswith("transcript.md")
        assert all((tmp_path / "out" / f).stat().st_mode & 0o777 == 0o600 for f in files)
        md = (tmp_path / "out" / files[1]).read_text()
        assert "# bai-registry-migrate transcript" in md
        assert fresh_sandbox.creds.harbor_password not in md and fresh_sandbox.creds.db_password not in md
        await pilot.press("ctrl+q")
