"""The recorded-run seam (backends/replay.py), without services: the real engine answering from a
recording of a real dry walk, and refusing what the recording does not hold; and a resume that
must not put a sealed value back as the registry password."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest

from backends.config import load_settings
from backends.errors import MigrateError
from backends.plan_file import load_plan
from backends.replay import Recording, ReplayEngine
from backends.statuses import Status

DRY_WALK = Path(__file__).parent / "tui" / "recordings" / "dry-walk.jsonl"


async def _engine(tmp_path: Path, start_at: str | None = None) -> ReplayEngine:
    rec = Recording(DRY_WALK, start_at=start_at)
    config, plan = rec.write_config(tmp_path / "config")
    return await ReplayEngine.replay(rec, load_settings(config), load_plan(plan), transcript_dir=tmp_path / "t",
                                     sinks=[])


async def test_replay_answers_from_the_recording_and_refuses_what_it_lacks(tmp_path: Path) -> None:
    eng = await _engine(tmp_path, start_at="registry")
    try:
        # the steps before `start_at` are done, as the recorded walk left them
        assert eng.status_of("preflight") is Status.VERIFIED and eng.status_of("maintenance") is Status.VERIFIED
        assert eng.status_of("registry") is Status.PENDING
        findings = await eng.inspect("registry")
        assert findings and all(f.code for f in findings)
        await eng.load_edit_context("registry")
        plan = await eng.plan("registry")
        assert plan.summary.startswith("write ") and "rescan" in plan.summary
        # the views are the real step's, over the recorded plan
        view = eng.step("registry").progress_view(eng.plan_of("registry"))
        assert [p.label for p in view.phases][0] == "stop the manager" and view.counters["images"] == 15
        # a call the recording does not hold is refused by name, not invented
        with pytest.raises(MigrateError, match="holds no further rollback of step registry"):
            await eng.rollback("registry")
    finally:
        await eng.close()


async def test_a_resume_never_restores_a_sealed_password(tmp_path: Path) -> None:
    eng = await _engine(tmp_path, start_at="prepull")     # the registry step planned and applied
    try:
        step = eng.step("registry")
        st = eng.state.steps["registry"]
        assert st.plan is not None
        before = eng.cluster.plan.registry_json
        plan = copy.deepcopy(st.plan)
        puts = plan["data"]["config_puts"]
        pw = next(k for k in puts if k.endswith("/password"))
        puts[pw] = "sealed:v2:not-openable-with-this-key"
        puts[pw.replace("/password", "/project")] = "stable"          # an edit that would be restored
        st.plan = plan
        assert step.restore_edits() is False                        # the seal key is lost or another
        assert eng.cluster.plan.registry_json == before
        assert "sealed:" not in eng.cluster.plan.registry_json
        puts[pw] = "hunter22"                                         # opened: the edit comes back
        assert step.restore_edits() is True
        assert '"project": "stable"' in eng.cluster.plan.registry_json
    finally:
        await eng.close()
