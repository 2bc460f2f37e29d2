"""Fixtures for the fault suite: the reference migration (once per session), a CLI on a freshly
reset sandbox whose sessions have ended, and the guarantee that every sandbox service a test
stopped or killed is running again afterwards, whatever the test's outcome.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest
from engine.support import Cli, EndState, cli_on, end_sessions, etcdctl, lock_entry, pid_alive

from backends.sandbox import services
from backends.sandbox.cluster import Sandbox
from backends.sandbox.layout import SandboxInfo

from .states import Reference, reference_run

FAULT_SWITCHES = ("manager.fail-stop", "manager.fail-start")


def restore_services(info: SandboxInfo) -> None:
    """Starts whatever of etcd, PostgreSQL, the agents' dockerd and the manager is not running."""
    sb = Sandbox(info.path)
    for f in FAULT_SWITCHES:
        (sb.path / f).unlink(missing_ok=True)
    services.start_etcd(sb.proc("etcd"), sb.path / "etcd", info.ports.etcd, info.ports.etcd_peer)
    services.start_postgres(sb.proc("postgres"), sb.path / "pg", info.ports.postgres, info.creds.db_user,
                            info.creds.db_password)
    for agent in info.agents:
        if not sb.agent_proc(agent).alive():
            agent_dir, exec_root, sock = sb.agent_dirs(agent)
            services.start_dockerd(sb.agent_proc(agent), agent_dir, exec_root, sock, info.ports.hub_registry,
                                   agent.index)
    sb.start_manager()


def free_lock_of_dead_runner(info: SandboxInfo, pid: int) -> bool:
    """What an operator may do once the holder is provably gone: revoke its lease (else 15 s).

    Returns whether there was a lock to free; refuses to touch a lock of a live process.
    """
    entry = lock_entry(info)
    if entry is None:
        return False
    holder, lease = entry
    assert holder.get("pid") == pid and not pid_alive(pid), holder
    etcdctl(info.ports.etcd, "lease", "revoke", format(lease, "x"), user=info.creds.etcd_user,
            password=info.creds.etcd_password)
    assert lock_entry(info) is None
    return True


@pytest.fixture(scope="session")
def reference(sandbox: SandboxInfo, tmp_path_factory: pytest.TempPathFactory) -> Reference:
    """One uninterrupted migration, read back before the first step and after each (states.py)."""
    Sandbox(sandbox.path).reset(log=lambda *_: None)
    assert end_sessions(sandbox) == 2
    c = Cli.create(sandbox, tmp_path_factory.mktemp("faults-reference"))
    states = asyncio.run(reference_run(c))
    end = EndState.read(sandbox)
    assert end.lock is None and end.manager_up
    return Reference(states, end)


@pytest.fixture
def fcli(fresh_sandbox: SandboxInfo, tmp_path: Path) -> Iterator[Cli]:
    """The CLI on a reset sandbox whose users have finished (so a run can complete)."""
    try:
        with cli_on(fresh_sandbox, tmp_path, sessions_ended=True) as c:
            yield c
    finally:
        restore_services(fresh_sandbox)
