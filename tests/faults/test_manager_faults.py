"""The manager's stop command fails; the manager does not come back after start.

Both through the sandbox's fault switches (backends/sandbox/manager.py): `manager.fail-stop`
makes the plan's stop command exit 1 without stopping; `manager.fail-start` makes the start
command exit 0 while the manager never answers again.

One migration, three invocations of the same command:

1. Stop fails: the registry step writes nothing (old(registry), manager still up), and the
   verdict quotes the command's exit status and output and says to stop the manager by hand.
2. Start fails (with `[manager] timeout = "4s"` so that the test does not wait a minute): the
   new configuration was written with the manager down, and the manager does not answer after
   the start. The step restores the previous configuration and tries the start once more; the
   switch is still there, so that fails too. The store is exactly old(registry), the manager
   is down, and the verdict says both: configuration restored, manager not back, start it by
   hand and run the same command again. (Before, the step left the new configuration with the
   manager down and no restore, unlike its own docstring's promise.)
3. After the operator clears the cause and starts the manager as told, the same command
   completes the migration with the reference end state.
"""

from __future__ import annotations

import pytest
from engine.support import Cli, EndState, manager_up

from backends.sandbox.cluster import Sandbox

from .conftest import free_lock_of_dead_runner
from .states import ClusterState, Reference, last_error_line, old_or_new, step_status

pytestmark = [pytest.mark.docker]


def resume(c: Cli, reference: Reference, pid: int) -> None:
    free_lock_of_dead_runner(c.info, pid)
    r = c.run("run", "--yes")
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-2000:]
    diff = EndState.read(c.info).differences(reference.end)
    assert not diff, "\n".join(diff[:30])


def test_manager_stop_fails_then_manager_does_not_come_back(fcli: Cli, reference: Reference) -> None:
    info = fcli.info
    old, new = reference.around("registry")
    c = fcli.with_plan(fcli.plan_copy("plan-timeout.toml", [("\n[target]\n", '\ntimeout = "4s"\n\n[target]\n')]))

    # 1. the stop command fails: nothing written, the manager keeps running
    stop_switch = info.path / "manager.fail-stop"
    stop_switch.touch()
    runner = c.start("run", "--yes", log="run-stop.log")
    rc, out = runner.finish(120), runner.output()
    assert rc == 1, out[-3000:]
    line = last_error_line(out)
    assert "the manager stop command exited with 1: manager stop failed (sandbox fault switch " \
           "manager.fail-stop)" in line, line
    assert line.endswith("; fix: check [manager] stop in the plan (or stop the manager by hand), then run the same "
                         "command again; nothing was written"), line
    assert old_or_new(ClusterState.read(info), old, new, "stop failed") == "old"
    assert manager_up(info)
    assert step_status(c, "registry") == ("failed", ["backup"])
    stop_switch.unlink()

    # 2. the same command again; now the manager does not come back after the start
    start_switch = info.path / "manager.fail-start"
    start_switch.touch()
    free_lock_of_dead_runner(info, runner.pid)
    runner = c.start("run", "--yes", log="run-start.log")
    rc, out = runner.finish(120), runner.output()
    assert rc == 1, out[-3000:]
    line = last_error_line(out)
    url = f"http://127.0.0.1:{info.ports.manager}/"
    assert f"the manager did not answer at {url} within 4s after start" in line, line
    assert "the previous registry configuration was restored, but the manager did not come back after a second " \
           "start either" in line, line
    assert line.endswith("; fix: start the manager by hand (the plan's [manager] start command) and read its "
                         "log; then run the same command again"), line
    assert "[registry]   recovering after failure (MigrateError): restoring the backup" in out
    assert old_or_new(ClusterState.read(info), old, new, "start failed") == "old"
    assert not manager_up(info)
    assert step_status(c, "registry") == ("failed", ["backup"])

    # 3. the operator clears the cause and starts the manager, as told; the same command finishes
    start_switch.unlink()
    Sandbox(info.path).start_manager()
    resume(c, reference, runner.pid)
