"""Harbor's registry front: `/v2/...` and `/service/token`, proxied to the real registry.

Authentication follows Harbor's `src/server/middleware/v2auth/auth.go`
(docs/harbor.md#registry-front):
- `/v2/` without Authorization: 401 `Bearer realm="<external URL>/service/token",service="harbor-registry"`;
  valid Basic: 200; a rejected Authorization header: 401 `Basic realm="harbor"`.
- repository paths: HEAD without Authorization is always 401 (with `scope`); an anonymous GET of a
  public repository is allowed, as up to Harbor v2.2 (v2.3+ answers it 401 too; see
  docs/sandbox.md#the-harbor-stand-in); a bearer token must carry `pull` for that repository.
- `/service/token`: GET only; anonymous callers get `pull` on public projects; bad Basic is 401.

Manifests are resolved tag -> digest first and fetched by digest with the client's Accept,
as Harbor's `manifest.go` does: a multi-arch tag reaches a schema2-only client as the list
itself (docs/harbor.md#manifests). Blobs are streamed, never negotiated on Accept.
"""

from __future__ import annotations

import asyncio
import re
from typing import Any
from urllib.parse import quote

import aiohttp
from aiohttp import web

from .harbor_core import API_VERSION_HEADER, SERVICE, Auth, HarborConfig, Identity, registry_error, rfc3339
from .harbor_upstream import Upstream

REPO_PATH = re.compile(r"^/v2/(?P<name>.+?)/(?:(?P<tags>tags/list)|manifests/(?P<ref>[^/]+)|"
                       r"blobs/(?P<digest>[^/]+))$")
MANIFEST_HEADERS = ("Content-Type", "Content-Length", "Docker-Content-Digest", "Etag")
BLOB_HEADERS = ("Content-Type", "Content-Length", "Docker-Content-Digest", "Etag", "Accept-Ranges",
                "Content-Range", "Cache-Control", "Last-Modified")
CHUNK = 64 * 1024


