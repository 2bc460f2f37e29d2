"""Fixtures for the engine tests (CONTRIBUTING.md, "Test suites"): the session sandbox reset per test,
the headless CLI as a subprocess, the real Backend.AI 20.09 CLI, and one uninterrupted
reference migration whose end state the interrupted runs must reproduce.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from oracle import Oracle, find_oracle

from backends.sandbox.cluster import Sandbox
from backends.sandbox.layout import SandboxInfo

from .support import Cli, EndState, cli_on, end_sessions


@pytest.fixture
def cli(fresh_sandbox: SandboxInfo, tmp_path: Path) -> Iterator[Cli]:
    """The CLI against a freshly reset sandbox; any runner still alive at the end is killed."""
    with cli_on(fresh_sandbox, tmp_path) as c:
        yield c


@pytest.fixture(scope="session")
def oracle_exe() -> Path:
    """The real 20.09 CLI (`$BAIRM_ORACLE` or .venv-oracle); missing is a failure, never a skip."""
    return find_oracle()


@pytest.fixture
def sandbox_oracle(sandbox: SandboxInfo, oracle_exe: Path) -> Iterator[Oracle]:
    """`backend.ai mgr` of 20.09 on the sandbox's own namespace, as an operator would run it."""
    o = Oracle.create(etcd_port=sandbox.ports.etcd, namespace=sandbox.namespace,
                      etcd_user=sandbox.creds.etcd_user, etcd_password=sandbox.creds.etcd_password,
                      exe=oracle_exe)
    try:
        yield o
    finally:
        o.close()


@dataclass
class ReferenceRun:
    """One uninterrupted `run --yes` on a fresh sandbox whose sessions had ended."""

    cli: Cli
    returncode: int
    stdout: str
    end: EndState


@pytest.fixture(scope="session")
def reference_run(sandbox: SandboxInfo, tmp_path_factory: pytest.TempPathFactory) -> ReferenceRun:
    Sandbox(sandbox.path).reset(log=lambda *_: None)
    assert end_sessions(sandbox) == 2
    c = Cli.create(sandbox, tmp_path_factory.mktemp("reference-run"))
    r = c.run("run", "--yes")
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-2000:]
    return ReferenceRun(c, r.returncode, r.stdout + r.stderr, EndState.read(sandbox))
