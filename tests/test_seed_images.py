"""Seeding the sandbox registries: deterministic content, idempotent, fast, same IDs in both.

Real docker-registry processes (backends.sandbox.services.start_registry) on 127.0.0.1. The
`stack` fixture here (two seeded registries + the Harbor stand-in as a subprocess) is also
imported by tests/test_harbor_standin.py and tests/test_registry_client.py.
"""

from __future__ import annotations

import asyncio
import gzip
import hashlib
import io
import json
import sys
import tarfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from backends.sandbox import seed_images as si
from backends.sandbox.catalog import CATALOG
from backends.sandbox.harbor import HarborConfig
from backends.sandbox.layout import free_port
from backends.sandbox.procs import Proc, port_open, wait_until
from backends.sandbox.services import start_registry

USER, PASSWORD = "admin", "sbx-test-Pa55word"
ROBOT, ROBOT_SECRET = "robot$stable+ci", "sbx-robot-S3cret"
NESTED = "stable/ngc/pytorch"           # a repository name with a slash after the project
PRIVATE_REPO = "internal/tool"          # only visible when a test configures project `internal`


@dataclass
class Stack:
    """Two seeded registries and a Harbor stand-in process in front of the upstream one."""

    root: Path
    hub_url: str
    upstream_url: str
    harbor_url: str
    record: si.SeedRecord
    request_log: Path
    config: HarborConfig
    procs: list[Proc] = field(default_factory=list)

    def harbor_config(self, **switches: Any) -> HarborConfig:
        """A config for an extra in-process stand-in on its own port (same upstream, same users)."""
        raw = self.config.to_dict()
        raw["listen"]["port"] = port = free_port()
        raw["external_url"] = f"http://127.0.0.1:{port}"
        raw["request_log"] = str(self.root / f"requests-{port}.jsonl")
        projects = switches.pop("projects", None)
        if projects is not None:
            raw["projects"] = projects
        raw["switches"].update(switches)
        return HarborConfig.from_dict(raw)


def start_registries(root: Path) -> tuple[list[Proc], str, str]:
    procs, urls = [], []
    for name in ("hub", "upstream"):
        port = free_port()
        proc = Proc(name, root / "run", root / "logs")
        start_registry(proc, root / name, port)
        procs.append(proc)
        urls.append(f"http://127.0.0.1:{port}")
    return procs, urls[0], urls[1]


def start_stack(root: Path) -> Stack:
    procs, hub, up = start_registries(root)
    try:
        record = si.seed_all(hub, up, root / "seed.json")
        asyncio.run(si.push_image(up, NESTED, "21.03-py3", {"ai.backend.kernelspec": "1"}))
        asyncio.run(si.push_image(up, PRIVATE_REPO, "1.0", {"ai.backend.kernelspec": "1"}))
        port = free_port()
        cfg = HarborConfig.from_dict({
            "listen": {"host": "127.0.0.1", "port": port}, "external_url": f"http://127.0.0.1:{port}",
            "upstream": {"url": up}, "users": {USER: PASSWORD, "dev": "sbx-dev-pw"}, "admins": [USER],
            "robots": {ROBOT: ROBOT_SECRET},
            "projects": {"stable": {"public": True}, "community": {"public": True}},
            "request_log": str(root / "harbor-requests.jsonl"),
        })
        cfg_path = root / "harbor.json"
        cfg_path.write_text(json.dumps(cfg.to_dict()))
        proc = Proc("harbor", root / "run", root / "logs")
        proc.start([sys.executable, "-m", "backends.sandbox.harbor", "--config", str(cfg_path)],
                   marker=str(cfg_path), cwd=Path(__file__).resolve().parents[1])
        procs.append(proc)
        wait_until(lambda: port_open(port), timeout=20, what="Harbor stand-in", proc=proc)
    except BaseException:
        for p in procs:
            p.stop()
        raise
    return Stack(root, hub, up, cfg.external_url, record, root / "harbor-requests.jsonl", cfg, procs)


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    s = start_stack(tmp_path_factory.mktemp("stack"))
    try:
        yield s
    finally:
        for p in reversed(s.procs):
            p.stop()
        assert not any(p.alive() for p in s.procs)


# -- tests ---------------------------------------------------------------------------------

def _get(url: str, **headers: str) -> httpx.Response:
    return httpx.get(url, headers={"Accept": si.MANIFEST_ACCEPT, **headers}, trust_env=False)


