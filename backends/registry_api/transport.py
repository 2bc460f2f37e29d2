"""One httpx client per registry: bounded, retried, authenticated, and never leaking a secret.

- Bounded concurrency and a fixed number of attempts with exponential backoff and jitter on
  429 (Retry-After honoured), 5xx, timeouts and connection errors; `RequestStats` counts every
  request by kind, which the benchmarks print.
- A redirect is a configuration error, except on blob GETs: Backend.AI 20.09's scanner asks the
  Harbor API with `allow_redirects=False` (`src/ai/backend/manager/container_registry/harbor.py`
  @20.09.29), so a URL that redirects works for us and silently fails for it. Blobs may 307 to
  object storage (Harbor `storage_service.redirect`); httpx drops Authorization on that
  cross-origin hop (`_redirect_headers` in httpx `_client.py`), which a presigned URL needs.
- Authentication: Basic on Harbor's API; on `/v2/` a ping decides between no auth, Basic and
  bearer tokens, and tokens are cached per scope until shortly before `expires_in`
  (distribution/distribution `docs/content/spec/auth/token.md`).
- No secret ever reaches an exception: messages go through a `Redactor` that knows the
  password and every token this client received.
"""

from __future__ import annotations

import asyncio
import base64
import email.utils
import json
import random
import re
import time
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Self

import httpx

from .. import __version__
from ..http_transport import fast_transport
from ..secrets import Redactor, Secret
from .errors import (
    RegistryAuthError,
    RegistryError,
    RegistryNotFound,
    RegistryRedirectError,
    RegistryUnavailable,
)

RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
DEFAULT_TOKEN_LIFETIME = 60              # distribution token spec (docs/content/spec/auth/token.md): expires_in defaults to 60 s
TOKEN_MARGIN = 10.0                      # refresh a token this long before it expires
KINDS = ("api", "ping", "token", "tags", "manifest", "blob", "catalog")


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


class RegistryTransport:
    """Requests to one registry; `harbor.HarborAPI` and `distribution.DistributionAPI` build on it."""

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
        # Things that work here but would break Backend.AI 20.09's scanner (`login` in
        # `src/ai/backend/common/docker.py` @20.09 reads only `token`, and needs an absolute realm).
        self.compat_warnings: list[str] = []
        self._v2_mode: str | None = None          # open | basic | bearer
        self._challenge: Challenge | None = None
        self._v2_lock = asyncio.Lock()
        self._tokens: dict[str, tuple[str, float]] = {}
        self._token_locks: dict[str, asyncio.Lock] = {}

    async def __aenter__(self) -> Self:
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
        """Harbor's / distribution's `{"errors":[{code,message}]}` as a typed error (see errors.py)."""
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

    def _json(self, resp: httpx.Response) -> Any:
        ctype = resp.headers.get("content-type", "")
        if not re.match(r"^application/(?:[\w.+-]+\+)?json", ctype):
            # 20.09 calls aiohttp's resp.json() here, which raises ContentTypeError (`HarborRegistry_v2`
            # in `src/ai/backend/manager/container_registry/harbor.py` @20.09.29).
            raise RegistryError(f"GET {self._safe(str(resp.request.url))}: expected JSON, got {ctype or 'no Content-Type'}",
                                status=resp.status_code, url=self._safe(str(resp.request.url)),
                                fix="is this the Harbor base URL (the one serving /api/v2.0)?")
        try:
            return resp.json()
        except ValueError as e:
            raise RegistryError(f"GET {self._safe(str(resp.request.url))}: invalid JSON ({e})") from None

    # -- /v2/ authentication ----------------------------------------------------------
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
                # Harbor's answer to a wrong password (`src/server/middleware/v2auth/auth.go`); 20.09's
                # `login` then takes the realm "harbor" for a URL and fails with InvalidURL.
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
