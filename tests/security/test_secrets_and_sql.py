"""A full migration with credentials set everywhere leaks none of them; hostile SQL stays data.

Credentials in play: etcd's root password and the database password (manager.toml), the
Harbor user and password in the plan's registry JSON, and -- set in etcd before the run, as a
cluster that pulled private images from Docker Hub would have it -- a username and password
on Docker Hub's own registry entry. That last password has characters that URL-encoding
changes (`@ : / + % & é` and a space), so the URL-encoded form is a distinct form to look for.
A domain named `x'); DROP TABLE domains; --` (allowing Docker Hub, like the others) exists too.

After one `run --yes` (exit 0):

- every file the run wrote -- under its home (XDG config and state dirs, the state directory
  with its backups, the transcript directory, TMPDIR for anything temporary, HOME for stray
  logs) -- and its stdout and stderr are searched for every secret, plain, in every base64
  alignment (standard and URL-safe, and as HTTP Basic `user:password`) and URL-encoded;
- every state and transcript file is 0600 and their directories 0700;
- the hostile domain went through the whole allowlists step like any other (its list now
  allows the target and no longer Docker Hub) and the domains table is intact;
- if the wizard's screenshot tool exists (tui/screenshots.py) and `make screenshots` has
  produced SVGs from the default sandbox, those are searched for that sandbox's secrets too.

tests/engine/test_secrets_on_disk.py checks the state and transcript directories of the
reference run for the three sandbox passwords; this adds Docker Hub's password from etcd, the
URL-encoded forms, every other file and both output streams, and the hostile domain.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import stat
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import asyncpg
import pytest
from conftest import etcd_store_for
from engine.support import REPO, Cli, dirs_under, end_sessions, files_under, secret_forms
from faults.states import vault_of

from backends.sandbox.cluster import Sandbox
from backends.sandbox.layout import SandboxInfo
from backends.state import StateStore

pytestmark = [pytest.mark.docker]

HOSTILE = "x'); DROP TABLE domains; --"
HUB_USER = "hub-operator"


@dataclass
class Migrated:
    cli: Cli
    result: subprocess.CompletedProcess[str]
    written: list[Path]
    secrets: dict[str, tuple[str, str | None]]     # what -> (secret, user)
    domains_before: dict[str, list[str]]


def forms(secret: str, user: str | None) -> set[str]:
    return secret_forms(secret, user) | {quote(secret, safe=""), quote(secret)}


async def _prepare(info: SandboxInfo, hub_password: str) -> dict[str, list[str]]:
    store = etcd_store_for(info, info.namespace)
    await store.connect()
    try:
        await store.write({"config/docker/registry/index.docker.io/username": HUB_USER,
                           "config/docker/registry/index.docker.io/password": hub_password})
    finally:
        await store.close()
    conn = await asyncpg.connect(info.pg_dsn())
    try:
        await conn.execute(
            "INSERT INTO domains (name, description, is_active, total_resource_slots, allowed_vfolder_hosts,"
            " allowed_docker_registries, dotfiles) VALUES ($1, 'hostile name', true, '{}', '{local}',"
            " $2::varchar[], ''::bytea)", HOSTILE, ["index.docker.io"])
        return {r["name"]: list(r["allowed_docker_registries"])
                for r in await conn.fetch("SELECT name, allowed_docker_registries FROM domains")}
    finally:
        await conn.close()


@pytest.fixture(scope="module")
def migrated(sandbox: SandboxInfo, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Migrated]:
    """One migration for the whole module, on a reset sandbox whose sessions have ended."""
    info = sandbox
    Sandbox(info.path).reset(log=lambda *_: None)
    assert end_sessions(info) == 2
    cli = Cli.create(info, tmp_path_factory.mktemp("security-run"))
    hub_password = f"Hub p@ss:w/rd+%&é={secrets.token_hex(4)}"
    domains_before = asyncio.run(_prepare(info, hub_password))
    home = cli.home
    (home / "tmp").mkdir()
    env = {**cli.env, "TMPDIR": str(home / "tmp"), "HOME": str(home)}
    before = set(files_under(home))
    r = subprocess.run(cli.argv("run", "--yes"), env=env, cwd=home, capture_output=True, text=True, timeout=300)
    written = sorted(set(files_under(home)) - before)
    c = info.creds
    yield Migrated(cli, r, written, {
        "etcd password": (c.etcd_password, c.etcd_user), "database password": (c.db_password, c.db_user),
        "Harbor password": (c.harbor_password, c.harbor_user), "Docker Hub password": (hub_password, HUB_USER)},
        domains_before)


def leaks(text: str, secrets_: dict[str, tuple[str, str | None]]) -> list[str]:
    return [f"{what} ({'plain' if form == s else 'encoded: ' + form[:12]})"
            for what, (s, user) in secrets_.items() for form in forms(s, user) if form in text]


def test_full_migration_leaks_no_secret_and_keeps_files_private(migrated: Migrated) -> None:
    m = migrated
    assert m.result.returncode == 0, m.result.stdout[-3000:] + m.result.stderr[-2000:]
    c = m.cli
    names = {p.name for p in m.written}
    assert {"state.json", "etcd-namespace.json", "domains.json", "transcript.jsonl", "transcript.md",
            "seal.key"} <= names, names
    # The Docker Hub password really was in play: the backups hold it, sealed (a rollback restores it).
    state = StateStore(c.state_dir, vault=vault_of(c)).load()
    assert state is not None and state.steps["preflight"].backup is not None
    items = state.steps["preflight"].backup["etcd"]["items"]
    assert items["config/docker/registry/index.docker.io/password"] == m.secrets["Docker Hub password"][0]
    assert "sealed:v2:" in (c.state_dir / "state.json").read_text()   # AES-GCM (backends/vault.py)

    found = [f"{p.relative_to(c.home)}: {x}" for p in m.written
             for x in leaks(p.read_bytes().decode("utf-8", "replace"), m.secrets)]
    found += [f"stdout: {x}" for x in leaks(m.result.stdout, m.secrets)]
    found += [f"stderr: {x}" for x in leaks(m.result.stderr, m.secrets)]
    assert not found, "\n".join(found)

    private = [p for p in m.written if c.state_dir in p.parents or c.transcript_dir in p.parents]
    assert len(private) >= 5
    loose = [f"{p}: {stat.filemode(p.stat().st_mode)}" for p in private if stat.S_IMODE(p.stat().st_mode) != 0o600]
    loose += [f"{d}/: {stat.filemode(d.stat().st_mode)}" for d in dirs_under(c.state_dir, c.transcript_dir)
              if stat.S_IMODE(d.stat().st_mode) != 0o700]
    assert not loose, "\n".join(loose)

    _screenshots_leak_nothing()


def _screenshots_leak_nothing() -> None:
    """The wizard's screenshots (tui/screenshots.py, `make screenshots`), when there are any."""
    shots = sorted((REPO / "screenshots").glob("*.svg"))
    sandbox = Path(os.environ.get("SANDBOX", str(REPO / ".sandbox")))
    if not ((REPO / "tui" / "screenshots.py").exists() and shots and (sandbox / "sandbox.json").exists()):
        print("no screenshots from the default sandbox to search (run `make screenshots`)")
        return
    c = SandboxInfo.load(sandbox).creds
    their = {"etcd password": (c.etcd_password, c.etcd_user), "database password": (c.db_password, c.db_user),
             "Harbor password": (c.harbor_password, c.harbor_user)}
    found = [f"{p.name}: {x}" for p in shots for x in leaks(p.read_text(errors="replace"), their)]
    assert not found, "\n".join(found)


def test_hostile_domain_name_survives_the_allowlists_step(migrated: Migrated) -> None:
    m = migrated
    assert m.result.returncode == 0, m.result.stdout[-3000:]
    assert "[allowlists]   applied update sql domains[x'); DROP TABLE domains; --].allowed_docker_registries" \
        in m.result.stdout

    async def rows() -> dict[str, list[str]]:
        conn = await asyncpg.connect(m.cli.info.pg_dsn())
        try:
            return {r["name"]: list(r["allowed_docker_registries"])
                    for r in await conn.fetch("SELECT name, allowed_docker_registries FROM domains")}
        finally:
            await conn.close()

    after = asyncio.run(rows())
    assert set(after) == set(m.domains_before)          # the table is there, every row with it
    assert after[HOSTILE] == ["cr.backend.ai"]
    for name, before in m.domains_before.items():
        want = [r for r in before if r != "index.docker.io"]
        want += [] if "cr.backend.ai" in want else ["cr.backend.ai"]
        assert after[name] == want, (name, before, after[name])
