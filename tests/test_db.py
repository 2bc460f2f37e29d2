"""backends/db.py against a real PostgreSQL holding the real 20.09 (and 23.09) Backend.AI tables.

Each test gets its own database copied from a template with the schema and the sandbox's seed
rows (conftest `fresh_db`), so writes never leak between tests.
"""

from __future__ import annotations

import asyncio
import json
import traceback
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest

from backends.config import DBSettings, HostPort
from backends.db import (
    AllowlistConflict,
    Database,
    DatabaseError,
    DomainSnapshot,
    parse_agent_addr,
    quote_literal,
    render_allowlist_transaction,
    render_allowlist_update,
    render_live_kernels,
    render_restore,
    render_sql,
    settings_for,
)
from backends.errors import ConnectError
from backends.sandbox import seed_cluster
from backends.sandbox.layout import SandboxInfo
from backends.secrets import Secret

HOSTILE = ["'; DROP TABLE domains; --", 'quote"d', "semi;colon", "back\\slash", "dollar$1", "ünï cödé",
           "x'); DELETE FROM domains WHERE ('1'='1"]


def settings(sb: SandboxInfo, dbname: str, *, password: str | None = "default", port: int | None = None
             ) -> DBSettings:
    pw = sb.creds.db_password if password == "default" else password
    return settings_for("127.0.0.1", port or sb.ports.postgres, dbname, sb.creds.db_user, pw)


@pytest.fixture
async def db(sandbox: SandboxInfo, fresh_db: str) -> AsyncIterator[Database]:
    async with Database(settings(sandbox, fresh_db)) as d:
        yield d


@pytest.fixture
async def raw(sandbox: SandboxInfo, fresh_db: str) -> AsyncIterator[asyncpg.Connection]:
    """A second, independent session: the "someone else" of the concurrency tests."""
    conn = await asyncpg.connect(sandbox.pg_dsn(fresh_db))
    try:
        yield conn
    finally:
        await conn.close()


async def add_domain(conn: asyncpg.Connection, name: str, allowed: list[str]) -> None:
    await conn.execute(
        "INSERT INTO domains (name, is_active, total_resource_slots, allowed_vfolder_hosts,"
        " allowed_docker_registries, dotfiles) VALUES ($1, true, '{}', '{local}', $2::varchar[], ''::bytea)",
        name, allowed)


async def allowlist(conn: asyncpg.Connection, name: str) -> list[str] | None:
    v = await conn.fetchval("SELECT allowed_docker_registries FROM domains WHERE name = $1", name)
    return None if v is None else list(v)


async def add_kernel(conn: asyncpg.Connection, *, name: str, image: str | None, registry: str | None,
                     status: str, agent: str | None = None, created: datetime | None = None,
                     terminated: datetime | None = None) -> uuid.UUID:
    user = await conn.fetchrow("SELECT u.uuid, u.domain_name, k.access_key FROM users u"
                               " JOIN keypairs k ON k.\"user\" = u.uuid ORDER BY u.email LIMIT 1")
    group = await conn.fetchval("SELECT id FROM groups WHERE domain_name = $1", user["domain_name"])
    kid = uuid.uuid4()
    await conn.execute(
        "INSERT INTO kernels (id, session_id, session_name, cluster_size, cluster_role, cluster_idx,"
        " cluster_hostname, agent, domain_name, group_id, user_uuid, access_key, image, registry,"
        " occupied_slots, occupied_shares, repl_in_port, repl_out_port, stdin_port, stdout_port,"
        " created_at, terminated_at, status)"
        " VALUES ($1, $2, $3, 1, 'main', 1, 'main1', $4, $5, $6, $7, $8, $9, $10, '{}', '{}', 1, 2, 3, 4,"
        " $11, $12, $13)",
        kid, uuid.uuid4(), name, agent, user["domain_name"], group, user["uuid"], user["access_key"], image,
        registry, created or datetime.now(UTC), terminated, status)
    return kid


# -- era detection ------------------------------------------------------------------------

async def test_era_2009(db: Database) -> None:
    era = await db.schema_era()
    assert era.is_backendai
    assert not era.images_in_db and not era.aliases_in_db and not era.sessions_table
    assert not era.registries_in_db and not era.agent_architecture
    assert era.label.startswith("20.03.11-21.09")


