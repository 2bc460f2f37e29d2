"""Harbor's own API (`/api/v2.0`): credential check, projects, repositories, artifacts.

The Distribution API cannot answer the questions preflight asks (does this project exist, are
these credentials a user or a robot, which repositories are in a project without catalog
rights), and Harbor's artifact listing carries every tag and the image labels
(`extra_attrs.config.Labels`) in one call per page, which spares a config-blob fetch per tag
during the scan.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

import httpx

from .errors import RegistryAuthError, RegistryError
from .models import CredentialCheck, HarborArtifact, HarborProject, HarborRepository
from .transport import RegistryTransport

API = "/api/v2.0"
API_PAGE_SIZE = 100                      # Harbor's maximum (swagger `page_size` maximum: 100, since v2.2.0)


def encode_repo(repo: str) -> str:
    """Harbor wants `a/b` as `a%252Fb` in API paths: the `repositoryName` parameter of
    `api/v2.0/swagger.yaml` says "encode it twice", and the handlers unescape once more."""
    return quote(quote(repo, safe=""), safe="")


def split_repo(name: str) -> tuple[str, str]:
    project, sep, repo = name.partition("/")
    if not sep or not repo:
        raise ValueError(f"{name!r} is not a <project>/<repository> name")
    return project, repo


class HarborAPI(RegistryTransport):
    """The `/api/v2.0` calls; pages of 100 (Harbor's maximum) until X-Total-Count."""

    async def _api(self, method: str, path: str, *, params: Mapping[str, Any] | None = None,
                   headers: Mapping[str, str] | None = None, ok: tuple[int, ...] = (200,)) -> httpx.Response:
        resp = await self._send("api", method, API + path, params=params, headers={**self._basic(), **(headers or {})})
        if resp.status_code not in ok:
            raise self._error_from(resp, method)
        return resp

    async def _api_list(self, path: str, params: Mapping[str, Any] | None = None,
                        page_size: int = API_PAGE_SIZE) -> list[dict[str, Any]]:
        """All pages: stop at X-Total-Count, or on a short/empty page without a next Link.

        Harbor's `Link` carries an unescaped query (`src/lib/link.go`), so the page number is counted
        here instead of following it."""
        out: list[dict[str, Any]] = []
        page = 1
        while True:
            resp = await self._api("GET", path, params={**(params or {}), "page": page, "page_size": page_size})
            items = self._json(resp)
            if not isinstance(items, list):
                raise RegistryError(f"GET {self._safe(str(resp.request.url))}: expected a JSON list")
            out.extend(items)
            total = resp.headers.get("x-total-count")
            if not items:
                break
            if total is not None and total.isdigit():
                if len(out) >= int(total):
                    break
            elif len(items) < page_size and "next" not in resp.links:
                break
            page += 1
            if page > 100_000:
                raise RegistryError(f"GET {path}: pagination does not end")
        return out

    async def ping(self) -> str:
        resp = await self._api("GET", "/ping")
        return resp.text

    async def systeminfo(self) -> dict[str, Any]:
        return dict(self._json(await self._api("GET", "/systeminfo")))

    async def health(self) -> dict[str, Any]:
        return dict(self._json(await self._api("GET", "/health")))

    async def current_user(self) -> CredentialCheck:
        """200 user, 412 robot (authenticated, not a user), 401 anonymous or bad credentials
        (Harbor `src/server/v2.0/handler/user.go`). A wrong password falls back to anonymous on
        every other call (`src/server/middleware/security/basic_auth.go`), so only this one proves it."""
        resp = await self._api("GET", "/users/current", ok=(200, 401, 412))
        if resp.status_code == 200:
            data = self._json(resp)
            return CredentialCheck("user", data.get("username"), bool(data.get("sysadmin_flag")))
        if resp.status_code == 412:
            return CredentialCheck("robot", self.username)
        if self.has_credentials:
            raise RegistryAuthError(
                f"{self.name}: Harbor rejected the credentials of {self.username!r} "
                f"(GET {API}/users/current answered 401)", status=401, code="UNAUTHORIZED",
                fix="correct the username/password; note that a wrong password still lists public projects, "
                    "so a working listing proves nothing")
        return CredentialCheck("anonymous", None)

    check_credentials = current_user

    async def projects(self, name: str | None = None) -> list[HarborProject]:
        params = {"name": name} if name else {}
        return [self._project(p) for p in await self._api_list("/projects", params)]

    @staticmethod
    def _project(p: dict[str, Any]) -> HarborProject:
        meta = p.get("metadata") or {}
        return HarborProject(p["name"], int(p.get("project_id", 0)), str(meta.get("public", "false")) == "true",
                             p.get("repo_count"), p)

    async def project(self, name: str) -> HarborProject:
        resp = await self._api("GET", f"/projects/{quote(name, safe='')}", headers={"X-Is-Resource-Name": "true"})
        return self._project(self._json(resp))

    async def project_exists(self, name: str) -> bool:
        resp = await self._api("HEAD", "/projects", params={"project_name": name}, ok=(200, 404))
        return resp.status_code == 200

    async def repositories(self, project: str) -> list[HarborRepository]:
        items = await self._api_list(f"/projects/{quote(project, safe='')}/repositories")
        out = []
        for r in items:
            full = r["name"]
            out.append(HarborRepository(full, project, full.split("/", 1)[1] if "/" in full else full,
                                        r.get("artifact_count"), r))
        return out

    async def artifacts(self, project: str, repo: str, *, q: str | None = None, with_tag: bool = True,
                        with_label: bool = False) -> list[HarborArtifact]:
        params: dict[str, Any] = {"with_tag": str(with_tag).lower(), "with_label": str(with_label).lower()}
        if q:
            params["q"] = q
        path = f"/projects/{quote(project, safe='')}/repositories/{encode_repo(repo)}/artifacts"
        return [HarborArtifact.from_json(a) for a in await self._api_list(path, params)]

    async def artifact(self, project: str, repo: str, reference: str) -> HarborArtifact:
        path = f"/projects/{quote(project, safe='')}/repositories/{encode_repo(repo)}/artifacts/{reference}"
        return HarborArtifact.from_json(self._json(await self._api("GET", path)))
