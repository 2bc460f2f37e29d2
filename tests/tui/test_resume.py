"""Stopping the wizard in the middle of the pre-pull and starting it again: the resume offer
appears, and the migration completes without repeating the pulls that had finished. Edits made
before the stop come back with the resumed run."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from tui_support import SIZE, WizardFactory, end_sessions, etcd_namespace

from backends.sandbox.layout import SandboxInfo
from backends.transcript import read_jsonl
from tui.autopilot import apply_current, begin, screen_step, wait_for, wait_idle, walk
from tui.dialogs import ConfirmDialog, ResumeDialog
from tui.screens.summary import SummaryScreen
from widgets.json_editor import JsonEditor

pytestmark = [pytest.mark.docker]   # the agents are the sandbox's Docker daemons (root)


def slow_plan(info: SandboxInfo, tmp_path: Path) -> Path:
    """The sandbox plan with one pull at a time, so that quitting lands between pulls."""
    text = info.plan_toml.read_text()
    for old, new in (("concurrency_per_agent = 2", "concurrency_per_agent = 1"), ("concurrency = 6", "concurrency = 1")):
        assert text.count(old) == 1
        text = text.replace(old, new)
    path = tmp_path / "plan.toml"
    path.write_text(text)
    path.chmod(0o600)
    return path


async def test_quit_mid_prepull_then_resume_without_repeating_pulls(wizard: WizardFactory,
                                                                    fresh_sandbox: SandboxInfo,
                                                                    tmp_path: Path) -> None:
    plan = slow_plan(fresh_sandbox, tmp_path)
    state_dir = tmp_path / "state"

    # -- first session: apply up to the pre-pull, quit while it pulls ------------------------------
    app = wizard(plan_path=str(plan), state_dir=state_dir)
    async with app.run_test(size=SIZE) as pilot:
        await begin(pilot)
        await walk(pilot, until="prepull")
        await pilot.press("a")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmDialog), "the apply confirmation")
        await pilot.press("y")
        cells = app.controller.cells

        def some_done() -> bool:
            return any(c.state == "done" for c in cells.get("prepull", {}).values())

        await wait_for(pilot, some_done, "the first pull")
        assert app.controller.busy.get("prepull") == "apply"
        await pilot.press("ctrl+p")                            # pause: the pulls stop where they are
        await wait_idle(pilot)
        assert app.controller.status("prepull") == "applying"
        assert "paused" in {c.message for c in cells["prepull"].values()}
        await pilot.press("ctrl+q")                            # nothing runs now: quits at once
    state = json.loads((state_dir / "state.json").read_text())
    pre = state["steps"]["prepull"]
    assert pre["status"] == "applying"
    done_before = {j["key"] for j in pre["journal"] if j["key"].startswith("pull:")}
    total = 3 * len(state["steps"]["prepull"]["plan"]["data"]["images"])
    assert 1 <= len(done_before) < total, (len(done_before), total)

    # -- second session: the resume offer, then the rest of the run ---------------------------------
    app2 = wizard(plan_path=str(plan), state_dir=state_dir)
    async with app2.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: isinstance(app2.screen, ResumeDialog), "the resume offer")
        assert "stopped at prepull (applying)" in " ".join(app2.screen.lines)   # type: ignore[attr-defined]
        await begin(pilot, resume="resume")
        assert screen_step(pilot) == "prepull"
        assert app2.controller.status("prepull") == "applying"
        state_line = str(app2.screen.query_one("#step-state").render())
        assert "interrupted" in state_line and "press a to resume" in state_line
        await pilot.press("a")                                 # the plan was confirmed: no dialog
        await pilot.pause(0.1)
        await wait_idle(pilot)
        assert app2.controller.status("prepull") == "verified"

        async def gate() -> None:
            await asyncio.to_thread(end_sessions, fresh_sandbox)

        await walk(pilot, at_gate=gate)
        await wait_for(pilot, lambda: isinstance(app2.screen, SummaryScreen), "the summary")
        await wait_for(pilot, lambda: app2.screen.finished, "the end of the run")  # type: ignore[attr-defined]
        assert app2.controller.run_status == "verified"
        jsonl = app2.controller.transcript_paths()[1]
        await pilot.press("ctrl+q")

    events = read_jsonl(jsonl)
    assert sum(e["kind"] == "run-started" and e["resumed"] for e in events) == 1
    resumed_at = max(i for i, e in enumerate(events) if e["kind"] == "run-started")
    later = [e for e in events[resumed_at:] if e["kind"] == "pull" and e["step"] == "prepull"]
    earlier = {f"pull:{e['agent']}:{e['image']}" for e in later if e["message"] == "done in an earlier attempt"}
    assert earlier == done_before
    pulled_again = {f"pull:{e['agent']}:{e['image']}" for e in later if e["state"] in ("pulling", "queued")}
    assert not pulled_again & done_before
    final = json.loads((state_dir / "state.json").read_text()) if (state_dir / "state.json").exists() else None
    assert final is None or final["finished"]


async def test_edits_of_an_interrupted_session_come_back_and_are_what_is_written(
        wizard: WizardFactory, fresh_sandbox: SandboxInfo, tmp_path: Path) -> None:
    """A dropped session keeps the operator's edits: an edited announcement (applied) and an
    edited registry document (planned, not applied) are restored on resume, and the registry
    apply then writes the edited entry, not the plan file's."""
    state_dir = tmp_path / "state"
    announcement = "Registry move: back at 14:00"
    app = wizard(state_dir=state_dir)
    async with app.run_test(size=SIZE) as pilot:
        await begin(pilot)
        await walk(pilot, until="maintenance")
        await pilot.press("e", "ctrl+u", *announcement, "enter")
        await pilot.pause(0.1)
        await wait_idle(pilot)
        await walk(pilot, until="registry")
        editor = app.screen.query_one("#editor", JsonEditor)
        await pilot.press("e", *["down"] * 7, "end", *["left"] * 2, *["backspace"] * len(",community"))
        await pilot.pause(0.3)                               # the editor validates 150 ms after the last key
        await wait_idle(pilot)
        assert editor.ok and '"project": "stable"' in editor.text
        await pilot.press("escape", "p")
        await wait_for(pilot, lambda: not app.controller.stale("registry"), "the new plan")
        await wait_idle(pilot)
        await pilot.press("ctrl+q")                          # the link drops: nothing of the edit is applied
    assert (await etcd_namespace(fresh_sandbox)).get("config/docker/registry/cr.backend.ai/project") is None

    app2 = wizard(state_dir=state_dir)
    async with app2.run_test(size=SIZE) as pilot:
        await begin(pilot, resume="resume")
        assert screen_step(pilot) == "registry"
        assert app2.controller.restored == ["maintenance", "registry"]   # in step order
        cluster = app2.controller.cluster()
        assert cluster is not None and cluster.plan.maintenance.announcement == announcement
        assert '"project": "stable"' in app2.screen.query_one("#editor", JsonEditor).text
        assert not app2.controller.stale("registry")
        assert await apply_current(pilot) == "verified"
        await pilot.press("ctrl+q")
    ns = await etcd_namespace(fresh_sandbox)
    assert ns["config/docker/registry/cr.backend.ai/project"] == "stable"
    assert ns["manager/announcement"] == announcement
