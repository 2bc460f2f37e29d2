"""The Backend.AI manager database: domains, kernels, agents (asyncpg).

Rules this module keeps (docs/backendai-db.md, from the 20.09.29 models in backend.ai-manager):
- Every value travels as a bind parameter; SQL text holds only fixed identifiers and the
  fixed status literals Backend.AI itself uses. `render_sql` exists so the operator can see
  the equivalent statement, with values quoted for display only; it is never executed here.
- A write is one transaction that locks the rows it changes (`SELECT ... FOR UPDATE`),
  refuses if any row is no longer what the plan saw (someone edited it meanwhile), and is
  read back after commit.
- Connection problems become a `ConnectError` naming host:port, database and user plus the
  fix; a password never appears in any message (`Secret`, backends/secrets.py).
"""

from __future__ import annotations

import asyncio
import json
import re
import socket
import uuid
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal
from types import TracebackType
from typing import Any

import asyncpg

from .config import DBSettings, HostPort
from .errors import ConnectError, MigrateError, SafetyError
from .secrets import Redactor, Secret

# Backend.AI's own definition of "live": DEAD_KERNEL_STATUSES and the partial unique index
# ix_kernels_unique_sess_token in src/ai/backend/manager/models/kernel.py @20.09.29 (also in
# backends/sandbox/schema-20.09.sql; docs/backendai-db.md#kernels).
DEAD_KERNEL_STATUSES = ("TERMINATED", "CANCELLED")
ERA_TABLES = ("domains", "kernels", "agents", "images", "image_aliases", "sessions", "container_registries")
DEFAULT_ARCHITECTURE = "x86_64"  # agents.architecture only exists from 22.03; 20.09 agents are x86_64


class DatabaseError(MigrateError):
    """A query failed for a reason other than connectivity (missing table, constraint, ...)."""


class AllowlistConflict(SafetyError):
    """The rows changed between plan and apply; nothing was written."""

    def __init__(self, message: str, *, conflicts: Sequence[tuple[str, list[str] | None, list[str] | None]],
                 fix: str | None = None) -> None:
        # (domain, expected before, actual now or None if the domain is gone)
        self.conflicts = list(conflicts)
        super().__init__(message, fix=fix)


# -- rows -------------------------------------------------------------------------------

@dataclass(frozen=True)
class SchemaEra:
    """Which Backend.AI tables exist, i.e. where images and registries are kept."""

    tables: frozenset[str]
    agent_architecture: bool  # agents.architecture (22.03+)

    @property
    def is_backendai(self) -> bool:
        return {"domains", "kernels", "agents"} <= self.tables

    @property
    def images_in_db(self) -> bool:
        """22.03+: image metadata and aliases live in PostgreSQL (docs/backendai-db.md#storage-eras)."""
        return "images" in self.tables

    @property
    def aliases_in_db(self) -> bool:
        return "image_aliases" in self.tables

    @property
    def sessions_table(self) -> bool:
        """23.03+: a separate `sessions` table next to `kernels`."""
        return "sessions" in self.tables

    @property
    def registries_in_db(self) -> bool:
        """24.09+: registry config is `container_registries` rows; etcd's copy is ignored."""
        return "container_registries" in self.tables

    @property
    def label(self) -> str:
        if not self.is_backendai:
            return "not a Backend.AI database"
        if self.registries_in_db:
            return "24.09+ (registries and images in PostgreSQL)"
        if self.images_in_db:
            return "22.03-24.03 (images in PostgreSQL, registries in etcd)"
        return "20.03.11-21.09 (images and registries in etcd)"


@dataclass(frozen=True)
class DomainRow:
    name: str
    is_active: bool | None
    allowed_docker_registries: list[str]


@dataclass(frozen=True)
class KernelRow:
    id: str
    session_id: str
    session_name: str | None
    access_key: str | None
    domain_name: str
    image: str | None
    registry: str | None
    status: str
    agent: str | None
    agent_addr: str | None
    created_at: datetime | None


@dataclass(frozen=True)
class ImageUsage:
    """How an image was used recently: feeds the "essential images" set for pre-pulling."""

    image: str
    registry: str | None
    live_kernels: int
    recent_kernels: int          # terminated/cancelled within the window
    last_used: datetime | None   # latest terminated_at, or created_at of a live kernel


