"""The legacy 20.09 cluster's state: etcd keys and PostgreSQL rows as a real one would hold them.

etcd is seeded as a 20.09 manager leaves it after `put-json` of the sample shared config,
`rescan-images index.docker.io` and the sample aliases (docs/backendai-etcd.md):
registry entry with URL and username, image metadata written by `tag_keys` (the 20.09
scanner's exact output), aliases with quoted names, `config/redis`, `auto_pull`.
PostgreSQL gets the real 20.09 tables and rows that exercise every branch of the migration.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg

from ..etcd import EtcdStore, quote
from ..image_ref import DOCKER_HUB
from ..images import tag_keys
from .catalog import ALIASES, CATALOG, ImageSpec
from .layout import SandboxInfo

SCHEMA_2009 = Path(__file__).with_name("schema-20.09.sql")
SCHEMA_2309 = Path(__file__).with_name("schema-23.09.sql")

# (config digest, size_bytes, labels) of the amd64 image a tag resolves to on Docker Hub
HubLookup = Callable[[ImageSpec], tuple[str, int, Mapping[str, str]]]


def legacy_etcd_pairs(lookup: HubLookup) -> dict[str, str]:
    """Every key (relative to the namespace) of the legacy cluster's etcd."""
    pairs: dict[str, str] = {
        # sample.shared.json @20.09.0, put with `put-json config ...`
        "config/docker/registry/index.docker.io": "https://registry-1.docker.io",
        "config/docker/registry/index.docker.io/username": "lablup",
        "config/docker/image/auto_pull": "digest",
        "manager/status": "running",   # what a 20.09 manager writes at start (server.py manager_status_ctx)
        "config/redis/addr": "127.0.0.1:6379",
        "config/api/allow-origins": "*",
        "config/network/subnet/agent": "0.0.0.0/0",
        "config/network/subnet/container": "0.0.0.0/0",
        "config/plugins/scheduler/fifo/num_retries_to_skip": "0",
        "config/watcher/token": "insecure",
    }
    for spec in CATALOG:
        if spec.hub_namespace != "lablup" or not spec.is_kernel:
            continue
        digest, size, labels = lookup(spec)
        pairs.update(tag_keys(DOCKER_HUB, f"lablup/{spec.name}", spec.tag, digest, size, labels))
    for alias, target in ALIASES.items():
        pairs[f"images/_aliases/{quote(alias)}"] = target
    return pairs


async def seed_etcd(store: EtcdStore, lookup: HubLookup) -> int:
    pairs = legacy_etcd_pairs(lookup)
    await store.write(pairs)
    return len(pairs)


# -- PostgreSQL ---------------------------------------------------------------------------

DOMAINS: tuple[tuple[str, bool, list[str]], ...] = (
    ("default", True, ["index.docker.io"]),
    ("research", True, ["index.docker.io", "registry.research.local:5000"]),
    ("education", True, ["registry.education.local"]),
    ("partner", True, ["index.docker.io", "cr.backend.ai"]),
    ("archive", False, []),
)

USERS: tuple[tuple[str, str, str, str], ...] = (
    # email, domain, role, access key
    ("admin@lablup.com", "default", "superadmin", "AKIAIOSFODNN7EXAMPLE"),
    ("researcher@lablup.com", "research", "user", "AKIARESEARCHEXAMPLE1"),
    ("student@lablup.com", "education", "user", "AKIASTUDENTEXAMPLE01"),
    ("partner@lablup.com", "partner", "user", "AKIAPARTNEREXAMPLE01"),
)

NS = uuid.UUID("6f1a6a5e-6b7e-4c0f-9b41-2f3a3b9c0d11")


def _uid(*parts: str) -> uuid.UUID:
    return uuid.uuid5(NS, "/".join(parts))


async def load_schema(conn: asyncpg.Connection, schema: Path = SCHEMA_2009) -> None:
    await conn.execute(await asyncio.to_thread(schema.read_text))


