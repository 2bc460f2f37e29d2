"""Snapshot tests: every screen at a fixed size, with deterministic content.

Plain `def` tests (pytest-textual-snapshot's snap_compare runs its own event loop;
docs/textual-notes.md#snapshot-tests). Later
steps are reached by a dry run (realistic plans through the engine's overlay, nothing
written, no pulls, so no clocks or speeds on screen). One walk runs live on the sandbox: it
takes every step's snapshot, checks the cleanup gate, and records the engine's calls; the
other snapshots replay that recording (`tests/tui/recordings/dry-walk.jsonl`), so they need
no services. Per-run values (ports, socket root, run ids) are masked at equal length by the
`stable_snapshots` fixture; see conftest.py.
"""

from __future__ import annotations

import asyncio
import os
import shutil
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from conftest import DRY_WALK
from pytest_textual_snapshot import SVGImageExtension
from tui_support import SIZE, end_sessions, etcd_namespace, recording_outline, screen_diff, stable_svg

from backends.replay import Recording
from backends.sandbox.layout import SandboxInfo
from tui.app import MigrationApp, make_app
from tui.autopilot import begin, wait_for, wait_idle, walk
from widgets.findings import FindingsView

# One snapshot directory at a fixed path (see conftest.py): these tests share one xdist worker.
pytestmark = [pytest.mark.xdist_group("snapshot-dir")]

Files = dict[str, Path]
RunBefore = Callable[[Any], Awaitable[None]]


def app_for(files: Files, *, dry_run: bool = True, config: Path | None = None, record: Path | None = None,
            start_at: str | None = None) -> MigrationApp:
    """The wizard on the files' configuration: replaying the recorded dry walk (from `start_at`,
    the steps before it done) when the files come from `replay_files`, else live on the sandbox."""
    replay = Recording(files["recording"], start_at=start_at) if "recording" in files else None
    return make_app(config=str(config or files["config"]), plan_path=str(files["plan"]), dry_run=dry_run,
                    state_dir=files["state"], transcript_dir=files["transcript"], cursor_blink=False,
                    replay=replay, record=record)


def to(step: str | None, *then: str) -> RunBefore:
    """run_before: begin, walk (dry) to `step` (None: to the summary), then press `then`."""

    async def run_before(pilot: Any) -> None:
        await begin(pilot)
        await walk(pilot, until=step)
        if step is None:
            await wait_for(pilot, lambda: getattr(pilot.app.screen, "finished", False), "the summary")
        if then:
            # the screen's last layout first (a busy machine draws late): keys that scroll
            # (the editor's cursor) must start from the same place every time
            await wait_idle(pilot)
            await pilot.wait_for_scheduled_animations()
            await pilot.pause(0.3)
            await pilot.press(*then)
            await pilot.pause(0.3)
        await wait_idle(pilot)
        # a JSON editor validates 150 ms after the last key: wait for that, however busy the machine
        editors = pilot.app.screen.query("JsonEditor")
        if editors:
            await wait_for(pilot, lambda: editors.first()._timer is None, "the editor's validation")
            await wait_idle(pilot)
            # where the page stands after the cursor moved depends on when each layout landed:
            # show the editor's issues from a fixed place instead (the top, then just enough)
            body = pilot.app.screen.query_one("#body")
            body.scroll_to(y=0, animate=False, immediate=True)
            body.scroll_to_widget(editors.first().query_one("#json-issues"), animate=False, immediate=True)
            await pilot.pause(0.2)

    return run_before


async def _probed(pilot: Any) -> None:
    await wait_for(pilot, lambda: pilot.app.controller.probe_result is not None, "the checks")
    await wait_idle(pilot)


def test_start(snap_compare: Any, replay_files: Files) -> None:
    assert snap_compare(app_for(replay_files, dry_run=False), terminal_size=SIZE, run_before=_probed)


def test_start_bad_config(snap_compare: Any, replay_files: Files) -> None:
    bad = replay_files["config"].with_name("broken.toml")
    bad.write_text("[etcd]\nnamespace = \"local\"\naddr = { host = \"127.0.0.1\", port = \n")
    assert snap_compare(app_for(replay_files, dry_run=False, config=bad), terminal_size=SIZE, run_before=_probed)


SNAP_PREFIX = "test_every_step_planned_in_one_walk_and_the_cleanup_gate"
STEPS = ("preflight", "maintenance", "registry", "prepull", "aliases", "allowlists", "verify", "cleanup",
         "agent-cleanup")


async def _settle_and_take(pilot: Any) -> str:
    """The screen as take_svg_screenshot takes it (same settling), masked."""
    await pilot.pause()
    await pilot.wait_for_scheduled_animations()
    await pilot.pause()
    await pilot.pause()
    await pilot.wait_for_scheduled_animations()
    return stable_svg(pilot.app.export_screenshot(title=pilot.app.title))


