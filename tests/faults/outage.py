"""Taking the sandbox's real services away and back, by their pidfiles, and acting on engine events.

Every service is stopped the way it dies in production: etcd and dockerd by SIGKILL of the
process the sandbox recorded (`Sandbox.proc("etcd")`, `Sandbox.agent_proc(agent)`),
PostgreSQL by a fast shutdown (`pg_ctl -m fast`, which terminates every session). They come
back through the sandbox's own start functions, on the same data directories.
"""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Callable
from typing import Any

from backends.events import Event
from backends.sandbox import services
from backends.sandbox.cluster import Sandbox
from backends.sandbox.layout import Agent, SandboxInfo
from backends.sandbox.procs import wait_gone


def kill_etcd(info: SandboxInfo) -> None:
    proc = Sandbox(info.path).proc("etcd")
    pid = proc.pid()
    assert pid is not None and proc.alive(), "the sandbox's etcd is not running"
    os.kill(pid, signal.SIGKILL)
    assert wait_gone(pid, 10)


def start_etcd(info: SandboxInfo) -> None:
    sb = Sandbox(info.path)
    services.start_etcd(sb.proc("etcd"), sb.path / "etcd", info.ports.etcd, info.ports.etcd_peer)


def stop_postgres(info: SandboxInfo) -> None:
    sb = Sandbox(info.path)
    assert services.stop_postgres(sb.proc("postgres"), sb.path / "pg"), "PostgreSQL was not running"


def start_postgres(info: SandboxInfo) -> None:
    sb = Sandbox(info.path)
    services.start_postgres(sb.proc("postgres"), sb.path / "pg", info.ports.postgres, info.creds.db_user,
                            info.creds.db_password)


def agent(info: SandboxInfo, agent_id: str) -> Agent:
    return next(a for a in info.agents if a.id == agent_id)


def kill_dockerd(info: SandboxInfo, agent_id: str) -> None:
    """kill -9 of one agent's daemon (its containerd dies with it: PDEATHSIG, docs/sandbox.md)."""
    proc = Sandbox(info.path).agent_proc(agent(info, agent_id))
    pid = proc.pid()
    assert pid is not None and proc.alive(), f"dockerd of {agent_id} is not running"
    os.kill(pid, signal.SIGKILL)
    assert wait_gone(pid, 10)


def start_dockerd(info: SandboxInfo, agent_id: str) -> None:
    """Restart on the same directories: it cleans what the crash left (docs/sandbox.md)."""
    sb = Sandbox(info.path)
    a = agent(info, agent_id)
    agent_dir, exec_root, sock = sb.agent_dirs(a)
    services.start_dockerd(sb.agent_proc(a), agent_dir, exec_root, sock, info.ports.hub_registry, a.index)


class OnEvent:
    """An engine sink that runs `action` once, synchronously, when an event matches.

    The engine emits an event and then goes on, so an action taken here happens at exactly
    that point of the step: the in-process counterpart of following a runner's transcript,
    without the race between the runner's next write and the test's reaction.
    """

    def __init__(self, pred: Callable[[dict[str, Any]], bool], action: Callable[[], None]) -> None:
        self.pred = pred
        self.action = action
        self.fired = threading.Event()
        self.errors: list[BaseException] = []   # the engine swallows a sink's exceptions

    def __call__(self, e: Event) -> None:
        if not self.fired.is_set() and self.pred(e.to_json()):
            self.fired.set()
            try:
                self.action()
            except BaseException as exc:
                self.errors.append(exc)
                raise

    def check(self) -> None:
        assert self.fired.is_set(), "the event never came"
        if self.errors:
            raise self.errors[0]


def in_thread(fn: Callable[[], None]) -> Callable[[], None]:
    """An action that runs `fn` in the background (so the engine's loop keeps going meanwhile)."""
    def go() -> None:
        threading.Thread(target=fn, daemon=True).start()
    return go