@dataclass(frozen=True)
class AgentRow:
    id: str
    status: str
    addr: str
    host: str | None   # parsed from addr (`tcp://host:port`), None if unparseable
    port: int | None
    version: str
    architecture: str
    scaling_group: str
    schedulable: bool | None


@dataclass
class DomainSnapshot:
    """allowed_docker_registries of every domain, as the backup a rollback restores."""

    domains: dict[str, list[str]]
    taken_at: datetime = field(default_factory=lambda: datetime.now(UTC))

    def to_json(self) -> dict[str, Any]:
        return {"taken_at": self.taken_at.isoformat(), "domains": {k: list(v) for k, v in self.domains.items()}}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> DomainSnapshot:
        doms = data.get("domains")
        if not isinstance(doms, Mapping) or not all(
                isinstance(v, list) and all(isinstance(x, str) for x in v) for v in doms.values()):
            raise ValueError("domain snapshot: `domains` must map names to lists of strings")
        taken = data.get("taken_at")
        return cls({str(k): list(v) for k, v in doms.items()},
                   datetime.fromisoformat(taken) if isinstance(taken, str) else datetime.now(UTC))


@dataclass(frozen=True)
class RestoreResult:
    rows: list[DomainRow]   # read back after commit
    missing: list[str]      # in the snapshot but deleted since; cannot be restored


# -- address parsing --------------------------------------------------------------------

_ADDR = re.compile(r"^(?:(?P<scheme>[a-z][a-z0-9+.-]*)://)?(?:\[(?P<v6>[^\]]+)\]|(?P<host>[^:/\[\]\s]+))"
                   r"(?::(?P<port>\d{1,5}))?/?$", re.I)


def parse_agent_addr(addr: str | None) -> tuple[str | None, int | None]:
    """Host and port of `agents.addr` (`tcp://host:port`, written by the agent heartbeat)."""
    if not addr:
        return None, None
    m = _ADDR.match(addr.strip())
    if not m:
        return None, None
    host = m.group("v6") or m.group("host")
    port = int(m.group("port")) if m.group("port") else None
    if port is not None and not 1 <= port <= 65535:
        port = None
    return host or None, port


# -- SQL rendering for display ----------------------------------------------------------

def quote_literal(value: str) -> str:
    """A PostgreSQL string literal, as `quote_literal()` builds it (backslashes force E'')."""
    if "\x00" in value:
        raise ValueError("PostgreSQL text cannot contain NUL characters")
    body = value.replace("'", "''")
    if "\\" in value:
        return "E'" + body.replace("\\", "\\\\") + "'"
    return "'" + body + "'"


def quote_array(values: Sequence[str | None], sqltype: str = "varchar[]") -> str:
    """An ARRAY[...] constructor; avoids array-literal escaping rules altogether."""
    if not values:
        return f"'{{}}'::{sqltype}"
    return "ARRAY[" + ", ".join(render_value(v) for v in values) + f"]::{sqltype}"


def render_value(value: Any) -> str:
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, int | float | Decimal):
        return repr(value) if not isinstance(value, Decimal) else str(value)
    if isinstance(value, datetime):
        return quote_literal(value.isoformat()) + "::timestamptz"
    if isinstance(value, date):
        return quote_literal(value.isoformat()) + "::date"
    if isinstance(value, uuid.UUID):
        return quote_literal(str(value)) + "::uuid"
    if isinstance(value, list | tuple):
        return quote_array(value)
    return quote_literal(str(value))


_PARAM = re.compile(r"\$(\d+)(::[a-z_]+(?:\[\])?)?")


def render_sql(sql: str, *args: Any) -> str:
    """The statement with `$n` replaced by display literals: for the operator's eyes only.

    Whitespace is folded in the template before substitution, so values are shown verbatim.
    """
    template = re.sub(r"\s+", " ", sql).strip()

    def sub(m: re.Match[str]) -> str:
        i = int(m.group(1))
        if not 1 <= i <= len(args):
            raise ValueError(f"render_sql: ${i} has no argument")
        text = render_value(args[i - 1])
        cast = m.group(2) or ""
        if not cast or text.endswith(cast):
            return text
        if text.startswith(("ARRAY[", "'{}'::")):  # swap our default array type for the statement's
            text = text.rsplit("::", 1)[0]
        return text + cast

    out = _PARAM.sub(sub, template)
    return out if out.endswith(";") else out + ";"


