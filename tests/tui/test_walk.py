"""The whole migration through the UI, keys only, on a fresh sandbox; the end state in etcd,
PostgreSQL, on the agents and of the manager must equal what a headless `run --yes` leaves."""

from __future__ import annotations

import asyncio
import io
from pathlib import Path

import pytest
from tui_support import SIZE, WizardFactory, differences, end_sessions, end_state

from backends import runner
from backends.sandbox.cluster import Sandbox
from backends.sandbox.layout import SandboxInfo
from tui.autopilot import begin, screen_step, wait_for, wait_idle, walk
from tui.screens.summary import SummaryScreen

pytestmark = [pytest.mark.docker]   # the agents are the sandbox's Docker daemons (root)


async def test_walk_every_step_with_keys_equals_headless_run(wizard: WizardFactory, fresh_sandbox: SandboxInfo,
                                                             tmp_path: Path) -> None:
    info = fresh_sandbox
    seen: list[str] = []
    gate_hit: list[bool] = []

    async def on_step(step: str) -> None:
        seen.append(step)

    async def at_gate() -> None:
        gate_hit.append(True)
        assert await asyncio.to_thread(end_sessions, info) == 2

    app = wizard()
    async with app.run_test(size=SIZE) as pilot:
        await begin(pilot)
        assert screen_step(pilot) == "preflight"
        await walk(pilot, on_step=on_step, at_gate=at_gate)
        await wait_for(pilot, lambda: isinstance(app.screen, SummaryScreen), "the summary")
        await wait_for(pilot, lambda: app.screen.finished, "the end of the run")  # type: ignore[attr-defined]
        await wait_idle(pilot)
        assert app.controller.run_status == "verified"
        assert all(s == "verified" for s in app.controller.statuses().values()), app.controller.statuses()
        summary = str(app.screen.query_one("#summary-title").render())
        assert "Migration complete" in summary
        md = app.controller.transcript_paths()[0]
        await pilot.press("ctrl+q")
    assert seen == ["preflight", "maintenance", "registry", "prepull", "aliases", "allowlists", "verify",
                    "cleanup", "agent-cleanup"]
    assert gate_hit == [True]
    text = md.read_text()
    assert "Run verified" in text and "## Step `agent-cleanup`" in text
    ui = await end_state(info)

    # the same cluster, migrated headless
    await asyncio.to_thread(Sandbox(info.path).reset, log=lambda *_: None)
    assert await asyncio.to_thread(end_sessions, info) == 2
    out = io.StringIO()
    code = await runner.run(runner.RunOptions(config=str(info.manager_toml), plan=str(info.plan_toml),
                                              state_dir=str(tmp_path / "headless-state"), yes=True), out)
    assert code == 0, out.getvalue()[-3000:]
    headless = await end_state(info)
    assert differences(ui, headless) == []
    # and it is really migrated (not two equally unchanged clusters)
    assert "config/docker/registry/cr.backend.ai/type" in ui["etcd"]
    assert not any(k.startswith("images/index.docker.io") for k in ui["etcd"])
    assert all("index.docker.io" not in regs for regs in ui["domains"].values())
    assert ui["manager_up"]
