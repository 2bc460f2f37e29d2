"""Fixtures for the security suite: a CLI on a freshly reset sandbox whose sessions have ended."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from engine.support import Cli, end_sessions

from backends.sandbox.layout import SandboxInfo


@pytest.fixture
def scli(fresh_sandbox: SandboxInfo, tmp_path: Path) -> Iterator[Cli]:
    assert end_sessions(fresh_sandbox) == 2
    c = Cli.create(fresh_sandbox, tmp_path)
    try:
        yield c
    finally:
        for r in c.runners:
            r.ensure_dead()
