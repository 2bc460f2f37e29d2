"""Push the image catalogue into the sandbox registries with plain HTTP: no Docker engine needed.

Two real docker-registry processes receive the same images: the Docker Hub stand-in
(`lablup/<name>`, `library/<name>`) and the registry behind the Harbor stand-in
(`stable/<name>`, `community/<name>`). Both get byte-identical configs and layers, so the
Harbor copy has the same config digest (the image ID an agent sees) as the Docker Hub original,
exactly what the migration relies on (Backend.AI's migration guide: "even when the new images
are actually same"; docs/runbook.md).

Content is deterministic: payloads come from a seeded PRNG, tar entries have fixed
mtime/uid/gid and gzip runs with mtime=0, so every run yields the same digests and the seed
record can even be computed offline (`expected_record`). Seeding is idempotent and fast: a tag
whose manifest already has the expected digest is skipped, blobs are HEADed before upload and
mounted across repositories, and everything runs concurrently over one connection pool.

Upload protocol (distribution's docs/spec/api.md, "Pushing An Image"):
`POST /v2/<repo>/blobs/uploads/`, then `PUT <Location>&digest=...`. httpx 0.28 drops the
`_state` query of Location when given `params=` (encode/httpx#3433), so the digest is appended
by hand.
"""

from __future__ import annotations

import argparse
import asyncio
import gzip
import hashlib
import io
import json
import os
import random
import tarfile
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx

from .catalog import CATALOG, ImageSpec

MT_OCI_INDEX = "application/vnd.oci.image.index.v1+json"
MT_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
MT_OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
MT_SCHEMA2 = "application/vnd.docker.distribution.manifest.v2+json"
MT_CONFIG = "application/vnd.docker.container.image.v1+json"
MT_LAYER = "application/vnd.docker.image.rootfs.diff.tar.gzip"
# Always offer all four manifest types: distribution answers an unaccepted OCI type with 404
# MANIFEST_UNKNOWN (docs/harbor.md#manifests).
MANIFEST_ACCEPT = ", ".join((MT_OCI_INDEX, MT_LIST, MT_OCI_MANIFEST, MT_SCHEMA2))

# 2020-11-02T00:00:00Z: the day Docker Hub started enforcing pull limits (docs/harbor.md#docker-hub).
SEED_EPOCH = 1604275200
SEED_CREATED = "2020-11-02T00:00:00Z"
BUSYBOX = Path("/bin/busybox")   # Debian busybox-static: a static ELF, runs FROM scratch
RUN_CMD = ["/bin/busybox", "sleep", "3600"]
ARCHES: dict[str, dict[str, str]] = {
    "amd64": {"architecture": "amd64", "os": "linux"},
    "arm64": {"architecture": "arm64", "os": "linux", "variant": "v8"},
}
HUB = "hub"
UPSTREAM = "upstream"


def sha256_digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _json_bytes(obj: Any) -> bytes:
    return json.dumps(obj, indent=3, sort_keys=True).encode()


# -- deterministic content ---------------------------------------------------------------

@dataclass(frozen=True)
class Blob:
    data: bytes
    media_type: str
    digest: str

    @classmethod
    def of(cls, data: bytes, media_type: str) -> Blob:
        return cls(data, media_type, sha256_digest(data))

    @property
    def size(self) -> int:
        return len(self.data)

    def descriptor(self, **extra: Any) -> dict[str, Any]:
        return {"mediaType": self.media_type, "size": self.size, "digest": self.digest, **extra}


@dataclass(frozen=True)
class Layer:
    blob: Blob          # gzip bytes as stored in the registry
    diff_id: str        # sha256 of the uncompressed tar (rootfs.diff_ids)
    created_by: str


@dataclass(frozen=True)
class BuiltImage:
    """One platform image: config + layers + its schema2 manifest."""

    arch: str
    platform: dict[str, str]
    config: Blob
    layers: tuple[Layer, ...]
    manifest: Blob
    labels: dict[str, str]

    @property
    def size_bytes(self) -> int:
        """What Backend.AI 20.09 stores: sum of layer sizes + config size (docs/backendai-etcd.md#rescan)."""
        return sum(la.blob.size for la in self.layers) + self.config.size