@pytest.fixture
async def db_2309(sandbox: SandboxInfo) -> AsyncIterator[str]:
    name = f"t2309_{uuid.uuid4().hex[:10]}"
    admin = await asyncpg.connect(sandbox.pg_dsn("postgres"))
    await admin.execute(f'CREATE DATABASE "{name}"')
    try:
        conn = await asyncpg.connect(sandbox.pg_dsn(name))
        try:
            # The dump's foreign keys name three policy tables it does not include.
            await conn.execute(
                "CREATE TABLE keypair_resource_policies (name varchar(256) PRIMARY KEY);"
                "CREATE TABLE project_resource_policies (name varchar(256) PRIMARY KEY);"
                "CREATE TABLE user_resource_policies (name varchar(256) PRIMARY KEY);")
            await seed_cluster.load_schema(conn, seed_cluster.SCHEMA_2309)
        finally:
            await conn.close()
        yield name
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


async def test_era_2309_and_2409(sandbox: SandboxInfo, db_2309: str) -> None:
    async with Database(settings(sandbox, db_2309)) as d:
        era = await d.schema_era()
        assert era.is_backendai and era.images_in_db and era.aliases_in_db and era.sessions_table
        assert era.agent_architecture and not era.registries_in_db
        assert era.label.startswith("22.03-24.03")
        conn = await asyncpg.connect(sandbox.pg_dsn(db_2309))
        try:
            await conn.execute("INSERT INTO scaling_groups (name, driver, driver_opts, scheduler,"
                               " use_host_network, scheduler_opts) VALUES ('default', 'static', '{}', 'fifo',"
                               " false, '{}')")
            await conn.execute("INSERT INTO agents (id, status, region, available_slots, occupied_slots, addr,"
                               " version, architecture, compute_plugins) VALUES ('i-arm', 'ALIVE', 'local', '{}',"
                               " '{}', 'tcp://[fd00::5]:6001', '23.09.10', 'aarch64', '{}')")
            agents = await d.alive_agents()
            assert [(a.id, a.architecture, a.host, a.port) for a in agents] == [("i-arm", "aarch64", "fd00::5", 6001)]
            # 24.09 moved registries into this table (docs/backendai-db.md#storage-eras); its presence
            # is the marker.
            await conn.execute("CREATE TABLE container_registries (id uuid PRIMARY KEY, url varchar(512),"
                               " registry_name varchar(50), project varchar(255))")
        finally:
            await conn.close()
        assert (await d.schema_era()).registries_in_db is False  # cached until asked to refresh
        era = await d.schema_era(refresh=True)
        assert era.registries_in_db and era.label.startswith("24.09+")


async def test_not_backendai_database(sandbox: SandboxInfo) -> None:
    async with Database(settings(sandbox, "postgres")) as d:
        era = await d.schema_era()
        assert not era.is_backendai and era.label == "not a Backend.AI database"
        with pytest.raises(DatabaseError) as ei:
            await d.domains()
        assert "domains" in str(ei.value) and "[db] name" in str(ei.value)


# -- domains and allow-lists ----------------------------------------------------------------

async def test_domains_as_seeded(db: Database) -> None:
    got = {d.name: (d.is_active, d.allowed_docker_registries) for d in await db.domains()}
    assert got == {name: (active, allowed) for name, active, allowed in seed_cluster.DOMAINS}


async def test_update_reads_back_and_touches_only_planned_rows(db: Database, raw: asyncpg.Connection) -> None:
    before = {d.name: d.allowed_docker_registries for d in await db.domains()}
    changes = {
        "default": (before["default"], ["index.docker.io", "cr.backend.ai"]),
        "research": (before["research"], ["cr.backend.ai", "registry.research.local:5000"]),
        "archive": (before["archive"], []),  # unchanged: checked, not written
    }
    rows = await db.update_allowlists(changes)
    assert [(r.name, r.allowed_docker_registries) for r in rows] == [
        ("archive", []),
        ("default", ["index.docker.io", "cr.backend.ai"]),
        ("research", ["cr.backend.ai", "registry.research.local:5000"]),
    ]
    assert await allowlist(raw, "education") == before["education"]
    assert await allowlist(raw, "partner") == before["partner"]
    assert await allowlist(raw, "default") == ["index.docker.io", "cr.backend.ai"]
    assert await db.update_allowlists({}) == []


