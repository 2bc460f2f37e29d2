"""Harbor's REST API (`/api/v2.0`) as far as the wizard and Backend.AI use it.

Paths are parsed from the raw request path, segment by segment, so repository names behave
as in Harbor: the router decodes once and the handler once more, so `a/b` must arrive as
`a%252Fb` (docs/harbor.md#repository-names). Pagination, `Link` and `X-Total-Count` follow
`BaseAPI.Links` (docs/harbor.md#pagination); access rules follow `RequireProjectAccess` and the
anonymous fallback of a failed Basic login (docs/harbor.md#authentication).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import unquote, urlencode

from aiohttp import web

from .harbor_core import Auth, HarborConfig, Identity, Project, harbor_error, json_response, rfc3339
from .harbor_upstream import Artifact, Upstream, UpstreamError

MAX_PAGE_SIZE = 100
DEFAULT_PAGE_SIZE = 10
STARTED = time.time()


class Reply(Exception):
    """Short-circuits a handler with a ready response (an error, usually)."""

    def __init__(self, response: web.Response) -> None:
        super().__init__(response.status)
        self.response = response


def _validation(message: str) -> Reply:
    # go-swagger validation failures: 422 UNPROCESSABLE_ENTITY (docs/harbor.md#pagination).
    return Reply(harbor_error(422, f"validation failure list:\n{message}", "UNPROCESSABLE_ENTITY"))


def _int_param(request: web.Request, name: str, default: int) -> int:
    raw = request.query.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise _validation(f'{name} in query must be of type int64: "{raw}"') from None


def _bool_param(request: web.Request, name: str, default: bool) -> bool:
    raw = request.query.get(name)
    if raw is None or raw == "":
        return default
    if raw.lower() in ("true", "1"):
        return True
    if raw.lower() in ("false", "0"):
        return False
    raise _validation(f'{name} in query must be of type bool: "{raw}"')


def _parse_q(raw: str | None) -> dict[str, str]:
    """`k=v,k2=~v2` (Harbor's src/lib/q/builder.go); the server unescapes `q` once more."""
    out: dict[str, str] = {}
    if not raw:
        return out
    for clause in unquote(raw).split(","):
        k, sep, v = clause.partition("=")
        if sep:
            out[k.strip()] = v.strip()
    return out


def _match(value: str, cond: str) -> bool:
    if cond.startswith("~"):
        return cond[1:] in value
    return value == cond


class HarborAPI:
    def __init__(self, cfg: HarborConfig, auth: Auth, upstream: Upstream) -> None:
        self.cfg = cfg
        self.auth = auth
        self.up = upstream

    # -- helpers ------------------------------------------------------------------------
    def paginate(self, request: web.Request, items: list[Any]) -> tuple[list[Any], dict[str, str]]:
        page = _int_param(request, "page", 1)
        size = _int_param(request, "page_size", DEFAULT_PAGE_SIZE)
        if page < 1:
            raise _validation("page in query should be greater than or equal to 1")
        if size > MAX_PAGE_SIZE:
            raise _validation(f"page_size in query should be less than or equal to {MAX_PAGE_SIZE}")
        if size < 1:
            raise _validation("page_size in query should be greater than or equal to 1")
        if self.cfg.switches.force_page_size:
            size = self.cfg.switches.force_page_size
        total = len(items)
        headers = {"X-Total-Count": str(total)}
        links = []
        if page > 1:
            links.append(f'<{self._page_url(request, page - 1, size)}>; rel="prev"')
        if page * size < total:
            links.append(f'<{self._page_url(request, page + 1, size)}>; rel="next"')
        if links:
            headers["Link"] = " , ".join(links)     # Harbor's separator (src/lib/link.go)
        return items[(page - 1) * size: page * size], headers

    @staticmethod
    def _page_url(request: web.Request, page: int, size: int) -> str:
        # Relative path + query; keys sorted (Go's url.Values.Encode) and unescaped (s.1.5).
        query = {k: request.query.getone(k) for k in request.query}
        query.update(page=str(page), page_size=str(size))
        return request.path + "?" + unquote(urlencode(sorted(query.items())))

    def _visible(self, who: Identity) -> list[Project]:
        return [p for p in self.cfg.projects.values() if who.can_read(p)]

    def project_for(self, request: web.Request, who: Identity, name_or_id: str) -> Project:
        """Harbor's RequireProjectAccess: 401 anonymous, 403 member-less user, 404 admin only."""
        proj: Project | None
        if name_or_id.isdigit() and request.headers.get("X-Is-Resource-Name", "").lower() != "true":
            proj = self.cfg.project_by_id(int(name_or_id))
        else:
            proj = self.cfg.projects.get(name_or_id)
        if proj is not None and who.can_read(proj):
            return proj
        if not who.authenticated:
            raise Reply(harbor_error(401, "unauthorized"))
        if who.admin:
            raise Reply(harbor_error(404, f"project {name_or_id} not found"))
        raise Reply(harbor_error(403, "forbidden"))

    async def _repo_names(self, project: Project) -> list[str]:
        names = [n for n in await self.up.catalog() if n.split("/", 1)[0] == project.name]
        names += [n for n in self.cfg.switches.extra_repos if n.split("/", 1)[0] == project.name]
        return sorted(set(names))

    def _project_json(self, p: Project, who: Identity, repo_count: int) -> dict[str, Any]:
        created = rfc3339(STARTED)
        data: dict[str, Any] = {
            "project_id": p.id, "owner_id": 1, "name": p.name, "owner_name": "admin",
            "creation_time": created, "update_time": created, "deleted": False, "repo_count": repo_count,
            "chart_count": 0, "metadata": {"public": "true" if p.public else "false"},
            "cve_allowlist": {"id": p.id, "project_id": p.id, "items": [], "creation_time": created,
                              "update_time": created},
        }
        if who.authenticated:
            data |= {"togglable": who.admin, "current_user_role_id": 1 if who.admin else 3,
                     "current_user_role_ids": [1 if who.admin else 3]}
        return data

    async def _repo_json(self, project: Project, name: str, tag_count: int | None) -> dict[str, Any]:
        created = self.up.first_seen(f"repo:{name}")
        return {"id": self.up.id_of(f"repo:{name}"), "project_id": project.id, "name": name,
                "description": "", "artifact_count": tag_count or 0, "pull_count": 0,
                "creation_time": created, "update_time": created}

    # -- endpoints ----------------------------------------------------------------------
    async def ping(self, request: web.Request, who: Identity) -> web.StreamResponse:
        return web.Response(text="Pong", content_type="text/plain")

    async def systeminfo(self, request: web.Request, who: Identity) -> web.StreamResponse:
        data: dict[str, Any] = {"auth_mode": "db_auth", "primary_auth_mode": False,
                                "self_registration": False, "banner_message": ""}
        if who.authenticated:     # WithProtectedInfo (docs/harbor.md#authentication)
            ext = self.cfg.external_url
            data |= {"harbor_version": self.cfg.switches.harbor_version,
                     "registry_url": ext.split("://", 1)[-1], "external_url": ext,
                     "current_time": rfc3339(time.time()), "read_only": False, "has_ca_root": False,
                     "project_creation_restriction": "adminonly", "with_chartmuseum": False,
                     "registry_storage_provider_name": "filesystem", "notification_enable": True}
        return json_response(data)

    async def health(self, request: web.Request, who: Identity) -> web.StreamResponse:
        ok = await self.up.ping()
        comps = [{"name": n, "status": "healthy"} for n in ("core", "database", "jobservice", "portal", "redis")]
        comps.append({"name": "registry", "status": "healthy"} if ok else
                     {"name": "registry", "status": "unhealthy", "error": "upstream registry unreachable"})
        return json_response({"status": "healthy" if ok else "unhealthy", "components": comps})

    async def projects(self, request: web.Request, who: Identity) -> web.StreamResponse:
        if request.method == "HEAD":
            name = request.query.get("project_name", "")
            return web.Response(status=200 if name in self.cfg.projects else 404)
        q = _parse_q(request.query.get("q"))
        name = request.query.get("name") or None
        public = request.query.get("public") or q.get("public")
        projs = self._visible(who)
        if name is not None:
            projs = [p for p in projs if name in p.name]           # fuzzy (handler/project.go)
        if "name" in q:
            projs = [p for p in projs if _match(p.name, q["name"])]
        if public is not None:
            projs = [p for p in projs if p.public == (public.lower() == "true")]
        page, headers = self.paginate(request, projs)
        names = await self.up.catalog() if page else []
        out = [self._project_json(p, who, sum(1 for n in names if n.split("/", 1)[0] == p.name)) for p in page]
        return json_response(out, headers=headers)

    async def project(self, request: web.Request, who: Identity, pname: str) -> web.StreamResponse:
        proj = self.project_for(request, who, pname)
        return json_response(self._project_json(proj, who, len(await self._repo_names(proj))))

    async def repositories(self, request: web.Request, who: Identity, pname: str) -> web.StreamResponse:
        proj = self.project_for(request, who, pname)
        q = _parse_q(request.query.get("q"))
        names = await self._repo_names(proj)
        if "name" in q:
            names = [n for n in names if _match(n, q["name"])]
        page, headers = self.paginate(request, names)
        counts = await asyncio.gather(*(self.up.tags(n) for n in page))
        return json_response([await self._repo_json(proj, n, len(c) if c else 0)
                              for n, c in zip(page, counts, strict=True)], headers=headers)

    async def repository(self, request: web.Request, who: Identity, pname: str, rname: str) -> web.StreamResponse:
        proj = self.project_for(request, who, pname)
        full = f"{proj.name}/{rname}"
        if full not in await self._repo_names(proj):
            return harbor_error(404, f"repository {full} not found")
        tags = await self.up.tags(full)
        return json_response(await self._repo_json(proj, full, len(tags) if tags else 0))

    async def _artifacts_of(self, proj: Project, rname: str) -> tuple[str, list[Artifact]]:
        full = f"{proj.name}/{rname}"
        arts = await self.up.artifacts(full)
        if arts is None:
            if full in self.cfg.switches.extra_repos:
                return full, []
            raise Reply(harbor_error(404, f"repository {full} not found"))
        return full, arts

    async def artifacts(self, request: web.Request, who: Identity, pname: str, rname: str) -> web.StreamResponse:
        proj = self.project_for(request, who, pname)
        with_tag = _bool_param(request, "with_tag", True)
        with_label = _bool_param(request, "with_label", False)
        _, arts = await self._artifacts_of(proj, rname)
        q = _parse_q(request.query.get("q"))
        cond = q.get("tags")
        if cond == "nil":
            arts = [a for a in arts if not a.tags]
        elif cond == "*":
            arts = [a for a in arts if a.tags]
        elif cond:
            arts = [a for a in arts if any(_match(t, cond) for t in a.tags)]
        if "digest" in q:
            arts = [a for a in arts if a.digest == q["digest"]]
        if "media_type" in q:
            arts = [a for a in arts if _match(a.media_type, q["media_type"])]
        # Newest first in Harbor; push times are invented here, so order by first tag instead.
        arts.sort(key=lambda a: (a.tags[0] if a.tags else "", a.digest))
        page, headers = self.paginate(request, arts)
        return json_response([self.up.to_json(a, proj.id, with_tag=with_tag, with_label=with_label)
                              for a in page], headers=headers)

    async def _one_artifact(self, proj: Project, rname: str, ref: str) -> Artifact:
        full = f"{proj.name}/{rname}"
        if ref.startswith("sha256:"):
            art = await self.up.artifact(full, ref)
            if art is not None:
                tags = await self.up.tags(full) or []
                digests = await asyncio.gather(*(self.up.resolve(full, t) for t in tags))
                art.tags = sorted(t for t, d in zip(tags, digests, strict=True) if d == ref)
        else:
            digest = await self.up.resolve(full, ref)
            art = await self.up.artifact(full, digest) if digest else None
            if art is not None:
                _, arts = await self._artifacts_of(proj, rname)
                art.tags = next((a.tags for a in arts if a.digest == art.digest), [ref])
        if art is None:
            raise Reply(harbor_error(404, f"artifact {full}:{ref} not found"))
        return art

    async def artifact(self, request: web.Request, who: Identity, pname: str, rname: str,
                       ref: str) -> web.StreamResponse:
        proj = self.project_for(request, who, pname)
        art = await self._one_artifact(proj, rname, ref)
        return json_response(self.up.to_json(art, proj.id, with_tag=_bool_param(request, "with_tag", True),
                                             with_label=_bool_param(request, "with_label", False)))

    async def artifact_tags(self, request: web.Request, who: Identity, pname: str, rname: str,
                            ref: str) -> web.StreamResponse:
        proj = self.project_for(request, who, pname)
        art = await self._one_artifact(proj, rname, ref)
        tags = self.up.to_json(art, proj.id)["tags"] or []
        page, headers = self.paginate(request, tags)
        return json_response(page, headers=headers)

    async def all_repositories(self, request: web.Request, who: Identity) -> web.StreamResponse:
        names: list[tuple[Project, str]] = []
        for p in self._visible(who):
            names += [(p, n) for n in await self._repo_names(p)]
        page, headers = self.paginate(request, names)
        return json_response([await self._repo_json(p, n, None) for p, n in page], headers=headers)

    async def current_user(self, request: web.Request, who: Identity) -> web.StreamResponse:
        # 200 user, 412 robot, 401 anonymous or bad credentials (docs/harbor.md#authentication).
        if who.kind == "robot":
            return harbor_error(412, "the current user is a robot account", "PRECONDITION")
        if who.kind != "user":
            return harbor_error(401, "unauthorized")
        created = rfc3339(STARTED)
        return json_response({"user_id": self.up.id_of(f"user:{who.name}"), "username": who.name,
                              "email": f"{who.name}@sandbox.invalid", "realname": who.name or "",
                              "comment": "", "sysadmin_flag": who.admin, "admin_role_in_auth": False,
                              "oidc_user_meta": None, "creation_time": created, "update_time": created})

    # -- dispatch -----------------------------------------------------------------------
    async def dispatch(self, request: web.Request) -> web.StreamResponse:
        who = self.auth.identify(request)
        if who.bad_credentials and self.cfg.switches.failed_login_delay:
            await asyncio.sleep(self.cfg.switches.failed_login_delay)
        # The router decodes each segment once; handlers decode repository names again.
        raw = request.raw_path.split("?", 1)[0]
        segs = [unquote(s) for s in raw.split("/")[3:]]     # after "", "api", "v2.0"
        if segs and segs[-1] == "":
            segs = segs[:-1]
        route = self._route(segs)
        if route is None:
            return harbor_error(404, f"no route for {request.method} {request.path}")
        handler, args, methods = route
        if request.method not in methods:
            return harbor_error(405, f"{request.method} is not supported by this stand-in",
                                "METHOD_NOT_ALLOWED")
        try:
            return await handler(request, who, *args)
        except Reply as r:
            return r.response
        except UpstreamError:
            return harbor_error(500, "upstream")

    Handler = Callable[..., Awaitable[web.StreamResponse]]

    def _route(self, s: list[str]) -> tuple[Handler, tuple[str, ...], tuple[str, ...]] | None:
        get = ("GET",)
        n = len(s)
        if n == 1 and s[0] in ("ping", "systeminfo", "health"):
            return getattr(self, s[0]), (), get
        if s == ["users", "current"]:
            return self.current_user, (), get
        if s == ["repositories"]:
            return self.all_repositories, (), get
        if not s or s[0] != "projects":
            return None
        if n == 1:
            return self.projects, (), ("GET", "HEAD")
        if n == 2:
            return self.project, (s[1],), get
        if n >= 3 and s[2] == "repositories":
            if n == 3:
                return self.repositories, (s[1],), get
            repo = unquote(s[3])          # the second decode: a%252Fb -> a%2Fb -> a/b
            if "/" in s[3]:               # a singly encoded a%2Fb: the router split it already
                return None
            if n == 4:
                return self.repository, (s[1], repo), get
            if s[4] == "artifacts":
                if n == 5:
                    return self.artifacts, (s[1], repo), get
                if n == 6:
                    return self.artifact, (s[1], repo, s[5]), get
                if n == 7 and s[6] == "tags":
                    return self.artifact_tags, (s[1], repo, s[5]), get
        return None
