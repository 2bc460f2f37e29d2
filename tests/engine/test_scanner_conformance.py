"""Our rescan against the real Backend.AI 20.09 `etcd rescan-images`, key for key, byte for byte.

The sandbox's Harbor stand-in is Harbor-faithful: it resolves a tag to its digest and serves a
manifest list as a list, so the real 20.09 scanner fails on its multi-arch tags with
KeyError('config') and writes nothing at all, possibly exiting 0 (docs/backendai-etcd.md#rescan,
docs/harbor.md#manifests). The comparison is therefore built like this:

- ours scans the sandbox's stand-in (multi-arch tags included) into namespace B;
- a second, isolated registry gets every tag of the sandbox's Harbor upstream, except that each
  multi-arch tag is replaced by its linux/amd64 (x86_64) child pushed as a single-arch tag;
  a Harbor-faithful stand-in in front of it is rescanned by the real 20.09 CLI into namespace A;
- A's `images/...` keys must equal B's, key for key and value for value.

Namespaces are cleared first and assertions are on etcd contents only, never on the oracle's
exit code or log.
"""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from oracle import Oracle, raw_delete_namespace, raw_namespace, unique_namespace

from backends.cluster import Cluster
from backends.config import HostPort, load_settings
from backends.etcd import EtcdStore
from backends.plan_file import load_plan
from backends.registry_document import RegistryEntry, validate
from backends.sandbox import seed_images as si
from backends.sandbox.catalog import CATALOG
from backends.sandbox.cluster import registry_document
from backends.sandbox.harbor import HarborConfig
from backends.sandbox.layout import SandboxInfo, free_port
from backends.sandbox.procs import Proc, port_open, wait_until
from backends.sandbox.services import start_registry
from backends.scanner import ScanResult, scan_registry
from backends.secrets import Secret
from backends.state import StepState
from backends.steps.base import Finding
from backends.steps.preflight import PreflightStep

from .support import REPO, target_kernel_images

pytestmark = [pytest.mark.oracle]

TARGET = "cr.backend.ai"
ISO_PASSWORD = "iso-harbor-Pa55"
MULTIARCH = sorted(f"{p}/{s.name}:{s.tag}" for s in CATALOG if s.multiarch for p in s.harbor_projects)


# -- an isolated Harbor stand-in whose multi-arch tags are their amd64 children ------------------

@dataclass
class IsoHarbor:
    url: str
    procs: list[Proc]
    children: dict[str, str]        # "project/repo:tag" -> digest of the amd64 child pushed as the tag


async def _copy_catalog(sandbox_upstream: str, iso_upstream: str) -> dict[str, str]:
    children: dict[str, str] = {}
    async with si.Pusher(iso_upstream) as pusher, httpx.AsyncClient(trust_env=False) as http:
        for spec in CATALOG:
            built = si.build_spec(spec)
            for project in spec.harbor_projects:
                repo = f"{project}/{spec.name}"
                if built.index is None:
                    await pusher.push_built(repo, built)
                    continue
                # The x86_64 child of the sandbox's list, read from the sandbox's own upstream
                # (not from our build) and pushed here, byte for byte, as a single-arch tag.
                r = await http.get(f"{sandbox_upstream}/v2/{repo}/manifests/{spec.tag}",
                                   headers={"Accept": si.MT_LIST})
                assert r.headers["content-type"] == si.MT_LIST, (repo, r.headers)
                amd64 = [m for m in r.json()["manifests"] if m["platform"]["architecture"] == "amd64"]
                assert len(amd64) == 1
                child = next(im for im in built.images if im.manifest.digest == amd64[0]["digest"])
                await pusher.push_image(repo, child, spec.tag)
                children[f"{repo}:{spec.tag}"] = child.manifest.digest
    return children