async def test_concurrent_edit_between_plan_and_apply_refuses_everything(
        db: Database, raw: asyncpg.Connection) -> None:
    plan = {d.name: d.allowed_docker_registries for d in await db.domains()}
    # Someone else edits one of the planned rows after the operator reviewed the plan.
    await raw.execute("UPDATE domains SET allowed_docker_registries = $1 WHERE name = 'research'",
                      ["index.docker.io", "registry.research.local:5000", "mirror.local"])
    changes = {name: (plan[name], [*plan[name], "cr.backend.ai"]) for name in ("default", "research", "education")}
    with pytest.raises(AllowlistConflict) as ei:
        await db.update_allowlists(changes)
    err = ei.value
    assert err.conflicts == [("research", plan["research"],
                              ["index.docker.io", "registry.research.local:5000", "mirror.local"])]
    assert "nothing was written" in str(err) and "research" in str(err) and err.fix
    # All or nothing: the rows that did still match were not written either.
    assert await allowlist(raw, "default") == plan["default"]
    assert await allowlist(raw, "education") == plan["education"]


async def test_missing_domain_refuses(db: Database, raw: asyncpg.Connection) -> None:
    with pytest.raises(AllowlistConflict) as ei:
        await db.update_allowlists({"default": (["index.docker.io"], ["cr.backend.ai"]),
                                    "no-such-domain": ([], ["cr.backend.ai"])})
    assert ei.value.conflicts == [("no-such-domain", [], None)]
    assert "no longer exists" in str(ei.value)
    assert await allowlist(raw, "default") == ["index.docker.io"]


async def test_failure_midway_writes_nothing(db: Database, raw: asyncpg.Connection) -> None:
    # A real server-side failure on the second row, after the first UPDATE already ran.
    await raw.execute("""
        CREATE FUNCTION refuse_research() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN IF NEW.name = 'research' THEN RAISE EXCEPTION 'research is frozen by policy'; END IF;
        RETURN NEW; END $$;
        CREATE TRIGGER t_refuse BEFORE UPDATE ON domains FOR EACH ROW EXECUTE FUNCTION refuse_research();
    """)
    with pytest.raises(DatabaseError) as ei:
        await db.update_allowlists({"default": (["index.docker.io"], ["cr.backend.ai"]),
                                    "research": (["index.docker.io", "registry.research.local:5000"],
                                                 ["cr.backend.ai"])})
    assert "research is frozen by policy" in str(ei.value)
    assert await allowlist(raw, "default") == ["index.docker.io"]
    assert await allowlist(raw, "research") == ["index.docker.io", "registry.research.local:5000"]


async def test_locked_rows_time_out_cleanly(sandbox: SandboxInfo, fresh_db: str,
                                            raw: asyncpg.Connection) -> None:
    tx = raw.transaction()
    await tx.start()
    await raw.execute("SELECT 1 FROM domains WHERE name = 'default' FOR UPDATE")
    try:
        async with Database(settings(sandbox, fresh_db), lock_timeout=0.3) as d:
            with pytest.raises(DatabaseError) as ei:
                await d.update_allowlists({"default": (["index.docker.io"], ["cr.backend.ai"])})
        assert "locked by another session" in str(ei.value)
    finally:
        await tx.rollback()
    assert await allowlist(raw, "default") == ["index.docker.io"]


async def test_hostile_domain_names_are_parameters(db: Database, raw: asyncpg.Connection) -> None:
    for name in HOSTILE:
        await add_domain(raw, name, ["index.docker.io", "it's; DROP TABLE kernels; --"])
    changes = {name: (["index.docker.io", "it's; DROP TABLE kernels; --"], [f"cr.backend.ai/{name}", "'"])
               for name in HOSTILE}
    rows = await db.update_allowlists(changes)
    assert {r.name: r.allowed_docker_registries for r in rows} == {n: [f"cr.backend.ai/{n}", "'"] for n in HOSTILE}
    assert await raw.fetchval("SELECT count(*) FROM domains") == len(seed_cluster.DOMAINS) + len(HOSTILE)
    assert await raw.fetchval("SELECT to_regclass('public.kernels') IS NOT NULL")
    # The SQL shown to the operator is valid and does the same thing when run by hand.
    back = {name: ([f"cr.backend.ai/{name}", "'"], ["index.docker.io"]) for name in HOSTILE}
    text = render_allowlist_transaction(back)
    await raw.execute(text)  # simple protocol, several statements: exactly what psql would do
    for name in HOSTILE:
        assert await allowlist(raw, name) == ["index.docker.io"]
    assert await raw.fetchval("SELECT count(*) FROM domains") == len(seed_cluster.DOMAINS) + len(HOSTILE)
    # The rendered UPDATE is self-guarding: run again it matches nothing (before-value moved on).
    status = await raw.execute(render_allowlist_update(HOSTILE[0], [f"cr.backend.ai/{HOSTILE[0]}", "'"], ["x"]))
    assert status == "UPDATE 0"


