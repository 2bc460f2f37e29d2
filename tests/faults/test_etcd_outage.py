"""etcd dies in the middle of the `registry` and of the `aliases` apply, then comes back.

Driven in-process, with the fault taken exactly where the step is (an engine sink that kills
etcd synchronously when the step emits the event), so each outcome is deterministic; what
the operator reads is rendered by the runner's own `Printer`, and the one-line verdict is the
error the runner prints after `bai-registry-migrate: `. Each test takes two faults in two
invocations, then resumes with the CLI's `run --yes` to the reference end state:

registry
1. etcd is killed right after the configuration keys were written and before the image keys
   are: the cluster is in the worst mixed state this step has (a registry without images,
   the manager stopped). The step waits for etcd (the test restarts it once the step says it
   is waiting), restores its backup, starts the manager: the store is old(registry) exactly,
   the manager answers, and the verdict names etcd, says the old configuration was restored
   and tells to start etcd and run the same command again.
2. The next invocation re-applies and etcd is killed while the manager is being started
   again: everything is written, the manager comes back, verification cannot read etcd.
   The store is new(registry); the step is `applied`, verified by the resume.

aliases
1. etcd is killed as the step starts applying (before its backup is read): nothing written,
   store old(aliases), step failed, verdict naming etcd with the fix.
2. The next invocation is killed after the one transaction committed, before verification:
   store new(aliases), step `applied`.
"""

from __future__ import annotations

import asyncio
import io
from typing import Any

import pytest
from engine.support import Cli, EndState, is_, manager_up

from backends.errors import MigrateError
from backends.runner import Printer

from .outage import OnEvent, in_thread, kill_etcd, start_etcd
from .states import ClusterState, Reference, old_or_new, open_engine, step_status

pytestmark = [pytest.mark.docker]


def progress(step: str, *, starts: str = "", ends: str = "", has: str = "") -> Any:
    def pred(e: dict[str, Any]) -> bool:
        return is_("progress", step=step)(e) and e["message"].startswith(starts) and e["message"].endswith(ends) \
            and has in e["message"]
    return pred


async def attempt(c: Cli, steps: list[str], faulty: str, sinks: list[Any]) -> MigrateError:
    """One invocation: `steps` must verify, then `faulty` must fail; returns its error."""
    eng = await open_engine(c, sinks=sinks)
    err: MigrateError | None = None
    try:
        for sid in steps:
            assert await eng.run_step(sid) == "verified", sid
        with pytest.raises(MigrateError) as ei:
            await eng.run_step(faulty)
        err = ei.value
    finally:
        await asyncio.to_thread(start_etcd, c.info)      # no-op when it is already running
        await eng.close("failed" if err else "verified", 1 if err else 0, err.one_line() if err else "")
    assert err is not None
    return err


def resume_to_the_end(c: Cli, reference: Reference, step: str) -> None:
    r = c.run("run", "--yes")
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-2000:]
    assert "resuming run " in r.stdout.splitlines()[0]
    assert f"[{step}] warning: resuming step {step} (was applied)" in r.stdout, r.stdout[-3000:]
    diff = EndState.read(c.info).differences(reference.end)
    assert not diff, "\n".join(diff[:30])


def test_etcd_dies_inside_registry_apply(fcli: Cli, reference: Reference) -> None:
    info = fcli.info
    old, new = reference.around("registry")

    # 1. between the configuration write and the image writes
    out = io.StringIO()
    kill = OnEvent(progress("registry", starts="writing ", ends=" image keys"), lambda: kill_etcd(info))
    back = OnEvent(progress("registry", has="waiting up to"), in_thread(lambda: start_etcd(info)))
    err = asyncio.run(attempt(fcli, ["preflight", "maintenance"], "registry", [Printer(out), kill, back]))
    kill.check()
    back.check()
    line = err.one_line()
    assert f"etcd at 127.0.0.1:{info.ports.etcd} is unreachable" in line, line
    assert "the previous registry configuration was restored and the manager runs again" in line, line
    assert "; fix: start etcd" in line and "then run the same command again" in line, line
    printed = out.getvalue()
    assert "waiting up to" in printed and "manager started again" in printed, printed[-2000:]
    assert f"[registry] failed: {line}" in printed
    assert old_or_new(ClusterState.read(info), old, new, "etcd killed mid-write") == "old"
    assert ClusterState.read(info).store_differences(old) == []
    assert manager_up(info)
    status, journal = step_status(fcli, "registry")
    assert status == "failed" and journal == ["backup"], (status, journal)

    # 2. the next invocation: killed while the manager is being started again
    out = io.StringIO()
    kill = OnEvent(progress("registry", starts="starting the manager"), lambda: kill_etcd(info))
    err = asyncio.run(attempt(fcli, [], "registry", [Printer(out), kill]))
    kill.check()
    line = err.one_line()
    assert f"etcd at 127.0.0.1:{info.ports.etcd} is unreachable" in line and "; fix: start etcd" in line, line
    assert "[registry] applied" in out.getvalue()
    assert old_or_new(ClusterState.read(info), old, new, "etcd killed at the manager start") == "new"
    assert manager_up(info)
    assert step_status(fcli, "registry")[0] == "applied"

    resume_to_the_end(fcli, reference, "registry")


def test_etcd_dies_inside_aliases_apply(fcli: Cli, reference: Reference) -> None:
    info = fcli.info
    old, new = reference.around("aliases")
    before = ["preflight", "maintenance", "registry", "prepull"]

    # 1. as the step starts applying: its first read fails, nothing is written
    out = io.StringIO()
    kill = OnEvent(is_("step-status", step="aliases", status="applying"), lambda: kill_etcd(info))
    err = asyncio.run(attempt(fcli, before, "aliases", [Printer(out), kill]))
    kill.check()
    line = err.one_line()
    assert f"etcd at 127.0.0.1:{info.ports.etcd} is unreachable" in line and "; fix: start etcd" in line, line
    assert f"[aliases] failed: {line}" in out.getvalue()
    assert old_or_new(ClusterState.read(info), old, new, "etcd killed as aliases applies") == "old"
    assert step_status(fcli, "aliases")[0] == "failed"

    # 2. the next invocation: the transaction committed, then etcd dies before verification
    out = io.StringIO()
    kill = OnEvent(is_("applied", step="aliases"), lambda: kill_etcd(info))
    err = asyncio.run(attempt(fcli, [], "aliases", [Printer(out), kill]))
    kill.check()
    assert "; fix: start etcd" in err.one_line()
    assert old_or_new(ClusterState.read(info), old, new, "etcd killed after the aliases commit") == "new"
    assert step_status(fcli, "aliases") == ("applied", ["backup", "written"])

    resume_to_the_end(fcli, reference, "aliases")
