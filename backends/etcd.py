"""Backend.AI's etcd key space, read and written exactly as Backend.AI 20.09 does.

Faithfulness rules (src/ai/backend/common/etcd.py, backend.ai-common 20.09.11, same as 20.09.0;
docs/backendai-etcd.md#put-json):
- every key lives under `/sorna/{namespace}/`; one leading `/` of a key is dropped;
- `put`, `get`, `delete` take keys as given (the caller quotes);
- `put_json` flattens nested dicts, quoting each dict key with `quote(k, safe='')` but not
  the key argument; the `""` key is the parent's own value; leaves are stored as `str(v)`
  (so a JSON list becomes its Python repr, `true` becomes `True`, `null` becomes `None`);
- `get_prefix` rebuilds the nested dict with unquoted keys, a node holding both a value and
  children becoming `{"": value, ...}`.

python-etcd3 is synchronous (gRPC); every call runs in a small thread pool so the event loop
never blocks. Writes go in transactions of at most `max_txn_ops` operations (etcd's
`--max-txn-ops`, 128 by default); a write that fits is atomic. The write transactions are
encoded here (`encode_txn`) and sent as bytes on python-etcd3's own channel, token and
timeout: python-etcd3 0.12's generated code forces the pure-python protobuf runtime, in
which building and parsing the messages cost ~70 us per key, most of a 10,000-key rescan
write (bench/etcd_write.py); the bytes are what `TxnRequest.SerializeToString()` gives.
"""

from __future__ import annotations

import asyncio
import functools
import json
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar
from urllib.parse import quote as _quote
from urllib.parse import unquote

import etcd3
import etcd3.exceptions
import grpc

import backends as _backends  # noqa: F401  (selects the pure-python protobuf runtime first)

from .config import EtcdSettings, HostPort
from .errors import ConnectError, SafetyError
from .secrets import Secret, reveal

T = TypeVar("T")

quote = functools.partial(_quote, safe="")
"""`ai.backend.common.etcd.quote`: percent-encode everything but unreserved characters."""

REGISTRY_PREFIX = "config/docker/registry"
ALIASES_PREFIX = "images/_aliases"
DEFAULT_MAX_TXN_OPS = 128

# Prefixes whose deletion as a whole would wreck a cluster; delete_prefix refuses them and
# everything above them.
_PROTECTED = (
    "config",
    "config/docker",
    "config/docker/registry",
    "config/redis",
    "images",
    "images/_aliases",
    "manager",
    "nodes",
    "volumes",
)


def flatten_json(key: str, obj: Mapping[str, Any]) -> dict[str, str]:
    """The exact key/value pairs `backend.ai mgr etcd put-json KEY FILE` writes (AsyncEtcd.put_prefix).

    The key argument is not quoted; only dict keys are. Only dicts recurse; every other leaf
    is `str()`-ed, which is why lists and nulls must be rejected by validators upstream.
    Insertion order is kept (it is the order the manager sends its puts in).
    """
    out: dict[str, str] = {}

    def _flatten(prefix: str, inner: Mapping[str, Any]) -> None:
        for k, v in inner.items():
            flat_key = prefix if k == "" else f"{prefix}/{quote(k)}"
            if isinstance(v, dict):
                _flatten(flat_key, v)
            else:
                out[flat_key] = str(v)

    _flatten(key, obj)
    return out


def nest_pairs(key_prefix: str, pairs: Iterable[tuple[str, str]]) -> dict[str, Any]:
    """`make_dict_from_pairs` of 20.09: demangled, sorted pairs to the nested, unquoted dict.

    Kept quirk-for-quirk: the prefix is a raw string prefix (so `images/a` also collects
    `images/ab/...` as `b/...`), and a value that later gains children moves under `""`.
    """
    result: dict[str, Any] = {}
    n = len(key_prefix)
    for k, v in pairs:
        if not k.startswith(key_prefix):
            continue
        sub = k[n:]
        if sub.startswith("/"):
            sub = sub[1:]
        parts = sub.split("/")
        parent = result
        for p in parts[:-1]:
            p = unquote(p)
            if p not in parent:
                parent[p] = {}
            if not isinstance(parent[p], dict):
                parent[p] = {"": parent[p]}
            parent = parent[p]
        parent[unquote(parts[-1])] = v
    return result