def test_record_matches_offline_build_and_registries(stack: Stack) -> None:
    expected = si.expected_record(stack.hub_url, stack.upstream_url)
    assert stack.record.to_dict()["tags"] == expected.to_dict()["tags"]
    # Every catalogue placement is there, with the recorded digest.
    placements = [(reg, repo, spec.tag) for spec in CATALOG for reg, repo in si.placements(spec)]
    assert len(stack.record.tags) == len(placements)
    for reg, repo, tag in placements:
        t = stack.record.find(reg, repo, tag)
        base = stack.hub_url if reg == si.HUB else stack.upstream_url
        r = httpx.head(f"{base}/v2/{repo}/manifests/{tag}", headers={"Accept": si.MANIFEST_ACCEPT}, trust_env=False)
        assert r.status_code == 200 and r.headers["docker-content-digest"] == t.digest, (reg, repo, tag)
    # The record on disk is the same record.
    assert si.SeedRecord.load(stack.root / "seed.json").to_dict()["tags"] == expected.to_dict()["tags"]


def test_reseed_is_idempotent_and_fast(stack: Stack) -> None:
    t0 = time.monotonic()
    again = si.seed_all(stack.hub_url, stack.upstream_url, stack.root / "seed-again.json")
    assert again.pushed == 0 and again.requests == len(again.tags)     # one HEAD per tag, nothing else
    assert time.monotonic() - t0 < 3.0
    assert again.to_dict()["tags"] == stack.record.to_dict()["tags"]


def test_fresh_seed_is_fast_and_reproducible(tmp_path: Path) -> None:
    procs, hub, up = start_registries(tmp_path)
    try:
        si._BUILT.clear()               # include building the content in the timing
        t0 = time.monotonic()
        rec = si.seed_all(hub, up, tmp_path / "seed.json")
        elapsed = time.monotonic() - t0
    finally:
        for p in procs:
            p.stop()
    assert rec.pushed == len(rec.tags)
    # ~1.7 s on an idle 2-core machine; the margin absorbs a busy CI host.
    assert elapsed < 6.0, f"seeding took {elapsed:.2f}s"
    # At most: HEAD the tag; per image HEAD+POST+PUT per blob and PUT its manifest; PUT the list.
    bound = sum(1 + t.multiarch + sum(1 + 3 * (1 + len(i.layers)) for i in t.images.values()) for t in rec.tags)
    assert rec.requests <= bound
    assert rec.to_dict()["tags"] == si.expected_record().to_dict()["tags"]


def test_runnable_image_content(stack: Stack) -> None:
    t = stack.record.find(si.HUB, "lablup/python", "3.6-ubuntu18.04")
    manifest = _get(f"{stack.hub_url}/v2/lablup/python/manifests/{t.digest}").json()
    assert manifest["mediaType"] == si.MT_SCHEMA2
    cfg_raw = _get(f"{stack.hub_url}/v2/lablup/python/blobs/{manifest['config']['digest']}").content
    assert "sha256:" + hashlib.sha256(cfg_raw).hexdigest() == t.config_digest
    cfg = json.loads(cfg_raw)
    spec = next(s for s in CATALOG if s.name == "python" and s.tag == "3.6-ubuntu18.04")
    assert cfg["architecture"] == "amd64" and cfg["os"] == "linux"
    assert cfg["config"]["Labels"] == spec.labels == t.labels
    assert cfg["config"]["Cmd"] == ["/bin/busybox", "sleep", "3600"]
    assert cfg["config"]["StopSignal"] == "SIGKILL"
    assert "container_config" not in cfg          # 20.09 would read its Labels instead
    assert len(cfg["history"]) == len(manifest["layers"]) == spec.layers + 1
    # 20.09's size_bytes: layers + config.
    assert t.size_bytes == sum(la["size"] for la in manifest["layers"]) + manifest["config"]["size"]
    diff_ids = []
    for i, la in enumerate(manifest["layers"]):
        blob = _get(f"{stack.hub_url}/v2/lablup/python/blobs/{la['digest']}").content
        assert "sha256:" + hashlib.sha256(blob).hexdigest() == la["digest"] and len(blob) == la["size"]
        assert blob[4:8] == b"\0\0\0\0"         # gzip mtime = 0
        raw = gzip.decompress(blob)
        diff_ids.append("sha256:" + hashlib.sha256(raw).hexdigest())
        with tarfile.open(fileobj=io.BytesIO(raw)) as tf:
            members = tf.getmembers()
            assert all(m.mtime == si.SEED_EPOCH and m.uid == 0 and m.gid == 0 for m in members)
            if i == 0:    # the busybox layer comes first, a regular file (no applet symlinks)
                bb = tf.getmember("bin/busybox")
                assert bb.isreg() and bb.mode == 0o755
                f = tf.extractfile(bb)
                assert f is not None and f.read() == Path("/bin/busybox").read_bytes()
            else:
                (payload,) = [m for m in members if m.isreg()]
                assert payload.size == spec.layer_kib * 1024
    assert cfg["rootfs"] == {"type": "layers", "diff_ids": diff_ids}