@dataclass(frozen=True)
class BuiltTag:
    """Everything one tag needs; `index` is set for a multi-arch tag (a docker manifest list)."""

    name: str
    tag: str
    images: tuple[BuiltImage, ...]
    index: Blob | None = None

    @property
    def top(self) -> Blob:
        return self.index if self.index is not None else self.images[0].manifest

    @property
    def digest(self) -> str:
        return self.top.digest

    @property
    def media_type(self) -> str:
        return self.top.media_type


def _tar(files: Sequence[tuple[str, bytes, int]]) -> bytes:
    """A reproducible tar: parent directories first, fixed owner and mtime."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.USTAR_FORMAT) as tf:
        seen: set[str] = set()
        for path, data, mode in files:
            parts = path.split("/")[:-1]
            for i in range(1, len(parts) + 1):
                d = "/".join(parts[:i])
                if d not in seen:
                    seen.add(d)
                    ti = tarfile.TarInfo(d)
                    ti.type, ti.mode, ti.mtime = tarfile.DIRTYPE, 0o755, SEED_EPOCH
                    tf.addfile(ti)
            ti = tarfile.TarInfo(path)
            ti.size, ti.mode, ti.mtime = len(data), mode, SEED_EPOCH
            ti.uid = ti.gid = 0
            ti.uname = ti.gname = "root"
            tf.addfile(ti, io.BytesIO(data))
    return buf.getvalue()


def _layer(files: Sequence[tuple[str, bytes, int]], created_by: str) -> Layer:
    raw = _tar(files)
    # mtime=0 and no file name in the header: same bytes on every run.
    gz = gzip.compress(raw, compresslevel=6, mtime=0)
    return Layer(Blob.of(gz, MT_LAYER), sha256_digest(raw), created_by)


_BUSYBOX_LAYER: Layer | None = None


def busybox_layer() -> Layer:
    """The runnable images' first layer, shared by all of them (one blob per registry)."""
    global _BUSYBOX_LAYER
    if _BUSYBOX_LAYER is None:
        if not BUSYBOX.is_file():
            raise FileNotFoundError(f"{BUSYBOX} is missing; install Debian's busybox-static")
        _BUSYBOX_LAYER = _layer([("bin/busybox", BUSYBOX.read_bytes(), 0o755)],
                                "/bin/sh -c #(nop) COPY file:busybox in /bin/busybox")
    return _BUSYBOX_LAYER


def payload(seed: str, size: int) -> bytes:
    """Pseudo-random (incompressible, like real layers) yet identical on every run."""
    return random.Random(seed).randbytes(size)


def build_image(name: str, tag: str, labels: dict[str, str], arch: str, *, layers: int = 2,
                layer_kib: int = 96, runnable: bool = False, salt: str = "") -> BuiltImage:
    platform = ARCHES[arch]
    built: list[Layer] = [busybox_layer()] if runnable else []
    for i in range(layers):
        seed = f"{salt}{name}:{tag}/{arch}/layer{i}/{layer_kib}"
        built.append(_layer([(f"opt/bai-seed/{name}/layer{i}.bin", payload(seed, layer_kib * 1024), 0o644)],
                            f"/bin/sh -c #(nop) ADD file:layer{i} in /opt/bai-seed/{name}/"))
    cfg: dict[str, Any] = {
        "Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
        "Cmd": list(RUN_CMD) if runnable else ["/bin/sh"],
        "Labels": dict(labels),
        "WorkingDir": "/",
    }
    if runnable:
        # `busybox sleep` ignores SIGTERM: without this a daemon stop waits 10 s per container
        # (docs/sandbox.md#docker-daemons-as-agents).
        cfg["StopSignal"] = "SIGKILL"
    config = {
        **platform,
        "created": SEED_CREATED,
        "author": "bai-registry-migrate sandbox",
        "config": cfg,
        "rootfs": {"type": "layers", "diff_ids": [la.diff_id for la in built]},
        "history": [{"created": SEED_CREATED, "created_by": la.created_by} for la in built],
    }
    config_blob = Blob.of(_json_bytes(config), MT_CONFIG)
    manifest = {
        "schemaVersion": 2,
        "mediaType": MT_SCHEMA2,
        "config": config_blob.descriptor(),
        "layers": [la.blob.descriptor() for la in built],
    }
    return BuiltImage(arch, dict(platform), config_blob, tuple(built), Blob.of(_json_bytes(manifest), MT_SCHEMA2),
                      dict(labels))