# -- transaction encoding (etcd rpc.proto: TxnRequest.compare=1/success=2, RequestOp.request_put=2 /
# request_delete_range=3, PutRequest.key=1/value=2/lease=3, DeleteRangeRequest.key=1/range_end=2,
# Compare.result=1/target=2/key=3/lease=8 with target LEASE=4 and result EQUAL=0,
# TxnResponse.succeeded=2) ----------------------------------------------------------------------------

TXN_METHOD = "/etcdserverpb.KV/Txn"
Op = tuple[str, str, str | None]


def _varint(n: int) -> bytes:
    out = bytearray()
    while n > 0x7F:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def _msg(number: int, data: bytes) -> bytes:
    """A length-delimited field (a sub-message is sent even when empty)."""
    return _varint(number << 3 | 2) + _varint(len(data)) + data


def _field(number: int, data: bytes) -> bytes:
    """A `bytes` field; an empty one is left out, as proto3 serialisation does."""
    return _msg(number, data) if data else b""


def _int_field(number: int, value: int) -> bytes:
    """A varint (int64/enum) field; zero is left out, as proto3 serialisation does."""
    return _varint(number << 3) + _varint(value) if value else b""


def encode_txn(ops: Iterable[Op], *, lease_guard: tuple[str, int] | None = None, put_lease: int = 0) -> bytes:
    """A `TxnRequest` whose success branch is `ops` (put/del/delrange, mangled keys).

    `lease_guard` = (raw key, lease id): the one compare, "this key is on this lease"
    (Compare.LEASE, etcd >= 3.3); without it there is no compare and the transaction always
    succeeds. `put_lease` attaches the puts to a lease."""
    out = bytearray()
    if lease_guard is not None:
        key, lease = lease_guard
        out += _msg(1, _int_field(2, 4) + _field(3, key.encode("utf-8")) + _int_field(8, lease))
    for kind, a, b in ops:
        if kind == "put":
            op = _msg(2, _field(1, a.encode("utf-8")) + _field(2, (b or "").encode("utf-8"))
                      + _int_field(3, put_lease))
        elif kind == "del":
            op = _msg(3, _field(1, a.encode("utf-8")))
        elif kind == "delrange":
            op = _msg(3, _field(1, a.encode("utf-8")) + _field(2, (b or "").encode("utf-8")))
        else:
            raise ValueError(f"unknown transaction operation {kind!r}")
        out += _msg(2, op)
    return bytes(out)


def txn_succeeded(response: bytes) -> bool:
    """`TxnResponse.succeeded` (field 2) of a serialised response; absent means false (proto3)."""
    i, n = 0, len(response)
    while i < n:
        tag, i = _read_varint(response, i)
        number, wire = tag >> 3, tag & 7
        if wire == 0:
            value, i = _read_varint(response, i)
            if number == 2:
                return bool(value)
        elif wire == 2:
            length, i = _read_varint(response, i)
            i += length
        elif wire == 1:
            i += 8
        elif wire == 5:
            i += 4
        else:
            raise ValueError(f"unexpected wire type {wire} in a TxnResponse")
    return False


def _read_varint(data: bytes, i: int) -> tuple[int, int]:
    shift = value = 0
    while True:
        if i >= len(data):
            raise ValueError("truncated varint in a TxnResponse")
        b = data[i]
        i += 1
        value |= (b & 0x7F) << shift
        if not b & 0x80:
            return value, i
        shift += 7


def send_txn(client: Any, payload: bytes) -> bytes:
    """One `KV/Txn` call with a pre-encoded request, as python-etcd3 would send it (token, timeout)."""
    call = client.channel.unary_unary(TXN_METHOD)   # no (de)serialiser: bytes in, bytes out
    return bytes(call(payload, client.timeout, credentials=client.call_credentials, metadata=client.metadata))


