"""Registry client: Harbor v2 API + Docker Distribution v2 over one `httpx.AsyncClient`.

What the engine (preflight, rescan, verify) and the scanner need from a registry, with the
traps of reference/harbor.md s.8 handled in one place:

- Harbor API (s.1): `users/current` is the credential check (a wrong password still lists
  public projects, s.1.6); pages of 100 looped on `X-Total-Count` or a short page (s.1.5);
  repository names with `/` encoded twice (s.1.4); Harbor's `{"errors":[...]}` becomes a
  typed `RegistryError` carrying status, code and message (s.1.7).
- Distribution (s.2-3): `/v2/` ping decides Basic vs bearer tokens; tokens are cached per
  scope below `expires_in`; every manifest request offers all four manifest types; only blob
  GETs follow redirects (httpx drops Authorization on a cross-origin hop, s.2.5).
- Transport: bounded concurrency, a fixed number of attempts with exponential backoff and
  jitter on 429 (Retry-After honoured), 5xx, timeouts and connection errors. A redirect on
  any other call is a configuration error: Backend.AI's scanner does not follow redirects on
  the API (reference/harbor2-standin.md s.1 row A).
- No secret ever reaches an exception: messages go through a `Redactor` that knows the
  password and every token this client received.

No UI imports here (DESIGN.md layering).
"""

from __future__ import annotations

import asyncio
import base64
import email.utils
import hashlib
import json
import random
import re
import time
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any
from urllib.parse import quote

import httpx

from . import __version__
from .errors import EXIT_USAGE, ConfigError, ConnectError, MigrateError
from .http_transport import fast_transport
from .secrets import Redactor, Secret

MT_OCI_INDEX = "application/vnd.oci.image.index.v1+json"
MT_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
MT_OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
MT_SCHEMA2 = "application/vnd.docker.distribution.manifest.v2+json"
INDEX_TYPES = frozenset({MT_OCI_INDEX, MT_LIST})
IMAGE_TYPES = frozenset({MT_OCI_MANIFEST, MT_SCHEMA2})
# reference/harbor.md s.2.3: without the full list OCI artifacts answer 404 MANIFEST_UNKNOWN.
MANIFEST_ACCEPT = ", ".join((MT_OCI_INDEX, MT_LIST, MT_OCI_MANIFEST, MT_SCHEMA2))
API = "/api/v2.0"
API_PAGE_SIZE = 100                      # Harbor's maximum (reference/harbor.md s.1.5)
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
DEFAULT_TOKEN_LIFETIME = 60              # distribution token spec: expires_in defaults to 60 s
TOKEN_MARGIN = 10.0                      # refresh a token this long before it expires
KINDS = ("api", "ping", "token", "tags", "manifest", "blob", "catalog")
FALSE_WORDS = {"f", "false", "n", "no", "off", "0"}


# -- errors -------------------------------------------------------------------------------

class RegistryError(MigrateError):
    """A registry answered something we cannot use; carries Harbor's status/code/message."""

    def __init__(self, message: str, *, status: int | None = None, code: str | None = None,
                 detail: str | None = None, url: str | None = None, fix: str | None = None) -> None:
        self.status = status
        self.code = code
        self.detail = detail
        self.url = url
        super().__init__(message, fix=fix)


class RegistryAuthError(RegistryError, ConnectError):
    """Credentials rejected or missing (401/403): exit 2, fix the registry entry."""


class RegistryNotFound(RegistryError):
    """404: no such project, repository, tag or blob."""


class RegistryUnavailable(RegistryError, ConnectError):
    """Unreachable, timing out, rate limited or failing with 5xx after every attempt."""


class RegistryRedirectError(RegistryError, ConfigError):
    """The configured URL redirects; Backend.AI would fail, so this is a configuration error."""

    exit_code = EXIT_USAGE

    def __init__(self, message: str, *, location: str, suggested: str, **kw: Any) -> None:
        self.location = location
        self.suggested = suggested
        super().__init__(message, **kw)


# -- results ------------------------------------------------------------------------------

