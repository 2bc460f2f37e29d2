"""`rollback` of each reversible step restores the backed-up keys and rows exactly.

The reversible steps are maintenance, registry, aliases, allowlists and cleanup. The migration
is driven in-process step by step (to take a snapshot of the whole etcd namespace and every
domain row right before each reversible step), then `bai-registry-migrate rollback --steps S` is
run for each, latest first, and after each the cluster must equal the snapshot taken before S:
every key and value of the namespace (read raw with etcdctl) and every column of every domain
row.

Second test: after a *completed* `run --yes`, a plain `rollback` undoes the whole migration
(it used to archive the finished run's state and roll back nothing, reporting success).
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from backends.cluster import Cluster
from backends.config import load_settings
from backends.engine import Engine
from backends.plan_file import load_plan
from backends.sandbox.layout import SandboxInfo
from backends.steps import STEP_ORDER
from backends.vault import Vault

from .support import Cli, domain_rows, end_sessions, etcd_ns, is_, manager_up, read_events

pytestmark = [pytest.mark.docker]

REVERSIBLE = ("maintenance", "registry", "aliases", "allowlists", "cleanup")


def snapshot(info: SandboxInfo) -> tuple[dict[bytes, bytes], list[tuple[Any, ...]]]:
    return etcd_ns(info), domain_rows(info)


def _differences(now: tuple[dict[bytes, bytes], list[Any]], then: tuple[dict[bytes, bytes], list[Any]]) -> list[str]:
    (a, da), (b, db) = now, then
    out = [f"{k!r}: now {a.get(k)!r}, before {b.get(k)!r}" for k in sorted(set(a) | set(b)) if a.get(k) != b.get(k)]
    if da != db:
        out.append(f"domains now {da} != before {db}")
    return out


async def migrate_step_by_step(c: Cli) -> dict[str, tuple[dict[bytes, bytes], list[Any]]]:
    info = c.info
    vault = Vault(c.home / "xdg-config" / "bai-registry-migrate" / "seal.key")   # the CLI's seal key
    cluster = Cluster(load_settings(str(info.manager_toml)), load_plan(str(c.plan)), vault=vault)
    eng = await Engine.open(cluster, state_dir=c.state_dir, transcript_dir=c.transcript_dir)
    snaps = {}
    try:
        for sid in STEP_ORDER:
            if sid == "agent-cleanup":
                await eng.skip(sid, "agents are not part of this test")
                continue
            if eng.step(sid).reversible:
                snaps[sid] = await asyncio.to_thread(snapshot, info)
            assert await eng.run_step(sid) == "verified", sid
    finally:
        await eng.close("verified")
    assert sorted(snaps) == sorted(REVERSIBLE)
    return snaps


def test_rollback_of_each_reversible_step_restores_its_snapshot(cli: Cli) -> None:
    info = cli.info
    assert end_sessions(info) == 2
    snaps = asyncio.run(migrate_step_by_step(cli))
    assert etcd_ns(info)[b"manager/status"] == b"frozen"      # maintenance is still on: nothing lifted it

    for sid in reversed(REVERSIBLE):
        before = snapshot(info)
        assert _differences(before, snaps[sid]), f"{sid} changed nothing: the test would prove nothing"
        r = cli.run("rollback", "--steps", sid)
        assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-2000:]
        rolled = [line for line in r.stdout.splitlines() if line.startswith(f"[{sid}] rolled back: ")]
        assert len(rolled) == 1 and not rolled[0].endswith(" 0 change(s)"), r.stdout[-2000:]
        diff = _differences(snapshot(info), snaps[sid])
        assert not diff, f"after `rollback --steps {sid}`:\n" + "\n".join(diff[:30])
        assert manager_up(info)
    state = cli.state()
    assert {s: state["steps"][s]["status"] for s in REVERSIBLE} == {s: "rolled-back" for s in REVERSIBLE}
    statuses = [e for e in read_events(cli.transcript) if is_("step-status", status="rolled-back")(e)]
    assert [e["step"] for e in statuses] == list(reversed(REVERSIBLE))


def test_rollback_after_a_completed_run_restores_the_premigration_cluster(cli: Cli) -> None:
    info = cli.info
    assert end_sessions(info) == 2
    before = snapshot(info)
    r = cli.run("run", "--yes")
    assert r.returncode == 0, r.stdout[-3000:]
    assert cli.state()["finished"] is True
    assert _differences(snapshot(info), before)

    # Issue 10, item 1: one step alone shows what it restored and warns that cleanup, applied
    # after it, stays applied (Docker Hub's metadata stays deleted).
    r = cli.run("rollback", "--steps", "allowlists")
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-2000:]
    assert "[allowlists] warning: cleanup was applied after it and stays applied: Docker Hub's image metadata" \
        in r.stdout, r.stdout[-2000:]
    assert "rollback --steps cleanup,allowlists" in r.stdout
    restored = [line for line in r.stdout.splitlines() if line.startswith("  sql domains[")]
    assert restored and all(" -> {" in line for line in restored), r.stdout[-2000:]
    assert any("index.docker.io" in line.split(" -> ", 1)[1] for line in restored)   # Docker Hub allowed again

    r = cli.run("rollback")
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-2000:]
    rolled = {line.split("]")[0][1:]: line for line in r.stdout.splitlines() if " rolled back: " in line}
    assert sorted(rolled) == sorted(REVERSIBLE), r.stdout[-2000:]
    assert rolled["maintenance"].endswith(" 0 change(s)")     # the run had lifted the freeze already
    diff = _differences(snapshot(info), before)
    assert not diff, "\n".join(diff[:30])
    assert manager_up(info)
    # The finished run's state was used, not archived and replaced by an empty one.
    assert not list(cli.state_dir.glob("state-*.json"))


def test_rollback_refuses_what_it_cannot_do_and_writes_nothing(cli: Cli) -> None:
    """Issue 10, item 1: `rollback --steps allowlists` without the run's state directory used to
    start an empty run there and print `run rolled-back (exit 0)` with the domains still
    migrated; `rollback --steps prepull` (nothing to restore) did the same."""
    info = cli.info
    before = snapshot(info)
    r = cli.run("rollback", "--steps", "allowlists")
    assert r.returncode == 2, r.stdout[-2000:] + r.stderr[-2000:]
    assert "there is no run to roll back in " in r.stdout and "fix: pass --state-dir DIR" in r.stdout, r.stdout
    assert "rolled-back" not in r.stdout and "verified" not in r.stdout
    assert not cli.state_dir.exists()                          # no empty run was started in its place

    r = cli.run("rollback", "--steps", "prepull")
    assert r.returncode == 2, r.stdout[-2000:]
    assert "step prepull cannot be rolled back" in r.stdout
    assert "fix: roll back some of: maintenance, registry, aliases, allowlists, cleanup" in r.stdout
    assert not cli.state_dir.exists()
    assert not _differences(snapshot(info), before)
