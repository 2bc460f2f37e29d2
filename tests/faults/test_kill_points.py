"""SIGKILL of the runner at every step boundary and inside every writing step, then the same command.

tests/engine/test_kill_resume.py kills at four points inside steps (registry after the manager
stop and at the image writes, prepull after two pulls, allowlists inside its transaction).
This adds the rest, 17 points, as one chain in the order a run meets them (a run per kill
point would cost a whole migration each; the chain costs one migration plus a process start
per point):

- "boundaries": right after each step's `verified` status event, for all nine steps (the
  last one is just before the run lifts the freeze and marks itself finished);
- "inside": one point inside each writing step: preflight with its backup taken, maintenance
  with the freeze written, registry while the manager is being started again, prepull with
  the first pull in flight, aliases and allowlists with their transaction committed but not
  yet journaled, cleanup as it starts applying, agent cleanup after its first removal.

At each kill: the step the state file says was interrupted holds exactly its old or its new
state (states.py: whole etcd namespace, every domain row, each agent tag); the killed run's
lock names the dead process, and running the same command at once is refused with a message
naming it and the lease; the next invocation says it is resuming (and which step). Killed while
the manager is being started, the run leaves the start command running; once it has brought
the manager back, the resume must stop it again before it touches the registry configuration
(and say so). The chain's last invocation completes, and the end state equals the reference
migration's.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from engine.support import Cli, EndState, Tail, is_, manager_up, read_events, runs_of

from .conftest import free_lock_of_dead_runner
from .states import PHASES, ClusterState, Reference, current_phase, old_or_new, step_status

pytestmark = [pytest.mark.docker]

Pred = Callable[[dict[str, Any]], bool]


@dataclass(frozen=True)
class KillPoint:
    id: str
    step: str
    pred: Callable[[], Pred]      # a fresh predicate per runner


def after_verified(step: str) -> KillPoint:
    return KillPoint(f"after-{step}", step, lambda: is_("step-status", step=step, status="verified"))


BOUNDARIES = [after_verified(s) for s in PHASES[:-1]]


def _first_pull_in_flight() -> Pred:
    return lambda e: is_("pull", step="prepull")(e) and e["state"] not in ("queued", "done", "failed")


INSIDE = [
    KillPoint("preflight-backup-taken", "preflight", lambda: is_("applied", step="preflight", action="backup")),
    KillPoint("maintenance-freeze-written", "maintenance", lambda: is_("applied", step="maintenance",
                                                        target="etcd manager/announcement")),
    KillPoint("registry-starting-manager", "registry", lambda: lambda e: is_("progress", step="registry", phase="phase")(e)
              and e["message"] == "starting the manager"),
    KillPoint("prepull-first-pull-in-flight", "prepull", _first_pull_in_flight),
    KillPoint("aliases-committed", "aliases", lambda: is_("applied", step="aliases")),
    KillPoint("allowlists-committed", "allowlists", lambda: is_("applied", step="allowlists")),
    KillPoint("cleanup-applying", "cleanup", lambda: is_("step-status", step="cleanup", status="applying")),
    KillPoint("agent-cleanup-first-removal", "agent-cleanup", lambda: is_("pull", step="agent-cleanup", state="removed")),
]



def in_step_order() -> list[KillPoint]:
    """Inside points and boundaries interleaved as a run meets them: one migration for all."""
    inside = {p.step: p for p in INSIDE}
    out = []
    for b in BOUNDARIES:
        if b.step in inside:
            out.append(inside[b.step])
        out.append(b)
    return out


CHAIN = in_step_order()


def test_sigkill_at_every_boundary_and_inside_every_writing_step(fcli: Cli, reference: Reference) -> None:
    info = fcli.info
    landed: list[str] = []
    assert len(CHAIN) == len(BOUNDARIES) + len(INSIDE) == 17
    for i, point in enumerate(CHAIN):
        tail = Tail(fcli.transcript)
        tail.poll()                                   # only this invocation's events count
        runner = fcli.start("run", "--yes", log=f"run-{i}.log")
        tail.wait_for(point.pred(), runner, what=point.id)
        runner.kill()

        phase = current_phase(fcli)
        old, new = reference.around(phase)
        side = old_or_new(ClusterState.read(info), old, new, f"{point.id} (interrupted in {phase})",
                          via=(info.harbor_host, info.target_registry))
        landed.append(f"{point.id}: {phase} {side}")
        if phase != "finish":
            status, _journal = step_status(fcli, phase)
            assert status in ("inspecting", "inspected", "planned", "applying", "applied", "pending"), status

        if i == 0:
            # The operator's immediate retry: refused, naming the dead holder and the lease.
            r = fcli.run("run", "--yes")
            assert r.returncode == 3, r.stdout + r.stderr
            assert f"(pid {runner.pid})" in r.stdout and "lease" in r.stdout, r.stdout
        assert free_lock_of_dead_runner(info, runner.pid)

        if i > 0:
            # Every invocation after the first resumed the run, and said so first thing.
            out = runner.output()
            assert "resuming run " in out.splitlines()[0], out[:2000]
            if CHAIN[i - 1].id == "registry-starting-manager":
                # The killed run's start command outlived it and brought the manager back: the
                # resume stopped it again before touching the registry configuration.
                assert "[registry]   the manager answers although this step had stopped it: stopping it " \
                       "again" in out, out[-3000:]
        if point.id == "registry-starting-manager":
            deadline = time.monotonic() + 20
            while not manager_up(info):
                assert time.monotonic() < deadline, "the killed run's start command did not bring the manager up"
                time.sleep(0.1)

    r = fcli.run("run", "--yes")
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-2000:]
    assert "resuming run " in r.stdout and "run verified (exit 0)" in r.stdout
    diff = EndState.read(info).differences(reference.end)
    assert not diff, "\n".join(diff[:30])

    runs = runs_of(read_events(fcli.transcript))
    assert len(runs) == len(CHAIN) + 1
    assert all(run[0]["resumed"] for run in runs[1:])
    # Every step interrupted while applying was resumed from its journal, and the operator was told.
    said = [e["message"] for run in runs[1:] for e in run
            if e["kind"] == "log" and e["level"] == "warning" and e["message"].startswith("resuming step")]
    assert len(said) >= 6, said
    print("\n".join(landed))