@dataclass
class RequestStats:
    """How many requests a client made, by kind (benchmarks print it)."""

    total: int = 0
    by_kind: Counter[str] = field(default_factory=Counter)
    retries: int = 0

    def count(self, kind: str) -> None:
        self.total += 1
        self.by_kind[kind] += 1

    def as_dict(self) -> dict[str, Any]:
        return {"total": self.total, "retries": self.retries, **{k: self.by_kind[k] for k in sorted(self.by_kind)}}


@dataclass(frozen=True)
class Challenge:
    """A parsed `WWW-Authenticate` header."""

    scheme: str
    params: Mapping[str, str]

    @property
    def realm(self) -> str | None:
        return self.params.get("realm")

    @property
    def service(self) -> str | None:
        return self.params.get("service")

    @property
    def scope(self) -> str | None:
        return self.params.get("scope")

    @classmethod
    def parse(cls, header: str | None) -> Challenge | None:
        if not header:
            return None
        scheme, _, rest = header.strip().partition(" ")
        params = {m[0].lower(): m[1] if m[1] else m[2]
                  for m in re.findall(r'([A-Za-z_]+)=(?:"([^"]*)"|([^,\s]*))', rest)}
        return cls(scheme.lower(), params)


@dataclass
class Manifest:
    media_type: str
    digest: str
    raw: bytes
    body: dict[str, Any]

    @property
    def is_index(self) -> bool:
        return self.media_type in INDEX_TYPES

    @property
    def is_image(self) -> bool:
        return self.media_type in IMAGE_TYPES

    @property
    def config_digest(self) -> str:
        return str(self.body["config"]["digest"])

    @property
    def size_bytes(self) -> int:
        """Backend.AI 20.09: sum(layers[].size) + config.size (reference/backendai.md s.3 step 5)."""
        return sum(int(la["size"]) for la in self.body.get("layers", [])) + int(self.body["config"]["size"])

    def child_for(self, architecture: str, os: str = "linux") -> str | None:
        for m in self.body.get("manifests", []):
            p = m.get("platform") or {}
            if p.get("architecture") == architecture and p.get("os", "linux") == os:
                return str(m["digest"])
        return None

    def platforms(self) -> dict[str, str]:
        """architecture -> child digest, skipping `unknown` entries (attestations), as Backend.AI does."""
        out: dict[str, str] = {}
        for m in self.body.get("manifests", []):
            arch = (m.get("platform") or {}).get("architecture", "unknown")
            if arch != "unknown":
                out.setdefault(arch, str(m["digest"]))
        return out


@dataclass
class CredentialCheck:
    kind: str                  # user | robot | anonymous
    username: str | None
    admin: bool = False


@dataclass
class HarborProject:
    name: str
    id: int
    public: bool
    repo_count: int | None
    raw: dict[str, Any]


@dataclass
class HarborRepository:
    name: str                  # full name, e.g. "stable/python"
    project: str
    repo: str                  # without the project: "python", "ngc/pytorch"
    artifact_count: int | None
    raw: dict[str, Any]


@dataclass
class ArtifactRef:
    child_digest: str
    architecture: str | None
    os: str | None
    variant: str | None


@dataclass
class HarborArtifact:
    digest: str
    media_type: str
    manifest_media_type: str
    size: int
    tags: list[str]
    labels: dict[str, str]     # extra_attrs.config.Labels: the image labels, no blob fetch needed
    architecture: str | None
    os: str | None
    references: list[ArtifactRef]
    push_time: str | None
    raw: dict[str, Any]

    @property
    def is_index(self) -> bool:
        return self.manifest_media_type in INDEX_TYPES

    @classmethod
    def from_json(cls, a: dict[str, Any]) -> HarborArtifact:
        extra = a.get("extra_attrs") or {}
        cfg = extra.get("config") or {}
        refs = [ArtifactRef(r["child_digest"], (r.get("platform") or {}).get("architecture"),
                            (r.get("platform") or {}).get("os"), (r.get("platform") or {}).get("variant"))
                for r in a.get("references") or []]
        return cls(a["digest"], a.get("media_type", ""), a.get("manifest_media_type", ""), int(a.get("size") or 0),
                   [t["name"] for t in a.get("tags") or []], dict(cfg.get("Labels") or {}),
                   extra.get("architecture"), extra.get("os"), refs, a.get("push_time"), a)


