"""Test fixtures: one real sandbox per test run (per xdist worker), isolation per test where needed.

The sandbox (real etcd with auth, PostgreSQL, registries, Harbor and manager stand-ins, and
as root three Docker daemons) is started once by the same code as `sandbox up` and torn down
at the end. Tests that write get their own etcd namespace and their own database.
"""

from __future__ import annotations

import os

os.environ.setdefault("PROTOCOL_BUFFERS_PYTHON_IMPLEMENTATION", "python")
# Snapshot determinism (docs/textual-notes.md#snapshot-tests): no env-dependent colours or themes.
for _var in ("NO_COLOR", "TEXTUAL_THEME", "FORCE_COLOR"):
    os.environ.pop(_var, None)
os.environ["TEXTUAL_ANIMATIONS"] = "none"
# The real 20.09 CLI runs its invocations in one long-lived interpreter (tests/oracle.py).
os.environ.setdefault("BAIRM_ORACLE_INPROCESS", "1")

import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import asyncpg
import pytest

from backends.config import HostPort
from backends.etcd import EtcdStore
from backends.sandbox.cluster import Sandbox
from backends.sandbox.layout import SandboxInfo
from backends.secrets import Secret


@pytest.fixture(scope="session")
def sandbox() -> Iterator[SandboxInfo]:
    keep = os.environ.get("BAIRM_TEST_SANDBOX")
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    if keep and worker:
        keep = f"{keep}-{worker}"   # one sandbox per xdist worker, each kept between runs
    # Not under pytest's tmp dir: pytest resets /tmp/pytest-of-<user> to 0700 at each session
    # start, which locks PostgreSQL (running as `postgres`) out of its own data directory.
    path = Path(keep) if keep else Path(tempfile.mkdtemp(prefix="bairm-test-"))
    os.chmod(path, 0o755)
    sb = Sandbox(path)
    info = sb.up(agents=3, docker=True, log=lambda *_: None)
    try:
        yield info
    finally:
        if not keep:
            sb.down(purge=True, log=lambda *_: None)


@pytest.fixture
def fresh_sandbox(sandbox: SandboxInfo) -> SandboxInfo:
    """The session's sandbox reset to its freshly seeded state (etcd, database, agents, manager)."""
    Sandbox(sandbox.path).reset(log=lambda *_: None)
    return sandbox


def etcd_store_for(info: SandboxInfo, namespace: str) -> EtcdStore:
    return EtcdStore(HostPort("127.0.0.1", info.ports.etcd), namespace, user=info.creds.etcd_user,
                     password=Secret(info.creds.etcd_password))


async def wipe_namespace(info: SandboxInfo, namespace: str) -> None:
    """Deletes `/sorna/<namespace>/` raw (EtcdStore refuses whole-namespace deletes on purpose)."""
    store = etcd_store_for(info, namespace)
    await store.connect()
    try:
        await store._run(lambda c: c.delete_prefix(f"/sorna/{namespace}/"))
    finally:
        await store.close()


@pytest.fixture
async def etcd_ns(sandbox: SandboxInfo) -> AsyncIterator[EtcdStore]:
    """A connected store on a fresh, unique namespace, wiped afterwards."""
    ns = f"t-{uuid.uuid4().hex[:10]}"
    store = etcd_store_for(sandbox, ns)
    await store.connect()
    try:
        yield store
    finally:
        await store.close()
        await wipe_namespace(sandbox, ns)


TEMPLATE_DB = "bairm_template_2009"


@pytest.fixture(scope="session")
def pg_template(sandbox: SandboxInfo) -> str:
    """A database with the real 20.09 schema and the sandbox's rows, used as CREATE DATABASE template."""
    import asyncio

    from backends.sandbox import seed_cluster

    async def make() -> None:
        admin = await asyncpg.connect(sandbox.pg_dsn("postgres"))
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{TEMPLATE_DB}"')
            await admin.execute(f'CREATE DATABASE "{TEMPLATE_DB}"')
        finally:
            await admin.close()
        conn = await asyncpg.connect(sandbox.pg_dsn(TEMPLATE_DB))
        try:
            await seed_cluster.load_schema(conn)
            await seed_cluster.seed_rows(conn, sandbox)
        finally:
            await conn.close()

    asyncio.run(make())
    return TEMPLATE_DB


@pytest.fixture
async def fresh_db(sandbox: SandboxInfo, pg_template: str) -> AsyncIterator[str]:
    """The name of a new database copied from the template; dropped afterwards."""
    name = f"t_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(sandbox.pg_dsn("postgres"))
    try:
        await admin.execute(f'CREATE DATABASE "{name}" TEMPLATE "{pg_template}"')
    finally:
        await admin.close()
    try:
        yield name
    finally:
        admin = await asyncpg.connect(sandbox.pg_dsn("postgres"))
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await admin.close()
