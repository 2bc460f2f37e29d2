"""Two (here: four) runs against one cluster started at the same instant: exactly one wins.

tests/engine/test_lock.py shows a second run refused while a first one waits at the cleanup
gate, and a killed holder's lock expiring with its lease. What it does not show is the race
itself: the lock is taken by one etcd transaction ("create the key if it has no create
revision"), so of several runs that reach it in the same moment exactly one may win, whatever
the interleaving. Here four `run --yes --steps preflight` processes are started together,
sharing one state directory and one transcript directory (two operators on the same admin
host, as the same user, get the same default state directory). The winner's preflight is held
at the fault proxy (its credential check waits) until every other run has exited, so the
winner holds the lock however slowly the others start; a `rollback` started meanwhile is
refused too.

- exactly one exits 0; every other exits 3 and names the winner's pid;
- the losers wrote nothing: one `run-started` in the transcript (the winner's), the state
  file is the winner's run, no archived state, and the lock is free afterwards;
- the cluster (etcd namespace, domains, agents' images) is the seeded one: preflight reads.
"""

from __future__ import annotations

import re
import subprocess
import threading
import time

import pytest
from engine.support import Cli, is_, lock_entry, read_events

from .fault_proxy import FaultProxy, Hold
from .states import ClusterState, Reference

pytestmark = [pytest.mark.docker]

N = 4


def test_simultaneous_runs_exactly_one_wins(fcli: Cli, reference: Reference) -> None:
    info = fcli.info
    with FaultProxy(info.harbor_url) as proxy:
        c = fcli.with_plan(fcli.plan_copy("plan-proxy.toml", [(f'"": "{info.harbor_url}"', f'"": "{proxy.url}"')]))
        release = threading.Event()
        proxy.add(r"^/api/v2.0/users/current$", Hold(release))
        procs = [subprocess.Popen(c.argv("run", "--yes", "--steps", "preflight"), env=c.env, cwd=c.home,
                                  stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) for _ in range(N)]
        try:
            # The winner's preflight waits at the proxy until every other run has given up.
            deadline = time.monotonic() + 60
            while sum(p.poll() is not None for p in procs) < N - 1:
                assert time.monotonic() < deadline, "the runs did not settle"
                time.sleep(0.02)
            held = lock_entry(info)
            rb = c.run("rollback")
            release.set()
            results = [(p.pid, p.wait(60), p.stdout.read() if p.stdout else "") for p in procs]
        finally:
            release.set()
            for p in procs:
                if p.poll() is None:
                    p.kill()
                    p.wait(10)
                if p.stdout:
                    p.stdout.close()

    winners = [(pid, out) for pid, rc, out in results if rc == 0]
    losers = [(pid, rc, out) for pid, rc, out in results if rc != 0]
    assert len(winners) == 1, results
    win_pid = winners[0][0]
    assert held is not None and held[0]["pid"] == win_pid
    for pid, rc, out in losers:
        assert rc == 3, (pid, rc, out)
        m = re.search(r"another migration run holds the cluster lock /bai-registry-migrate/lock/local: "
                      r"\S+@\S+ \(pid (\d+)\)", out)
        assert m and int(m[1]) == win_pid, out
        assert "fix: wait for it to finish" in out
    assert rb.returncode == 3 and f"(pid {win_pid})" in rb.stdout, rb.stdout + rb.stderr

    started = [e for e in read_events(c.transcript) if is_("run-started")(e)]
    assert len(started) == 1, started
    assert c.state()["run_id"] == started[0]["run_id"]
    assert c.state()["steps"]["preflight"]["status"] == "verified"
    assert not list(c.state_dir.glob("state-*.json"))
    assert lock_entry(info) is None
    # preflight writes nothing to the cluster: the seeded state, exactly
    now = ClusterState.read(info)
    assert now.store_differences(reference.states["start"]) == [] and now.agents == reference.states["start"].agents