@dataclass
class ResolvedImage:
    """One tag resolved the way a scanner needs it, for one architecture."""

    repo: str                  # full repository name
    tag: str
    digest: str                # what the tag points at (the list for a multi-arch tag)
    media_type: str
    architecture: str
    manifest_digest: str       # the image manifest (the child of a list)
    config_digest: str         # = image ID on an agent = the value 20.09 stores for the tag
    size_bytes: int            # sum(layers) + config, as 20.09 computes it
    labels: dict[str, str]
    platforms: dict[str, str] = field(default_factory=dict)   # arch -> child digest (lists only)

    @property
    def multiarch(self) -> bool:
        return self.media_type in INDEX_TYPES


@dataclass
class TagProblem:
    repo: str
    tag: str
    message: str
    status: int | None = None


@dataclass
class RepositoryScan:
    repo: str
    images: list[ResolvedImage] = field(default_factory=list)
    problems: list[TagProblem] = field(default_factory=list)


def labels_of(config: Mapping[str, Any]) -> dict[str, str]:
    """20.09 reads `container_config.Labels` when that key exists, else `config.Labels`."""
    src = config.get("container_config") if "container_config" in config else config.get("config")
    return dict((src or {}).get("Labels") or {})


def encode_repo(repo: str) -> str:
    """Harbor wants `a/b` as `a%252Fb` in API paths (reference/harbor.md s.1.4)."""
    return quote(quote(repo, safe=""), safe="")


def split_repo(name: str) -> tuple[str, str]:
    project, sep, repo = name.partition("/")
    if not sep or not repo:
        raise ValueError(f"{name!r} is not a <project>/<repository> name")
    return project, repo