_BUILT: dict[str, BuiltTag] = {}


def build_tag(name: str, tag: str, labels: dict[str, str] | None = None, *, multiarch: bool = False,
              runnable: bool = False, layers: int = 2, layer_kib: int = 96, salt: str = "") -> BuiltTag:
    """Builds (and memoises) one tag; `salt` lets benchmarks make distinct synthetic images."""
    labels = dict(labels or {})
    key = json.dumps([name, tag, labels, multiarch, runnable, layers, layer_kib, salt], sort_keys=True)
    hit = _BUILT.get(key)
    if hit is not None:
        return hit
    arches = ("amd64", "arm64") if multiarch else ("amd64",)
    images = tuple(build_image(name, tag, labels, a, layers=layers, layer_kib=layer_kib, runnable=runnable,
                               salt=salt) for a in arches)
    index = None
    if multiarch:
        index = Blob.of(_json_bytes({
            "schemaVersion": 2,
            "mediaType": MT_LIST,
            "manifests": [im.manifest.descriptor(platform=im.platform) for im in images],
        }), MT_LIST)
    built = BuiltTag(name, tag, images, index)
    _BUILT[key] = built
    return built


def build_spec(spec: ImageSpec) -> BuiltTag:
    return build_tag(spec.name, spec.tag, spec.labels, multiarch=spec.multiarch, runnable=spec.runnable,
                     layers=spec.layers, layer_kib=spec.layer_kib)


def placements(spec: ImageSpec) -> list[tuple[str, str]]:
    """(registry, repo) pairs a catalogue entry is pushed to."""
    out: list[tuple[str, str]] = []
    if spec.hub_repo:
        out.append((HUB, spec.hub_repo))
    out.extend((UPSTREAM, f"{p}/{spec.name}") for p in spec.harbor_projects)
    return out


# -- the record ---------------------------------------------------------------------------

@dataclass
class SeedImage:
    """One platform image of a pushed tag: what a scanner must find for it."""

    arch: str
    os: str
    variant: str | None
    digest: str              # the image manifest (for a multi-arch tag: the child)
    config_digest: str       # = the image ID on an agent
    size_bytes: int          # Backend.AI 20.09's sum(layers) + config
    labels: dict[str, str]
    layers: list[str] = field(default_factory=list)


@dataclass
class SeedTag:
    registry: str            # "hub" or "upstream"
    repo: str                # "lablup/python", "stable/python"
    tag: str
    digest: str              # what the tag points at (a list for multi-arch tags)
    media_type: str
    images: dict[str, SeedImage]

    @property
    def ref(self) -> str:
        return f"{self.repo}:{self.tag}"

    @property
    def multiarch(self) -> bool:
        return self.media_type in (MT_LIST, MT_OCI_INDEX)

    @property
    def amd64(self) -> SeedImage:
        return self.images["amd64"]

    @property
    def config_digest(self) -> str:
        return self.amd64.config_digest

    @property
    def size_bytes(self) -> int:
        return self.amd64.size_bytes

    @property
    def labels(self) -> dict[str, str]:
        return self.amd64.labels

    @classmethod
    def from_built(cls, registry: str, repo: str, built: BuiltTag) -> SeedTag:
        images = {
            im.arch: SeedImage(im.arch, im.platform["os"], im.platform.get("variant"), im.manifest.digest,
                               im.config.digest, im.size_bytes, dict(im.labels),
                               [la.blob.digest for la in im.layers])
            for im in built.images
        }
        return cls(registry, repo, built.tag, built.digest, built.media_type, images)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> SeedTag:
        images = {k: SeedImage(**v) for k, v in d["images"].items()}
        return cls(d["registry"], d["repo"], d["tag"], d["digest"], d["media_type"], images)


