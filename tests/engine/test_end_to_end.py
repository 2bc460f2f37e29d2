"""`run --yes` migrates the sandbox end to end, and the real Backend.AI 20.09 CLI agrees.

On a fresh sandbox the headless run completes every step, then `backend.ai mgr etcd ...` of
20.09 sees a migrated cluster (registry config, image listing, aliases), PostgreSQL's domains
allow the target and not Docker Hub, and every agent holds the essential target images and no
old kernel image except the one a running container uses, which the run reports. And the cleanup
gate: live sessions stop the run with exit 3 and are listed; the same command resumes once they
have ended.
"""

from __future__ import annotations

import re
import time
from typing import Any

import pytest
from oracle import Oracle

from .support import (
    IN_USE_IMAGE,
    INFRA_TAGS,
    RUNNING_CONTAINER,
    Cli,
    EndState,
    Tail,
    agents,
    allowlists,
    end_sessions,
    is_,
    live_kernels,
    manager_up,
    read_events,
    runs_of,
    target_kernel_images,
)

pytestmark = [pytest.mark.docker, pytest.mark.oracle]

TARGET = "cr.backend.ai"
HUB = "index.docker.io"
STEPS = ("preflight", "maintenance", "registry", "prepull", "aliases", "allowlists", "verify", "cleanup",
         "agent-cleanup")


def _listing(text: str) -> dict[str, str]:
    """canonical_ref -> digest from `etcd list-images` (pprint()ed dicts, keys sorted)."""
    pairs = re.findall(r"'canonical_ref': '([^']+)',\s*'digest': '([^']+)'", text)
    assert pairs, f"no images in the listing: {text[:500]!r}"
    return dict(pairs)


def _final(alias: str, aliases: dict[str, str]) -> str:
    """20.09's resolution: unquoted lookup, chains of up to 8 hops (docs/backendai-etcd.md#aliases)."""
    value = alias
    for _ in range(8):
        if value not in aliases:
            return value
        value = aliases[value]
    return value


def assert_migrated(cli: Cli, oracle: Oracle, events: list[dict[str, Any]]) -> None:
    info = cli.info
    expected = target_kernel_images(TARGET)

    # The registry configuration, as the manager reads it.
    reg = oracle.get_prefix("config/docker/registry")
    assert set(reg) == {TARGET}, reg.keys()
    assert {k: v for k, v in reg[TARGET].items() if k != "password"} == {
        "": info.harbor_url, "type": "harbor2", "project": "stable,community", "username": info.creds.harbor_user}
    assert reg[TARGET]["password"] == info.creds.harbor_password
    assert HUB not in oracle.get_prefix_text("config/docker/registry")

    # The image metadata, as `list-images` shows it: exactly the target's kernel images.
    listing = _listing(oracle.list_images())
    assert set(listing) == expected

    # Aliases resolve (20.09's way) to listed target images; the Docker-Hub-only one is gone.
    aliases = oracle.get_prefix("images/_aliases")
    assert "lua" not in aliases
    finals = {a: _final(a, aliases) for a in aliases}
    assert finals and all(f in listing for f in finals.values()), finals
    assert finals["python"] == f"{TARGET}/stable/python:3.6-ubuntu18.04"
    assert finals["py"] == finals["python"] and aliases["py"] == "python"     # the chain is kept

    # Domains: every one allows the target, none Docker Hub.
    doms = allowlists(info)
    assert doms and all(TARGET in regs and HUB not in regs for _active, regs in doms.values()), doms

    # Agents: the essential images, with the scanned image IDs; old kernel images gone except
    # the one the running container uses; infrastructure images untouched.
    state = cli.state()
    essential = state["steps"]["prepull"]["plan"]["data"]["images"]
    assert set(finals.values()) <= set(essential) <= expected
    view = agents(info)
    for agent_id, v in view.items():
        for img in essential:
            assert v.images.get(img) == listing[img], (agent_id, img)
        old = {t for t in v.kernel_tags if t.startswith("lablup/")}
        assert old == ({IN_USE_IMAGE} if agent_id == "i-agent1" else set()), (agent_id, old)
        assert {t for t in v.images if t.startswith("lablup/")} == old | {"lablup/importer:manylinux2010"}
        assert all(t in v.images for t in INFRA_TAGS), (agent_id, sorted(v.images))
    state_, image_id = view["i-agent1"].containers[RUNNING_CONTAINER]
    assert state_ == "running" and image_id == view["i-agent1"].images[IN_USE_IMAGE]

    # ... and that one is reported: a finding, the kept row of the plan, the verification.
    kept = [e for e in events if e["kind"] == "finding" and e["step"] == "agent-cleanup" and e["code"] == "in-use"]
    assert [(e["severity"], "i-agent1" in e["message"], IN_USE_IMAGE in e["message"],
             RUNNING_CONTAINER in e["message"]) for e in kept] == [("warning", True, True, True)]
    plan = state["steps"]["agent-cleanup"]["plan"]["changes"]
    assert [c for c in plan if c["action"] == "keep" and c["before"] == IN_USE_IMAGE] == [
        {"target": "docker i-agent1", "action": "keep", "before": IN_USE_IMAGE, "after": IN_USE_IMAGE,
         "command": "(none)", "note": f"used by container {RUNNING_CONTAINER} (running)"}]
    md = (cli.transcript_dir / "transcript.md").read_text()
    assert IN_USE_IMAGE in md and RUNNING_CONTAINER in md
    assert all(state["steps"][s]["status"] == "verified" for s in STEPS), \
        {s: state["steps"][s]["status"] for s in STEPS}
    assert state["finished"] is True
    assert manager_up(info)