def _truthy(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    return str(value).strip().lower() not in FALSE_WORDS


# -- the client ---------------------------------------------------------------------------

class RegistryClient:
    """One registry (one etcd registry entry); use as `async with RegistryClient(...) as rc:`."""

    def __init__(self, url: str, *, username: str | None = None, password: Secret | str | None = None,
                 ssl_verify: bool = True, registry_type: str = "harbor2", name: str | None = None,
                 concurrency: int = 8, attempts: int = 4, timeout: float = 30.0, backoff: float = 0.25,
                 backoff_max: float = 8.0, retry_after_max: float = 60.0,
                 transport: httpx.AsyncBaseTransport | None = None) -> None:
        self.base_url = url.rstrip("/")
        self.name = name or httpx.URL(self.base_url).host
        self.type = registry_type
        self.username = username or None
        self._password = password if isinstance(password, Secret) else Secret(password or "")
        self.attempts = max(1, attempts)
        self.backoff = backoff
        self.backoff_max = backoff_max
        self.retry_after_max = retry_after_max
        self.stats = RequestStats()
        self.redactor = Redactor([self._password])
        if self.username:
            self.redactor.add(self._password, user=self.username)
        self._sem = asyncio.Semaphore(max(1, concurrency))
        limits = httpx.Limits(max_connections=max(1, concurrency), max_keepalive_connections=max(1, concurrency))
        self._http = httpx.AsyncClient(
            verify=ssl_verify, timeout=httpx.Timeout(timeout, connect=min(10.0, timeout)), limits=limits,
            headers={"User-Agent": f"bai-registry-migrate/{__version__}"},
            transport=transport or fast_transport(verify=ssl_verify, limits=limits))
        # Things that work here but would break Backend.AI 20.09's scanner (harbor2-standin.md s.4-5).
        self.compat_warnings: list[str] = []
        self._v2_mode: str | None = None          # open | basic | bearer
        self._challenge: Challenge | None = None
        self._v2_lock = asyncio.Lock()
        self._tokens: dict[str, tuple[str, float]] = {}
        self._token_locks: dict[str, asyncio.Lock] = {}
        self._manifests: dict[tuple[str, str], Manifest] = {}
        self._inflight: dict[tuple[str, str], asyncio.Future[Manifest]] = {}
        self._configs: dict[tuple[str, str], dict[str, Any]] = {}

    @classmethod
    def from_entry(cls, entry: Any, name: str | None = None, **kw: Any) -> RegistryClient:
        """From a `registry_doc.RegistryEntry` or the raw etcd mapping (`""`, `type`, `ssl-verify`...)."""
        if isinstance(entry, Mapping):
            url, rtype = entry.get(""), str(entry.get("type", "docker"))
            user, pw = entry.get("username"), entry.get("password")
            verify = _truthy(entry.get("ssl-verify", entry.get("ssl_verify", True)))
        else:
            url, rtype, user, pw = entry.url, entry.type, entry.username, entry.password
            verify, name = entry.ssl_verify, name or entry.name
        if not isinstance(url, str) or not url:
            raise ConfigError("the registry entry has no URL (the \"\" key)", key=name)
        return cls(url, username=user, password=pw, ssl_verify=verify, registry_type=rtype, name=name, **kw)

    async def __aenter__(self) -> RegistryClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    @property
    def has_credentials(self) -> bool:
        return bool(self.username)

    def _basic(self) -> dict[str, str]:
        if not self.username:
            return {}
        pair = f"{self.username}:{self._password.reveal()}".encode()
        return {"Authorization": "Basic " + base64.b64encode(pair).decode()}

    def _url(self, path_or_url: str) -> str:
        return path_or_url if "://" in path_or_url else self.base_url + path_or_url

    # -- transport ------------------------------------------------------------------------
    def _delay(self, attempt: int, resp: httpx.Response | None) -> float:
        if resp is not None and "retry-after" in resp.headers:
            raw = resp.headers["retry-after"].strip()
            try:
                secs = float(raw)
            except ValueError:
                try:
                    secs = email.utils.parsedate_to_datetime(raw).timestamp() - time.time()
                except (TypeError, ValueError):
                    secs = -1.0
            if secs >= 0:
                return min(secs, self.retry_after_max)
        return min(self.backoff_max, self.backoff * 2 ** (attempt - 1)) * random.uniform(0.5, 1.5)

    async def _send(self, kind: str, method: str, url: str, *, headers: Mapping[str, str] | None = None,
                    params: Mapping[str, Any] | None = None, follow_redirects: bool = False) -> httpx.Response:
        """One logical request: bounded, retried, redirect-checked, body read."""
        full = self._url(url)
        last_exc: Exception | None = None
        resp: httpx.Response | None = None
        for attempt in range(1, self.attempts + 1):
            if attempt > 1:
                self.stats.retries += 1
                await asyncio.sleep(self._delay(attempt - 1, resp))
            resp = None
            try:
                async with self._sem:
                    self.stats.count(kind)
                    resp = await self._http.request(method, full, headers=headers, params=params,
                                                    follow_redirects=follow_redirects)
                    await resp.aread()
            except (httpx.TimeoutException, httpx.NetworkError, httpx.RemoteProtocolError) as e:
                last_exc = e
                if "CERTIFICATE_VERIFY_FAILED" in str(e):
                    raise RegistryUnavailable(
                        f"{method} {self._safe(full)}: TLS certificate verification failed",
                        url=self._safe(full),
                        fix="install the registry's CA certificate, or set \"ssl-verify\": false in its entry") from None
                continue
            if resp.status_code in RETRY_STATUSES:
                continue
            if resp.is_redirect and not follow_redirects:
                raise self._redirect_error(method, resp)
            return resp
        if resp is not None:
            err = self._error_from(resp, method)
            what = "rate limited (429)" if resp.status_code == 429 else f"HTTP {resp.status_code}"
            fix = ("the registry is rate-limiting this host: wait a few minutes (or raise its rate limit), "
                   "then run the same command again" if resp.status_code == 429 else
                   "the registry keeps failing on its side: check its health (Harbor's core and registry "
                   "logs), then run the same command again")
            raise RegistryUnavailable(f"{method} {self._safe(full)}: {what} after {self.attempts} attempts"
                                      f"{': ' + err.detail if err.detail else ''}",
                                      status=resp.status_code, code=err.code, detail=err.detail, url=self._safe(full),
                                      fix=fix)
        reason = type(last_exc).__name__ if last_exc else "no response"
        text = self._safe(str(last_exc)) if last_exc and str(last_exc) else ""
        raise RegistryUnavailable(f"{method} {self._safe(full)}: {reason}{' (' + text + ')' if text else ''} "
                                  f"after {self.attempts} attempts", url=self._safe(full),
                                  fix="check that the registry URL is reachable from this host")

    def _warn(self, text: str) -> None:
        if text not in self.compat_warnings:
            self.compat_warnings.append(text)

    def _safe(self, text: str) -> str:
        return self.redactor.redact(text)

    def _redirect_error(self, method: str, resp: httpx.Response) -> RegistryRedirectError:
        loc = resp.url.join(resp.headers.get("location", ""))
        base_path = httpx.URL(self.base_url).path.rstrip("/")
        rel = resp.request.url.path[len(base_path):] if resp.request.url.path.startswith(base_path) else ""
        suggested = loc.copy_with(query=None, fragment=None)
        if rel and loc.path.endswith(rel):
            suggested = suggested.copy_with(path=loc.path[: len(loc.path) - len(rel)] or "/")
        sugg = str(suggested).rstrip("/")
        location = self._safe(str(loc))
        return RegistryRedirectError(
            f"{method} {self._safe(str(resp.request.url))} answered {resp.status_code} redirecting to {location}. "
            f"Backend.AI's scanner does not follow redirects; use {sugg} as the registry URL",
            location=location, suggested=sugg, status=resp.status_code, url=self._safe(str(resp.request.url)),
            fix=f"set the registry URL to {sugg}")

    def _error_from(self, resp: httpx.Response, method: str) -> RegistryError:
        """Harbor's / distribution's `{"errors":[{code,message}]}` as a typed error (harbor.md s.1.7)."""
        code = message = None
        try:
            data = resp.json()
            errs = data.get("errors") if isinstance(data, dict) else None
            if errs:
                code, message = errs[0].get("code"), errs[0].get("message")
        except ValueError:
            message = resp.text[:200].strip() or None
        url = self._safe(str(resp.request.url))
        detail = self._safe(str(message)) if message else None
        text = f"{method} {url}: HTTP {resp.status_code}" + (f" {code}" if code else "") + (f": {detail}" if detail else "")
        cls: type[RegistryError] = RegistryError
        fix = None
        if resp.status_code in (401, 403):
            cls = RegistryAuthError
            fix = ("check the registry entry's username and password (Harbor answers 401/403 also for a "
                   "project that does not exist)")
        elif resp.status_code == 404:
            cls = RegistryNotFound
        return cls(text, status=resp.status_code, code=code, detail=detail, url=url, fix=fix)

    # -- Harbor v2 API --------------------------------------------------------------------
    async def _api(self, method: str, path: str, *, params: Mapping[str, Any] | None = None,
                   headers: Mapping[str, str] | None = None, ok: tuple[int, ...] = (200,)) -> httpx.Response:
        resp = await self._send("api", method, API + path, params=params, headers={**self._basic(), **(headers or {})})
        if resp.status_code not in ok:
            raise self._error_from(resp, method)
        return resp

    def _json(self, resp: httpx.Response) -> Any:
        ctype = resp.headers.get("content-type", "")
        if not re.match(r"^application/(?:[\w.+-]+\+)?json", ctype):
            # 20.09 calls resp.json() here and fails with ContentTypeError (harbor2-standin.md s.2).
            raise RegistryError(f"GET {self._safe(str(resp.request.url))}: expected JSON, got {ctype or 'no Content-Type'}",
                                status=resp.status_code, url=self._safe(str(resp.request.url)),
                                fix="is this the Harbor base URL (the one serving /api/v2.0)?")
        try:
            return resp.json()
        except ValueError as e:
            raise RegistryError(f"GET {self._safe(str(resp.request.url))}: invalid JSON ({e})") from None

    async def _api_list(self, path: str, params: Mapping[str, Any] | None = None,
                        page_size: int = API_PAGE_SIZE) -> list[dict[str, Any]]:
        """All pages: stop at X-Total-Count, or on a short/empty page without a next Link (s.1.5)."""
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
        """200 user, 412 robot (authenticated, not a user), 401 anonymous or bad credentials (s.1.6)."""
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

    # -- Docker Distribution v2 -----------------------------------------------------------
    async def ping_v2(self) -> str:
        """GET /v2/ and decide how to authenticate: returns open | basic | bearer."""
        async with self._v2_lock:
            if self._v2_mode is not None:
                return self._v2_mode
            resp = await self._send("ping", "GET", "/v2/", headers=self._basic())
            if resp.status_code == 200:
                self._v2_mode = "basic" if self.has_credentials else "open"
                return self._v2_mode
            if resp.status_code == 404:
                raise RegistryNotFound(f"{self.base_url}/v2/ answered 404: not a Docker registry v2",
                                       status=404, url=self.base_url + "/v2/")
            ch = Challenge.parse(resp.headers.get("www-authenticate"))
            if resp.status_code != 401 or ch is None:
                raise self._error_from(resp, "GET")
            if ch.scheme == "bearer":
                self._challenge = ch
                self._v2_mode = "bearer"
                if ch.realm and "://" not in ch.realm:
                    self._warn(f"the token realm {ch.realm!r} is relative; Backend.AI 20.09 fails on it with InvalidURL")
                return self._v2_mode
            if self.has_credentials:
                # Harbor's answer to a wrong password; 20.09 then fails with InvalidURL (s.4 item 7).
                raise RegistryAuthError(f"{self.base_url}/v2/ rejected the credentials of {self.username!r} "
                                        f"({ch.scheme.title()} challenge)", status=401, code="UNAUTHORIZED",
                                        fix="correct the registry entry's username/password")
            raise RegistryAuthError(f"{self.base_url}/v2/ requires credentials ({ch.scheme.title()} challenge)",
                                    status=401, code="UNAUTHORIZED", fix="add username and password to the entry")

    async def _token(self, scope: str | None, challenge: Challenge | None = None) -> str:
        key = scope or ""
        lock = self._token_locks.setdefault(key, asyncio.Lock())
        async with lock:
            hit = self._tokens.get(key)
            if hit and hit[1] - TOKEN_MARGIN > time.monotonic():
                return hit[0]
            ch = challenge or self._challenge
            realm = ch.realm if ch and ch.realm else self.base_url + "/token"
            realm = str(httpx.URL(self.base_url + "/").join(realm))
            params = {"service": ch.service if ch and ch.service else "registry"}
            if scope:
                params["scope"] = scope
            resp = await self._send("token", "GET", realm, params=params, headers=self._basic())
            if resp.status_code != 200:
                err = self._error_from(resp, "GET")
                raise RegistryAuthError(f"token service {self._safe(realm)} answered {resp.status_code}"
                                        f"{': ' + err.detail if err.detail else ''}", status=resp.status_code,
                                        code=err.code, fix="check the registry entry's username and password")
            try:
                data = json.loads(resp.content)
            except ValueError:
                data = {}
            token = data.get("token") or data.get("access_token")
            if token and not data.get("token"):
                self._warn("the token service sends only `access_token`; Backend.AI 20.09 reads `token` "
                           "and would silently find no images")
            if not token:
                raise RegistryAuthError(f"token service {self._safe(realm)} sent neither `token` nor `access_token`",
                                        status=200)
            self.redactor.add(token)
            lifetime = float(data.get("expires_in") or DEFAULT_TOKEN_LIFETIME)
            self._tokens[key] = (token, time.monotonic() + lifetime)
            return str(token)

    async def _v2_headers(self, scope: str | None) -> dict[str, str]:
        mode = await self.ping_v2()
        if mode == "open":
            return {}
        if mode == "basic":
            return self._basic()
        return {"Authorization": f"Bearer {await self._token(scope)}"}

    async def _v2(self, kind: str, method: str, path: str, *, scope: str | None, accept: str | None = None,
                  params: Mapping[str, Any] | None = None, follow_redirects: bool = False,
                  ok: tuple[int, ...] = (200,)) -> httpx.Response:
        extra = {"Accept": accept} if accept else {}
        resp = await self._send(kind, method, path, params=params, follow_redirects=follow_redirects,
                                headers={**await self._v2_headers(scope), **extra})
        if resp.status_code == 401:
            ch = Challenge.parse(resp.headers.get("www-authenticate"))
            if ch is not None and ch.scheme == "bearer":
                # Expired/insufficient token, or a registry that wants a token after all: once more.
                if self._v2_mode != "bearer":
                    self._challenge, self._v2_mode = ch, "bearer"
                want = ch.scope or scope
                self._tokens.pop(want or "", None)
                token = await self._token(want, ch)
                resp = await self._send(kind, method, path, params=params, follow_redirects=follow_redirects,
                                        headers={"Authorization": f"Bearer {token}", **extra})
        if resp.status_code not in ok:
            raise self._error_from(resp, method)
        return resp

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

    # -- scanner building blocks ------------------------------------------------------------
    async def resolve_tag(self, name: str, tag: str, *, architecture: str = "amd64",
                          labels: Mapping[str, str] | None = None,
                          image_architecture: str | None = None) -> ResolvedImage:
        """Tag -> (digest, child for `architecture`, config digest, 20.09 size_bytes, labels).

        A list is narrowed to its linux/`architecture` child; a single image is returned as it
        is, with its own architecture (the caller decides whether it fits). `labels` (and
        `image_architecture`) from the artifacts API spare the config-blob fetch.
        """
        top = await self.manifest(name, tag)
        image, platforms = top, {}
        if top.is_index:
            platforms = top.platforms()
            child = top.child_for(architecture)
            if child is None:
                raise RegistryNotFound(f"{name}:{tag} has no linux/{architecture} image "
                                       f"(platforms: {', '.join(sorted(platforms)) or 'none'})", status=404)
            image = await self.manifest(name, child)
            image_architecture = architecture
        if not image.is_image:
            raise RegistryError(f"{name}:{tag} is a {image.media_type}, not an image manifest")
        if labels is None:
            config = await self.image_config(name, image.config_digest)
            labels = labels_of(config)
            image_architecture = image_architecture or config.get("architecture")
        return ResolvedImage(name, tag, top.digest, top.media_type, image_architecture or architecture,
                             image.digest, image.config_digest, image.size_bytes, dict(labels), platforms)

    async def scan_repository(self, name: str, *, architecture: str = "amd64",
                              use_artifacts: bool | None = None) -> RepositoryScan:
        """Every tag of one repository, resolved; per-tag failures are collected, not raised.

        On harbor2 the artifacts listing gives tags and labels at once, so only manifests are
        fetched (one per artifact, plus the child of a list); elsewhere tags/list + manifest +
        config blob per distinct config.
        """
        scan = RepositoryScan(name)
        harbor = self.type == "harbor2" if use_artifacts is None else use_artifacts
        jobs: list[tuple[list[str], Any]] = []
        if harbor:
            project, repo = split_repo(name)
            for art in await self.artifacts(project, repo):
                if art.tags:        # one resolution per artifact, shared by all its tags
                    jobs.append((art.tags, self._resolve_artifact(project, repo, name, art, architecture)))
        else:
            for tag in await self.tags(name):
                jobs.append(([tag], self.resolve_tag(name, tag, architecture=architecture)))
        results = await asyncio.gather(*(j for _, j in jobs), return_exceptions=True)
        for (tags, _), res in zip(jobs, results, strict=True):
            if isinstance(res, (RegistryAuthError, RegistryUnavailable, RegistryRedirectError)):
                raise res
            for tag in tags:
                if isinstance(res, ResolvedImage):
                    scan.images.append(replace(res, tag=tag))
                elif isinstance(res, RegistryError):
                    scan.problems.append(TagProblem(name, tag, str(res), res.status))
                elif isinstance(res, BaseException):
                    raise res
        scan.images.sort(key=lambda i: i.tag)
        scan.problems.sort(key=lambda p: p.tag)
        return scan

    async def _resolve_artifact(self, project: str, repo: str, name: str, art: HarborArtifact,
                                architecture: str) -> ResolvedImage:
        labels: Mapping[str, str] | None = art.labels
        arch = art.architecture
        if art.is_index:
            # The list's own listing has no labels; its child's artifact has (one API call, no blob).
            child = next((r for r in art.references if r.architecture == architecture), None)
            labels = (await self.artifact(project, repo, child.child_digest)).labels if child else None
            arch = None
        return await self.resolve_tag(name, art.digest, architecture=architecture, labels=labels,
                                      image_architecture=arch)
