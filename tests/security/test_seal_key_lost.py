"""A lost seal key costs only the secret keys' rollback, not the resume or the rest of the rollback.

Issue 14, finding 5: the run state was unsealed as a whole, so a missing `seal.key` made every
resume and every rollback fail, not only the restoring of secrets.

Docker Hub's registry entry carries a password (set in etcd first, as on a cluster that pulled
private images), which the backups of preflight, registry and cleanup hold, sealed.

1. The run does its first steps, then the seal key is lost. The same command resumes to the
   end (exit 0), saying which sealed secrets it cannot open, that a new key was made because
   the original is missing, and what that costs.
2. That key is lost too. `rollback` restores everything (the etcd namespace and the domains
   exactly as before the run) except that one password, which it names, as absent, saying to
   set it by hand: exit 1, not 0, since the cluster is not entirely back; no sealed text is
   ever written to etcd in its place.
"""

from __future__ import annotations

import asyncio
import secrets
from pathlib import Path

import pytest
from conftest import etcd_store_for
from engine.support import Cli, domain_rows, end_sessions, etcd_ns

from backends.sandbox.layout import SandboxInfo

from .test_secrets_and_sql import HUB_USER

pytestmark = [pytest.mark.docker]

HUB_PW_KEY = "config/docker/registry/index.docker.io/password"


async def _put(info: SandboxInfo, pairs: dict[str, str]) -> None:
    store = etcd_store_for(info, info.namespace)
    await store.connect()
    try:
        await store.write(pairs)
    finally:
        await store.close()


def test_a_lost_seal_key_costs_only_the_secret_keys(fresh_sandbox: SandboxInfo, tmp_path: Path) -> None:
    info = fresh_sandbox
    hub_password = f"hub-{secrets.token_hex(8)}"
    asyncio.run(_put(info, {"config/docker/registry/index.docker.io/username": HUB_USER, HUB_PW_KEY: hub_password}))
    start_etcd, start_domains = etcd_ns(info), domain_rows(info)
    c = Cli.create(info, tmp_path)

    assert end_sessions(info) == 2
    r = c.run("run", "--yes", "--steps", "preflight,maintenance,registry", timeout=300)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-2000:]
    key = c.home / "xdg-config" / "bai-registry-migrate" / "seal.key"
    key.unlink()

    r = c.run("run", "--yes", timeout=300)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-2000:]
    notice = [ln for ln in r.stdout.splitlines() if "sealed secret(s) of this run cannot be opened" in ln]
    assert len(notice) == 1, r.stdout[-3000:]
    assert f"with the seal key {key} (created just now: the key the run started with is missing): " in notice[0]
    assert HUB_PW_KEY in notice[0] and "cannot be restored from the backup" in notice[0]
    pw = HUB_PW_KEY.encode()
    assert pw in start_etcd and pw not in etcd_ns(info)        # the cleanup step deleted Docker Hub's entry

    key.unlink()        # and the key made since, which sealed the cleanup step's backup
    r = c.run("rollback", timeout=300)
    assert r.returncode == 1, r.stdout[-3000:] + r.stderr[-2000:]
    assert "Traceback" not in r.stdout + r.stderr
    last = [ln for ln in r.stdout.splitlines() if ln.strip()][-1]
    assert last.startswith("run failed (exit 1): rolled back except 1 secret key(s) whose backed-up value is sealed "
                           f"with a missing or other seal key: {HUB_PW_KEY} (absent now); fix: set them by hand"), last
    for sid in ("cleanup", "allowlists", "aliases", "registry", "maintenance"):
        assert f"[{sid}] rolled back: " in r.stdout, sid

    now = etcd_ns(info)
    assert pw not in now, f"{HUB_PW_KEY} was written: {now[pw]!r}"
    diff = sorted(k for k in set(start_etcd) | set(now) if k != pw and start_etcd.get(k) != now.get(k))
    assert not diff, diff[:20]
    assert domain_rows(info) == start_domains
    assert not [k for k, v in now.items() if v.startswith(b"sealed:")]