def test_run_waits_for_sessions_then_completes_and_20_09_sees_a_migrated_cluster(
        cli: Cli, sandbox_oracle: Oracle, reference_run: Any) -> None:
    """`[cleanup] wait_for_sessions = "60s"`: the run waits at the gate while two sessions are
    live; the test ends them a moment later; the same run then completes every step, exit 0."""
    plan = cli.plan_copy("plan-wait.toml", [('wait_for_sessions = "0s"',
                                              'wait_for_sessions = "60s"\npoll_interval = "0.5s"')])
    c = cli.with_plan(plan)
    assert live_kernels(c.info) == ["notebook-1", "train-tf"]
    t0 = time.monotonic()
    runner = c.start("run", "--yes")
    tail = Tail(c.transcript)
    first_wait = tail.wait_for(is_("progress", step="cleanup", phase="wait"), runner, what="the cleanup wait")
    assert "waiting for 2 session(s) on old images to end" in first_wait["message"]
    time.sleep(1.5)                                   # the gate keeps waiting, it does not give up
    assert runner.proc.poll() is None
    ended_at = time.time()
    assert end_sessions(c.info) == 2
    rc = runner.finish()
    out = runner.output()
    assert rc == 0, out[-3000:]
    assert "run verified (exit 0)" in out
    events = read_events(c.transcript)
    waits = [e for e in events if e["kind"] == "progress" and e["step"] == "cleanup" and e["phase"] == "wait"]
    assert len(waits) >= 3                            # polled every 0.5 s while the sessions lived
    inspected = next(e for e in events if is_("step-status", step="cleanup", status="inspected")(e))
    assert inspected["ts"] >= ended_at               # the gate opened only after the sessions ended
    assert not [e for e in events if is_("step-status", step="cleanup", status="blocked")(e)]
    assert_migrated(c, sandbox_oracle, events)
    # The same end state as the reference run without any wait (cluster, agents, lock freed).
    assert not EndState.read(c.info).differences(reference_run.end)
    assert time.monotonic() - t0 < 120


def test_gate_stops_with_exit_3_listing_live_sessions_then_resumes(cli: Cli, sandbox_oracle: Oracle) -> None:
    r = cli.run("run", "--yes")
    assert r.returncode == 3, r.stdout[-3000:]
    out = r.stdout
    assert "[cleanup] blocked: 2 session(s) still run on index.docker.io images" in out
    listed = [line for line in out.splitlines() if line.startswith("[cleanup]     - ")]
    assert len(listed) == 2
    assert any(line.startswith("[cleanup]     - notebook-1 (RUNNING) index.docker.io/lablup/python:3.6-ubuntu18.04"
                               " on i-agent1") for line in listed), listed
    assert any("train-tf (RUNNING) index.docker.io/lablup/python-tensorflow:2.3-py38-cuda11.0 on i-agent2" in line
               for line in listed), listed
    assert "run gate (exit 3)" in out
    state = cli.state()
    assert state["steps"]["cleanup"]["status"] == "blocked" and not state["finished"]
    assert [state["steps"][s]["status"] for s in STEPS[:7]] == ["verified"] * 7
    # Nothing of Docker Hub was deleted while the sessions lived.
    assert HUB in sandbox_oracle.get_prefix("config/docker/registry")

    ended = cli.sandbox_cmd("end-sessions")
    assert ended.returncode == 0 and "marked 2 live session(s)" in ended.stdout
    r2 = cli.run("run", "--yes")
    assert r2.returncode == 0, r2.stdout[-3000:]
    first, second = runs_of(read_events(cli.transcript))
    assert first[0]["resumed"] is False and second[0]["resumed"] is True
    assert second[0]["run_id"] == first[0]["run_id"]
    # The resumed run went straight to the gate: no earlier step was inspected or applied again.
    touched = {e["step"] for e in second if e["kind"] == "step-status" and e["status"] in ("inspecting", "applying")}
    assert touched == {"cleanup", "agent-cleanup"}
    assert_migrated(cli, sandbox_oracle, first + second)
