"""The stand-in's view of its real upstream registry, and Harbor's artifact model built from it.

Real Harbor keeps artifacts in PostgreSQL; the stand-in derives them on demand from the
docker-registry behind it (tags/list, then a HEAD per tag with all four manifest types to get
the digest, then the manifest and config by digest). Content addressed by digest never
changes, so manifests and configs are cached by digest; tag -> digest is always asked afresh,
so images pushed during a test show up at once.

Artifact fields and sizes follow Harbor's abstractor (docs/harbor.md#artifacts):
image size = len(manifest) + config + layers; index size = len(index) + children;
`extra_attrs` = {architecture, os, created, config, author}; `references[].platform`.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

from .harbor_core import rfc3339

MT_OCI_INDEX = "application/vnd.oci.image.index.v1+json"
MT_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
MT_OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
MT_SCHEMA2 = "application/vnd.docker.distribution.manifest.v2+json"
ALL_MANIFESTS = ", ".join((MT_OCI_INDEX, MT_LIST, MT_OCI_MANIFEST, MT_SCHEMA2))
INDEX_TYPES = (MT_OCI_INDEX, MT_LIST)
IMAGE_TYPES = (MT_OCI_MANIFEST, MT_SCHEMA2)
IMAGE_ICON = "sha256:0048162a053eef4d4ce3fe7518615bef084403614f8bca43b40ae2e762e11e06"
NEVER = "0001-01-01T00:00:00.000Z"


class UpstreamError(RuntimeError):
    """The upstream registry failed in a way a Harbor would report as 500."""


@dataclass
class Stored:
    media_type: str
    body: bytes

    @property
    def doc(self) -> dict[str, Any]:
        return json.loads(self.body)


@dataclass
class Artifact:
    """One artifact of one repository: a digest plus the tags pointing at it."""

    repo: str
    digest: str
    manifest: Stored
    size: int
    extra_attrs: dict[str, Any] | None
    references: list[dict[str, Any]] | None
    media_type: str
    tags: list[str] = field(default_factory=list)


class Upstream:
    """Talks to the real registry; ids and push times are invented once and kept stable."""

    def __init__(self, url: str, auth: aiohttp.BasicAuth | None = None, concurrency: int = 16,
                 storage: str | None = None) -> None:
        self.url = url.rstrip("/")
        # distribution's filesystem layout: repositories/<name>/_manifests/tags/<tag>/current/link
        root = Path(storage) / "docker" / "registry" / "v2" / "repositories" if storage else None
        self._repos_root = root if root is not None and root.is_dir() else None
        self.auth = auth
        self.session: aiohttp.ClientSession | None = None
        self._sem = asyncio.Semaphore(concurrency)
        self._manifests: dict[str, Stored] = {}
        self._configs: dict[str, dict[str, Any]] = {}
        self._ids: dict[str, int] = {}
        self._seen: dict[str, float] = {}
        self.requests = 0

    async def start(self) -> None:
        self.session = aiohttp.ClientSession(
            auth=self.auth, auto_decompress=False,
            timeout=aiohttp.ClientTimeout(total=None, sock_connect=10, sock_read=60),
            connector=aiohttp.TCPConnector(limit=100))

    async def close(self) -> None:
        if self.session is not None:
            await self.session.close()

    def request(self, method: str, path: str, **kw: Any) -> Any:
        """Raw request for proxying (the caller streams and releases the response)."""
        assert self.session is not None
        self.requests += 1
        return self.session.request(method, self.url + path, allow_redirects=False, **kw)

    # stable invented identities
    def id_of(self, key: str) -> int:
        if key not in self._ids:
            self._ids[key] = len(self._ids) + 1
        return self._ids[key]

    def first_seen(self, key: str) -> str:
        return rfc3339(self._seen.setdefault(key, time.time()))

    async def _get_json(self, path: str, *, params: dict[str, str] | None = None) -> tuple[int, Any, Any]:
        async with self._sem, self.request("GET", path, params=params) as r:
            body = await r.read()
            try:
                data = json.loads(body) if body else None
            except ValueError:
                data = None
            return r.status, data, r.links

    # registry reads
    async def ping(self) -> bool:
        try:
            status, _, _ = await self._get_json("/v2/")
        except aiohttp.ClientError:
            return False
        return status == 200

    async def catalog(self) -> list[str]:
        names: list[str] = []
        path, params = "/v2/_catalog", {"n": "1000"}
        for _ in range(10_000):
            status, data, links = await self._get_json(path, params=params)
            if status != 200:
                raise UpstreamError(f"upstream _catalog answered {status}")
            names.extend((data or {}).get("repositories") or [])
            nxt = links.get("next")
            if not nxt:
                break
            url = nxt["url"]
            path, params = url.path, dict(url.query)
        return names

    def _tags_dir(self, repo: str) -> Path | None:
        if self._repos_root is None or ".." in repo.split("/"):
            return None
        return self._repos_root / repo / "_manifests" / "tags"

    async def tags(self, repo: str) -> list[str] | None:
        """All tags (distribution 2.8 ignores `n`); None when the repository is unknown."""
        tdir = self._tags_dir(repo)
        if tdir is not None:
            if not tdir.is_dir():
                return None if not (self._repos_root / repo).is_dir() else []  # type: ignore[operator]
            return sorted(t.name for t in tdir.iterdir() if (t / "current" / "link").is_file())
        status, data, _ = await self._get_json(f"/v2/{repo}/tags/list")
        if status == 404:
            return None
        if status != 200:
            raise UpstreamError(f"upstream tags/list of {repo} answered {status}")
        return sorted(set((data or {}).get("tags") or []))

    async def resolve(self, repo: str, tag: str) -> str | None:
        """Tag -> digest, as Harbor knows it from its database: from the registry's tag link when
        the storage is known, else a HEAD with every manifest type accepted."""
        tdir = self._tags_dir(repo)
        if tdir is not None and "/" not in tag and tag not in (".", ".."):
            try:
                link = (tdir / tag / "current" / "link").read_text().strip()
                return link if link.startswith("sha256:") else None
            except OSError:
                return None
        async with self._sem, self.request("HEAD", f"/v2/{repo}/manifests/{tag}",
                                            headers={"Accept": ALL_MANIFESTS}) as r:
            if r.status != 200:
                return None
            return r.headers.get("Docker-Content-Digest")

    async def manifest(self, repo: str, digest: str) -> Stored | None:
        hit = self._manifests.get(digest)
        if hit is not None:
            return hit
        async with self._sem, self.request("GET", f"/v2/{repo}/manifests/{digest}",
                                            headers={"Accept": ALL_MANIFESTS}) as r:
            if r.status == 404:
                return None
            if r.status != 200:
                raise UpstreamError(f"upstream manifest {repo}@{digest} answered {r.status}")
            body = await r.read()
            mt = r.headers.get("Content-Type", "").split(";")[0].strip()
        if "sha256:" + hashlib.sha256(body).hexdigest() != digest:
            raise UpstreamError(f"upstream manifest {repo}@{digest} does not match its digest")
        stored = Stored(json.loads(body).get("mediaType") or mt, body)
        self._manifests[digest] = stored
        return stored

    async def config(self, repo: str, digest: str) -> dict[str, Any]:
        hit = self._configs.get(digest)
        if hit is not None:
            return hit
        status, data, _ = await self._get_json(f"/v2/{repo}/blobs/{digest}")
        if status != 200 or not isinstance(data, dict):
            raise UpstreamError(f"upstream config blob {repo}@{digest} answered {status}")
        self._configs[digest] = data
        return data

    # Harbor's artifact model
    async def artifact(self, repo: str, digest: str) -> Artifact | None:
        stored = await self.manifest(repo, digest)
        if stored is None:
            return None
        doc = stored.doc
        if stored.media_type in INDEX_TYPES:
            refs: list[dict[str, Any]] = []
            size = len(stored.body)
            children = await asyncio.gather(*(self.artifact(repo, m["digest"]) for m in doc.get("manifests", [])))
            for m, child in zip(doc.get("manifests", []), children, strict=True):
                size += child.size if child else int(m.get("size", 0))
                refs.append({"parent_id": self.id_of(f"{repo}@{digest}"),
                             "child_id": self.id_of(f"{repo}@{m['digest']}"),
                             "child_digest": m["digest"], "platform": m.get("platform"),
                             "annotations": m.get("annotations"), "urls": m.get("urls")})
            return Artifact(repo, digest, stored, size, {}, refs, stored.media_type)
        if stored.media_type in IMAGE_TYPES:
            cfg_desc = doc.get("config") or {}
            size = len(stored.body) + int(cfg_desc.get("size", 0)) + sum(int(la.get("size", 0))
                                                                         for la in doc.get("layers", []))
            cfg = await self.config(repo, cfg_desc["digest"])
            extra = {"architecture": cfg.get("architecture"), "os": cfg.get("os"),
                     "created": cfg.get("created"), "config": cfg.get("config") or {},
                     "author": cfg.get("author")}
            return Artifact(repo, digest, stored, size, extra, None, cfg_desc.get("mediaType", ""))
        return Artifact(repo, digest, stored, len(stored.body), None, None, stored.media_type)

    async def artifacts(self, repo: str) -> list[Artifact] | None:
        """Every tagged artifact of `repo` (children of an index stay hidden, as in Harbor)."""
        tags = await self.tags(repo)
        if tags is None:
            return None
        digests = await asyncio.gather(*(self.resolve(repo, t) for t in tags))
        by_digest: dict[str, list[str]] = {}
        for t, d in zip(tags, digests, strict=True):
            if d:
                by_digest.setdefault(d, []).append(t)
        arts = await asyncio.gather(*(self.artifact(repo, d) for d in by_digest))
        out = []
        for a in arts:
            if a is not None:
                a.tags = sorted(by_digest[a.digest])
                out.append(a)
        return out

    def to_json(self, art: Artifact, project_id: int, *, with_tag: bool = True,
                with_label: bool = False) -> dict[str, Any]:
        aid = self.id_of(f"{art.repo}@{art.digest}")
        rid = self.id_of(f"repo:{art.repo}")
        pushed = self.first_seen(f"{art.repo}@{art.digest}")
        tags = None
        if with_tag:
            tags = [{"id": self.id_of(f"tag:{art.repo}:{t}"), "repository_id": rid, "artifact_id": aid,
                     "name": t, "push_time": self.first_seen(f"tag:{art.repo}:{t}"), "pull_time": NEVER,
                     "immutable": False, "signed": False} for t in art.tags]
        quoted = art.repo.split("/", 1)[1].replace("/", "%252F")
        base = f"/api/v2.0/projects/{art.repo.split('/', 1)[0]}/repositories/{quoted}/artifacts/{art.digest}"
        return {
            "id": aid, "type": "IMAGE", "media_type": art.media_type,
            "manifest_media_type": art.manifest.media_type, "project_id": project_id, "repository_id": rid,
            "repository_name": art.repo, "digest": art.digest, "size": art.size, "icon": IMAGE_ICON,
            "push_time": pushed, "pull_time": NEVER, "extra_attrs": art.extra_attrs, "annotations": None,
            "references": art.references, "tags": tags, "labels": [] if with_label else None,
            "accessories": None,
            "addition_links": {"build_history": {"absolute": False, "href": base + "/additions/build_history"},
                               "vulnerabilities": {"absolute": False, "href": base + "/additions/vulnerabilities"}},
        }