async def seed_rows(conn: asyncpg.Connection, info: SandboxInfo, now: datetime | None = None) -> None:
    """Rows of a small 20.09 cluster in the middle of its life (fixed ids, so reruns agree)."""
    now = now or datetime.now(UTC)
    slots = json.dumps({"cpu": "8", "mem": "34359738368"})
    async with conn.transaction():
        await conn.execute(
            "INSERT INTO keypair_resource_policies (name, default_for_unspecified, total_resource_slots,"
            " max_concurrent_sessions, max_containers_per_session, max_vfolder_count, max_vfolder_size,"
            " idle_timeout, allowed_vfolder_hosts) VALUES ('default', 'UNLIMITED', '{}', 5, 1, 10, 0, 3600,"
            " '{local}') ON CONFLICT DO NOTHING")
        await conn.execute(
            "INSERT INTO scaling_groups (name, description, is_active, driver, driver_opts, scheduler,"
            " scheduler_opts) VALUES ('default', 'default scaling group', true, 'static', '{}', 'fifo', '{}')"
            " ON CONFLICT DO NOTHING")
        for name, active, allowed in DOMAINS:
            await conn.execute(
                "INSERT INTO domains (name, description, is_active, total_resource_slots,"
                " allowed_vfolder_hosts, allowed_docker_registries, dotfiles)"
                " VALUES ($1, $2, $3, '{}', '{local}', $4::varchar[], ''::bytea) ON CONFLICT DO NOTHING",
                name, f"{name} domain", active, allowed)
            await conn.execute(
                "INSERT INTO groups (id, name, description, is_active, domain_name, total_resource_slots,"
                " allowed_vfolder_hosts, dotfiles) VALUES ($1, 'default', 'default group', true, $2, '{}',"
                " '{local}', ''::bytea) ON CONFLICT DO NOTHING", _uid("group", name), name)
        for email, domain, role, ak in USERS:
            await conn.execute(
                "INSERT INTO users (uuid, username, email, password, need_password_change, full_name,"
                " status, domain_name, role) VALUES ($1, $2, $2, 'x', false, $3, 'active', $4, $5)"
                " ON CONFLICT DO NOTHING", _uid("user", email), email, email.split("@")[0], domain, role)
            await conn.execute(
                "INSERT INTO keypairs (user_id, access_key, secret_key, is_active, is_admin, \"user\","
                " resource_policy, dotfiles, bootstrap_script, concurrency_used, rate_limit)"
                " VALUES ($1, $2, $3, true, $4, $5, 'default', ''::bytea, '', 0, 1000)"
                " ON CONFLICT DO NOTHING",
                email, ak, "x" * 40, role == "superadmin", _uid("user", email))
        for agent in info.agents:
            await conn.execute(
                "INSERT INTO agents (id, status, status_changed, region, scaling_group, schedulable,"
                " available_slots, occupied_slots, addr, first_contact, version, compute_plugins)"
                " VALUES ($1, 'ALIVE', $2, 'local', 'default', true, $3, '{}', $4, $2, '20.09.29', '{}')"
                " ON CONFLICT DO NOTHING", agent.id, now - timedelta(days=30), slots, agent.rpc_addr)
        await conn.execute(
            "INSERT INTO agents (id, status, status_changed, region, scaling_group, schedulable,"
            " available_slots, occupied_slots, addr, first_contact, lost_at, version, compute_plugins)"
            " VALUES ('i-agent-retired', 'LOST', $1, 'local', 'default', false, $2, '{}',"
            " 'tcp://127.0.0.1:6099', $1, $1, '20.09.11', '{}') ON CONFLICT DO NOTHING",
            now - timedelta(days=90), slots)
        first_agent = info.agents[0].id if info.agents else None
        second_agent = info.agents[1].id if len(info.agents) > 1 else first_agent
        kernels = [
            # (session name, user email, image ref, status, agent, age, terminated_after)
            ("notebook-1", "researcher@lablup.com", "index.docker.io/lablup/python:3.6-ubuntu18.04",
             "RUNNING", first_agent, timedelta(hours=5), None),
            ("train-tf", "student@lablup.com", "index.docker.io/lablup/python-tensorflow:2.3-py38-cuda11.0",
             "RUNNING", second_agent, timedelta(hours=2), None),
            ("batch-r", "researcher@lablup.com", "index.docker.io/lablup/r-base:4.0",
             "TERMINATED", first_agent, timedelta(days=2), timedelta(hours=3)),
            ("torch-exp", "admin@lablup.com", "index.docker.io/lablup/python-pytorch:1.8-py38-cuda11.1",
             "TERMINATED", second_agent, timedelta(days=4), timedelta(hours=10)),
            ("lua-demo", "student@lablup.com", "index.docker.io/lablup/lua:5.3-alpine3.8",
             "TERMINATED", first_agent, timedelta(days=6), timedelta(hours=1)),
            ("old-octave", "admin@lablup.com", "index.docker.io/lablup/octave:5.2-ubuntu18.04",
             "TERMINATED", second_agent, timedelta(days=200), timedelta(hours=1)),
            ("never-started", "partner@lablup.com", "index.docker.io/lablup/python:3.9-ubuntu20.04",
             "CANCELLED", None, timedelta(days=1), timedelta(minutes=1)),
        ]
        emails = {u[0]: u for u in USERS}
        for sname, email, image, status, agent, age, ran in kernels:
            _, domain, _, ak = emails[email]
            created = now - age
            terminated = created + ran if ran is not None else None
            registry, _, rest = image.partition("/")
            tag = rest.rsplit(":", 1)[1]
            agent_addr = next((a.rpc_addr for a in info.agents if a.id == agent), None)
            await conn.execute(
                "INSERT INTO kernels (id, session_id, session_name, session_type, cluster_mode, cluster_size,"
                " cluster_role, cluster_idx, cluster_hostname, scaling_group, agent, agent_addr, domain_name,"
                " group_id, user_uuid, access_key, image, registry, tag, occupied_slots, occupied_shares,"
                " repl_in_port, repl_out_port, stdin_port, stdout_port, created_at, terminated_at, status,"
                " status_changed) VALUES ($1, $2, $3, 'INTERACTIVE', 'SINGLE_NODE', 1, 'main', 1, 'main1',"
                " 'default', $4, $5, $6, $7, $8, $9, $10, $11, $12, '{}', '{}', 2000, 2001, 2002, 2003, $13,"
                " $14, $15, $16) ON CONFLICT DO NOTHING",
                _uid("kernel", sname), _uid("session", sname), sname, agent, agent_addr, domain,
                _uid("group", domain), _uid("user", email), ak, image, registry, tag, created, terminated,
                status, terminated or created)


async def ensure_database(admin_dsn: str, dbname: str) -> bool:
    """Creates `dbname` if missing; True when it was created (and so needs schema and rows)."""
    conn = await asyncpg.connect(admin_dsn)
    try:
        exists = await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", dbname)
        if exists:
            return False
        await conn.execute(f'CREATE DATABASE "{dbname}"')  # identifier is ours, not user input
        return True
    finally:
        await conn.close()


async def seed_postgres(info: SandboxInfo) -> bool:
    created = await ensure_database(info.pg_dsn("postgres"), info.creds.db_name)
    conn = await asyncpg.connect(info.pg_dsn())
    try:
        has_tables = await conn.fetchval("SELECT to_regclass('public.domains') IS NOT NULL")
        if not has_tables:
            await load_schema(conn)
            await seed_rows(conn, info)
            return True
        return created
    finally:
        await conn.close()


def run(coro: object) -> object:
    return asyncio.run(coro)  # type: ignore[arg-type]
