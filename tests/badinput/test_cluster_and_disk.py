"""Bad inputs that are not in the plan or manager.toml: rows of the cluster, and directories.

Issue 14, findings 2 and 8:

- a domain whose `allowed_docker_registries` holds NULL or "" used to be
  planned and then to fail at apply with a bare Python error (TypeError, ValueError), after
  maintenance had frozen the cluster. Now preflight's gate stops the run (exit 3) naming the
  domain, the rule and the SQL that repairs the row, before any step writes;
- a seal key directory and a state directory on a read-only file system (a read-only bind
  mount: root, who runs this suite, ignores permission bits) used to end in a traceback after
  `run verified (exit 0)`. Now each is refused up front (exit 2), naming the directory and the
  fix, and nothing is written: not the cluster, not the state directory.

Each runs `bai-registry-migrate run --yes` in this process (tui.cli.main), as test_bad_inputs.py does.
"""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import pytest

from backends.sandbox.layout import SandboxInfo
from tui.cli import main

from .conftest import Contents

pytestmark = [pytest.mark.docker]


@contextlib.contextmanager
def read_only(path: Path) -> Iterator[None]:
    """`path` (a directory) on a read-only bind mount of itself, for the duration of the block."""
    path.mkdir(parents=True, exist_ok=True)
    subprocess.run(["mount", "--bind", str(path), str(path)], check=True, timeout=30)
    try:
        subprocess.run(["mount", "-o", "remount,bind,ro", str(path)], check=True, timeout=30)
        yield
    finally:
        subprocess.run(["umount", str(path)], check=True, timeout=30)


def run_cli(info: SandboxInfo, tmp_path: Path, capfd: pytest.CaptureFixture[str],
            monkeypatch: pytest.MonkeyPatch, *, state: Path | None = None,
            transcript: bool = True) -> tuple[int, str]:
    """`run --yes`; without `transcript`, the transcript goes where it does by default: under
    the state directory."""
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg-config"))
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "xdg-state"))
    for var in ("BACKEND_CONFIG_FILE", "BACKEND_NAMESPACE", "BACKEND_ETCD_ADDR", "BACKEND_DB_ADDR"):
        monkeypatch.delenv(var, raising=False)
    rc = main(["run", "--yes", "--config", str(info.manager_toml), "--plan", str(info.plan_toml),
               "--state-dir", str(state or tmp_path / "state")]
              + (["--transcript", str(tmp_path / "transcript")] if transcript else []))
    out = capfd.readouterr()
    return rc, out.out + out.err


def verdicts(text: str) -> list[str]:
    return [ln for ln in text.splitlines()
            if ln.startswith(("bai-registry-migrate: error: ", "run gate (exit 3): "))]


async def _set_allowlist(info: SandboxInfo, domain: str, sql_value: str) -> None:
    conn = await asyncpg.connect(info.pg_dsn())
    try:
        await conn.execute(f"UPDATE domains SET allowed_docker_registries = {sql_value} WHERE name = $1",  # noqa: S608 - fixed literals
                           domain)
    finally:
        await conn.close()


# (The 20.09 schema declares the column NOT NULL, so a NULL list cannot be set up here.)
@pytest.mark.parametrize(("sql_value", "what", "repair"), [
    ("ARRAY['index.docker.io', NULL]::varchar[]", "holds a NULL entry",
     "UPDATE domains SET allowed_docker_registries = array_remove(allowed_docker_registries, NULL) WHERE name = "
     "'research'"),
    ("ARRAY['', 'index.docker.io']::varchar[]", 'holds an empty entry ""',
     "UPDATE domains SET allowed_docker_registries = array_remove(allowed_docker_registries, '') WHERE name = "
     "'research'"),
], ids=["null-entry", "empty-entry"])
def test_an_allowlist_the_step_cannot_update_stops_the_run_at_preflight(
        fresh_sandbox: SandboxInfo, tmp_path: Path, capfd: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch, sql_value: str, what: str, repair: str) -> None:
    info = fresh_sandbox
    asyncio.run(_set_allowlist(info, "research", sql_value))
    before = Contents.read(info)
    rc, text = run_cli(info, tmp_path, capfd, monkeypatch)
    assert "Traceback" not in text
    assert rc == 3, text[-2000:]
    (line,) = verdicts(text)
    assert f"step preflight is blocked: domain 'research': allowed_docker_registries {what} (rule: a list of " \
           "registry names the allowlists step can compare and update)" in line, line
    assert f"; fix: repair the row first, e.g. {repair}" in line, line
    diff = before.diff(Contents.read(info))
    assert not diff, "\n".join(diff[:20])


def test_a_read_only_seal_key_directory_is_refused_before_anything_is_written(
        fresh_sandbox: SandboxInfo, tmp_path: Path, capfd: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Finding 2: the key could not be created, a traceback followed `run verified (exit 0)`."""
    info = fresh_sandbox
    before = Contents.read(info)
    key_dir = tmp_path / "xdg-config" / "bai-registry-migrate"
    with read_only(key_dir):
        rc, text = run_cli(info, tmp_path, capfd, monkeypatch)
    assert "Traceback" not in text and "verified" not in text
    assert rc == 2, text[-2000:]
    (line,) = verdicts(text)
    assert f"[seal key] seal key {key_dir}/seal.key: cannot be created (Read-only file system) (rule: a writable " \
           "directory); fix: " in line, line
    assert not (tmp_path / "state").exists() and not (tmp_path / "transcript").exists()
    assert not before.diff(Contents.read(info))


def test_a_read_only_state_directory_is_refused_before_anything_is_written(
        fresh_sandbox: SandboxInfo, tmp_path: Path, capfd: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Finding 8: a read-only state directory ended in a traceback."""
    info = fresh_sandbox
    before = Contents.read(info)
    state = tmp_path / "state"
    with read_only(state):
        # The transcript in its default place, state/transcripts/<run>/: creating that directory
        # was the traceback.
        rc, text = run_cli(info, tmp_path, capfd, monkeypatch, state=state, transcript=False)
        assert list(state.iterdir()) == []
    assert "Traceback" not in text
    assert rc == 2, text[-2000:]
    (line,) = verdicts(text)
    assert f"[--state-dir] state directory {state} is not writable (rule: the run state is saved after every " \
           "transition); fix: pass --state-dir DIR with a writable directory" in line, line
    assert not before.diff(Contents.read(info))
