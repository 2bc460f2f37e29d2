"""Docker Distribution v2 (`/v2/`): tags, manifests, blobs, the catalog.

This is the API Backend.AI 20.09's scanner reads for every registry type, so our scan reads the
same documents it would (the same manifest, config digest and size) and can write exactly its
keys. Manifests fetched by digest are cached per client and fetched once even when many tags
share them (a multi-arch list and its children are shared by every tag that points at them).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from typing import Any

from .errors import RegistryError
from .models import MANIFEST_ACCEPT, Manifest
from .transport import RegistryTransport


class DistributionAPI(RegistryTransport):
    """The `/v2/` calls, authenticated by `RegistryTransport._v2`."""

    def __init__(self, url: str, **kw: Any) -> None:
        super().__init__(url, **kw)
        self._manifests: dict[tuple[str, str], Manifest] = {}
        self._inflight: dict[tuple[str, str], asyncio.Future[Manifest]] = {}
        self._configs: dict[tuple[str, str], dict[str, Any]] = {}

    async def tags(self, name: str, page_size: int = 100) -> list[str]:
        """All tags, following `Link: rel="next"` (never trusts `"tags": null`)."""
        scope = f"repository:{name}:pull"
        out: list[str] = []
        url: str = f"/v2/{name}/tags/list"
        params: dict[str, Any] | None = {"n": page_size}
        seen: set[str] = set()
        while True:
            resp = await self._v2("tags", "GET", url, scope=scope, params=params)
            data = self._json(resp) if resp.content else {}
            out.extend(data.get("tags") or [])
            nxt = resp.links.get("next", {}).get("url")
            if not nxt:
                break
            url, params = str(resp.url.join(nxt)), None
            if url in seen:
                break
            seen.add(url)
        return out

    async def catalog(self, page_size: int = 100) -> list[str]:
        out: list[str] = []
        url: str = "/v2/_catalog"
        params: dict[str, Any] | None = {"n": page_size}
        while True:
            resp = await self._v2("catalog", "GET", url, scope="registry:catalog:*", params=params)
            out.extend(self._json(resp).get("repositories") or [])
            nxt = resp.links.get("next", {}).get("url")
            if not nxt:
                break
            url, params = str(resp.url.join(nxt)), None
        return out

    async def manifest(self, name: str, reference: str, *, accept: str = MANIFEST_ACCEPT) -> Manifest:
        """A manifest by tag or digest; by-digest results are cached (and fetched once) per repository."""
        if not reference.startswith("sha256:"):
            return await self._fetch_manifest(name, reference, accept)
        key = (name, reference)
        hit = self._manifests.get(key)
        if hit is not None:
            return hit
        task = self._inflight.get(key)
        if task is None:
            task = asyncio.ensure_future(self._fetch_manifest(name, reference, accept))
            self._inflight[key] = task
            task.add_done_callback(lambda _t: self._inflight.pop(key, None))
        return await task

    async def _fetch_manifest(self, name: str, reference: str, accept: str) -> Manifest:
        resp = await self._v2("manifest", "GET", f"/v2/{name}/manifests/{reference}",
                              scope=f"repository:{name}:pull", accept=accept)
        raw = resp.content
        digest = "sha256:" + hashlib.sha256(raw).hexdigest()
        if reference.startswith("sha256:") and digest != reference:
            raise RegistryError(f"{name}@{reference}: the registry sent a manifest with digest {digest}")
        try:
            body = json.loads(raw)
        except ValueError:
            raise RegistryError(f"{name}:{reference}: the manifest is not JSON") from None
        mtype = body.get("mediaType") or resp.headers.get("content-type", "").split(";")[0].strip()
        m = Manifest(mtype, digest, raw, body)
        self._manifests[(name, digest)] = m
        return m

    async def head_manifest(self, name: str, reference: str) -> tuple[str, str]:
        """(digest, media type) without a body; on Docker Hub a HEAD does not count as a pull."""
        resp = await self._v2("manifest", "HEAD", f"/v2/{name}/manifests/{reference}",
                              scope=f"repository:{name}:pull", accept=MANIFEST_ACCEPT)
        return resp.headers.get("docker-content-digest", ""), resp.headers.get("content-type", "").split(";")[0]

    async def blob(self, name: str, digest: str) -> bytes:
        # Blobs may 307 to object storage; httpx drops Authorization on the cross-origin hop.
        resp = await self._v2("blob", "GET", f"/v2/{name}/blobs/{digest}", scope=f"repository:{name}:pull",
                              follow_redirects=True)
        if "sha256:" + hashlib.sha256(resp.content).hexdigest() != digest:
            raise RegistryError(f"{name}@{digest}: blob content does not match its digest")
        return resp.content

    async def image_config(self, name: str, digest: str) -> dict[str, Any]:
        hit = self._configs.get((name, digest))
        if hit is None:
            hit = json.loads(await self.blob(name, digest))
            self._configs[(name, digest)] = hit
        return hit