def _chunks(items: list[T], size: int) -> Iterator[list[T]]:
    for i in range(0, len(items), size):
        yield items[i:i + size]


def prefix_range(key: str) -> tuple[str, str]:
    """[start, end) covering `key/` and below, for a bounded (not raw-string) prefix delete."""
    start = key.rstrip("/") + "/"
    end = start[:-1] + chr(ord("/") + 1)
    return start, end


@dataclass
class Snapshot:
    """Every key under one prefix at one revision; the unit of backup and restore."""

    namespace: str
    prefix: str
    revision: int
    items: dict[str, str] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {"namespace": self.namespace, "prefix": self.prefix, "revision": self.revision,
                "items": self.items}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Snapshot:
        return cls(str(data["namespace"]), str(data["prefix"]), int(data["revision"]),
                   {str(k): str(v) for k, v in dict(data["items"]).items()})

    def covers(self, key: str) -> bool:
        return _under(key, self.prefix)


def _under(key: str, prefix: str) -> bool:
    if prefix == "":
        return True
    return key == prefix or key.startswith(prefix.rstrip("/") + "/")


@dataclass(frozen=True)
class Change:
    """One key-level change of an etcd write, as shown to the operator before it happens."""

    key: str
    before: str | None
    after: str | None

    @property
    def kind(self) -> str:
        if self.before is None:
            return "add"
        if self.after is None:
            return "delete"
        return "change" if self.before != self.after else "same"


def diff(before: Mapping[str, str], puts: Mapping[str, str],
         deletes: Iterable[str] = ()) -> list[Change]:
    """Key-level diff of applying `puts` then deleting `deletes` on top of `before`."""
    changes: dict[str, Change] = {}
    for k in deletes:
        if k in before:
            changes[k] = Change(k, before[k], None)
    for k, v in puts.items():
        changes[k] = Change(k, before.get(k), v)
    return [changes[k] for k in sorted(changes)]


class WriteFence(Protocol):
    """What a write must still hold (backends.lock.ClusterLock): a key on a lease."""

    key: str
    lease_id: int

    async def ensure(self) -> None: ...

    async def refused(self) -> Exception: ...