async def test_bad_change_shapes_are_rejected_before_any_sql(db: Database) -> None:
    for bad in ({"default": (["index.docker.io"], [""])}, {"default": ("index.docker.io", ["a"])},
                {"default": (["a"],)}, {"": ([], ["a"])}):
        with pytest.raises(ValueError):
            await db.update_allowlists(bad)  # type: ignore[arg-type]


async def test_snapshot_and_restore_exactly(db: Database, raw: asyncpg.Connection) -> None:
    await add_domain(raw, "ordered", ["b.example", "a.example", "b.example"])  # order and duplicates kept
    await add_domain(raw, "doomed", ["index.docker.io"])
    snap = await db.snapshot_domains()
    assert snap.domains["ordered"] == ["b.example", "a.example", "b.example"]
    assert snap.domains["archive"] == []
    again = DomainSnapshot.from_json(json.loads(json.dumps(snap.to_json())))
    assert again.domains == snap.domains and again.taken_at == snap.taken_at
    await db.update_allowlists({"default": (["index.docker.io"], ["cr.backend.ai"]),
                                "ordered": (["b.example", "a.example", "b.example"], []),
                                "archive": ([], ["cr.backend.ai"])})
    await raw.execute("UPDATE domains SET allowed_docker_registries = '{edited.by.hand}' WHERE name = 'partner'")
    await raw.execute("DELETE FROM domains WHERE name = 'doomed'")
    await raw.execute("INSERT INTO domains (name, allowed_vfolder_hosts, allowed_docker_registries, dotfiles)"
                      " VALUES ('created-later', '{}', '{x}', ''::bytea)")
    result = await db.restore_domains(again)
    assert result.missing == ["doomed"]
    now = {d.name: d.allowed_docker_registries for d in await db.domains()}
    expected = {k: v for k, v in snap.domains.items() if k != "doomed"}
    assert {k: v for k, v in now.items() if k != "created-later"} == expected
    assert now["created-later"] == ["x"]  # not in the snapshot: left alone
    assert {r.name for r in result.rows} == set(expected)
    partial = await db.restore_domains(DomainSnapshot({"default": ["only.this"]}), only=["default"])
    assert [(r.name, r.allowed_docker_registries) for r in partial.rows] == [("default", ["only.this"])]
    assert "UPDATE domains SET allowed_docker_registries = ARRAY['only.this']::varchar[] WHERE name = 'default';" \
        in render_restore(DomainSnapshot({"default": ["only.this"]}))
    with pytest.raises(ValueError):
        DomainSnapshot.from_json({"domains": {"x": "not-a-list"}})


# -- kernels ------------------------------------------------------------------------------

async def test_live_kernels_honour_dead_statuses(db: Database, raw: asyncpg.Connection) -> None:
    seeded = await db.live_kernels("index.docker.io")
    assert sorted(k.session_name or "" for k in seeded) == ["notebook-1", "train-tf"]
    nb = next(k for k in seeded if k.session_name == "notebook-1")
    assert nb.image == "index.docker.io/lablup/python:3.6-ubuntu18.04" and nb.status == "RUNNING"
    assert nb.agent == "i-agent1" and nb.agent_addr == "tcp://127.0.0.1:6001" and nb.domain_name == "research"
    assert nb.access_key == "AKIARESEARCHEXAMPLE1" and isinstance(nb.created_at, datetime)
    uuid.UUID(nb.id)
    uuid.UUID(nb.session_id)
    hub = "index.docker.io/lablup/python:3.9-ubuntu20.04"
    for status in ("PENDING", "PULLING", "ERROR", "TERMINATING", "SUSPENDED", "TERMINATED", "CANCELLED"):
        await add_kernel(raw, name=f"s-{status.lower()}", image=hub, registry="index.docker.io", status=status)
    await add_kernel(raw, name="old-row", image=hub, registry=None, status="RUNNING")  # registry column unset
    await add_kernel(raw, name="on-harbor", image="cr.backend.ai/stable/python:3.9-ubuntu20.04",
                     registry="cr.backend.ai", status="RUNNING")
    await add_kernel(raw, name="lookalike", image="index.docker.io.evil/x:1", registry=None, status="RUNNING")
    live = {k.session_name for k in await db.live_kernels("index.docker.io")}
    assert live == {"notebook-1", "train-tf", "s-pending", "s-pulling", "s-error", "s-terminating",
                    "s-suspended", "old-row"}
    assert {k.session_name for k in await db.live_kernels("cr.backend.ai")} == {"on-harbor"}
    assert {k.session_name for k in await db.live_kernels()} == live | {"on-harbor", "lookalike"}
    assert await db.live_kernels("'; DROP TABLE kernels; --") == []
    assert "status NOT IN ('TERMINATED', 'CANCELLED')" in render_live_kernels("index.docker.io")
    assert "registry = 'index.docker.io'" in render_live_kernels("index.docker.io")