# -- the fixed statements ---------------------------------------------------------------

SQL_ERA_TABLES = """
SELECT table_name FROM information_schema.tables
WHERE table_schema = ANY(current_schemas(false)) AND table_name = ANY($1::text[])
"""
SQL_AGENT_ARCH = """
SELECT 1 FROM information_schema.columns
WHERE table_schema = ANY(current_schemas(false)) AND table_name = 'agents' AND column_name = 'architecture'
"""
SQL_DOMAINS = "SELECT name, is_active, allowed_docker_registries FROM domains ORDER BY name"
SQL_DOMAINS_LOCK = """
SELECT name, allowed_docker_registries FROM domains
WHERE name = ANY($1::varchar[]) ORDER BY name FOR UPDATE
"""
SQL_DOMAINS_SOME = """
SELECT name, is_active, allowed_docker_registries FROM domains
WHERE name = ANY($1::varchar[]) ORDER BY name
"""
# The WHERE repeats the expected value so that the statement is self-guarding when an
# operator runs the rendered text by hand; under our row lock it always matches.
SQL_SET_ALLOWLIST = """
UPDATE domains SET allowed_docker_registries = $2::varchar[]
WHERE name = $1 AND allowed_docker_registries = $3::varchar[]
"""
# Wait this long for a row lock, then refuse (another admin or the manager holds the rows).
SQL_LOCK_TIMEOUT = "SELECT set_config('lock_timeout', $1, true)"
# Repairs an operator may run for rows the allowlists step refuses (shown in the refusal).
SQL_REPAIR_NULL = "UPDATE domains SET allowed_docker_registries = '{}' WHERE name = $1"
SQL_REPAIR_ENTRY_NULL = "UPDATE domains SET allowed_docker_registries = array_remove(allowed_docker_registries, NULL) WHERE name = $1"
SQL_REPAIR_ENTRY_EMPTY = "UPDATE domains SET allowed_docker_registries = array_remove(allowed_docker_registries, '') WHERE name = $1"
SQL_RESTORE_ALLOWLIST = "UPDATE domains SET allowed_docker_registries = $2::varchar[] WHERE name = $1"
_KERNEL_COLS = ("id, session_id, session_name, access_key, domain_name, image, registry, status::text AS status,"
                " agent, agent_addr, created_at")
SQL_LIVE_KERNELS = f"""
SELECT {_KERNEL_COLS} FROM kernels
WHERE status NOT IN ('TERMINATED', 'CANCELLED')
ORDER BY created_at, id
"""  # noqa: S608 - fixed column list
SQL_LIVE_KERNELS_REG = f"""
SELECT {_KERNEL_COLS} FROM kernels
WHERE status NOT IN ('TERMINATED', 'CANCELLED')
  AND (registry = $1 OR (registry IS NULL AND left(image, length($2)) = $2))
ORDER BY created_at, id
"""  # noqa: S608 - fixed column list
SQL_RECENT_IMAGES = """
SELECT image, registry,
       count(*) FILTER (WHERE status NOT IN ('TERMINATED', 'CANCELLED')) AS live,
       count(*) FILTER (WHERE status IN ('TERMINATED', 'CANCELLED')) AS recent,
       max(COALESCE(terminated_at, created_at)) AS last_used
FROM kernels
WHERE image IS NOT NULL
  AND (status NOT IN ('TERMINATED', 'CANCELLED') OR terminated_at >= now() - make_interval(days => $1))
  AND ($2::varchar IS NULL OR registry = $2 OR (registry IS NULL AND left(image, length($3)) = $3))
GROUP BY image, registry
ORDER BY image, registry
"""
_AGENT_COLS_2009 = "id, status::text AS status, addr, version, NULL::varchar AS architecture, scaling_group, schedulable"
_AGENT_COLS_2203 = "id, status::text AS status, addr, version, architecture, scaling_group, schedulable"
SQL_AGENTS = "SELECT {cols} FROM agents {where} ORDER BY id"


# -- the database -----------------------------------------------------------------------

