"""SIGKILL the runner mid-step, run the same command again: the same end state as no kill.

Kill points (more in tests/faults/test_kill_points.py) are found by following the run's JSON
Lines transcript as it is written (no test hook in the product):

- `registry`, right after the manager stop was confirmed (the manager is down, nothing written);
- `registry`, at the start of the image-metadata writes (config written, manager still down);
- `prepull`, as soon as the first pull has finished (others are in flight);
- `allowlists`, inside its one transaction: the test holds a row lock on one domain, so the
  runner's `SELECT ... FOR UPDATE` is seen waiting in pg_stat_activity when it is killed.

After each kill the run is resumed with the same command; the end state (every key of the
namespace, every domain row, every agent's images, manager up, lock free) must equal that of
the uninterrupted reference run. A resumed pre-pull must not pull again what the killed run had
finished: cells journaled before the kill are reported "done in an earlier attempt".
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import asyncpg
import pytest

from backends.sandbox.layout import SandboxInfo

from .conftest import ReferenceRun
from .support import (
    Cli,
    EndState,
    Tail,
    allowlists,
    domain_row_locked,
    end_sessions,
    is_,
    manager_up,
    read_events,
    revoke_dead_holders_lease,
    runs_of,
)

pytestmark = [pytest.mark.docker]


def waiting_for_row_lock(info: SandboxInfo) -> bool:
    async def go() -> bool:
        conn = await asyncpg.connect(info.pg_dsn())
        try:
            n = await conn.fetchval("SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                                    "AND query LIKE '%FROM domains%FOR UPDATE%'")
            return bool(n)
        finally:
            await conn.close()
    return asyncio.run(go())


def wait_until(check: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.02)
    raise AssertionError(f"no {what} within {timeout}s")


def nth(pred: Callable[[dict[str, Any]], bool], n: int) -> Callable[[dict[str, Any]], bool]:
    seen = 0

    def check(e: dict[str, Any]) -> bool:
        nonlocal seen
        seen += pred(e)
        return seen >= n
    return check


@dataclass(frozen=True)
class KillPoint:
    id: str
    step: str
    event: Callable[[], Callable[[dict[str, Any]], bool]]     # a fresh predicate per run


POINTS = [
    KillPoint("registry-manager-stopped", "registry",
              lambda: is_("applied", step="registry", target="manager", action="command", after="stopped")),
    KillPoint("registry-image-writes", "registry",
              lambda: lambda e: is_("progress", step="registry", phase="phase")(e)
              and e["message"].startswith("writing") and e["message"].endswith("image keys")),
    # The second finished pull: the step journals a cell right after its `done` event, in the
    # same event-loop turn, so by the second event at least the first cell is on disk.
    KillPoint("prepull-mid-pull", "prepull", lambda: nth(is_("pull", step="prepull", state="done"), 2)),
    KillPoint("allowlists-in-transaction", "allowlists",
              lambda: is_("step-status", step="allowlists", status="applying")),
]


def journal(state: dict[str, Any], step: str) -> list[str]:
    return [j["key"] for j in state["steps"][step]["journal"]]


@pytest.mark.parametrize("point", POINTS, ids=[p.id for p in POINTS])
def test_sigkill_then_resume_reaches_the_reference_end_state(cli: Cli, reference_run: ReferenceRun,
                                                             point: KillPoint) -> None:
    info = cli.info
    assert end_sessions(info) == 2
    seeded_domains = allowlists(info)
    tail = Tail(cli.transcript)
    if point.step == "allowlists":
        with domain_row_locked(info, "default"):
            runner = cli.start("run", "--yes")
            tail.wait_for(point.event(), runner, what=point.id)
            wait_until(lambda: waiting_for_row_lock(info), 8.0, "runner blocked on the domains row lock")
            runner.kill()
    else:
        runner = cli.start("run", "--yes")
        tail.wait_for(point.event(), runner, what=point.id)
        runner.kill()

    # Where the kill landed, from the state file the killed run left.
    state = cli.state()
    st = state["steps"][point.step]
    assert st["status"] == "applying", st["status"]
    done = journal(state, point.step)
    if point.step == "registry":
        assert "manager-stopped" in done and "manager-started" not in done, done
        if point.id == "registry-image-writes":
            assert "config-written" in done, done
        assert not manager_up(info)                        # left stopped by the killed run
    elif point.step == "prepull":
        cells = len(st["plan"]["data"]["agents"]) * len(st["plan"]["data"]["images"])
        pulled_before = {k for k in done if k.startswith("pull:")}
        assert 0 < len(pulled_before) < cells, (len(pulled_before), cells)
        killed_run = read_events(cli.transcript)
        started = {(e["agent"], e["image"]) for e in killed_run if is_("pull", step="prepull")(e)}
        finished = {(e["agent"], e["image"]) for e in killed_run if is_("pull", step="prepull", state="done")(e)}
        assert started - finished, "no pull was in flight when the runner was killed"
    else:
        assert done == ["backup"], done                    # inside the transaction, not after it
        assert allowlists(info) == seeded_domains         # and the transaction never committed

    revoke_dead_holders_lease(info, runner.pid)
    r = cli.run("run", "--yes")
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-2000:]
    assert "run verified (exit 0)" in r.stdout
    end = EndState.read(info)
    diff = end.differences(reference_run.end)
    assert not diff, "\n".join(diff[:30])

    runs = runs_of(read_events(cli.transcript))
    assert len(runs) == 2 and runs[1][0]["resumed"] is True
    resumed = runs[1]
    assert any(e["kind"] == "log" and f"resuming step {point.step} (was applying)" in e["message"] for e in resumed)
    if point.step == "prepull":
        for key in pulled_before:
            _, agent, image = key.split(":", 2)
            cell = [e for e in resumed if e["kind"] == "pull" and e["agent"] == agent and e["image"] == image]
            assert [(e["state"], e["message"]) for e in cell] == [("done", "done in an earlier attempt")], cell
        again = [e for e in resumed if e["kind"] == "pull" and e["state"] == "done"
                 and e["message"] != "done in an earlier attempt"]
        assert len(again) + len(pulled_before) == cells