async def test_recent_kernel_images(db: Database, raw: asyncpg.Connection) -> None:
    week = {u.image: u for u in await db.recent_kernel_images(7, "index.docker.io")}
    p = "index.docker.io/lablup/"
    assert set(week) == {p + "python:3.6-ubuntu18.04", p + "python-tensorflow:2.3-py38-cuda11.0",
                         p + "r-base:4.0", p + "python-pytorch:1.8-py38-cuda11.1", p + "lua:5.3-alpine3.8",
                         p + "python:3.9-ubuntu20.04"}  # old-octave ended 200 days ago
    assert (week[p + "python:3.6-ubuntu18.04"].live_kernels, week[p + "python:3.6-ubuntu18.04"].recent_kernels) == (1, 0)
    assert (week[p + "r-base:4.0"].live_kernels, week[p + "r-base:4.0"].recent_kernels) == (0, 1)
    three = {u.image for u in await db.recent_kernel_images(3, "index.docker.io")}
    assert p + "python-pytorch:1.8-py38-cuda11.1" not in three and p + "r-base:4.0" in three
    now = datetime.now(UTC)
    await add_kernel(raw, name="harbor-done", image="cr.backend.ai/stable/python:3.9-ubuntu20.04",
                     registry="cr.backend.ai", status="TERMINATED", created=now - timedelta(hours=3),
                     terminated=now - timedelta(hours=1))
    everything = {u.image: u for u in await db.recent_kernel_images(7)}
    assert "cr.backend.ai/stable/python:3.9-ubuntu20.04" in everything
    assert everything["cr.backend.ai/stable/python:3.9-ubuntu20.04"].last_used is not None
    assert "cr.backend.ai/stable/python:3.9-ubuntu20.04" not in week
    with pytest.raises(ValueError):
        await db.recent_kernel_images(-1)


# -- agents -------------------------------------------------------------------------------

async def test_agents(db: Database, sandbox: SandboxInfo) -> None:
    alive = await db.alive_agents()
    assert [a.id for a in alive] == [a.id for a in sandbox.agents]
    first = alive[0]
    assert (first.status, first.host, first.port) == ("ALIVE", "127.0.0.1", 6001)
    assert first.architecture == "x86_64" and first.version == "20.09.29" and first.scaling_group == "default"
    every = {a.id: a for a in await db.all_agents()}
    assert every["i-agent-retired"].status == "LOST" and every["i-agent-retired"].port == 6099


@pytest.mark.parametrize(("addr", "expected"), [
    ("tcp://10.0.0.5:6001", ("10.0.0.5", 6001)),
    ("tcp://agent-3.cluster.local:6011", ("agent-3.cluster.local", 6011)),
    ("tcp://[fd00::1]:6001", ("fd00::1", 6001)),
    ("10.0.0.7:6001", ("10.0.0.7", 6001)),
    ("tcp://host-only", ("host-only", None)),
    ("tcp://10.0.0.5:99999", ("10.0.0.5", None)),
    ("", (None, None)),
    (None, (None, None)),
    ("tcp://:6001", (None, None)),
    ("tcp://a b:1", (None, None)),
])
def test_parse_agent_addr(addr: str | None, expected: tuple[str | None, int | None]) -> None:
    assert parse_agent_addr(addr) == expected


# -- connection errors --------------------------------------------------------------------

def _no_secret(err: BaseException, secret: str) -> None:
    text = "".join(traceback.format_exception(err)) + repr(err) + str(err)
    assert secret not in text