@pytest.mark.docker   # the agents are the sandbox's Docker daemons (root)
def test_every_step_planned_in_one_walk_and_the_cleanup_gate(snapshot: Any, snap_files: Files,
                                                              fresh_sandbox: SandboxInfo, tmp_path: Path) -> None:
    """One dry walk, live: a snapshot of every step's screen as planned, then of the summary; on
    the way, the cleanup gate lists the live sessions and blocks, and opens once they end.

    One walk for all ten screens instead of a walk per screen (that was most of this file's
    time). What the walk saw is kept in `seen` and asserted after the app has exited. The walk
    is recorded, and the recording the replayed tests use must say the same (calls, findings,
    plans, verdicts); `BAIRM_RECORD=1` writes this one in its place."""
    snap = snapshot.use_extension(SVGImageExtension)
    before = asyncio.run(etcd_namespace(fresh_sandbox))
    shots: dict[str, str] = {}
    seen: dict[str, Any] = {}

    async def auto_pilot(pilot: Any) -> None:
        app = pilot.app

        async def on_step(step: str) -> None:
            shots[step] = await _settle_and_take(pilot)
            if step == "cleanup":
                screen = app.screen
                seen["status"] = app.controller.status("cleanup")
                seen["live"] = next(f for f in screen.query_one("#findings", FindingsView).items
                                    if f.code == "live-sessions")
                seen["apply"] = screen.check_action("apply", ())
                seen["state"] = str(screen.query_one("#step-state").render())

        async def at_gate() -> None:
            await asyncio.to_thread(end_sessions, fresh_sandbox)     # it runs its own event loop

        await begin(pilot)
        await walk(pilot, until=None, on_step=on_step, at_gate=at_gate)
        await wait_for(pilot, lambda: getattr(app.screen, "finished", False), "the summary")
        await wait_idle(pilot)
        shots["summary"] = await _settle_and_take(pilot)
        plan = app.controller.plan_of("cleanup")
        seen["commands"] = [c.command for c in plan.changes] if plan else None
        seen["run"] = app.controller.run_status
        app.exit()

    recorded = tmp_path / "dry-walk.jsonl"
    app_for(snap_files, record=recorded).run(headless=True, size=SIZE, auto_pilot=auto_pilot)
    assert list(shots) == [*STEPS, "summary"]
    changed = [name for name, svg in shots.items() if not snap(name=name) == svg]
    stored = Path(__file__).parent / "__snapshots__" / "test_snapshots"
    assert not changed, "screens changed (text diff; --snapshot-update accepts them):\n" + "\n".join(
        screen_diff(stored / f"{SNAP_PREFIX}[{name}].svg", shots[name]) for name in changed)

    # the gate, while two sessions ran on old images
    assert seen["status"] == "blocked" and seen["apply"] is False      # nothing to apply while blocked
    assert seen["live"].severity == "blocking" and len(seen["live"].details) == 2
    assert any("notebook-1 (RUNNING)" in d and "i-agent1" in d for d in seen["live"].details)
    assert "blocked" in seen["state"] and "2 session(s) still run" in seen["state"] and "fix:" in seen["state"]
    # once they ended, p planned it
    assert seen["commands"] == ["backend.ai mgr etcd delete --prefix images/index.docker.io",
                                "backend.ai mgr etcd delete --prefix config/docker/registry/index.docker.io"]
    assert seen["run"] == "dry-run"
    assert asyncio.run(etcd_namespace(fresh_sandbox)) == before      # a dry run writes nothing
    assert not snap_files["state"].exists()

    # the replayed tests' recording is this walk's
    if os.environ.get("BAIRM_RECORD") == "1":
        shutil.copyfile(recorded, DRY_WALK)
    assert recording_outline(recorded) == recording_outline(DRY_WALK), (
        "the engine now answers the dry walk differently from tests/tui/recordings/dry-walk.jsonl: "
        "review, then record it again with BAIRM_RECORD=1")


def test_prepull_applied_dry(snap_compare: Any, replay_files: Files) -> None:
    assert snap_compare(app_for(replay_files, start_at="prepull"), terminal_size=SIZE, run_before=to("prepull", "a", "y"))


def test_registry_broken_json(snap_compare: Any, replay_files: Files) -> None:
    # "harbor2" -> "harbor23" -> "harbor3": no valid state in between (it would be adopted into the plan)
    keys = ("e", *["down"] * 6, "end", "left", "left", "3", "left", "backspace")
    assert snap_compare(app_for(replay_files, start_at="registry"), terminal_size=SIZE, run_before=to("registry", *keys))


def test_aliases_refused_target(snap_compare: Any, replay_files: Files) -> None:
    keys = ("enter", "ctrl+u", *"cr.backend.ai/community/julia:9.9", "enter")
    assert snap_compare(app_for(replay_files, start_at="aliases"), terminal_size=SIZE, run_before=to("aliases", *keys))


def test_aliases_at_80x24(snap_compare: Any, replay_files: Files) -> None:
    assert snap_compare(app_for(replay_files, start_at="aliases"), terminal_size=(80, 24), run_before=to("aliases"))


def test_prepull_at_160x48(snap_compare: Any, replay_files: Files) -> None:
    assert snap_compare(app_for(replay_files, start_at="prepull"), terminal_size=(160, 48), run_before=to("prepull", "a", "y"))