@dataclass
class SeedRecord:
    hub_url: str
    upstream_url: str
    tags: list[SeedTag]
    pushed: int = 0          # tags written this run (0 on an idempotent re-run)
    seconds: float = 0.0
    requests: int = 0        # HTTP requests this run made (one HEAD per tag when nothing changed)

    def get(self, registry: str, repo: str, tag: str) -> SeedTag | None:
        for t in self.tags:
            if t.registry == registry and t.repo == repo and t.tag == tag:
                return t
        return None

    def find(self, registry: str, repo: str, tag: str) -> SeedTag:
        hit = self.get(registry, repo, tag)
        if hit is None:
            raise KeyError(f"{registry}:{repo}:{tag} was not seeded")
        return hit

    def in_registry(self, registry: str) -> list[SeedTag]:
        return [t for t in self.tags if t.registry == registry]

    def repos(self, registry: str, project: str | None = None) -> list[str]:
        names = {t.repo for t in self.in_registry(registry)}
        if project is not None:
            names = {n for n in names if n.split("/", 1)[0] == project}
        return sorted(names)

    def tags_of(self, registry: str, repo: str) -> list[str]:
        return sorted(t.tag for t in self.tags if t.registry == registry and t.repo == repo)

    def to_dict(self) -> dict[str, Any]:
        return {"version": 1, "hub_url": self.hub_url, "upstream_url": self.upstream_url,
                "pushed": self.pushed, "seconds": round(self.seconds, 3), "requests": self.requests,
                "tags": [asdict(t) for t in self.tags]}

    def save(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(path.suffix + ".tmp")
        tmp.write_text(json.dumps(self.to_dict(), indent=2, sort_keys=True) + "\n")
        os.replace(tmp, path)

    @classmethod
    def load(cls, path: Path) -> SeedRecord:
        d = json.loads(Path(path).read_text())
        return cls(d["hub_url"], d["upstream_url"], [SeedTag.from_dict(t) for t in d["tags"]],
                   d.get("pushed", 0), d.get("seconds", 0.0), d.get("requests", 0))


SpecLookup = Callable[[ImageSpec], tuple[str, int, dict[str, str]]]


def hub_lookup(record: SeedRecord) -> SpecLookup:
    """spec -> (config digest, size_bytes, labels) of its amd64 image on the Docker Hub stand-in,
    i.e. what a 20.09 `rescan-images index.docker.io` left in etcd (seed_cluster uses it)."""
    def lookup(spec: ImageSpec) -> tuple[str, int, dict[str, str]]:
        if spec.hub_repo is None:
            raise KeyError(f"{spec.name}:{spec.tag} is not on the Docker Hub stand-in")
        t = record.find(HUB, spec.hub_repo, spec.tag)
        return t.config_digest, t.size_bytes, dict(t.labels)
    return lookup


def upstream_lookup(record: SeedRecord, project: str = "stable") -> SpecLookup:
    """The same for the Harbor copy `<project>/<name>:<tag>`."""
    def lookup(spec: ImageSpec) -> tuple[str, int, dict[str, str]]:
        t = record.find(UPSTREAM, f"{project}/{spec.name}", spec.tag)
        return t.config_digest, t.size_bytes, dict(t.labels)
    return lookup


def expected_record(hub_url: str = "", upstream_url: str = "",
                    catalog: Iterable[ImageSpec] = CATALOG) -> SeedRecord:
    """The record a seed of `catalog` produces, computed without any registry."""
    tags = [SeedTag.from_built(reg, repo, build_spec(spec)) for spec in catalog
            for reg, repo in placements(spec)]
    return SeedRecord(hub_url, upstream_url, tags)


# -- pushing ------------------------------------------------------------------------------

class SeedError(RuntimeError):
    """A registry refused a push; the message names the request and the registry's answer."""


class Pusher:
    """Pushes built tags into one registry over one pooled httpx client.

    Blob uploads are de-duplicated per registry: the first repository uploads a blob, the
    others wait for it and mount it (`?mount=&from=`), which distribution 2.8 serves as a
    metadata-only copy.
    """

    def __init__(self, base_url: str, *, registry: str = UPSTREAM, concurrency: int = 6,
                 auth: tuple[str, str] | None = None, timeout: float = 60.0) -> None:
        self.base_url = base_url.rstrip("/")
        self.registry = registry
        self._sem = asyncio.Semaphore(concurrency)
        self._client = httpx.AsyncClient(base_url=self.base_url, timeout=timeout, trust_env=False,
                                         auth=auth, limits=httpx.Limits(max_connections=concurrency))
        self._blob_home: dict[str, asyncio.Task[str]] = {}     # digest -> task giving a repo holding it
        self._repo_blob: dict[tuple[str, str], asyncio.Task[None]] = {}
        self.requests = 0
        self.uploaded_bytes = 0

    async def __aenter__(self) -> Pusher:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._client.aclose()

    async def _req(self, method: str, url: str, **kw: Any) -> httpx.Response:
        async with self._sem:
            self.requests += 1
            return await self._client.request(method, url, **kw)

    # blobs
    async def _upload(self, repo: str, blob: Blob, mount_from: str | None) -> None:
        if mount_from is not None:
            r = await self._req("POST", f"/v2/{repo}/blobs/uploads/",
                                params={"mount": blob.digest, "from": mount_from})
            if r.status_code == 201:
                return
        else:
            r = await self._req("POST", f"/v2/{repo}/blobs/uploads/")
        if r.status_code != 202 or "location" not in r.headers:
            raise SeedError(f"{self.base_url}: POST /v2/{repo}/blobs/uploads/ answered {r.status_code}: "
                            f"{r.text[:200]}")
        loc = r.headers["location"]
        # httpx 0.28 would drop Location's `_state` query with params= (encode/httpx#3433).
        loc += ("&" if "?" in loc else "?") + "digest=" + quote(blob.digest, safe="")
        r = await self._req("PUT", loc, content=blob.data,
                            headers={"Content-Type": "application/octet-stream"})
        if r.status_code != 201:
            raise SeedError(f"{self.base_url}: blob PUT for {repo} {blob.digest} answered {r.status_code}: "
                            f"{r.text[:200]}")
        self.uploaded_bytes += blob.size

    async def _ensure_blob_in(self, repo: str, blob: Blob) -> None:
        r = await self._req("HEAD", f"/v2/{repo}/blobs/{blob.digest}")
        if r.status_code == 200:
            return
        home = self._blob_home.get(blob.digest)
        if home is None:
            async def first() -> str:
                await self._upload(repo, blob, None)
                return repo
            task = asyncio.ensure_future(first())
            self._blob_home[blob.digest] = task
            await task
            return
        try:
            src = await home
        except Exception:   # noqa: BLE001 - the first upload failed: try ourselves
            src = None
        if src != repo:
            await self._upload(repo, blob, src)

    async def ensure_blob(self, repo: str, blob: Blob) -> None:
        key = (repo, blob.digest)
        task = self._repo_blob.get(key)
        if task is None:
            task = asyncio.ensure_future(self._ensure_blob_in(repo, blob))
            self._repo_blob[key] = task
        await task

    # manifests
    async def head_manifest(self, repo: str, ref: str) -> str | None:
        r = await self._req("HEAD", f"/v2/{repo}/manifests/{ref}", headers={"Accept": MANIFEST_ACCEPT})
        return r.headers.get("docker-content-digest") if r.status_code == 200 else None

    async def put_manifest(self, repo: str, ref: str, blob: Blob) -> None:
        r = await self._req("PUT", f"/v2/{repo}/manifests/{ref}", content=blob.data,
                            headers={"Content-Type": blob.media_type})
        if r.status_code != 201:
            raise SeedError(f"{self.base_url}: PUT /v2/{repo}/manifests/{ref} answered {r.status_code}: "
                            f"{r.text[:300]}")
        got = r.headers.get("docker-content-digest")
        if got and got != blob.digest:
            raise SeedError(f"{self.base_url}: {repo}:{ref} stored as {got}, expected {blob.digest}")

    async def push_image(self, repo: str, image: BuiltImage, ref: str) -> None:
        await asyncio.gather(*(self.ensure_blob(repo, b)
                               for b in (image.config, *(la.blob for la in image.layers))))
        await self.put_manifest(repo, ref, image.manifest)

    async def push_built(self, repo: str, built: BuiltTag, *, force: bool = False) -> tuple[SeedTag, bool]:
        """Pushes one tag unless it already points at the expected digest; returns (record, pushed)."""
        record = SeedTag.from_built(self.registry, repo, built)
        if not force and await self.head_manifest(repo, built.tag) == built.digest:
            return record, False
        if built.index is None:
            await self.push_image(repo, built.images[0], built.tag)
        else:
            # Children by digest first: distribution refuses a list whose children are unknown.
            await asyncio.gather(*(self.push_image(repo, im, im.manifest.digest) for im in built.images))
            await self.put_manifest(repo, built.tag, built.index)
        return record, True


async def push_image(registry_url: str, repo: str, tag: str, labels: dict[str, str] | None = None, *,
                     multiarch: bool = False, runnable: bool = False, layers: int = 1, layer_kib: int = 4,
                     salt: str = "", registry: str = UPSTREAM, pusher: Pusher | None = None) -> SeedTag:
    """Pushes one synthetic image (tests, benchmarks); pass `pusher` to reuse a connection pool.

    Distinct `salt` values give distinct layers; the default reuses a tag's content across
    repositories, so many repositories share one set of blobs (mounted, not re-uploaded).
    """
    built = build_tag(repo.rsplit("/", 1)[-1], tag, labels, multiarch=multiarch, runnable=runnable,
                      layers=layers, layer_kib=layer_kib, salt=salt)
    if pusher is not None:
        return (await pusher.push_built(repo, built))[0]
    async with Pusher(registry_url, registry=registry) as p:
        return (await p.push_built(repo, built))[0]


async def push_many(registry_url: str, items: Iterable[tuple[str, str, dict[str, str]]], *,
                    registry: str = UPSTREAM, concurrency: int = 6, layers: int = 1,
                    layer_kib: int = 4, multiarch: bool = False) -> list[SeedTag]:
    """Pushes (repo, tag, labels) items concurrently, e.g. 100 repositories x 5 tags for a benchmark."""
    async with Pusher(registry_url, registry=registry, concurrency=concurrency) as p:
        return list(await asyncio.gather(*(
            push_image(registry_url, repo, tag, labels, layers=layers, layer_kib=layer_kib,
                       multiarch=multiarch, registry=registry, pusher=p)
            for repo, tag, labels in items)))


async def seed_all_async(hub_url: str, upstream_url: str, out_path: Path | None = None, *,
                         catalog: Iterable[ImageSpec] = CATALOG, concurrency: int = 6) -> SeedRecord:
    """Seeds both registries with the catalogue; writes the record to `out_path` when given."""
    t0 = time.monotonic()
    specs = list(catalog)
    async with Pusher(hub_url, registry=HUB, concurrency=concurrency) as hub, \
            Pusher(upstream_url, registry=UPSTREAM, concurrency=concurrency) as up:
        pushers = {HUB: hub, UPSTREAM: up}
        jobs = [pushers[reg].push_built(repo, build_spec(spec)) for spec in specs
                for reg, repo in placements(spec)]
        results = await asyncio.gather(*jobs)
    record = SeedRecord(hub_url, upstream_url, [r for r, _ in results],
                        pushed=sum(1 for _, pushed in results if pushed), seconds=time.monotonic() - t0,
                        requests=hub.requests + up.requests)
    if out_path is not None:
        record.save(Path(out_path))
    return record


def seed_all(hub_url: str, upstream_url: str, out_path: Path | None = None, *,
             catalog: Iterable[ImageSpec] = CATALOG, concurrency: int = 6) -> SeedRecord:
    """Synchronous wrapper for `seed_all_async` (call it from code that has no running loop)."""
    return asyncio.run(seed_all_async(hub_url, upstream_url, out_path, catalog=catalog,
                                      concurrency=concurrency))


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m backends.sandbox.seed_images", description=__doc__.split("\n")[0])
    ap.add_argument("--hub", required=True, help="Docker Hub stand-in URL, e.g. http://127.0.0.1:5000")
    ap.add_argument("--upstream", required=True, help="registry behind the Harbor stand-in")
    ap.add_argument("--out", type=Path, required=True, help="where to write the seed record (JSON)")
    args = ap.parse_args(argv)
    rec = seed_all(args.hub, args.upstream, args.out)
    print(f"{len(rec.tags)} tags ({rec.pushed} pushed) in {rec.seconds:.2f}s -> {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