class EtcdStore:
    """One namespace of one etcd cluster, spoken to as Backend.AI speaks to it.

    With a `fence` set, every write is a transaction that commits only while the fence's key
    is still on its lease, and is not even sent once the fence knows it is gone."""

    def __init__(self, addr: HostPort, namespace: str, *, user: str | None = None,
                 password: Secret | str | None = None, timeout: float = 5.0,
                 max_txn_ops: int = DEFAULT_MAX_TXN_OPS, workers: int = 4) -> None:
        self.addr = addr
        self.namespace = namespace
        self.user = user
        self._password = password if isinstance(password, Secret) or password is None else Secret(password)
        self.timeout = timeout
        self.max_txn_ops = max_txn_ops
        self._executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="etcd")
        self._client: Any = None
        self._prefix = f"/sorna/{namespace}/"
        self.fence: WriteFence | None = None

    @classmethod
    def from_settings(cls, s: EtcdSettings, **kw: Any) -> EtcdStore:
        return cls(s.addr, s.namespace, user=s.user, password=s.password, **kw)

    # -- connection ---------------------------------------------------------------------

    def _make_client(self) -> Any:
        kw: dict[str, Any] = {"host": self.addr.host, "port": self.addr.port, "timeout": self.timeout}
        if self.user:
            kw["user"] = self.user
            kw["password"] = reveal(self._password) or ""
        client = etcd3.client(**kw)
        if self.user:
            # python-etcd3 0.12 sends the token twice: as `token` metadata and as gRPC call
            # credentials. grpcio >= 1.45 refuses call credentials on a plaintext channel
            # ("Established channel does not have a sufficient security level..."; python-etcd3
            # issue #1876), so drop them; etcd reads the metadata token and still enforces auth.
            client.call_credentials = None
            client.watcher._credentials = None
        return client

    async def connect(self) -> EtcdStore:
        """Connects and authenticates, turning gRPC failures into messages naming the fix."""
        try:
            self._client = await self._run_raw(self._make_client)
            await self._run_raw(lambda: self._client.status())
        except Exception as e:  # noqa: BLE001 - every failure is translated, none swallowed
            raise self._translate(e) from None
        return self

    def _translate(self, e: BaseException) -> Exception:
        text = str(e)
        code = e.code() if isinstance(e, grpc.RpcError) and hasattr(e, "code") else None
        if isinstance(e, etcd3.exceptions.ConnectionFailedError) or code == grpc.StatusCode.UNAVAILABLE:
            return ConnectError(f"etcd at {self.addr} is unreachable",
                                fix="start etcd or correct [etcd] addr in manager.toml (or BACKEND_ETCD_ADDR)")
        if isinstance(e, etcd3.exceptions.ConnectionTimeoutError) or code == grpc.StatusCode.DEADLINE_EXCEEDED:
            return ConnectError(f"etcd at {self.addr} did not answer within {self.timeout:g}s",
                                fix="check that etcd is healthy and reachable from this node")
        if code == grpc.StatusCode.INVALID_ARGUMENT and "auth" in text.lower() or \
                "authentication failed" in text.lower():
            return ConnectError(f"etcd at {self.addr} refused the credentials of user {self.user!r}",
                                fix="correct [etcd] user/password in manager.toml (or BACKEND_ETCD_USER/PASSWORD)")
        if "user name is empty" in text.lower() or code == grpc.StatusCode.PERMISSION_DENIED:
            return ConnectError(f"etcd at {self.addr} requires authentication or denied access",
                                fix="set [etcd] user and password in manager.toml")
        return ConnectError(f"etcd at {self.addr} failed: {type(e).__name__}",
                            fix="check etcd's health (etcdctl endpoint health)")

    async def close(self) -> None:
        if self._client is not None:
            client, self._client = self._client, None
            await self._run_raw(client.close)
        self._executor.shutdown(wait=False, cancel_futures=True)

    async def __aenter__(self) -> EtcdStore:
        if self._client is None:
            await self.connect()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def _run_raw(self, fn: Callable[[], T]) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, fn)

    async def _run(self, fn: Callable[[Any], T]) -> T:
        """Runs `fn(client)` off the loop; re-authenticates once on an expired token."""
        if self._client is None:
            await self.connect()
        try:
            return await self._run_raw(lambda: fn(self._client))
        except grpc.RpcError as e:
            if "invalid auth token" in str(e).lower() and self.user:
                self._client = await self._run_raw(self._make_client)
                try:
                    return await self._run_raw(lambda: fn(self._client))
                except Exception as e2:  # noqa: BLE001 - translated
                    raise self._translate(e2) from None
            raise self._translate(e) from None
        except (etcd3.exceptions.ConnectionFailedError, etcd3.exceptions.ConnectionTimeoutError) as e:
            raise self._translate(e) from None

    # -- keys ---------------------------------------------------------------------------

    def mangle(self, key: str) -> str:
        if key.startswith("/"):
            key = key[1:]
        return f"{self._prefix}{key}"

    def demangle(self, raw: bytes | str) -> str:
        k = raw.decode("utf-8") if isinstance(raw, bytes) else raw
        return k[len(self._prefix):] if k.startswith(self._prefix) else k

    # -- reads --------------------------------------------------------------------------

    async def get(self, key: str) -> str | None:
        mk = self.mangle(key)
        val, _ = await self._run(lambda c: c.get(mk))
        return val.decode("utf-8") if val is not None else None

    async def get_flat(self, key_prefix: str) -> dict[str, str]:
        """Demangled keys (still quoted) -> values, sorted by key, raw-string prefix like 20.09."""
        items, _rev = await self._get_flat_rev(key_prefix)
        return items

    async def _get_flat_rev(self, key_prefix: str) -> tuple[dict[str, str], int]:
        mk = self.mangle(key_prefix)

        def _get(c: Any) -> tuple[dict[str, str], int]:
            resp = c.get_prefix_response(mk)
            out = {self.demangle(kv.key): kv.value.decode("utf-8") for kv in resp.kvs}
            return out, int(resp.header.revision)

        return await self._run(_get)

    async def get_tree(self, key: str) -> dict[str, str]:
        """`key` itself and everything below `key/` (never siblings that merely share the prefix)."""
        out = {}
        own = await self.get(key)
        if own is not None:
            out[key] = own
        start, _ = prefix_range(key)
        for k, v in (await self.get_flat(start)).items():
            out[k] = v
        return out

    async def get_prefix(self, key_prefix: str) -> dict[str, Any]:
        """The nested dict that `backend.ai mgr etcd get --prefix KEY` prints."""
        flat = await self.get_flat(key_prefix)
        return nest_pairs(key_prefix, flat.items())

    async def revision(self) -> int:
        _, rev = await self._get_flat_rev("\x00nonexistent")
        return rev

    # -- writes -------------------------------------------------------------------------

    async def put(self, key: str, value: str) -> None:
        mk = self.mangle(key)
        await self._run(lambda c: c.put(mk, str(value).encode("utf-8")))

    async def put_json(self, key: str, obj: Mapping[str, Any]) -> dict[str, str]:
        """`backend.ai mgr etcd put-json KEY FILE`: returns the flattened pairs it wrote."""
        flat = flatten_json(key, obj)
        await self.write(flat)
        return flat

    async def write(self, puts: Mapping[str, str], deletes: Iterable[str] = (),
                    delete_trees: Iterable[str] = ()) -> int:
        """Puts and deletes in as few transactions as etcd allows; returns how many were used.

        A write within `max_txn_ops` operations is a single transaction, hence atomic. Tree
        deletes are one range operation each (the key itself plus `key/...`).
        """
        ops: list[tuple[str, str, str | None]] = []
        for k in deletes:
            ops.append(("del", self.mangle(k), None))
        for k in delete_trees:
            ops.append(("del", self.mangle(k), None))
            start, end = prefix_range(self.mangle(k))
            ops.append(("delrange", start, end))
        for k, v in puts.items():
            ops.append(("put", self.mangle(k), str(v)))
        if not ops:
            return 0
        batches = list(_chunks(ops, self.max_txn_ops))
        for batch in batches:
            fence = self.fence
            guard = None
            if fence is not None:
                await fence.ensure()
                guard = (fence.key, fence.lease_id)
            payload = encode_txn(batch, lease_guard=guard)
            resp = await self._run(lambda c, payload=payload: send_txn(c, payload))
            if fence is not None and not txn_succeeded(resp):
                raise await fence.refused()
        return len(batches)

    async def put_on_lease(self, raw_key: str, value: str, lease_id: int) -> bool:
        """Puts a raw key (outside the namespace) on a lease only while it is on that lease already."""
        payload = encode_txn([("put", raw_key, value)], lease_guard=(raw_key, lease_id), put_lease=lease_id)
        return txn_succeeded(await self._run(lambda c: send_txn(c, payload)))

    async def write_concurrently(self, puts: Mapping[str, str], *, parallel: int = 4) -> int:
        """Bulk puts with several transactions in flight: for large, idempotent image-key writes.

        After the first failed transaction no further one is sent, and this returns (raises)
        only once every transaction in flight has finished: a caller that restores a backup
        after the error must not race writes still queued behind it (tests/faults).
        """
        items = list(puts.items())
        batches = list(_chunks(items, self.max_txn_ops))
        sem = asyncio.Semaphore(parallel)
        failed: list[BaseException] = []

        async def one(batch: list[tuple[str, str]]) -> None:
            async with sem:
                if failed:
                    return
                try:
                    await self.write(dict(batch))
                except BaseException as e:
                    failed.append(e)
                    raise

        await asyncio.gather(*(one(b) for b in batches), return_exceptions=True)
        if failed:
            raise failed[0]
        return len(batches)

    async def delete(self, key: str) -> None:
        mk = self.mangle(key)
        await self._run(lambda c: c.delete(mk))

    async def check_delete_prefix(self, key: str) -> None:
        """Refuses deletes that could take more than a registry's or image's subtree."""
        k = key.strip()
        norm = k.strip("/")
        if not norm:
            raise SafetyError("refusing to delete an empty prefix: it would delete the whole namespace",
                              fix="name the subtree, e.g. images/index.docker.io")
        segments = [s for s in norm.split("/") if s]
        if len(segments) < 2 or norm in _PROTECTED or any(p.startswith(norm + "/") for p in _PROTECTED):
            raise SafetyError(f"refusing to delete {norm!r}: it covers Backend.AI configuration as a whole",
                              fix="delete one registry's or image's subtree instead")
        if _under(REGISTRY_PREFIX, norm) or _under(norm, REGISTRY_PREFIX):
            # `registry/`, not the raw string prefix: `config/docker/registry.bak/...` is no registry
            registries = await self.get_prefix(REGISTRY_PREFIX + "/")
            removed = set()
            if norm == REGISTRY_PREFIX:
                removed = set(registries)
            elif _under(norm, REGISTRY_PREFIX):
                sub = norm[len(REGISTRY_PREFIX) + 1:].split("/")
                if len(sub) == 1:
                    removed = {unquote(sub[0])}
            left = set(registries) - removed
            if removed and not left:
                raise SafetyError(f"refusing to delete {norm!r}: it would leave {REGISTRY_PREFIX} empty, "
                                  "and the manager refuses to start without a registry",
                                  fix="configure the new registry first")

    async def delete_prefix(self, key: str) -> int:
        """Deletes `key` and everything under `key/` in one transaction; returns keys deleted.

        Narrower than `etcd delete --prefix` on purpose: `images/index.docker.io` must not take
        `images/index.docker.io.example/...` with it (docs/backendai-etcd.md#the-cli).
        """
        await self.check_delete_prefix(key)
        norm = key.strip().strip("/")
        before = await self.get_tree(norm)
        await self.write({}, delete_trees=[norm])
        return len(before)

    # -- backup / restore ---------------------------------------------------------------

    async def snapshot(self, prefix: str = "") -> Snapshot:
        if prefix:
            items = await self.get_tree(prefix.strip("/"))
            rev = await self.revision()
        else:
            items, rev = await self._get_flat_rev("")
        return Snapshot(self.namespace, prefix.strip("/"), rev, dict(sorted(items.items())))

    async def restore(self, snap: Snapshot) -> list[Change]:
        """Makes the prefix hold exactly what the snapshot holds; returns what changed."""
        if snap.namespace != self.namespace:
            raise SafetyError(f"snapshot is of namespace {snap.namespace!r}, not {self.namespace!r}",
                              fix="restore it with the manager.toml of that cluster")
        current = await self.snapshot(snap.prefix)
        puts = {k: v for k, v in snap.items.items() if current.items.get(k) != v}
        deletes = [k for k in current.items if k not in snap.items]
        await self.write(puts, deletes=deletes)
        return diff(current.items, puts, deletes)

    # -- misc ---------------------------------------------------------------------------

    async def server_version(self) -> str:
        st = await self._run(lambda c: c.status())
        return str(st.version)

    def __repr__(self) -> str:
        return f"EtcdStore({self.addr}, namespace={self.namespace!r}, user={self.user!r})"


def dumps_tree(tree: Mapping[str, Any]) -> str:
    """What `backend.ai mgr etcd get --prefix` prints for a tree (json.dumps(..., indent=4))."""
    return json.dumps(dict(tree), indent=4)
