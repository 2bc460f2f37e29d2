"""The manager as the migration sees it: its version from `GET /`, and stopping/starting it.

The stop/start commands come from the plan (default `systemctl stop|start
backendai-manager`) and are run as argument lists, never through a shell, so nothing in a
plan can be interpreted as shell syntax. Neither command's exit code is trusted: a stop is
confirmed when `GET /` stops answering, a start when it answers again.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

import httpx

from .errors import ConnectError, MigrateError
from .secrets import Redactor

VERSION_RX = re.compile(r"^(\d+)\.(\d+)\.(\d+)(?:\.?(a|b|rc|dev)(\d+))?")
_PRE = {"dev": 0, "a": 1, "b": 2, "rc": 3, None: 4}


@dataclass(frozen=True, order=True)
class Version:
    major: int
    minor: int
    patch: int
    pre: int = 4          # dev < a < b < rc < final
    pre_n: int = 0
    text: str = ""

    @classmethod
    def parse(cls, s: str) -> Version:
        m = VERSION_RX.match(s.strip())
        if not m:
            raise ValueError(f"{s!r} is not a Backend.AI version (e.g. 20.09.29, 20.09.0b2)")
        return cls(int(m.group(1)), int(m.group(2)), int(m.group(3)), _PRE[m.group(4)],
                   int(m.group(5) or 0), s.strip())

    @property
    def line(self) -> str:
        return f"{self.major:02d}.{self.minor:02d}"

    def __str__(self) -> str:
        return self.text or f"{self.major}.{self.minor:02d}.{self.patch}"


@dataclass(frozen=True)
class Gate:
    ok: bool
    era: str             # "etcd" (images in etcd) | "db-images" (22.03-24.03) | "db-registries" (24.09+)
    message: str
    fix: str = ""


def gate_version(v: Version) -> Gate:
    """Harbor v2 support arrived in 20.03.11 and 20.09.0b2; images moved to PostgreSQL in 22.03."""
    if (v.major, v.minor) < (20, 3):
        return Gate(False, "etcd", f"manager {v} predates Harbor v2 support",
                    "upgrade to 20.03.11 or later (20.03 line) or 20.09.0b2 or later (20.09 line) first")
    if (v.major, v.minor) == (20, 3) and v < Version(20, 3, 11):
        return Gate(False, "etcd", f"manager {v} is older than 20.03.11, the first 20.03 release with harbor2",
                    "upgrade the manager to 20.03.11 or later, then run this again")
    if (v.major, v.minor) == (20, 9) and v < Version(20, 9, 0, _PRE["b"], 2):
        return Gate(False, "etcd", f"manager {v} is older than 20.09.0b2, the first 20.09 release with harbor2",
                    "upgrade the manager to 20.09.0b2 or later, then run this again")
    if (v.major, v.minor) in ((20, 3), (20, 9)) or v.major == 21:
        return Gate(True, "etcd", f"manager {v}: registries, images and aliases live in etcd")
    if v.major > 24 or (v.major == 24 and v.minor >= 9):
        return Gate(False, "db-registries",
                    f"manager {v} (24.09 or later) keeps registries in the container_registries table and images "
                    "in PostgreSQL; this tool migrates the etcd era (20.03.11-21.09) only",
                    "use the manager's own `backend.ai mgr image rescan` and registry APIs on this version")
    return Gate(False, "db-images",
                f"manager {v} (the 22.03-24.03 line) keeps images and aliases in PostgreSQL; this tool migrates "
                "the etcd era (20.03.11-21.09) only",
                "use `backend.ai mgr image rescan` / `mgr image alias` on this version")


@dataclass(frozen=True)
class ManagerInfo:
    api_version: str
    version: str


class ManagerControl:
    def __init__(self, url: str | None, stop: Sequence[str], start: Sequence[str], *, timeout: float = 60.0,
                 redactor: Redactor | None = None) -> None:
        self.url = url.rstrip("/") + "/" if url else None
        self.stop_argv = list(stop)
        self.start_argv = list(start)
        self.timeout = timeout
        self.redact = redactor or Redactor()
        # Awaited before the manager is stopped or started (the cluster lock's `ensure`).
        self.fence: Callable[[], Awaitable[None]] | None = None

    async def hello(self, *, timeout: float = 5.0) -> ManagerInfo:  # noqa: ASYNC109 - an HTTP timeout, not a task deadline
        if self.url is None:
            raise ConnectError("the manager's URL is unknown",
                               fix="set [manager] url in the plan, or service-addr in manager.toml")
        try:
            async with httpx.AsyncClient(timeout=timeout, follow_redirects=False) as c:
                r = await c.get(self.url)
        except httpx.HTTPError as e:
            raise ConnectError(f"the manager at {self.url} does not answer ({type(e).__name__})",
                               fix="start the manager, or correct [manager] url in the plan") from None
        try:
            data = r.json()
            return ManagerInfo(str(data["version"]), str(data["manager"]))
        except (ValueError, KeyError, TypeError):
            raise ConnectError(f"{self.url} answered HTTP {r.status_code} but not like a Backend.AI manager",
                               fix="point [manager] url at the manager's service port (not the web UI)") from None

    async def is_up(self) -> bool:
        try:
            await self.hello(timeout=2.0)
            return True
        except ConnectError:
            return False

    async def _run(self, argv: list[str], what: str) -> tuple[int, str]:
        try:
            # Its own session (and process group), so that a command that hangs is killed with
            # everything it started: killing only the direct child left e.g. `sh -c "... & ..."`
            # children running (issue 14, finding 8).
            proc = await asyncio.create_subprocess_exec(*argv, stdin=asyncio.subprocess.DEVNULL,
                                                        stdout=asyncio.subprocess.PIPE,
                                                        stderr=asyncio.subprocess.STDOUT, start_new_session=True)
        except FileNotFoundError:
            raise MigrateError(f"the manager {what} command {argv[0]!r} was not found",
                               fix=f"set [manager] {what} in the plan to the command that {what}s the manager") from None
        except PermissionError:
            raise MigrateError(f"the manager {what} command {argv[0]!r} is not executable",
                               fix="run as a user allowed to control the manager service") from None
        try:
            out, _ = await asyncio.wait_for(proc.communicate(), timeout=self.timeout)
        except BaseException as e:
            # A timeout, or the run being stopped (a signal, the lock lost): nothing it started
            # keeps running behind the operator's back.
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGKILL)
            with contextlib.suppress(Exception):
                await asyncio.wait_for(proc.wait(), timeout=5)
            if isinstance(e, TimeoutError):
                raise MigrateError(f"the manager {what} command did not finish within {self.timeout:g}s; it was "
                                   "killed with every process it had started",
                                   fix="check the service manager; then run this step again") from None
            raise
        # A command that finished is left alone with whatever it started: a start command may
        # well leave the manager running in its process group.
        return proc.returncode or 0, self.redact(out.decode(errors="replace")).strip()

    async def _wait(self, up: bool) -> bool:
        """Polls GET / until it says `up`; always asks at least once, even after the deadline."""
        deadline = time.monotonic() + self.timeout
        while True:
            if await self.is_up() == up:
                return True
            if time.monotonic() >= deadline:
                return False
            await asyncio.sleep(0.25)

    async def stop(self) -> str:
        if self.fence is not None:
            await self.fence()
        rc, out = await self._run(self.stop_argv, "stop")
        if rc != 0:
            raise MigrateError(f"the manager stop command exited with {rc}: {out[-300:] or '(no output)'}",
                               fix="check [manager] stop in the plan (or stop the manager by hand), then run the same command again; nothing was written")
        if not await self._wait(up=False):
            raise MigrateError(f"the manager still answers at {self.url} {self.timeout:g}s after the stop command",
                               fix="check that [manager] stop really stops this manager; nothing was written")
        return out

    async def start(self) -> str:
        if self.fence is not None:
            await self.fence()
        rc, out = await self._run(self.start_argv, "start")
        if rc != 0:
            raise MigrateError(f"the manager start command exited with {rc}: {out[-300:] or '(no output)'}",
                               fix="start the manager by hand (its configuration is already written), "
                                   "then resume to verify")
        if not await self._wait(up=True):
            raise MigrateError(f"the manager did not answer at {self.url} within {self.timeout:g}s after start",
                               fix="look at the manager's log (a registry it cannot validate stops it); "
                                   "then resume, or roll back this step")
        return out
