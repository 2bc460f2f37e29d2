"""Every ending is recorded as what it was, never as "verified"; a signal leaves the run resumable.

Issue 14, finding 2: `runner.run` started from "verified, exit 0" and caught only the tool's own
errors, so a full state disk or Ctrl-C printed `run verified (exit 0)`, wrote `run-finished
verified/0` to transcript.jsonl, then exited 1 or 130 with a traceback; SIGTERM and SIGHUP (a
closed SSH session) had no handler at all.

1. Signals, one run interrupted three times at real points and resumed each time: SIGINT while
   the pre-pull applies (exit 130), SIGHUP at the cleanup gate with the terminal already gone
   (stdout closed: exit 129, the transcript has it all), SIGTERM at the cleanup gate (exit 143).
   Each time: the last line (when there is a terminal) and the transcript's `run-finished` say
   `aborted` with that exit status and the cluster's condition (frozen by this run), no
   traceback, the lock is released at once. The fourth invocation resumes to the end state of
   one uninterrupted migration.
2. A full state disk (the state directory on a 48 KiB tmpfs): the run stops at the first save
   that does not fit, exit 1, `run failed` naming the file and the cause in the last line and
   the transcript (on another disk); the state file is the previous one, whole. With space
   again (the tmpfs grown), the same command resumes to the end.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
from engine.support import Cli, EndState, Tail, cli_on, end_sessions, is_, lock_entry, read_events, runs_of

from backends.sandbox.layout import SandboxInfo

from .conftest import restore_services
from .states import Reference

pytestmark = [pytest.mark.docker]


def _last_line(text: str) -> str:
    return [ln for ln in text.splitlines() if ln.strip()][-1]


def _ending(c: Cli) -> dict[str, object]:
    (fin,) = [e for e in runs_of(read_events(c.transcript))[-1] if e["kind"] == "run-finished"]
    return fin


def _interrupt(c: Cli, sig: int, at: object, what: str, *, close_stdout: bool = False) -> tuple[int, str, str]:
    """Starts `run --yes`, sends `sig` when the transcript shows `at`; returns (rc, stdout, stderr)."""
    err_path = c.home / f"stderr-{sig}.log"
    with open(err_path, "w") as err:
        proc = subprocess.Popen(c.argv("run", "--yes"), env=c.env, cwd=c.home, stdout=subprocess.PIPE, stderr=err,
                                text=True)
        try:
            tail = Tail(c.transcript)
            tail.poll()
            tail.events.clear()
            deadline = time.monotonic() + 240
            while not any(at(e) for e in tail.poll()):       # type: ignore[operator]
                assert proc.poll() is None, f"the run ended before {what}: {err_path.read_text()[-2000:]}"
                assert time.monotonic() < deadline, f"no {what}"
                time.sleep(0.01)
            out = ""
            if close_stdout:
                assert proc.stdout is not None
                proc.stdout.close()          # the SSH session is gone: nobody reads the terminal
            proc.send_signal(sig)
            if not close_stdout:
                out, _ = proc.communicate(timeout=60)
            rc = proc.wait(timeout=60)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait(10)
    return rc, out, err_path.read_text()


def test_signals_end_the_run_as_aborted_and_it_resumes(fresh_sandbox: SandboxInfo, tmp_path: Path,
                                                       reference: Reference) -> None:
    info = fresh_sandbox
    try:
        with cli_on(info, tmp_path) as c0:
            c = c0.with_plan(c0.plan_copy("plan-wait.toml", [('wait_for_sessions = "0s"', 'wait_for_sessions = "300s"')]))
            cases = [(signal.SIGINT, 130, is_("step-status", step="prepull", status="applying"), "the pre-pull", False),
                     (signal.SIGHUP, 129, is_("progress", step="cleanup", phase="wait"), "the cleanup wait", True),
                     (signal.SIGTERM, 143, is_("progress", step="cleanup", phase="wait"), "the cleanup wait", False)]
            for sig, code, at, what, closed in cases:
                rc, out, err = _interrupt(c, sig, at, what, close_stdout=closed)
                name = signal.Signals(sig).name
                assert rc == code, (name, rc, out[-2000:], err[-2000:])
                assert "Traceback" not in out + err and "run verified" not in out, (name, out[-2000:], err[-2000:])
                if not closed:
                    last = _last_line(out)
                    assert last.startswith(f"run aborted (exit {code}): stopped by {name}; the step in progress is "
                                           "kept as its journal has it: run the same command again to resume; "
                                           "cluster: new sessions FROZEN by this run"), last
                fin = _ending(c)
                assert (fin["status"], fin["exit_code"]) == ("aborted", code), fin
                assert f"stopped by {name}" in str(fin["message"]) and "FROZEN by this run" in str(fin["cluster"])
                assert lock_entry(info) is None, f"{name}: the lock was not released"
            assert end_sessions(info) == 2
            r = c.run("run", "--yes", timeout=300)
            assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-2000:]
            assert _last_line(r.stdout) == ("run verified (exit 0); cluster: new sessions allowed (manager/status = "
                                            "running), manager up")
            assert len(runs_of(read_events(c.transcript))) == 4
            diff = EndState.read(info).differences(reference.end)
            assert not diff, "\n".join(diff[:30])
    finally:
        restore_services(info)


def test_a_full_state_disk_fails_the_run_honestly_and_it_resumes(fresh_sandbox: SandboxInfo, tmp_path: Path,
                                                                 reference: Reference) -> None:
    info = fresh_sandbox
    with cli_on(info, tmp_path, sessions_ended=True) as c:
        c.state_dir.mkdir()
        subprocess.run(["mount", "-t", "tmpfs", "-o", "size=48k,mode=0700", "tmpfs", str(c.state_dir)], check=True,
                       timeout=30)
        try:
            r = c.run("run", "--yes", timeout=300)
            assert r.returncode == 1, r.stdout[-3000:] + r.stderr[-2000:]
            assert "Traceback" not in r.stdout + r.stderr and "verified (exit" not in r.stdout
            last = _last_line(r.stdout)
            assert last.startswith(f"run failed (exit 1): cannot save the run state to {c.state_dir}/state.json (No "
                                   "space left on device); fix: free space on that file system or make it writable "
                                   "(or use --state-dir), then run the same command again: the last saved state "
                                   "resumes; cluster: "), last
            fin = _ending(c)
            assert (fin["status"], fin["exit_code"]) == ("failed", 1) and "No space left on device" in str(fin["message"])
            json.loads((c.state_dir / "state.json").read_text())        # the previous state, whole
            assert not [p for p in os.listdir(c.state_dir) if p.endswith(".tmp")]
            assert lock_entry(info) is None

            subprocess.run(["mount", "-o", "remount,size=8m", str(c.state_dir)], check=True, timeout=30)
            r = c.run("run", "--yes", timeout=300)
            assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-2000:]
            assert "resuming run " in r.stdout
            diff = EndState.read(info).differences(reference.end)
            assert not diff, "\n".join(diff[:30])
        finally:
            subprocess.run(["umount", str(c.state_dir)], check=False, timeout=30)
