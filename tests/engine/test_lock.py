"""One run per cluster: a second run is refused while the lock is held; a killed holder's lock
frees itself within the lease time, and the run then resumes.

Run A waits at the cleanup gate (`wait_for_sessions = "60s"`, two sessions live), holding the
lock. Run B, started by "another operator" with its own state directory, is refused with exit 3
and a message naming A's user, host, pid, since when and run id; B leaves no state behind.
A is SIGKILLed: nothing of it can release the lock, which is still there right after the kill
and gone within the lease TTL (backends.lock.DEFAULT_TTL). Then the sessions end and A's own
command resumes the run to the end.
"""

from __future__ import annotations

import getpass
import re
import socket
import time
from datetime import datetime

import pytest

from backends.lock import DEFAULT_TTL

from .support import Cli, Tail, end_sessions, is_, lock_entry, read_events, runs_of

pytestmark = [pytest.mark.docker]


def test_second_run_refused_then_lease_frees_a_killed_holders_lock(cli: Cli) -> None:
    info = cli.info
    plan = cli.plan_copy("plan-wait.toml", [('wait_for_sessions = "0s"', 'wait_for_sessions = "60s"')])
    a = cli.with_plan(plan)
    started = time.time()
    runner = a.start("run", "--yes")
    Tail(a.transcript).wait_for(is_("progress", step="cleanup", phase="wait"), runner, what="the cleanup wait")
    held = lock_entry(info)
    assert held is not None
    holder, lease = held
    assert holder["pid"] == runner.pid and lease > 0

    other_state = a.home / "other-operator-state"
    r = a.run("run", "--yes", state_dir=other_state)
    assert r.returncode == 3, r.stdout + r.stderr
    msg = r.stdout + r.stderr
    run_id = a.state()["run_id"]
    m = re.search(r"another migration run holds the cluster lock /bai-registry-migrate/lock/local: "
                  r"(\S+)@(\S+) \(pid (\d+)\), since (\d{4}-\d\d-\d\d \d\d:\d\d:\d\d), run (\S+)", msg)
    assert m, msg
    assert (m[1], m[2], int(m[3]), m[5].rstrip(";")) == (getpass.getuser(), socket.gethostname(), runner.pid, run_id)
    since = datetime.strptime(m[4], "%Y-%m-%d %H:%M:%S").timestamp()
    assert started - 1 <= since <= time.time()
    assert not (other_state / "state.json").exists()      # the refused run wrote nothing
    assert runner.proc.poll() is None                      # and A is undisturbed, still waiting

    runner.kill()
    killed = time.monotonic()
    assert lock_entry(info) is not None                    # nobody released it: SIGKILL
    while lock_entry(info) is not None:
        assert time.monotonic() - killed <= DEFAULT_TTL + 1.0, "the lock outlived its lease"
        time.sleep(0.2)
    freed_after = time.monotonic() - killed
    assert freed_after <= DEFAULT_TTL + 1.0

    assert end_sessions(info) == 2
    r = a.run("run", "--yes")
    assert r.returncode == 0, r.stdout[-3000:]
    runs = runs_of(read_events(a.transcript))
    assert len(runs) == 2 and runs[1][0]["resumed"] is True and runs[1][0]["run_id"] == run_id
    assert lock_entry(info) is None                        # released on a normal exit
