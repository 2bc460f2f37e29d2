"""Fixtures for the bad-input suite: the cluster's raw contents, read once on a reset sandbox."""

from __future__ import annotations

import asyncio
import base64
import json
from dataclasses import dataclass

import asyncpg
import pytest
from oracle import etcdctl

from backends.sandbox.cluster import Sandbox
from backends.sandbox.layout import SandboxInfo


@dataclass(frozen=True)
class Contents:
    """Every etcd key (all prefixes, raw bytes) and every row of domains, kernels and agents."""

    etcd: dict[bytes, bytes]
    rows: dict[str, list[str]]

    @classmethod
    def read(cls, info: SandboxInfo) -> Contents:
        r = etcdctl(info.ports.etcd, "get", "", "--from-key", "-w", "json", user=info.creds.etcd_user,
                    password=info.creds.etcd_password)
        kvs = json.loads(r.stdout).get("kvs") or []
        etcd = {base64.b64decode(kv["key"]): base64.b64decode(kv.get("value", "")) for kv in kvs}
        return cls(dict(sorted(etcd.items())), asyncio.run(_rows(info)))

    def diff(self, other: Contents) -> list[str]:
        out = [f"etcd {k!r}: {self.etcd.get(k)!r} -> {other.etcd.get(k)!r}"
               for k in sorted(set(self.etcd) | set(other.etcd)) if self.etcd.get(k) != other.etcd.get(k)]
        for t in self.rows:
            if self.rows[t] != other.rows[t]:
                out.append(f"table {t}: {sorted(set(self.rows[t]) ^ set(other.rows[t]))[:5]}")
        return out


async def _rows(info: SandboxInfo) -> dict[str, list[str]]:
    conn = await asyncpg.connect(info.pg_dsn())
    try:
        out: dict[str, list[str]] = {}
        for table in ("domains", "kernels", "agents"):
            rows = await conn.fetch(f"SELECT to_jsonb(t)::text AS j FROM {table} t ORDER BY 1")  # noqa: S608 - fixed names
            out[table] = [r["j"] for r in rows]
        return out
    finally:
        await conn.close()


@pytest.fixture(scope="module")
def baseline(sandbox: SandboxInfo) -> tuple[SandboxInfo, Contents]:
    """The freshly seeded cluster's contents: every bad input must leave exactly this."""
    Sandbox(sandbox.path).reset(log=lambda *_: None)
    return sandbox, Contents.read(sandbox)