async def test_wrong_password(sandbox: SandboxInfo, fresh_db: str) -> None:
    wrong = "Wr0ng-" + uuid.uuid4().hex
    with pytest.raises(ConnectError) as ei:
        await Database(settings(sandbox, fresh_db, password=wrong)).open()
    msg = str(ei.value)
    assert "rejected the password" in msg and f"127.0.0.1:{sandbox.ports.postgres}" in msg
    assert fresh_db in msg and sandbox.creds.db_user in msg and "BACKEND_DB_PASSWORD" in msg
    _no_secret(ei.value, wrong)
    _no_secret(ei.value, sandbox.creds.db_password)
    with pytest.raises(ConnectError) as ei:
        await Database(settings(sandbox, fresh_db, password=None)).open()
    assert "requires a password and none is configured" in str(ei.value)


async def test_unknown_database(sandbox: SandboxInfo) -> None:
    with pytest.raises(ConnectError) as ei:
        await Database(settings(sandbox, "no_such_db_here")).open()
    msg = str(ei.value)
    assert "'no_such_db_here' does not exist" in msg and "BACKEND_DB_NAME" in msg
    _no_secret(ei.value, sandbox.creds.db_password)


async def test_unreachable(sandbox: SandboxInfo) -> None:
    from backends.sandbox.layout import free_port

    port = free_port()
    with pytest.raises(ConnectError) as ei:
        await Database(settings(sandbox, "backend", port=port)).open()
    msg = str(ei.value)
    assert f"127.0.0.1:{port}" in msg and "connection refused" in msg and "BACKEND_DB_ADDR" in msg
    _no_secret(ei.value, sandbox.creds.db_password)


async def test_timeout(sandbox: SandboxInfo) -> None:
    # Accepts the TCP connection and never says a word: a black-holed server.
    held: list[asyncio.StreamWriter] = []

    async def mute(_r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        held.append(w)

    server = await asyncio.start_server(mute, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        t0 = asyncio.get_running_loop().time()
        with pytest.raises(ConnectError) as ei:
            await Database(settings(sandbox, "backend", port=port), connect_timeout=0.5).open()
        assert asyncio.get_running_loop().time() - t0 < 5
        assert "no answer within 0.5s" in str(ei.value) and f"127.0.0.1:{port}" in str(ei.value)
        _no_secret(ei.value, sandbox.creds.db_password)
    finally:
        for w in held:
            w.close()
        server.close()
        await server.wait_closed()


def test_settings_secret_never_prints() -> None:
    s = settings_for("127.0.0.1", 5432, "backend", "postgres", "hunter2-secret")
    assert isinstance(s.password, Secret) and "hunter2-secret" not in repr(s)
    assert Database(s).where == "PostgreSQL at 127.0.0.1:5432 (database 'backend', user 'postgres')"
    assert settings_for("127.0.0.1", 1, "d", "u").password is None
    assert DBSettings(HostPort("::1", 5432), "d", "u", None).addr.__str__() == "[::1]:5432"


# -- the SQL renderer (display only) --------------------------------------------------------

def test_render_sql_literals() -> None:
    assert quote_literal("plain") == "'plain'"
    assert quote_literal("it's") == "'it''s'"
    assert quote_literal("a\\b") == "E'a\\\\b'"
    with pytest.raises(ValueError):
        quote_literal("nul\x00")
    when = datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)
    uid = uuid.UUID("12345678-1234-5678-1234-567812345678")
    assert render_sql("SELECT $1, $2, $3, $4, $5, $6, $7", None, True, 3, when, uid, [], ["a", "b'c"]) == (
        "SELECT NULL, TRUE, 3, '2024-01-02T03:04:05+00:00'::timestamptz,"
        " '12345678-1234-5678-1234-567812345678'::uuid, '{}'::varchar[], ARRAY['a', 'b''c']::varchar[];")
    # A value that looks like a placeholder or a cast is shown verbatim, not re-substituted.
    assert render_sql("SELECT $1, $2::varchar[]", "$2::varchar[]", ["x"]) == \
        "SELECT '$2::varchar[]', ARRAY['x']::varchar[];"
    assert render_sql("SELECT $1::text[]", ["a"]) == "SELECT ARRAY['a']::text[];"
    with pytest.raises(ValueError):
        render_sql("SELECT $2", "only one")
    text = render_allowlist_update("'; DROP TABLE domains; --", ["index.docker.io"], ["cr.backend.ai"])
    assert text == ("UPDATE domains SET allowed_docker_registries = ARRAY['cr.backend.ai']::varchar[]"
                    " WHERE name = '''; DROP TABLE domains; --'"
                    " AND allowed_docker_registries = ARRAY['index.docker.io']::varchar[];")
