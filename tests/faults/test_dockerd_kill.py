"""kill -9 of one agent's Docker daemon while it pulls, then the daemon is started again.

The runner is followed through its transcript; as soon as agent i-agent3 reports a pull in
progress, its dockerd is killed (SIGKILL of the pid the sandbox recorded; its containerd dies
with it, docs/sandbox.md#docker-daemons-as-agents). The other agents finish their pulls. Then:

- etcd and the domains are untouched (pre-pull writes neither) and every agent tag holds its
  old or its new image, nothing in between: a pull that broke left no tag;
- the pull failures name the agent and the broken daemon connection, and the runner's
  verdict names the pre-pull step, the agent that lacks images and how to go on;
- once the daemon runs again (restarted on its own directories, which clears what the crash
  left), the same command resumes: cells finished before are not pulled again, i-agent3 gets
  its images, and the migration ends in the reference end state.

The plan copy lowers `prepull.retries` from 3 to 1 only to spend less time failing against the
dead daemon; it changes nothing in the end state.
"""

from __future__ import annotations

import pytest
from engine.support import Cli, EndState, Tail, is_, read_events, runs_of

from .conftest import free_lock_of_dead_runner
from .outage import kill_dockerd, start_dockerd
from .states import ClusterState, Reference, last_error_line, old_or_new, step_status

pytestmark = [pytest.mark.docker]

VICTIM = "i-agent3"       # i-agent1 runs a container; a daemon without one restarts in a blink


def test_dockerd_killed_mid_pull(fcli: Cli, reference: Reference) -> None:
    info = fcli.info
    old, new = reference.around("prepull")
    c = fcli.with_plan(fcli.plan_copy("plan-retries.toml", [("retries = 3", "retries = 1")]))
    tail = Tail(c.transcript)
    runner = c.start("run", "--yes")
    tail.wait_for(lambda e: is_("pull", step="prepull", agent=VICTIM)(e)
                  and e["state"] not in ("queued", "done", "failed"), runner, what=f"a pull on {VICTIM}")
    kill_dockerd(info, VICTIM)
    rc = runner.finish(120)
    out = runner.output()

    assert rc == 1, out[-3000:]
    line = last_error_line(out)
    n = len(c.state()["steps"]["prepull"]["plan"]["data"]["images"])
    assert f"step prepull failed: verification failed: agent {VICTIM} holds the essential images: {n} of {n} " \
           f"images unknown: agent {VICTIM}: cannot reach the Docker daemon at unix://" in line, line
    assert line.endswith("connection refused; fix: see the transcript for every check; fix the cause and resume"), line
    failed = [e for e in read_events(c.transcript) if is_("pull", step="prepull", agent=VICTIM, state="failed")(e)]
    assert failed and all("daemon" in e["message"] or "dockerd" in e["message"] or "connect" in e["message"].lower()
                          for e in failed), [e["message"] for e in failed]
    assert f"[prepull]   {VICTIM}: " in out and ": failed (" in out
    assert step_status(c, "prepull")[0] == "failed"
    now = ClusterState.read_without(info, VICTIM)
    old_or_new(now, old, new, "dockerd killed mid-pull", via=(info.harbor_host, info.target_registry))

    start_dockerd(info, VICTIM)
    now = ClusterState.read(info)
    old_or_new(now, old, new, "after the daemon restart", via=(info.harbor_host, info.target_registry))
    done_before = {k for k in step_status(c, "prepull")[1] if k.startswith("pull:")}
    assert done_before

    free_lock_of_dead_runner(info, runner.pid)
    r = c.run("run", "--yes")
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-2000:]
    diff = EndState.read(info).differences(reference.end)
    assert not diff, "\n".join(diff[:30])
    resumed = runs_of(read_events(c.transcript))[-1]
    again = [e for e in resumed if is_("pull", step="prepull", state="done")(e)
             and e["message"] == "done in an earlier attempt"]
    assert {f"pull:{e['agent']}:{e['image']}" for e in again} == done_before