class Database:
    """A small asyncpg pool on the manager's database, built from manager.toml's [db]."""

    def __init__(self, settings: DBSettings, *, connect_timeout: float = 10.0,
                 command_timeout: float = 60.0, lock_timeout: float = 10.0,
                 max_connections: int = 4) -> None:
        self.settings = settings
        self.connect_timeout = connect_timeout
        self.command_timeout = command_timeout
        self.lock_timeout = lock_timeout
        self.max_connections = max_connections
        self._pool: asyncpg.Pool | None = None
        self._era: SchemaEra | None = None
        self._redact = Redactor([settings.password] if settings.password else [])
        # Awaited inside each write transaction just before it commits (the cluster lock's
        # `ensure`): a run that lost its lock rolls back instead of committing (issue 14).
        self.fence: Callable[[], Awaitable[None]] | None = None

    # -- lifecycle ----------------------------------------------------------------------
    @property
    def where(self) -> str:
        s = self.settings
        return f"PostgreSQL at {s.addr} (database {s.name!r}, user {s.user!r})"

    async def open(self) -> Database:
        if self._pool is not None:
            return self
        s = self.settings
        try:
            async with asyncio.timeout(self.connect_timeout):
                self._pool = await asyncpg.create_pool(
                    host=s.addr.host, port=s.addr.port, user=s.user, database=s.name,
                    password=s.password.reveal() if s.password else None,
                    min_size=1, max_size=self.max_connections, timeout=self.connect_timeout,
                    command_timeout=self.command_timeout,
                    server_settings={"application_name": "bai-registry-migrate"})
        except (OSError, TimeoutError, ValueError, asyncpg.PostgresError, asyncpg.InterfaceError,
                asyncpg.InternalClientError) as e:
            raise self._connect_error(e) from None
        return self

    async def close(self) -> None:
        if self._pool is not None:
            pool, self._pool = self._pool, None
            await pool.close()

    async def __aenter__(self) -> Database:
        return await self.open()

    async def __aexit__(self, et: type[BaseException] | None, ev: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self.close()

    def _connect_error(self, e: BaseException) -> ConnectError:
        s = self.settings
        hp = str(s.addr)
        where = f"cannot connect to {self.where}"
        if isinstance(e, asyncpg.InvalidPasswordError):
            if not s.password:
                return ConnectError(f"{self.where} requires a password and none is configured",
                                    fix="set [db] password in manager.toml (or BACKEND_DB_PASSWORD)")
            return ConnectError(f"{self.where} rejected the password",
                                fix="check [db] user and password in manager.toml (or BACKEND_DB_PASSWORD); "
                                    "they must match what the manager uses")
        if isinstance(e, asyncpg.InvalidCatalogNameError):
            return ConnectError(f"{where}: database {s.name!r} does not exist",
                                fix="set [db] name in manager.toml (or BACKEND_DB_NAME) to the manager's database")
        if isinstance(e, asyncpg.InvalidAuthorizationSpecificationError):
            return ConnectError(f"{where}: the server does not accept this user from here "
                                f"({self._redact(str(e))})",
                                fix="check [db] user, and that pg_hba.conf allows this host")
        if isinstance(e, asyncpg.TooManyConnectionsError):
            return ConnectError(f"{where}: the server has no free connections",
                                fix="retry later, or raise max_connections on the server")
        if isinstance(e, TimeoutError):
            return ConnectError(f"{where}: no answer within {self.connect_timeout:g}s",
                                fix=f"check that {hp} is the PostgreSQL server and that no firewall drops packets")
        if isinstance(e, socket.gaierror):
            return ConnectError(f"{where}: host name {s.addr.host!r} cannot be resolved",
                                fix="check [db] addr in manager.toml (or BACKEND_DB_ADDR)")
        if isinstance(e, ConnectionRefusedError):
            return ConnectError(f"{where}: connection refused (nothing listens on {hp})",
                                fix="check [db] addr in manager.toml (or BACKEND_DB_ADDR) and that PostgreSQL "
                                    "is running and listens on that address")
        if isinstance(e, OSError):
            return ConnectError(f"{where}: {e.strerror or type(e).__name__}",
                                fix="check [db] addr in manager.toml (or BACKEND_DB_ADDR) and the network path")
        if isinstance(e, asyncpg.PostgresError):
            code = getattr(e, "sqlstate", None) or "?"
            return ConnectError(f"{where}: {self._redact(str(e))} (SQLSTATE {code})",
                                fix="check the [db] section of manager.toml")
        return ConnectError(f"{where}: {type(e).__name__}: {self._redact(str(e))}",
                            fix="check the [db] section of manager.toml")

    @property
    def pool(self) -> asyncpg.Pool:
        if self._pool is None:
            raise RuntimeError("Database.open() was not called")
        return self._pool

    async def _fetch(self, sql: str, *args: Any, what: str) -> list[asyncpg.Record]:
        try:
            return list(await self.pool.fetch(sql, *args))
        except asyncpg.PostgresError as e:
            raise self._query_error(e, what) from None
        except (OSError, asyncpg.InterfaceError, TimeoutError) as e:
            raise ConnectError(f"lost the connection to {self.where} while reading {what}: "
                               f"{type(e).__name__}", fix="check that the database server is up, then retry") from None

    def _query_error(self, e: asyncpg.PostgresError, what: str) -> MigrateError:
        if isinstance(e, asyncpg.UndefinedTableError | asyncpg.UndefinedColumnError):
            return DatabaseError(f"{self.where}: cannot read {what}: {self._redact(str(e))}",
                                 fix="point [db] name at the Backend.AI manager's database")
        if isinstance(e, asyncpg.LockNotAvailableError):
            return DatabaseError(f"{self.where}: {what}: the rows are locked by another session "
                                 f"(waited {self.lock_timeout:g}s)",
                                 fix="wait for the other change (another admin, the manager) to finish, then retry")
        if isinstance(e, asyncpg.InsufficientPrivilegeError):
            return DatabaseError(f"{self.where}: {what}: permission denied ({self._redact(str(e))})",
                                 fix="use the manager's own database user from manager.toml")
        code = getattr(e, "sqlstate", None) or "?"
        return DatabaseError(f"{self.where}: {what} failed: {self._redact(str(e))} (SQLSTATE {code})")

    # -- reads --------------------------------------------------------------------------
    async def schema_era(self, *, refresh: bool = False) -> SchemaEra:
        if self._era is not None and not refresh:
            return self._era
        rows = await self._fetch(SQL_ERA_TABLES, list(ERA_TABLES), what="the table list")
        tables = frozenset(r["table_name"] for r in rows)
        arch = bool(await self._fetch(SQL_AGENT_ARCH, what="the agents columns")) if "agents" in tables else False
        self._era = SchemaEra(tables, arch)
        return self._era

    async def domains(self) -> list[DomainRow]:
        rows = await self._fetch(SQL_DOMAINS, what="domains")
        return [_domain(r) for r in rows]

    async def live_kernels(self, registry: str | None = None) -> list[KernelRow]:
        """Kernels not TERMINATED/CANCELLED; with `registry`, only those on that registry's images."""
        if registry is None:
            rows = await self._fetch(SQL_LIVE_KERNELS, what="live kernels")
        else:
            rows = await self._fetch(SQL_LIVE_KERNELS_REG, registry, registry + "/", what="live kernels")
        return [_kernel(r) for r in rows]

    async def recent_kernel_images(self, days: int, registry: str | None = None) -> list[ImageUsage]:
        """Images of live kernels and of kernels that ended within `days` days."""
        if days < 0:
            raise ValueError("days must be >= 0")
        prefix = (registry + "/") if registry is not None else ""
        rows = await self._fetch(SQL_RECENT_IMAGES, int(days), registry, prefix, what="recently used images")
        return [ImageUsage(r["image"], r["registry"], int(r["live"]), int(r["recent"]), r["last_used"])
                for r in rows]

    async def alive_agents(self) -> list[AgentRow]:
        return await self._agents("WHERE status = 'ALIVE'")

    async def all_agents(self) -> list[AgentRow]:
        return await self._agents("")

    async def _agents(self, where: str) -> list[AgentRow]:
        era = await self.schema_era()
        cols = _AGENT_COLS_2203 if era.agent_architecture else _AGENT_COLS_2009
        rows = await self._fetch(SQL_AGENTS.format(cols=cols, where=where), what="agents")
        out = []
        for r in rows:
            host, port = parse_agent_addr(r["addr"])
            out.append(AgentRow(r["id"], r["status"], r["addr"], host, port, r["version"],
                                r["architecture"] or DEFAULT_ARCHITECTURE, r["scaling_group"], r["schedulable"]))
        return out

    # -- writes -------------------------------------------------------------------------
    async def update_allowlists(self, changes: Mapping[str, tuple[Sequence[str], Sequence[str]]]
                                ) -> list[DomainRow]:
        """Sets each domain's allowed_docker_registries from `before` to `after`, all or nothing.

        Refuses with `AllowlistConflict` (and writes nothing) if any domain is gone or its
        current list differs from `before`: the plan the operator confirmed no longer holds.
        """
        plan = _normalise_changes(changes)
        if not plan:
            return []
        names = sorted(plan)
        try:
            async with self.pool.acquire() as conn, conn.transaction():
                await conn.execute(SQL_LOCK_TIMEOUT, f"{int(self.lock_timeout * 1000)}ms")
                current = {r["name"]: list(r["allowed_docker_registries"])
                           for r in await conn.fetch(SQL_DOMAINS_LOCK, names)}
                conflicts: list[tuple[str, list[str] | None, list[str] | None]] = []
                for name in names:
                    before, _after = plan[name]
                    if name not in current:
                        conflicts.append((name, before, None))
                    elif current[name] != before:
                        conflicts.append((name, before, current[name]))
                if conflicts:
                    raise _conflict_error(conflicts)
                for name in names:
                    before, after = plan[name]
                    if before == after:
                        continue
                    status = await conn.execute(SQL_SET_ALLOWLIST, name, after, before)
                    if status != "UPDATE 1":  # cannot happen under the row lock; refuse anyway
                        raise _conflict_error([(name, before, None)])
                if self.fence is not None:
                    await self.fence()
        except asyncpg.PostgresError as e:
            raise self._query_error(e, "updating domains.allowed_docker_registries") from None
        except (OSError, asyncpg.InterfaceError, TimeoutError) as e:
            raise ConnectError(f"lost the connection to {self.where} during the domain update "
                               f"({type(e).__name__}); the transaction was not committed",
                               fix="check that the database server is up, then run the same command again (nothing was written)") from None
        return [_domain(r) for r in await self._fetch(SQL_DOMAINS_SOME, names, what="domains (read-back)")]

    async def allowlist_problems(self) -> list[tuple[str, str, str]]:
        """Domains whose allowed_docker_registries the allowlists step cannot update: NULL, or
        holding NULL or "" (it compares and writes lists of registry names). Returns
        (domain, what is wrong, the SQL that repairs it) per domain."""
        rows = await self._fetch(SQL_DOMAINS, what="domains")
        out = []
        for r in rows:
            regs = r["allowed_docker_registries"]
            name = r["name"]
            if regs is None:
                out.append((name, "is NULL", render_sql(SQL_REPAIR_NULL, name)))
            elif any(x is None for x in regs):
                out.append((name, "holds a NULL entry", render_sql(SQL_REPAIR_ENTRY_NULL, name)))
            elif any(x == "" for x in regs):
                out.append((name, 'holds an empty entry ""', render_sql(SQL_REPAIR_ENTRY_EMPTY, name)))
        return out

    async def snapshot_domains(self) -> DomainSnapshot:
        return DomainSnapshot({d.name: list(d.allowed_docker_registries) for d in await self.domains()})

    async def restore_domains(self, snapshot: DomainSnapshot, *, only: Iterable[str] | None = None
                              ) -> RestoreResult:
        """Puts back allowed_docker_registries exactly as in the snapshot, in one transaction."""
        wanted = dict(snapshot.domains)
        if only is not None:
            keep = set(only)
            wanted = {k: v for k, v in wanted.items() if k in keep}
        names = sorted(wanted)
        if not names:
            return RestoreResult([], [])
        missing: list[str] = []
        try:
            async with self.pool.acquire() as conn, conn.transaction():
                await conn.execute(SQL_LOCK_TIMEOUT, f"{int(self.lock_timeout * 1000)}ms")
                present = {r["name"] for r in await conn.fetch(SQL_DOMAINS_LOCK, names)}
                for name in names:
                    if name not in present:
                        missing.append(name)
                        continue
                    await conn.execute(SQL_RESTORE_ALLOWLIST, name, list(wanted[name]))
                if self.fence is not None:
                    await self.fence()
        except asyncpg.PostgresError as e:
            raise self._query_error(e, "restoring domains.allowed_docker_registries") from None
        except (OSError, asyncpg.InterfaceError, TimeoutError) as e:
            raise ConnectError(f"lost the connection to {self.where} during the restore "
                               f"({type(e).__name__}); the transaction was not committed",
                               fix="check the database server, then retry the rollback") from None
        rows = [_domain(r) for r in await self._fetch(SQL_DOMAINS_SOME, names, what="domains (read-back)")]
        wrong = [r.name for r in rows if r.allowed_docker_registries != wanted[r.name]]
        if wrong:
            raise DatabaseError(f"{self.where}: after the restore, domains {', '.join(map(repr, wrong))} "
                                "do not hold the backed-up value (edited concurrently?)",
                                fix="compare with the backup and fix them by hand")
        return RestoreResult(rows, missing)


# -- helpers ----------------------------------------------------------------------------

def _domain(r: asyncpg.Record) -> DomainRow:
    return DomainRow(r["name"], r["is_active"], list(r["allowed_docker_registries"] or []))


def _kernel(r: asyncpg.Record) -> KernelRow:
    return KernelRow(str(r["id"]), str(r["session_id"]), r["session_name"], r["access_key"], r["domain_name"],
                     r["image"], r["registry"], r["status"], r["agent"], r["agent_addr"], r["created_at"])


def _normalise_changes(changes: Mapping[str, tuple[Sequence[str], Sequence[str]]]
                       ) -> dict[str, tuple[list[str], list[str]]]:
    plan: dict[str, tuple[list[str], list[str]]] = {}
    for name, pair in changes.items():
        if not isinstance(name, str) or not name:
            raise ValueError(f"domain name {name!r} must be a non-empty string")
        try:
            before, after = pair
        except (TypeError, ValueError):
            raise ValueError(f"domain {name!r}: the change must be (expected_before, after)") from None
        for label, seq in (("before", before), ("after", after)):
            if isinstance(seq, str) or not all(isinstance(x, str) and x for x in seq):
                raise ValueError(f"domain {name!r}: `{label}` must be a list of non-empty strings")
        plan[name] = (list(before), list(after))
    return plan


def _conflict_error(conflicts: list[tuple[str, list[str] | None, list[str] | None]]) -> AllowlistConflict:
    parts = []
    for name, before, now in conflicts:
        if now is None:
            parts.append(f"{name!r} no longer exists")
        else:
            parts.append(f"{name!r} is now {json.dumps(now)} (planned from {json.dumps(before)})")
    return AllowlistConflict(
        "domains changed since the plan was made, nothing was written: " + "; ".join(parts),
        conflicts=conflicts, fix="re-run the step to plan against the current values")


def render_allowlist_update(domain: str, before: Sequence[str], after: Sequence[str]) -> str:
    """The equivalent SQL of one allow-list change, for the review screen and the transcript."""
    return render_sql(SQL_SET_ALLOWLIST, domain, list(after), list(before))


def render_allowlist_transaction(changes: Mapping[str, tuple[Sequence[str], Sequence[str]]]) -> str:
    plan = _normalise_changes(changes)
    names = sorted(plan)
    lines = ["BEGIN;", render_sql(SQL_DOMAINS_LOCK, names)]
    lines += [render_allowlist_update(n, *plan[n]) for n in names if plan[n][0] != plan[n][1]]
    lines.append("COMMIT;")
    return "\n".join(lines)


def render_restore(snapshot: DomainSnapshot) -> str:
    lines = ["BEGIN;"]
    lines += [render_sql(SQL_RESTORE_ALLOWLIST, n, v) for n, v in sorted(snapshot.domains.items())]
    lines.append("COMMIT;")
    return "\n".join(lines)


def render_live_kernels(registry: str | None = None) -> str:
    if registry is None:
        return render_sql(SQL_LIVE_KERNELS)
    return render_sql(SQL_LIVE_KERNELS_REG, registry, registry + "/")


def settings_for(host: str, port: int, name: str, user: str, password: Any = None) -> DBSettings:
    """DBSettings without a manager.toml (tests, sandbox); `password` a Secret, str or None."""
    pw = password if isinstance(password, Secret) or password is None else Secret(str(password))
    return DBSettings(HostPort(host, port), name, user, pw)