@pytest.fixture(scope="module")
def iso_harbor(sandbox: SandboxInfo, tmp_path_factory: pytest.TempPathFactory) -> Iterator[IsoHarbor]:
    root = tmp_path_factory.mktemp("iso-harbor")
    procs: list[Proc] = []
    try:
        up_port, port = free_port(), free_port()
        up = Proc("iso-upstream", root / "run", root / "logs")
        procs.append(up)
        start_registry(up, root / "upstream", up_port)
        upstream_url = f"http://127.0.0.1:{up_port}"
        children = asyncio.run(_copy_catalog(sandbox.upstream_url, upstream_url))
        assert sorted(children) == MULTIARCH
        cfg = HarborConfig.from_dict({
            "listen": {"host": "127.0.0.1", "port": port}, "external_url": f"http://127.0.0.1:{port}",
            "upstream": {"url": upstream_url}, "users": {sandbox.creds.harbor_user: ISO_PASSWORD},
            "admins": [sandbox.creds.harbor_user],
            "projects": {p: {"public": True} for p in sandbox.projects},
            "request_log": str(root / "requests.jsonl"),
        })
        assert cfg.switches.resolve_digest        # Harbor-faithful, like the sandbox's
        cfg_path = root / "harbor.json"
        cfg_path.write_text(json.dumps(cfg.to_dict()))
        harbor = Proc("iso-harbor", root / "run", root / "logs")
        procs.append(harbor)
        harbor.start([sys.executable, "-m", "backends.sandbox.harbor", "--config", str(cfg_path)],
                     marker=str(cfg_path), cwd=REPO)
        wait_until(lambda: port_open(port), timeout=20, what="isolated Harbor stand-in", proc=harbor)
        yield IsoHarbor(cfg.external_url, procs, children)
    finally:
        for p in reversed(procs):
            p.stop()
        assert not any(p.alive() for p in procs)


# -- helpers -------------------------------------------------------------------------------------

def _doc(url: str, user: str, password: str) -> dict[str, object]:
    return {"config": {"docker": {"registry": {TARGET: {
        "": url, "type": "harbor2", "project": "stable,community", "username": user, "password": password}}}}}


def _entry(doc: dict[str, object]) -> RegistryEntry:
    v = validate(json.dumps(doc), target=TARGET)
    assert v.ok, v.errors
    return v.entries[TARGET]


def _images(raw: dict[bytes, bytes]) -> dict[bytes, bytes]:
    return {k: v for k, v in raw.items() if k.startswith(b"images/")}


def _diff(a: dict[bytes, bytes], b: dict[bytes, bytes]) -> list[str]:
    out = [f"only in 20.09's: {k!r}" for k in sorted(set(a) - set(b))]
    out += [f"only in ours: {k!r}" for k in sorted(set(b) - set(a))]
    out += [f"{k!r}: 20.09 {a[k]!r} != ours {b[k]!r}" for k in sorted(set(a) & set(b)) if a[k] != b[k]]
    return out


@dataclass
class Namespaces:
    info: SandboxInfo

    def wipe(self, ns: str) -> None:
        c = self.info.creds
        raw_delete_namespace(self.info.ports.etcd, ns, user=c.etcd_user, password=c.etcd_password)

    def raw(self, ns: str) -> dict[bytes, bytes]:
        c = self.info.creds
        return raw_namespace(self.info.ports.etcd, ns, user=c.etcd_user, password=c.etcd_password)


@pytest.fixture
def namespaces(sandbox: SandboxInfo) -> Iterator[tuple[Namespaces, list[str]]]:
    ns = Namespaces(sandbox)
    used: list[str] = []
    try:
        yield ns, used
    finally:
        for n in used:
            ns.wipe(n)


def _fresh(nss: tuple[Namespaces, list[str]], tag: str) -> str:
    ns, used = nss
    name = unique_namespace(tag)
    used.append(name)
    ns.wipe(name)                       # cleared first: stale keys cannot pass
    assert ns.raw(name) == {}
    return name


def _oracle_rescan(info: SandboxInfo, exe: Path, ns: str, doc: dict[str, object]) -> str:
    """put-json the registry config, then `etcd rescan-images`; returns the output (for messages)."""
    c = info.creds
    with Oracle.create(etcd_port=info.ports.etcd, namespace=ns, etcd_user=c.etcd_user,
                       etcd_password=c.etcd_password, exe=exe) as o:
        o.put_json("", doc)
        assert o.get_prefix("config/docker/registry")[TARGET]["type"] == "harbor2"
        r = o.etcd("rescan-images", "--", TARGET, check=False)
        return f"exit {r.returncode}\n{r.stdout[-2000:]}\n{r.stderr[-3000:]}"


def _write_ours(info: SandboxInfo, ns: str, keys: dict[str, str]) -> None:
    """Written as the registry step writes the rescan (EtcdStore.write_concurrently)."""
    async def go() -> None:
        store = EtcdStore(HostPort("127.0.0.1", info.ports.etcd), ns, user=info.creds.etcd_user,
                          password=Secret(info.creds.etcd_password))
        async with store:
            await store.write_concurrently(keys)
    asyncio.run(go())


