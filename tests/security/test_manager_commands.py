"""Manager stop/start commands from the plan are never interpreted by a shell.

A plan gives them as argument lists; `[manager] stop = ["/bin/sh", "-c", "..."]` runs a shell
because the operator wrote one, and is not the point. The points are:

- a single string with `;`, `$(...)` or backticks is refused by plan validation (field, rule,
  fix), so it is never split, let alone executed (exit 2 through the CLI, nothing created);
- an argument *element* holding `; touch FILE`, `$(touch FILE)` or a backtick command reaches
  the program verbatim: `/bin/echo` prints those characters and no file appears. Shown twice:
  through the manager control itself, and through a `run --yes --steps registry` whose plan's
  stop command is that echo (the step then waits for the manager to stop, which it never
  does, and refuses to write: "the manager still answers ... after the stop command").
"""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

import pytest
from engine.support import Cli, etcd_ns

from backends.errors import ConfigError, MigrateError
from backends.manager_control import ManagerControl
from backends.plan_file import plan_from_mapping
from backends.sandbox.layout import SandboxInfo

pytestmark = [pytest.mark.docker]


def markers() -> list[Path]:
    tag = uuid.uuid4().hex[:8]
    return [Path(f"/tmp/bairm-pwned-{tag}-{i}") for i in range(3)]


def injections(files: list[Path]) -> list[str]:
    a, b, c = files
    return [f"; touch {a}", f"$(touch {b})", f"`touch {c}`"]


@pytest.mark.parametrize("command", ["systemctl stop backendai-manager; touch {f}",
                                     "$(touch {f}) systemctl stop backendai-manager",
                                     "systemctl stop `touch {f}` backendai-manager"])
def test_a_single_string_command_is_refused(command: str) -> None:
    f = markers()[0]
    with pytest.raises(ConfigError) as e:
        plan_from_mapping({"manager": {"stop": command.format(f=f)}}, file="plan.toml")
    line = str(e.value)
    assert "plan.toml: [manager.stop] must be a list of arguments, not one string (it is never run through a " \
           "shell)" in line and '; fix: write e.g. stop = ["systemctl", "stop", "backendai-manager"]' in line, line
    assert not f.exists()


def test_argument_elements_reach_the_program_verbatim() -> None:
    files = markers()
    args = injections(files)
    mc = ManagerControl("http://127.0.0.1:9/", ["/bin/echo", *args], ["/bin/echo", "start"], timeout=5)
    rc, out = asyncio.run(mc._run(mc.stop_argv, "stop"))
    assert rc == 0 and out == " ".join(args)
    assert not any(f.exists() for f in files)


def test_injection_in_the_plans_stop_command_runs_nothing(sandbox: SandboxInfo, tmp_path: Path) -> None:
    info = sandbox
    scli = Cli.create(info, tmp_path)
    files = markers()
    stop = ", ".join(f'"{x}"' for x in ["/bin/echo", *injections(files)])
    text = info.plan_toml.read_text()
    start_of_stop = text.index("\nstop = [")
    end_of_stop = text.index("\n", start_of_stop + 1)
    plan = scli.home / "plan-injection.toml"
    plan.write_text(text[:start_of_stop] + f"\nstop = [{stop}]\ntimeout = \"1s\"" + text[end_of_stop:])
    c = scli.with_plan(plan)
    before = etcd_ns(info)
    r = c.run("run", "--yes", "--steps", "registry")
    assert r.returncode == 1, r.stdout[-3000:]
    assert f"the manager still answers at {info.manager_url}/ 1s after the stop command; fix: check that [manager] " \
           "stop really stops this manager; nothing was written" in r.stdout, r.stdout[-2000:]
    assert not any(f.exists() for f in files)
    assert etcd_ns(info) == before


def _gone(pid: int) -> bool:
    """Not running: no such process, or a zombie nobody has reaped yet (PID 1 of a container may not)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return True
    return state in ("Z", "X")


def test_a_hanging_command_is_killed_with_everything_it_started(tmp_path: Path) -> None:
    """Issue 14, finding 8: the timed-out command was killed, its children were left running."""
    import sys
    import time

    pidfile = tmp_path / "child.pid"
    script = ("import subprocess, sys, time\n"
              "p = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(300)'])\n"
              f"open({str(pidfile)!r}, 'w').write(str(p.pid))\n"
              "time.sleep(300)\n")
    mc = ManagerControl("http://127.0.0.1:9/", [sys.executable, "-c", script], ["/bin/true"], timeout=2)
    with pytest.raises(MigrateError) as e:
        asyncio.run(mc.stop())
    assert "the manager stop command did not finish within 2s; it was killed with every process it had started" \
           in str(e.value)
    child = int(pidfile.read_text())
    deadline = time.monotonic() + 10
    while not _gone(child):
        assert time.monotonic() < deadline, f"the command's child {child} is still running"
        time.sleep(0.05)
