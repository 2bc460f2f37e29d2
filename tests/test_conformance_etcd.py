"""Our etcd store against the real Backend.AI 20.09 CLI, byte for byte.

Issue: for a corpus of registry JSON documents, the keys and values our `put_json` writes must
equal those of `backend.ai mgr etcd put-json`, and our `get_prefix` must equal the output of
`etcd get --prefix` (docs/backendai-etcd.md#put-json and #the-cli).

Method: the oracle writes into namespace A and we write into namespace B of the same etcd (with
auth, as the sandbox runs it). Both are then read raw with `etcdctl`, so neither of our own
readers is trusted. The CLI exits 0 on failure (docs/backendai-etcd.md#the-cli), so the oracle
helpers raise on its error output, and every test asserts on etcd contents.

Known, deliberate divergences, each pinned by a test below:
- `EtcdStore.delete_prefix(k)` deletes `k` and `k/...`. `etcd delete --prefix k` is a raw string
  prefix and also takes siblings such as `k.example/...` or alias `python3` for `python`. Ours
  also refuses empty or protected prefixes and refuses to empty `config/docker/registry`.
- Above etcd's max-txn-ops (128), `put-json` fails as a whole. Our `write` splits into several
  transactions and writes everything (atomic only within `max_txn_ops`).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from oracle import (
    Oracle,
    OracleError,
    oracle_on_fresh_namespace,
    raw_delete_namespace,
    raw_namespace,
    unique_namespace,
)

from backends.config import HostPort
from backends.errors import SafetyError
from backends.etcd import ALIASES_PREFIX, EtcdStore, dumps_tree, flatten_json, quote
from backends.sandbox.layout import SandboxInfo
from backends.secrets import Secret

pytestmark = pytest.mark.oracle

Raw = dict[bytes, bytes]


# -- fixtures -----------------------------------------------------------------------------

@dataclass
class Etcd:
    port: int
    user: str
    password: str = field(repr=False)  # pytest prints fixture values in failure reports

    def raw(self, namespace: str) -> Raw:
        return raw_namespace(self.port, namespace, user=self.user, password=self.password)

    def wipe(self, namespace: str) -> None:
        raw_delete_namespace(self.port, namespace, user=self.user, password=self.password)

    def store(self, namespace: str) -> EtcdStore:
        return EtcdStore(HostPort("127.0.0.1", self.port), namespace, user=self.user,
                         password=Secret(self.password))


@dataclass
class Pair:
    """Namespace A is written by the oracle, namespace B by our store (`setup_a` only seeds A)."""

    etcd: Etcd
    oracle: Oracle
    store: EtcdStore
    setup_a: EtcdStore

    def raw_a(self) -> Raw:
        return self.etcd.raw(self.oracle.namespace)

    def raw_b(self) -> Raw:
        return self.etcd.raw(self.store.namespace)

    async def seed_both(self, flat: Mapping[str, str]) -> None:
        """The same raw keys into A and B (keys as given, no quoting), checked equal."""
        await self.setup_a.write(flat)
        await self.store.write(flat)
        assert self.raw_a() == self.raw_b() == _raw(flat)


@pytest.fixture
def etcd(sandbox: SandboxInfo) -> Etcd:
    return Etcd(sandbox.ports.etcd, sandbox.creds.etcd_user, sandbox.creds.etcd_password)


@pytest.fixture
async def pair(etcd: Etcd) -> AsyncIterator[Pair]:
    ns_a, ns_b = unique_namespace("conf-a"), unique_namespace("conf-b")
    oracle = Oracle.create(etcd_port=etcd.port, namespace=ns_a, etcd_user=etcd.user,
                           etcd_password=etcd.password)
    store, setup_a = etcd.store(ns_b), etcd.store(ns_a)
    try:
        await store.connect()
        await setup_a.connect()
        yield Pair(etcd, oracle, store, setup_a)
    finally:
        await store.close()
        await setup_a.close()
        oracle.close()
        for ns in (ns_a, ns_b):
            etcd.wipe(ns)
            assert etcd.raw(ns) == {}, f"namespace {ns} was not cleaned up"


# -- helpers ------------------------------------------------------------------------------

def _raw(flat: Mapping[str, str]) -> Raw:
    """Flat keys as our store/the CLI mangle them (one leading '/' dropped), as raw bytes."""
    return {(k[1:] if k.startswith("/") else k).encode(): v.encode() for k, v in flat.items()}


def _short(b: bytes, n: int = 120) -> str:
    r = repr(b)
    return r if len(r) <= n else f"{r[:n]}... ({len(b)} bytes)"


def assert_same_raw(oracle: Raw, ours: Raw) -> None:
    """Same key set and same value bytes; the message names each difference, shortened."""
    only_oracle = sorted(set(oracle) - set(ours))
    only_ours = sorted(set(ours) - set(oracle))
    differ = sorted(k for k in set(oracle) & set(ours) if oracle[k] != ours[k])
    lines = [f"key only in oracle's namespace: {_short(k)}" for k in only_oracle]
    lines += [f"key only in ours: {_short(k)}" for k in only_ours]
    lines += [f"value of {_short(k)}: oracle {_short(oracle[k])} != ours {_short(ours[k])}" for k in differ]
    assert not lines, "etcd contents differ:\n" + "\n".join(lines[:40])


def _under(key: bytes, prefix: bytes) -> bool:
    p = prefix.rstrip(b"/")
    return key == p or key.startswith(p + b"/")


# -- the put-json corpus ------------------------------------------------------------------

def _j(obj: Any) -> bytes:
    return json.dumps(obj, ensure_ascii=False).encode("utf-8")


# The registry document of step 2 of Backend.AI's migration guide (docs/runbook.md)
RUNBOOK_DOC = (b'{"config": {"docker": {"registry": {"cr.backend.ai": {\n'
               b'    "": "https://cr.backend.ai", "type": "harbor2", "project": "stable,community"}}}}}\n')
CR = {"": "https://cr.backend.ai", "type": "harbor2", "project": "stable,community"}
CR_RAW = {
    b"config/docker/registry/cr.backend.ai": b"https://cr.backend.ai",
    b"config/docker/registry/cr.backend.ai/type": b"harbor2",
    b"config/docker/registry/cr.backend.ai/project": b"stable,community",
}


@dataclass(frozen=True)
class Doc:
    id: str
    key: str
    doc: bytes
    expect: Mapping[bytes, bytes] | None = None   # pinned from 20.09's source (docs/backendai-etcd.md)
    empty: bool = False                           # nothing is written, by design


CORPUS: list[Doc] = [
    Doc("runbook-canonical-key-empty", "", RUNBOOK_DOC, CR_RAW),
    Doc("canonical-under-registry-key", "config/docker/registry", _j({"cr.backend.ai": CR}), CR_RAW),
    Doc("leading-slash-key-argument", "/config/docker/registry", _j({"cr.backend.ai": CR}), CR_RAW),
    Doc("trailing-slash-key-argument", "config/docker/registry/", _j({"cr.backend.ai": {"": "u", "type": "docker"}}),
        {b"config/docker/registry//cr.backend.ai": b"u", b"config/docker/registry//cr.backend.ai/type": b"docker"}),
    Doc("docker-hub-sample", "config/docker/registry",
        _j({"index.docker.io": {"": "https://registry-1.docker.io", "username": "lablup"}})),
    Doc("host-port-keys", "config/docker/registry", _j({
        "localhost:5000": {"": "http://localhost:5000"},
        "127.0.0.1:8443": {"": "https://127.0.0.1:8443", "type": "harbor2", "project": "stable",
                           "username": "admin", "password": "p@ss:w/rd%20#?", "ssl-verify": False}}),
        {b"config/docker/registry/localhost%3A5000": b"http://localhost:5000",
         b"config/docker/registry/127.0.0.1%3A8443": b"https://127.0.0.1:8443",
         b"config/docker/registry/127.0.0.1%3A8443/type": b"harbor2",
         b"config/docker/registry/127.0.0.1%3A8443/project": b"stable",
         b"config/docker/registry/127.0.0.1%3A8443/username": b"admin",
         b"config/docker/registry/127.0.0.1%3A8443/password": b"p@ss:w/rd%20#?",
         b"config/docker/registry/127.0.0.1%3A8443/ssl-verify": b"False"}),
    Doc("colon-in-key-argument-stays-unquoted", "config/docker/registry/127.0.0.1:5001",
        _j({"": "http://127.0.0.1:5001", "type": "docker"}),
        {b"config/docker/registry/127.0.0.1:5001": b"http://127.0.0.1:5001",
         b"config/docker/registry/127.0.0.1:5001/type": b"docker"}),
    Doc("full-migration-doc", "", _j({"config": {
        "docker": {"registry": {
            "index.docker.io": {"": "https://registry-1.docker.io", "username": "lablup"},
            "cr.backend.ai": CR,
            "harbor.local:8443": {"": "https://harbor.local:8443", "type": "harbor2", "project": "team-a,team-b",
                                  "username": "robot$ci", "password": "s3cr3t", "ssl-verify": "false"}},
            "image": {"auto_pull": "tag"}},
        "redis": {"addr": "127.0.0.1:6379"}}})),
    Doc("booleans", "config/docker/registry", _j({"r.example": {"": "https://r.example", "ssl-verify": True, "x": False}}),
        {b"config/docker/registry/r.example": b"https://r.example",
         b"config/docker/registry/r.example/ssl-verify": b"True", b"config/docker/registry/r.example/x": b"False"}),
    Doc("numbers", "config/numbers",
        b'{"zero": 0, "neg": -1, "big": 12345678901234567890, "f": 1.5, "exp": 1E5, "tiny": 1e-7,'
        b' "negzero": -0.0, "one": 1.0, "bigfloat": 12345678901234567890.0, "bigint4300": ' + b"9" * 4300 + b"}",
        None),
    Doc("null", "config/docker/registry", _j({"r": {"": "https://r", "password": None}}),
        {b"config/docker/registry/r": b"https://r", b"config/docker/registry/r/password": b"None"}),
    Doc("lists-are-not-expanded", "config/docker/registry",
        _j({"r": {"project": ["stable", "community"], "mixed": [1, "a", None, True, {"k": "v"}, []], "empty": []}}),
        {b"config/docker/registry/r/project": b"['stable', 'community']",
         b"config/docker/registry/r/mixed": b"[1, 'a', None, True, {'k': 'v'}, []]",
         b"config/docker/registry/r/empty": b"[]"}),
    Doc("empty-key-at-top-level", "config/docker/registry",
        _j({"": "value-of-the-key-itself", "cr.backend.ai": {"": "https://cr.backend.ai"}}),
        {b"config/docker/registry": b"value-of-the-key-itself",
         b"config/docker/registry/cr.backend.ai": b"https://cr.backend.ai"}),
    Doc("empty-key-at-every-level", "config/x",
        _j({"": "X", "a": {"": "A", "b": {"": "B", "c": {"": "C", "d": "D"}}}}),
        {b"config/x": b"X", b"config/x/a": b"A", b"config/x/a/b": b"B", b"config/x/a/b/c": b"C",
         b"config/x/a/b/c/d": b"D"}),
    Doc("empty-key-is-namespace-root", "", _j({"": "root-of-namespace", "config": {"": "cfg", "k": "v"}}),
        {b"": b"root-of-namespace", b"config": b"cfg", b"config/k": b"v"}),
    Doc("empty-key-holding-a-dict", "config/x", _j({"a": {"": {"x": "1", "": "own"}}}),
        {b"config/x/a/x": b"1", b"config/x/a": b"own"}),
    Doc("flattening-collision-last-wins", "config/x", _j({"a": {"": {"x": "1"}, "x": "2"}}),
        {b"config/x/a/x": b"2"}),
    Doc("duplicate-json-keys", "config/x", b'{"a": "1", "a": "2", "b": {"x": "1"}, "b": {"y": "2"}}',
        {b"config/x/a": b"2", b"config/x/b/y": b"2"}),
    Doc("korean", "config/docker/registry", _j({"레지스트리.한국": {
        "": "https://레지스트리.한국", "설명": "한국어 설명 — 테스트", "project": "안정,커뮤니티"}})),
    Doc("emoji", "config/docker/registry", _j({"🐳 whale": {
        "": "https://whale.example/🐳", "tag": "🚀✨", "🔑": "👍🏽 👨‍👩‍👧"}})),
    Doc("json-unicode-escapes-and-nul", "config/x",
        b'{"caf\\u00e9": "na\\u00efve", "\\u4e2d\\u6587": "\\u0000nul\\u001f", "\\ud83d\\udc33": "pair",'
        b' "nul\\u0000key": "k"}',
        {b"config/x/caf%C3%A9": "naïve".encode(), b"config/x/%E4%B8%AD%E6%96%87": b"\x00nul\x1f",
         b"config/x/%F0%9F%90%B3": b"pair", b"config/x/nul%00key": b"k"}),
    Doc("empty-strings", "config/docker/registry",
        _j({"r": {"": "", "username": "", "password": ""}, "e": ""}),
        {b"config/docker/registry/r": b"", b"config/docker/registry/r/username": b"",
         b"config/docker/registry/r/password": b"", b"config/docker/registry/e": b""}),
    Doc("special-characters-in-keys", "config/x", _j({
        "a/b": "slash", "50%": "percent", "with space": "sp", "what?": "q", "hash#tag": "h", "plus+": "p",
        "tilde~": "t", "amp&eq=": "ae", "semi;colon:": "sc", "dot.dash-under_": "safe", "%41": "looks-quoted",
        "back\\slash": "bs", "quote\"s'": "qq", "tab\tnl\n": "ws", "a/b/c": {"": "nested-slash", "d/e": "f"}}),
        {b"config/x/a%2Fb": b"slash", b"config/x/50%25": b"percent", b"config/x/with%20space": b"sp",
         b"config/x/what%3F": b"q", b"config/x/hash%23tag": b"h", b"config/x/plus%2B": b"p",
         b"config/x/tilde~": b"t", b"config/x/amp%26eq%3D": b"ae", b"config/x/semi%3Bcolon%3A": b"sc",
         b"config/x/dot.dash-under_": b"safe", b"config/x/%2541": b"looks-quoted",
         b"config/x/back%5Cslash": b"bs", b"config/x/quote%22s%27": b"qq", b"config/x/tab%09nl%0A": b"ws",
         b"config/x/a%2Fb%2Fc": b"nested-slash", b"config/x/a%2Fb%2Fc/d%2Fe": b"f"}),
    Doc("pre-quoted-host-port-is-quoted-again", "config/docker/registry",
        _j({"localhost%3A5000": {"": "http://localhost:5000"}}),
        {b"config/docker/registry/localhost%253A5000": b"http://localhost:5000"}),
    Doc("whitespace-in-values", "config/x", _j({"multi": "line1\nline2\r\n\ttab", " lead": " spaced ", "trail ": "   "})),
    Doc("very-long-values", "config/docker/registry",
        _j({"r.example": {"": "https://r.example/" + "x" * 200_000, "password": "p" * 65_536}})),
    Doc("very-long-keys", "config/x", _j({"k" * 3000: "v", "가" * 500: "long unicode key"})),
    Doc("deep-nesting", "config/deep", _j(_deep := {"l0": {"l1": {"l2": {"l3": {"l4": {"l5": {"l6": {"l7": {
        "l8": {"l9": {"l10": {"l11": {"l12": {"l13": {"l14": {"l15": {"": "bottom", "leaf": "v"}}}}}}}}}}}}}}}}})),
    Doc("aliases-document", ALIASES_PREFIX, _j({
        "python": "cr.backend.ai/stable/python:3.9-ubuntu20.04",
        "python:3.6": "cr.backend.ai/stable/python:3.6-ubuntu18.04",
        "tensorflow/2.3": "cr.backend.ai/stable/python-tensorflow:2.3-py36-cuda10.1"}),
        {b"images/_aliases/python": b"cr.backend.ai/stable/python:3.9-ubuntu20.04",
         b"images/_aliases/python%3A3.6": b"cr.backend.ai/stable/python:3.6-ubuntu18.04",
         b"images/_aliases/tensorflow%2F2.3": b"cr.backend.ai/stable/python-tensorflow:2.3-py36-cuda10.1"}),
    Doc("unicode-and-space-in-key-argument", "config/레지스트리 목록", _j({"x y": "1"}),
        {"config/레지스트리 목록/x%20y".encode(): b"1"}),
    Doc("nan-and-infinity", "config/x", b'{"nan": NaN, "inf": Infinity, "ninf": -Infinity, "huge": 1e400}',
        {b"config/x/nan": b"nan", b"config/x/inf": b"inf", b"config/x/ninf": b"-inf", b"config/x/huge": b"inf"}),
    Doc("utf8-bom-document", "", b"\xef\xbb\xbf" + RUNBOOK_DOC, CR_RAW),
    Doc("utf16-document", "", RUNBOOK_DOC.decode().encode("utf-16"), CR_RAW),
    Doc("exactly-128-leaves-one-transaction", "config/many", _j({f"k{i:03d}": str(i) for i in range(128)})),
    Doc("empty-dict", "config/docker/registry", b"{}", empty=True),
    Doc("only-empty-dicts", "config/x", _j({"a": {}, "b": {"c": {}}, "": {}}), empty=True),
]


@pytest.mark.parametrize("case", CORPUS, ids=[c.id for c in CORPUS])
async def test_put_json_writes_what_the_oracle_writes(pair: Pair, case: Doc) -> None:
    pair.oracle.put_json(case.key, case.doc)
    # Our side reads the file as the CLI does (json.load of the bytes: BOM and UTF-16 detected).
    flat = await pair.store.put_json(case.key, json.loads(case.doc))

    raw_a, raw_b = pair.raw_a(), pair.raw_b()
    if case.empty:
        assert raw_a == {} and raw_b == {}
    else:
        assert raw_a, "the oracle wrote nothing; it must have failed silently"
    assert_same_raw(raw_a, raw_b)
    if case.expect is not None:
        assert raw_a == dict(case.expect)
    # what put_json reports having written is what is there, and our own reader agrees with etcdctl
    assert _raw(flat) == raw_b
    assert await pair.store.get_flat("") == {k.decode(): v.decode() for k, v in raw_b.items()}


# Documents both sides must refuse without writing anything (the CLI still exits 0).
REFUSED: list[Doc] = [
    Doc("lone-surrogate-in-value", "config/x", b'{"r": {"": "https://r", "bad": "\\ud800"}}'),
    Doc("lone-surrogate-in-key", "config/x", b'{"ok": "1", "\\udc00": "v"}'),
    Doc("top-level-array", "config/x", b'[{"a": "1"}]'),
    Doc("top-level-string", "config/x", b'"https://cr.backend.ai"'),
    Doc("top-level-null", "config/x", b"null"),
    Doc("integer-over-4300-digits", "config/x", b'{"n": ' + b"9" * 4301 + b"}"),
    Doc("invalid-json", "config/x", b'{"a": "1",}'),
    Doc("empty-file", "config/x", b""),
]


@pytest.mark.parametrize("case", REFUSED, ids=[c.id for c in REFUSED])
async def test_documents_both_refuse_write_nothing(pair: Pair, case: Doc) -> None:
    with pytest.raises(OracleError, match="An error occurred"):
        pair.oracle.put_json(case.key, case.doc)
    with pytest.raises((ValueError, AttributeError)):
        await pair.store.put_json(case.key, json.loads(case.doc))
    assert pair.raw_a() == {}
    assert pair.raw_b() == {}


async def test_more_than_max_txn_ops_leaves_diverges_on_purpose(pair: Pair) -> None:
    """put-json sends one transaction and etcd refuses more than 128 operations, so the CLI writes
    nothing. Our write splits into transactions of `max_txn_ops` and writes everything."""
    doc = {f"k{i:03d}": str(i) for i in range(200)}
    with pytest.raises(OracleError, match="too many operations in txn request"):
        pair.oracle.put_json("config/many", doc)
    assert pair.raw_a() == {}

    flat = flatten_json("config/many", doc)
    assert await pair.store.write(flat) == 2
    assert pair.raw_b() == _raw(flat)
    assert len(pair.raw_b()) == 200


# -- get --prefix -------------------------------------------------------------------------

# Raw keys as stored (already quoted where Backend.AI quotes), read by both the CLI and us.
TREE: dict[str, str] = {
    "": "namespace-root",
    "config/docker/registry/cr.backend.ai": "https://cr.backend.ai",
    "config/docker/registry/cr.backend.ai/type": "harbor2",
    "config/docker/registry/cr.backend.ai/project": "stable,community",
    "config/docker/registry/cr.backend.ai.mirror": "https://mirror.example",
    "config/docker/registry/index.docker.io": "https://registry-1.docker.io",
    "config/docker/registry/index.docker.io/username": "lablup",
    "config/docker/registry/localhost%3A5000": "http://localhost:5000",
    "config/docker/registry/localhost%3A5000/type": "docker",
    "config/docker/registry/127.0.0.1:5001": "http://127.0.0.1:5001",
    "config/docker/registry/127.0.0.1:5001/type": "docker",
    "config/docker/registry/%EB%A0%88%EC%A7%80": "https://레지.example",
    "config/docker/image/auto_pull": "tag",
    "config/redis/addr": "127.0.0.1:6379",
    "config/x/a%41/x": "quoted; unquotes onto the next key",
    "config/x/aA": "plain; replaces the dict built from a%41",
    "config/x/50%25": "percent",
    "config/x/%F0%9F%90%B3": "🐳 value",
    "config/x/empty": "",
    "config/x//double": "double slash",
    "config/x/multi": "line1\nline2\t\"quoted\"",
    "images/a": "1",
    "images/a/t1": "sha256:a",
    "images/ab": "1",
    "images/ab/t1": "sha256:ab",
    "images/a%2Fb/t": "quoted slash",
    "images/_aliases/python": "cr.backend.ai/stable/python:3.9-ubuntu20.04",
    "images/_aliases/python%3A3.6": "cr.backend.ai/stable/python:3.6-ubuntu18.04",
    "images/_aliases/한국어": "raw unicode key",
    "nodes/manager": "up",
}

GET_PREFIX_KEYS = [
    "", "config", "config/", "/config", "config/docker/registry", "config/docker/registry/",
    "config/docker/registry/cr.backend.ai", "config/docker/registry/localhost%3A5000",
    "config/docker/registry/localhost:5000", "config/docker/registry/127.0.0.1:5001",
    "config/docker/registry/c", "config/x", "images/a", "images/a/", "images/a/t1", "images/_aliases",
    "does/not/exist",
]

# A few results pinned from reading 20.09's common/etcd.py and cli/etcd.py (docs/backendai-etcd.md),
# so that both sides cannot agree on nonsense.
PINNED = {
    # raw string prefix: `images/ab` comes in as `b`, and `images/a%2Fb/t` as the unquoted `/b`
    "images/a": {"": "1", "t1": "sha256:a", "b": {"": "1", "t1": "sha256:ab"}, "/b": {"t": "quoted slash"}},
    "images/a/": {"t1": "sha256:a"},
    "config/docker/registry/cr.backend.ai": {"": "https://cr.backend.ai", "type": "harbor2",
                                             "project": "stable,community", ".mirror": "https://mirror.example"},
    "config/docker/registry/localhost:5000": {},
    "/config": {},
    "images/_aliases": {"python": "cr.backend.ai/stable/python:3.9-ubuntu20.04",
                        "python:3.6": "cr.backend.ai/stable/python:3.6-ubuntu18.04",
                        "한국어": "raw unicode key"},
}


@pytest.mark.parametrize("key", GET_PREFIX_KEYS, ids=[repr(k) for k in GET_PREFIX_KEYS])
async def test_get_prefix_equals_oracle_output(pair: Pair, key: str) -> None:
    await pair.setup_a.write(TREE)
    assert pair.raw_a() == _raw(TREE)

    printed = pair.oracle.get_prefix_text(key)
    ours = await pair.setup_a.get_prefix(key)
    assert ours == json.loads(printed)
    # byte-identical to what the CLI prints, key order included (json.dumps(..., indent=4) + newline)
    assert dumps_tree(ours) + "\n" == printed
    if key in PINNED:
        assert ours == PINNED[key]


# -- put / get of single keys -------------------------------------------------------------

PUTS: list[tuple[str, str]] = [
    ("config/test/a", "x/y:z"),
    ("config/docker/registry/localhost%3A5000", "http://localhost:5000"),
    ("config/docker/registry/127.0.0.1:5000", "http://127.0.0.1:5000"),
    ("images/_aliases/python", "cr.backend.ai/stable/python:3.9-ubuntu20.04"),
    ("config/한국어/키 🐳", "값 🐳 👨‍👩‍👧"),
    ("config/empty-value", ""),
    ("/config/leading-slash", "v"),
    ("config/odd chars?#%&=+;", " spaced value "),
    ("config/multiline", "a\nb\n"),
    ("config/dash", "-starts-with-dash"),
    ("config/long", "L" * 100_000),
    ("", "namespace root"),
]


@pytest.mark.parametrize(("key", "value"), PUTS, ids=[repr(k)[:40] for k, _ in PUTS])
async def test_put_and_get_single_key(pair: Pair, key: str, value: str) -> None:
    pair.oracle.put(key, value)
    await pair.store.put(key, value)
    assert pair.raw_a() == _raw({key: value})
    assert_same_raw(pair.raw_a(), pair.raw_b())
    assert pair.oracle.get(key) == value
    assert await pair.store.get(key) == value


async def test_get_missing_key(pair: Pair) -> None:
    await pair.seed_both({"config/present": "1", "config/missingx": "raw-prefix sibling"})
    assert pair.oracle.get("config/missing") is None
    assert await pair.store.get("config/missing") is None
    assert pair.oracle.get("config/present") == await pair.store.get("config/present") == "1"


# -- aliases (the `aliases` step writes what `etcd alias` writes) -------------------------

async def test_alias_key_equals_oracle(pair: Pair) -> None:
    # alias/dealias run SharedConfig.reload(), which needs a valid registry configuration
    registry = _j({"cr.backend.ai": CR})
    pair.oracle.put_json("config/docker/registry", registry)
    await pair.store.put_json("config/docker/registry", json.loads(registry))

    aliases = {"python": "cr.backend.ai/stable/python:3.9-ubuntu20.04",
               "python:3.6": "cr.backend.ai/stable/python:3.6-ubuntu18.04",
               "한국어 별칭": "cr.backend.ai/community/한국어:1"}
    for alias, target in aliases.items():
        pair.oracle.alias(alias, target)
        await pair.store.put(f"{ALIASES_PREFIX}/{quote(alias)}", target)
    assert b"images/_aliases/python%3A3.6" in pair.raw_a()
    assert_same_raw(pair.raw_a(), pair.raw_b())
    # listing: `get --prefix images/_aliases` gives alias -> target with the aliases unquoted (s.4)
    assert pair.oracle.get_prefix(ALIASES_PREFIX) == await pair.store.get_prefix(ALIASES_PREFIX) == aliases

    pair.oracle.dealias("python:3.6")
    await pair.store.delete(f"{ALIASES_PREFIX}/{quote('python:3.6')}")
    assert b"images/_aliases/python%3A3.6" not in pair.raw_a()
    assert_same_raw(pair.raw_a(), pair.raw_b())


async def test_oracle_reads_our_image_keys(pair: Pair) -> None:
    """The real manager parses image metadata we write in the rescan layout (docs/backendai-etcd.md#rescan)."""
    await pair.setup_a.put_json("config/docker/registry", {"cr.backend.ai": CR})
    tag = "images/cr.backend.ai/stable%2Fpython/3.9-ubuntu20.04"
    await pair.setup_a.write({"images/cr.backend.ai/stable%2Fpython": "1", tag: "sha256:abc",
                              f"{tag}/size_bytes": "123", f"{tag}/labels/ai.backend.kernelspec": "1",
                              f"{tag}/resource/cpu/min": "1"})
    listing = pair.oracle.list_images()
    assert "'canonical_ref': 'cr.backend.ai/stable/python:3.9-ubuntu20.04'" in listing
    assert "'digest': 'sha256:abc'" in listing


def test_oracle_silent_failure_is_detected(etcd: Etcd) -> None:
    """`rescan-images` of an unknown registry exits 0; the harness must still raise."""
    with oracle_on_fresh_namespace(etcd.port, user=etcd.user, password=etcd.password) as oracle:
        oracle.put_json("config/docker/registry", {"cr.backend.ai": CR})
        assert etcd.raw(oracle.namespace) == CR_RAW
        with pytest.raises(OracleError, match="unknown registry") as info:
            oracle.rescan_images("not-configured.example")
        assert info.value.result is not None and info.value.result.returncode == 0
        namespace = oracle.namespace
    assert etcd.raw(namespace) == {}


# -- delete / delete --prefix -------------------------------------------------------------

DELETE_SEED: dict[str, str] = {
    "config/docker/registry/index.docker.io": "https://registry-1.docker.io",
    "config/docker/registry/index.docker.io/username": "lablup",
    "config/docker/registry/index.docker.io.mirror": "https://mirror.example",
    "config/docker/registry/index.docker.io.mirror/type": "docker",
    "config/docker/registry/cr.backend.ai": "https://cr.backend.ai",
    "config/docker/registry/cr.backend.ai/type": "harbor2",
    "config/docker/registry/cr.backend.ai/project": "stable,community",
    "images/index.docker.io/lablup%2Fpython": "1",
    "images/index.docker.io/lablup%2Fpython/3.6-ubuntu18.04": "sha256:old",
    "images/index.docker.io/lablup%2Fpython/3.6-ubuntu18.04/size_bytes": "123",
    "images/index.docker.io.example/lablup%2Fpython": "1",
    "images/cr.backend.ai/stable%2Fpython": "1",
    "images/cr.backend.ai/stable%2Fpython/3.6-ubuntu18.04": "sha256:new",
    "images/cr.backend.ai/stable%2Fpython/3.6-ubuntu18.04/size_bytes": "456",
    "images/cr.backend.ai/stable%2Fpython/3.9-ubuntu20.04": "sha256:newer",
    "images/_aliases/python": "index.docker.io/lablup/python:3.6-ubuntu18.04",
    "images/_aliases/python3": "cr.backend.ai/stable/python:3.9-ubuntu20.04",
    "images/_aliases/python%3A3.6": "cr.backend.ai/stable/python:3.6-ubuntu18.04",
    "config/redis/addr": "127.0.0.1:6379",
}

# (prefix, keys the CLI's raw string prefix deletes on top of ours)
DELETES: list[tuple[str, set[bytes]]] = [
    ("images/index.docker.io", {b"images/index.docker.io.example/lablup%2Fpython"}),
    ("config/docker/registry/index.docker.io", {b"config/docker/registry/index.docker.io.mirror",
                                                b"config/docker/registry/index.docker.io.mirror/type"}),
    ("images/_aliases/python", {b"images/_aliases/python3", b"images/_aliases/python%3A3.6"}),
    ("images/cr.backend.ai/stable%2Fpython/3.6-ubuntu18.04", set()),
    ("images/index.docker.io/", set()),
]


@pytest.mark.parametrize(("prefix", "cli_only"), DELETES, ids=[p for p, _ in DELETES])
async def test_delete_prefix_is_narrower_than_the_cli(pair: Pair, prefix: str, cli_only: set[bytes]) -> None:
    await pair.seed_both(DELETE_SEED)
    seed = _raw(DELETE_SEED)

    pair.oracle.delete(prefix, prefix=True)
    deleted = await pair.store.delete_prefix(prefix)

    raw_a, raw_b = pair.raw_a(), pair.raw_b()
    # the CLI: a raw string prefix (docs/backendai-etcd.md#the-cli)
    assert raw_a == {k: v for k, v in seed.items() if not k.startswith(prefix.encode())}
    # ours: the key itself and everything below key/
    assert raw_b == {k: v for k, v in seed.items() if not _under(k, prefix.encode())}
    assert deleted == len(seed) - len(raw_b) > 0
    # the one and only difference: siblings that merely share the string prefix
    assert set(raw_b) - set(raw_a) == cli_only
    assert set(raw_a) <= set(raw_b)


async def test_delete_single_key_equals_oracle(pair: Pair) -> None:
    await pair.seed_both(DELETE_SEED)
    key = "config/docker/registry/index.docker.io"
    pair.oracle.delete(key)
    await pair.store.delete(key)
    assert_same_raw(pair.raw_a(), pair.raw_b())
    # exactly one key gone; the orphaned `.../username` stays (why cleanup must delete the tree)
    assert set(_raw(DELETE_SEED)) - set(pair.raw_a()) == {key.encode()}


async def test_cli_empty_prefix_wipes_namespace_ours_refuses(pair: Pair) -> None:
    await pair.seed_both(DELETE_SEED)
    pair.oracle.delete("", prefix=True)
    assert pair.raw_a() == {}
    with pytest.raises(SafetyError, match="empty prefix"):
        await pair.store.delete_prefix("")
    assert pair.raw_b() == _raw(DELETE_SEED)


REFUSED_PREFIXES = ["", "/", "  ", "//", "config", "/config/", "images", "images/", "config/docker",
                    "config/docker/registry", "config/docker/registry/", "images/_aliases", "config/redis",
                    "nodes", "manager", "volumes"]


@pytest.mark.parametrize("prefix", REFUSED_PREFIXES, ids=[repr(p) for p in REFUSED_PREFIXES])
async def test_delete_prefix_refuses_whole_subtrees(etcd_ns: EtcdStore, etcd: Etcd, prefix: str) -> None:
    await etcd_ns.write(DELETE_SEED)
    with pytest.raises(SafetyError, match="refusing"):
        await etcd_ns.delete_prefix(prefix)
    assert etcd.raw(etcd_ns.namespace) == _raw(DELETE_SEED)


@pytest.mark.parametrize("registry_key", ["config/docker/registry/index.docker.io",
                                          "config/docker/registry/index.docker.io/",
                                          "/config/docker/registry/index.docker.io"])
async def test_delete_prefix_refuses_to_empty_the_registry_config(
        etcd_ns: EtcdStore, etcd: Etcd, registry_key: str) -> None:
    hub = {"config/docker/registry/index.docker.io": "https://registry-1.docker.io",
           "config/docker/registry/index.docker.io/username": "lablup",
           "images/index.docker.io/lablup%2Fpython": "1"}
    await etcd_ns.write(hub)
    with pytest.raises(SafetyError, match="leave config/docker/registry empty"):
        await etcd_ns.delete_prefix(registry_key)
    assert etcd.raw(etcd_ns.namespace) == _raw(hub)

    # once the target registry is configured, the old one may go
    await etcd_ns.put_json("config/docker/registry", {"cr.backend.ai": CR})
    assert await etcd_ns.delete_prefix(registry_key) == 2
    assert await etcd_ns.get_prefix("config/docker/registry") == {"cr.backend.ai": CR}


async def test_registry_guard_counts_quoted_host_port_names(etcd_ns: EtcdStore) -> None:
    await etcd_ns.put_json("config/docker/registry", {"localhost:5000": {"": "http://localhost:5000"}})
    with pytest.raises(SafetyError, match="leave config/docker/registry empty"):
        await etcd_ns.delete_prefix("config/docker/registry/localhost%3A5000")
    assert await etcd_ns.get("config/docker/registry/localhost%3A5000") == "http://localhost:5000"


async def test_registry_guard_ignores_raw_prefix_siblings(etcd_ns: EtcdStore, etcd: Etcd) -> None:
    """A backup subtree such as `config/docker/registry.bak` (e.g. from `etcd move-subtree`) is not
    a registry; it must not let the last real registry be deleted."""
    seed = {"config/docker/registry/index.docker.io": "https://registry-1.docker.io",
            "config/docker/registry.bak/index.docker.io": "https://registry-1.docker.io"}
    await etcd_ns.write(seed)
    with pytest.raises(SafetyError, match="leave config/docker/registry empty"):
        await etcd_ns.delete_prefix("config/docker/registry/index.docker.io")
    assert etcd.raw(etcd_ns.namespace) == _raw(seed)


# -- the harness itself -------------------------------------------------------------------

def test_missing_oracle_is_an_error_not_a_skip(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from oracle import OracleMissing, find_oracle

    monkeypatch.setenv("BAIRM_ORACLE", str(tmp_path / "nope" / "backend.ai"))
    with pytest.raises(OracleMissing, match="make oracle"):
        find_oracle()


def test_manager_toml_is_private(etcd: Etcd) -> None:
    ns = unique_namespace("toml")
    with Oracle.create(etcd_port=etcd.port, namespace=ns, etcd_user=etcd.user,
                       etcd_password=etcd.password) as oracle:
        toml = oracle.workdir / "manager.toml"
        assert toml.stat().st_mode & 0o777 == 0o600
        assert oracle.workdir.stat().st_mode & 0o777 == 0o700
        assert oracle.quote("localhost:5000") == quote("localhost:5000") == "localhost%3A5000"
    assert not oracle.workdir.exists()
    assert etcd.raw(ns) == {}