def test_multiarch_tag_is_a_manifest_list(stack: Stack) -> None:
    t = stack.record.find(si.HUB, "lablup/python", "3.9-ubuntu20.04")
    assert t.multiarch and t.media_type == si.MT_LIST
    doc = _get(f"{stack.hub_url}/v2/lablup/python/manifests/3.9-ubuntu20.04").json()
    assert doc["mediaType"] == si.MT_LIST
    platforms = {m["platform"]["architecture"]: m for m in doc["manifests"]}
    assert set(platforms) == {"amd64", "arm64"} and platforms["arm64"]["platform"]["variant"] == "v8"
    assert t.images["amd64"].config_digest != t.images["arm64"].config_digest
    for arch, m in platforms.items():
        assert m["digest"] == t.images[arch].digest
        child = _get(f"{stack.hub_url}/v2/lablup/python/manifests/{m['digest']}").json()
        cfg = _get(f"{stack.hub_url}/v2/lablup/python/blobs/{child['config']['digest']}").json()
        assert cfg["architecture"] == arch and child["config"]["digest"] == t.images[arch].config_digest
    # A schema2-only client asking plain distribution BY TAG gets the amd64 child (down-conversion).
    r = _get(f"{stack.hub_url}/v2/lablup/python/manifests/3.9-ubuntu20.04",
             Accept="application/vnd.docker.distribution.manifest.v2+json")
    assert r.headers["docker-content-digest"] == t.amd64.digest


def test_harbor_copies_have_the_docker_hub_image_ids(stack: Stack) -> None:
    compared = 0
    for spec in CATALOG:
        if spec.hub_repo is None:
            continue
        hub = stack.record.find(si.HUB, spec.hub_repo, spec.tag)
        for project in spec.harbor_projects:
            up = stack.record.find(si.UPSTREAM, f"{project}/{spec.name}", spec.tag)
            assert (up.digest, up.config_digest, up.size_bytes, up.labels) == \
                (hub.digest, hub.config_digest, hub.size_bytes, hub.labels)
            compared += 1
    assert compared >= 10
    lookup = si.hub_lookup(stack.record)
    spec = CATALOG[0]
    assert lookup(spec) == (stack.record.find(si.HUB, spec.hub_repo or "", spec.tag).config_digest,
                            stack.record.find(si.HUB, spec.hub_repo or "", spec.tag).size_bytes, spec.labels)
    assert si.upstream_lookup(stack.record)(spec) == lookup(spec)


async def test_push_many_synthetic_images(stack: Stack) -> None:
    items = [(f"bench/app{i}", f"1.{j}", {"ai.backend.kernelspec": "1", "n": str(i)})
             for i in range(4) for j in range(3)]
    t0 = time.monotonic()
    tags = await si.push_many(stack.upstream_url, items, layer_kib=2)
    assert time.monotonic() - t0 < 5
    assert len(tags) == 12 and len({t.config_digest for t in tags}) == 12   # labels differ -> configs differ
    async with httpx.AsyncClient(base_url=stack.upstream_url, trust_env=False) as c:
        r = await c.get("/v2/bench/app3/tags/list")
        assert sorted(r.json()["tags"]) == ["1.0", "1.1", "1.2"]
    salted = await si.push_image(stack.upstream_url, "bench/app0", "salted", salt="x", multiarch=True)
    plain = await si.push_image(stack.upstream_url, "bench/app0", "plain", multiarch=True)
    assert salted.media_type == si.MT_LIST and salted.digest != plain.digest
    assert set(salted.images) == {"amd64", "arm64"}
    # Idempotent: pushing again changes nothing.
    again = await si.push_image(stack.upstream_url, "bench/app0", "plain", multiarch=True)
    assert again.digest == plain.digest