class RegistryFront:
    def __init__(self, cfg: HarborConfig, auth: Auth, upstream: Upstream) -> None:
        self.cfg = cfg
        self.auth = auth
        self.up = upstream

    # -- challenges ---------------------------------------------------------------------
    def _realm(self) -> str:
        return "/service/token" if self.cfg.switches.relative_realm else f"{self.cfg.external_url}/service/token"

    def bearer_401(self, scope: str | None = None, error: str | None = None) -> web.Response:
        challenge = f'Bearer realm="{self._realm()}",service="{SERVICE}"'
        if scope:
            challenge += f',scope="{scope}"'
        if error:
            challenge += f',error="{error}"'
        return registry_error(401, "UNAUTHORIZED", "unauthorized to access repository",
                              headers={"WWW-Authenticate": challenge})

    @staticmethod
    def basic_401() -> web.Response:
        return registry_error(401, "UNAUTHORIZED", "authentication required",
                              headers={"WWW-Authenticate": 'Basic realm="harbor"'})

    # -- /v2/ -----------------------------------------------------------------------------
    async def ping(self, request: web.Request, who: Identity) -> web.StreamResponse:
        sw = self.cfg.switches
        ok = web.json_response({}, headers=API_VERSION_HEADER)
        if sw.v2_auth == "none":
            return ok
        if sw.v2_auth == "basic":
            return ok if who.scheme == "basic" and who.authenticated else self.basic_401()
        if who.scheme == "bearer" and who.authenticated:
            return ok
        if who.scheme == "basic" and who.authenticated and not sw.token_only:
            return ok
        if who.bad_credentials and not sw.token_only:
            return self.basic_401()
        return self.bearer_401()

    def check_repo(self, request: web.Request, who: Identity, name: str) -> web.Response | None:
        """None when `who` may pull `name`; otherwise the 401/404 to send."""
        sw = self.cfg.switches
        project = self.cfg.projects.get(name.split("/", 1)[0])
        scope = f"repository:{name}:pull"
        if sw.v2_auth == "none":
            return None if project else registry_error(404, "NAME_UNKNOWN", "repository name not known to registry",
                                                       {"name": name})
        if sw.v2_auth == "basic":
            if who.scheme != "basic" or not who.authenticated:
                return self.basic_401()
        elif who.scheme == "bearer":
            if who.grant is None or not who.grant.allows(f"repository:{name}", "pull"):
                return self.bearer_401(scope, "insufficient_scope" if who.grant else "invalid_token")
            return None
        elif who.scheme == "basic" and sw.token_only:
            return self.bearer_401(scope)
        elif who.bad_credentials:
            return self.basic_401()
        elif not who.authenticated and request.method == "HEAD":
            return self.bearer_401(scope)     # harbor#11271: HEAD needs a token even when public
        if project is not None and who.can_read(project):
            return None
        if who.authenticated:
            return registry_error(404, "NAME_UNKNOWN", "repository name not known to registry", {"name": name})
        return self.bearer_401(scope)

    # -- /service/token ----------------------------------------------------------------
    async def token(self, request: web.Request, who: Identity) -> web.StreamResponse:
        if request.method != "GET":       # Harbor answers POST with 405 (docs/harbor.md#registry-front)
            return registry_error(405, "METHOD_NOT_ALLOWED", "only GET is supported")
        if who.bad_credentials:
            if self.cfg.switches.failed_login_delay:
                await asyncio.sleep(self.cfg.switches.failed_login_delay)
            return registry_error(401, "UNAUTHORIZED", "invalid credentials")
        access: dict[str, set[str]] = {}
        granted: list[dict[str, Any]] = []
        for raw in request.query.getall("scope", []):
            for scope in raw.split(" "):
                parts = scope.split(":")
                if len(parts) < 3:
                    continue
                rtype, name, actions = parts[0], ":".join(parts[1:-1]), set(parts[-1].split(","))
                allowed: set[str] = set()
                if rtype.startswith("repository"):
                    project = self.cfg.projects.get(name.split("/", 1)[0])
                    if who.can_read(project) and actions & {"pull", "*"}:
                        allowed = {"pull"}      # read-only stand-in: pushes go to the upstream directly
                elif rtype == "registry" and name == "catalog" and who.admin:
                    allowed = {"*"}
                if allowed:
                    access[f"repository:{name}" if rtype.startswith("repository") else f"{rtype}:{name}"] = allowed
                granted.append({"type": rtype, "name": name, "actions": sorted(allowed)})
        subject = Identity(who.name, who.kind, who.admin, "bearer", False, who.robot_project)
        tok, grant = self.auth.issue(subject, access)
        body: dict[str, Any] = {"expires_in": self.cfg.switches.token_expires_in,
                                "issued_at": rfc3339(grant.expires - self.cfg.switches.token_expires_in)}
        if self.cfg.switches.token_field in ("token", "both"):
            body["token"] = tok
        if self.cfg.switches.token_field in ("access_token", "both"):
            body["access_token"] = tok
        return web.json_response(body)

    # -- repository paths -----------------------------------------------------------------
    async def dispatch(self, request: web.Request) -> web.StreamResponse:
        who = self.auth.identify(request)
        if who.bad_credentials and who.scheme == "basic" and self.cfg.switches.failed_login_delay:
            await asyncio.sleep(self.cfg.switches.failed_login_delay)
        path = request.path
        if path in ("/v2", "/v2/"):
            return await self.ping(request, who)
        if path == "/v2/_catalog":
            return await self.catalog(request, who)
        m = REPO_PATH.match(path)
        if m is None or request.method not in ("GET", "HEAD"):
            return registry_error(405 if m else 404, "UNSUPPORTED", "the operation is unsupported")
        name = m["name"]
        denied = self.check_repo(request, who, name)
        if denied is not None:
            return denied
        if m["tags"]:
            return await self.tags_list(request, name)
        if m["ref"]:
            return await self.manifest(request, name, m["ref"])
        return await self.blob(request, name, m["digest"])

    async def catalog(self, request: web.Request, who: Identity) -> web.StreamResponse:
        # Needs system-level catalog read: an admin (docs/harbor.md#registry-front).
        allowed = who.admin and (who.scheme == "basic" or (who.grant is not None and
                                                          who.grant.allows("registry:catalog", "*")))
        if not allowed and self.cfg.switches.v2_auth != "none":
            return self.basic_401()
        names = sorted(n for n in await self.up.catalog() if n.split("/", 1)[0] in self.cfg.projects)
        return self._paged(request, "/v2/_catalog", "repositories", names, {})

    def _paged(self, request: web.Request, path: str, key: str, items: list[str],
               extra: dict[str, Any]) -> web.Response:
        """Harbor's `n`/`last` paging with `Link: <...?last=X&n=N>; rel="next"` (docs/harbor.md#tagslist)."""
        last = request.query.get("last")
        if last:
            items = [t for t in items if t > last]
        headers = dict(API_VERSION_HEADER)
        n_raw = request.query.get("n")
        if n_raw is not None:
            try:
                n = int(n_raw)
                if n < 0:
                    raise ValueError
            except ValueError:
                return registry_error(400, "PAGINATION_NUMBER_INVALID", "invalid number of results requested",
                                      {"n": n_raw})
            if 0 < n < len(items):
                headers["Link"] = f'<{path}?last={quote(items[n - 1], safe="")}&n={n}>; rel="next"'
            items = items[:n]
        return web.json_response({**extra, key: items}, headers=headers)

    async def tags_list(self, request: web.Request, name: str) -> web.StreamResponse:
        tags = await self.up.tags(name)
        if tags is None:
            if name not in self.cfg.switches.extra_repos:
                return registry_error(404, "NAME_UNKNOWN", "repository name not known to registry",
                                      {"name": name})
            tags = []
        if self.cfg.switches.tags_null:
            return web.json_response({"name": name, "tags": None}, headers=API_VERSION_HEADER)
        if not self.cfg.switches.paginate_tags:
            return web.json_response({"name": name, "tags": tags}, headers=API_VERSION_HEADER)
        return self._paged(request, f"/v2/{name}/tags/list", "tags", tags, {"name": name})

    async def manifest(self, request: web.Request, name: str, ref: str) -> web.StreamResponse:
        if self.cfg.switches.resolve_digest and not ref.startswith("sha256:"):
            digest = await self.up.resolve(name, ref)
            if digest is None:
                return registry_error(404, "MANIFEST_UNKNOWN", "manifest unknown", {"Tag": ref})
            ref = digest
        headers = {}
        accept = ", ".join(request.headers.getall("Accept", []))
        if accept:
            headers["Accept"] = accept
        if "If-None-Match" in request.headers:
            headers["If-None-Match"] = request.headers["If-None-Match"]
        # GET upstream even for HEAD: the client needs the real Content-Length; aiohttp drops the body.
        async with self.up.request("GET", f"/v2/{name}/manifests/{ref}", headers=headers) as r:
            body = await r.read()
            out = {k: r.headers[k] for k in MANIFEST_HEADERS if k in r.headers}
        out.pop("Content-Length", None)
        resp = web.Response(status=r.status, body=body, headers={**API_VERSION_HEADER, **out})
        return resp

    async def blob(self, request: web.Request, name: str, digest: str) -> web.StreamResponse:
        if self.cfg.switches.redirect_blobs and request.method == "GET":
            raise web.HTTPTemporaryRedirect(f"{self.up.url}/v2/{name}/blobs/{digest}")
        headers = {}
        if "Range" in request.headers:
            headers["Range"] = request.headers["Range"]
        async with self.up.request(request.method, f"/v2/{name}/blobs/{digest}", headers=headers) as r:
            resp = web.StreamResponse(status=r.status, headers={
                **API_VERSION_HEADER, **{k: r.headers[k] for k in BLOB_HEADERS if k in r.headers}})
            await resp.prepare(request)
            if request.method == "GET":
                try:
                    async for chunk in r.content.iter_chunked(CHUNK):
                        await resp.write(chunk)
                except (aiohttp.ClientError, ConnectionResetError):
                    # The client or upstream went away mid-blob: cut the connection, as a proxy would.
                    if request.transport is not None:
                        request.transport.close()
                    return resp
            await resp.write_eof()
            return resp
