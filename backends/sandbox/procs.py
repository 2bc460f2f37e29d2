"""Background processes tracked by pidfile: start detached, wait until healthy, stop by PID.

Each service the sandbox runs is a plain process started in its own session (so a closed
terminal does not take it down), with its pid in `DIR/run/<name>.pid` and its output in
`DIR/logs/<name>.log`. Stopping checks that the pid still belongs to the command we started
(pids wrap) and treats zombies as gone (docs/sandbox.md#docker-daemons-as-agents).
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path


class ServiceError(RuntimeError):
    """A sandbox service failed to start; the message names the log to read."""


@dataclass
class Proc:
    name: str
    run_dir: Path
    log_dir: Path

    @property
    def pidfile(self) -> Path:
        return self.run_dir / f"{self.name}.pid"

    @property
    def logfile(self) -> Path:
        return self.log_dir / f"{self.name}.log"

    def pid(self) -> int | None:
        try:
            return int(self.pidfile.read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return None

    def marker(self) -> str | None:
        """The token recorded at start that must appear in the process's command line."""
        try:
            parts = self.pidfile.read_text().split(maxsplit=1)
            return parts[1].strip() if len(parts) > 1 else None
        except OSError:
            return None

    def alive(self) -> bool:
        pid = self.pid()
        if pid is None or not pid_alive(pid):
            return False
        mark = self.marker()
        return mark is None or mark in cmdline(pid)

    def start(self, argv: Sequence[str], *, env: dict[str, str] | None = None,
              marker: str | None = None, cwd: Path | None = None,
              user: str | None = None) -> int:
        """Starts `argv` detached; `marker` (default: argv[0]) identifies it later."""
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.log_dir.mkdir(parents=True, exist_ok=True)
        full_env = dict(os.environ)
        if env:
            full_env.update(env)
        log = open(self.logfile, "ab")
        try:
            cmd = list(argv)
            if user is not None:
                cmd = ["runuser", "-u", user, "--", *cmd]
            p = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                 env=full_env, cwd=cwd, start_new_session=True, close_fds=True)
        finally:
            log.close()
        self.pidfile.write_text(f"{p.pid} {marker or os.path.basename(argv[0])}\n")
        return p.pid

    def stop(self, *, timeout: float = 20.0, sig: int = signal.SIGTERM) -> bool:
        """TERM, wait, then KILL; returns True if a live process was stopped."""
        pid = self.pid()
        if pid is None:
            return False
        stopped = False
        if self.alive():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)
            if not wait_gone(pid, timeout):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
                wait_gone(pid, 5.0)
            stopped = True
        with contextlib.suppress(FileNotFoundError):
            self.pidfile.unlink()
        return stopped

    def log_tail(self, lines: int = 15) -> str:
        try:
            return "\n".join(self.logfile.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


def pid_alive(pid: int) -> bool:
    """True for a running process; zombies (`State: Z` in /proc/PID/status) count as gone."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("State:"):
                    return "Z" not in line.split()[1]
    except OSError:
        return False
    return True


def cmdline(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def wait_gone(pid: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not pid_alive(pid):
            # Reap it if it is our child, so it does not linger as a zombie.
            with contextlib.suppress(ChildProcessError, OSError):
                os.waitpid(pid, os.WNOHANG)
            return True
        time.sleep(0.02)
    return not pid_alive(pid)


def wait_until(check: Callable[[], bool], *, timeout: float, what: str, proc: Proc | None = None,
               interval: float = 0.05) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if check():
                return
        except Exception:  # noqa: BLE001 - a failing probe means "not ready yet"
            pass
        pid = proc.pid() if proc is not None else None
        if proc is not None and pid is not None and not pid_alive(pid):
            raise ServiceError(f"{what} exited during start-up; last lines of {proc.logfile}:\n"
                               f"{proc.log_tail()}")
        time.sleep(interval)
    tail = f"; last lines of {proc.logfile}:\n{proc.log_tail()}" if proc else ""
    raise ServiceError(f"{what} was not ready after {timeout:g}s{tail}")


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.settimeout(0.2)
        return s.connect_ex((host, port)) == 0
