"""Fixtures for the security suite: a CLI on a freshly reset sandbox whose sessions have ended."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from engine.support import Cli, cli_on

from backends.sandbox.layout import SandboxInfo


@pytest.fixture
def scli(fresh_sandbox: SandboxInfo, tmp_path: Path) -> Iterator[Cli]:
    with cli_on(fresh_sandbox, tmp_path, sessions_ended=True) as c:
        yield c