@pytest.fixture(scope="module")
def our_scan(sandbox: SandboxInfo) -> ScanResult:
    """Our scanner on the sandbox's Harbor-faithful stand-in, multi-arch tags and all."""
    doc = registry_document(sandbox)
    return asyncio.run(scan_registry(_entry(doc), architecture="x86_64"))


# -- tests ---------------------------------------------------------------------------------------

def test_our_rescan_equals_20_09_key_for_key(sandbox: SandboxInfo, oracle_exe: Path, iso_harbor: IsoHarbor,
                                             our_scan: ScanResult,
                                             namespaces: tuple[Namespaces, list[str]]) -> None:
    ns_a, ns_b = _fresh(namespaces, "scan-2009"), _fresh(namespaces, "scan-ours")
    log = _oracle_rescan(sandbox, oracle_exe, ns_a,
                         _doc(iso_harbor.url, sandbox.creds.harbor_user, ISO_PASSWORD))
    _write_ours(sandbox, ns_b, our_scan.keys)
    theirs, ours = _images(namespaces[0].raw(ns_a)), _images(namespaces[0].raw(ns_b))
    assert len(theirs) > 100, f"20.09 wrote {len(theirs)} image keys against the single-arch stand-in:\n{log}"
    assert not _diff(theirs, ours), "\n".join(_diff(theirs, ours)[:40])
    assert ours == {k.encode(): v.encode() for k, v in our_scan.keys.items()}

    # What was compared: every kernel tag of the target, each with the complete key set.
    images = {f"{TARGET}/{k.split(b'/')[2].decode().replace('%2F', '/')}:{k.split(b'/')[3].decode()}"
              for k in theirs if k.count(b"/") >= 3}
    assert images == target_kernel_images(TARGET) == set(our_scan.images)
    record = si.SeedRecord.load(sandbox.path / "seed.json")
    for name in MULTIARCH:
        repo, tag = name.split(":")
        key = f"images/{TARGET}/{repo.replace('/', '%2F')}/{tag}".encode()
        seeded = record.find(si.UPSTREAM, repo, tag)
        assert seeded.multiarch
        assert theirs[key] == ours[key] == seeded.amd64.config_digest.encode()      # the x86_64 child
        assert theirs[key + b"/size_bytes"] == str(seeded.amd64.size_bytes).encode()
        assert seeded.amd64.digest == iso_harbor.children[name]
    assert len(images) - len(MULTIARCH) >= 10                 # and the single-arch ones
    assert sorted(our_scan.multiarch) == MULTIARCH
    # Labels, resource minimums and accelerators are among the compared keys.
    assert any(k.endswith(b"/resource/cuda.device/min") for k in theirs)
    assert any(k.endswith(b"/accels") for k in theirs)
    assert any(b"/labels/ai.backend.kernelspec" in k for k in theirs)


def test_20_09_writes_nothing_against_harbor_multiarch_but_ours_does_and_preflight_warns(
        fresh_sandbox: SandboxInfo, oracle_exe: Path, our_scan: ScanResult,
        namespaces: tuple[Namespaces, list[str]]) -> None:
    info = fresh_sandbox
    ns_c = _fresh(namespaces, "scan-faithful")
    log = _oracle_rescan(info, oracle_exe, ns_c, registry_document(info))
    raw = namespaces[0].raw(ns_c)
    assert _images(raw) == {}, f"20.09 wrote image keys against a multi-arch Harbor:\n{log}"
    assert raw[f"config/docker/registry/{TARGET}/type".encode()] == b"harbor2"   # the config was there

    # Ours, on the very same stand-in: every kernel image, multi-arch ones as their x86_64 child.
    assert set(our_scan.images) == target_kernel_images(TARGET)
    record = si.SeedRecord.load(info.path / "seed.json")
    for name in MULTIARCH:
        repo, tag = name.split(":")
        key = f"images/{TARGET}/{repo.replace('/', '%2F')}/{tag}"
        assert our_scan.keys[key] == record.find(si.UPSTREAM, repo, tag).amd64.config_digest

    # Preflight says so before anything is written.
    async def findings() -> list[Finding]:
        cluster = Cluster(load_settings(str(info.manager_toml)), load_plan(str(info.plan_toml)))
        await cluster.open()
        try:
            return list(await PreflightStep(cluster, StepState("preflight"), lambda _e: None).inspect())
        finally:
            await cluster.close()

    multi = [f for f in asyncio.run(findings()) if f.code == "multiarch"]
    assert len(multi) == 1
    f = multi[0]
    assert f.severity == "warning"
    assert f"rescan-images {TARGET}` would fail" in f.message
    assert sorted(f.details) == MULTIARCH
