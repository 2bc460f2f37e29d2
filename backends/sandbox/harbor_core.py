"""Harbor stand-in: configuration, identities, tokens and Harbor's error shapes.

Shared by the API half (`harbor_api`) and the registry half (`harbor_registry`) of the
stand-in assembled in `harbor`. The behaviours follow docs/harbor.md and the contract in
docs/sandbox.md#the-harbor-stand-in; every deliberate deviation is a switch.
"""

from __future__ import annotations

import base64
import hmac
import json
import secrets
import time
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from aiohttp import web

SERVICE = "harbor-registry"          # Harbor's token service name (docs/harbor.md#registry-front)
ROBOT_PREFIX = "robot$"              # default robot_name_prefix (docs/harbor.md#authentication)
API_VERSION_HEADER = {"Docker-Distribution-Api-Version": "registry/2.0"}

# Harbor's code -> status map (src/lib/http/error.go; docs/harbor.md#errors).
STATUS_CODES = {
    400: "BAD_REQUEST", 401: "UNAUTHORIZED", 403: "FORBIDDEN", 404: "NOT_FOUND",
    405: "METHOD_NOT_ALLOWED", 409: "CONFLICT", 412: "PRECONDITION", 413: "REQUEST_ENTITY_TOO_LARGE",
    422: "UNPROCESSABLE_ENTITY", 429: "TOO_MANY_REQUEST", 500: "UNKNOWN", 502: "UNKNOWN",
    503: "UNKNOWN", 504: "UNKNOWN",
}


class ConfigProblem(ValueError):
    """The stand-in's config file is unusable; the message names the key."""


@dataclass
class Switches:
    """Fidelity choices and fault injection (docs/sandbox.md#the-harbor-stand-in)."""

    v2_auth: str = "bearer"            # bearer (Harbor) | basic (Basic challenge, no tokens) | none (open)
    token_only: bool = False           # /v2/ ignores Basic credentials: always the token flow
    resolve_digest: bool = True        # Harbor: tag -> digest, then fetch by digest (docs/harbor.md#manifests)
    paginate_tags: bool = True         # Harbor's tags/list: sorted, n/last, Link (docs/harbor.md#tagslist)
    force_page_size: int | None = None  # API pages of this size whatever the client asks
    token_field: str = "both"          # token | access_token | both
    token_expires_in: int = 1800       # Harbor's default token_expiration: 30 min
    relative_realm: bool = False       # fault: `realm="/service/token"` (20.09 fails with InvalidURL)
    tags_null: bool = False            # fault: `"tags": null` (Harbor never sends it)
    api_content_type: str | None = None  # fault: serve API JSON with this Content-Type
    redirect_api: str | None = None    # fault: 301 every /api/ request to this base URL
    redirect_blobs: bool = False       # 307 blob GETs straight to the (anonymous) upstream
    extra_repos: list[str] = field(default_factory=list)   # listed by the API, no tags anywhere
    failed_login_delay: float = 0.0    # Harbor freezes a bad login for 1.5 s (docs/harbor.md#authentication)
    latency_ms: int = 0                # added before every response
    api_faults: list[int] = field(default_factory=list)    # next /api/ requests answer these statuses
    fault_retry_after: str | None = "0"  # Retry-After sent with a 429/503 fault
    harbor_version: str = "v2.10.3-sandbox"

    def validate(self) -> None:
        if self.v2_auth not in ("bearer", "basic", "none"):
            raise ConfigProblem(f"switches.v2_auth must be bearer, basic or none, not {self.v2_auth!r}")
        if self.token_field not in ("token", "access_token", "both"):
            raise ConfigProblem("switches.token_field must be token, access_token or both")
        if self.force_page_size is not None and self.force_page_size < 1:
            raise ConfigProblem("switches.force_page_size must be >= 1")


@dataclass
class Project:
    name: str
    id: int
    public: bool = True


@dataclass
class HarborConfig:
    """The JSON file given with `--config` (see `harbor.py` for an example)."""

    port: int
    upstream: str
    host: str = "127.0.0.1"
    external_url: str = ""
    upstream_user: str | None = None
    upstream_password: str | None = None
    # The upstream registry's filesystem root (distribution's `rootdirectory`). Real Harbor knows
    # every tag's digest from its database; with this, the stand-in reads the registry's own tag
    # links instead of a HEAD per tag, so a scan measures the scanner, not the stand-in.
    upstream_storage: str | None = None
    users: dict[str, str] = field(default_factory=dict)
    admins: list[str] = field(default_factory=lambda: ["admin"])
    robots: dict[str, str] = field(default_factory=dict)
    projects: dict[str, Project] = field(default_factory=dict)
    request_log: str | None = None
    switches: Switches = field(default_factory=Switches)

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> HarborConfig:
        listen = raw.get("listen") or {}
        host = str(listen.get("host", raw.get("host", "127.0.0.1")))
        if host != "127.0.0.1":
            raise ConfigProblem("listen.host must be 127.0.0.1 (the sandbox never binds anything else)")
        try:
            port = int(listen.get("port", raw.get("port")))
        except (TypeError, ValueError):
            raise ConfigProblem("listen.port is required (an integer)") from None
        up = raw.get("upstream")
        if isinstance(up, str):
            up = {"url": up}
        if not isinstance(up, dict) or not up.get("url"):
            raise ConfigProblem("upstream (the registry URL behind the stand-in) is required")
        projects_raw = raw.get("projects") or {"stable": {"public": True}, "community": {"public": True}}
        projects = {name: Project(name, i + 1, bool((p or {}).get("public", True)))
                    for i, (name, p) in enumerate(projects_raw.items())}
        sw_raw = dict(raw.get("switches") or {})
        known = {f.name for f in fields(Switches)}
        unknown = set(sw_raw) - known
        if unknown:
            raise ConfigProblem(f"unknown switches: {', '.join(sorted(unknown))}")
        switches = Switches(**sw_raw)
        switches.validate()
        cfg = cls(port=port, host=host, upstream=str(up["url"]).rstrip("/"),
                  external_url=str(raw.get("external_url") or f"http://127.0.0.1:{port}").rstrip("/"),
                  upstream_user=up.get("username"), upstream_password=up.get("password"),
                  upstream_storage=up.get("storage"),
                  users=dict(raw.get("users") or {}), admins=list(raw.get("admins", ["admin"])),
                  robots=dict(raw.get("robots") or {}), projects=projects,
                  request_log=raw.get("request_log"), switches=switches)
        return cfg

    @classmethod
    def load(cls, path: Path) -> HarborConfig:
        return cls.from_dict(json.loads(Path(path).read_text()))

    def to_dict(self) -> dict[str, Any]:
        sw = {f.name: getattr(self.switches, f.name) for f in fields(Switches)}
        up: dict[str, Any] = {"url": self.upstream}
        if self.upstream_user is not None:
            up |= {"username": self.upstream_user, "password": self.upstream_password}
        if self.upstream_storage is not None:
            up["storage"] = self.upstream_storage
        return {"listen": {"host": self.host, "port": self.port}, "external_url": self.external_url,
                "upstream": up, "users": self.users, "admins": self.admins, "robots": self.robots,
                "projects": {p.name: {"public": p.public} for p in self.projects.values()},
                "request_log": self.request_log, "switches": sw}

    def project_by_id(self, pid: int) -> Project | None:
        return next((p for p in self.projects.values() if p.id == pid), None)


# -- identities ---------------------------------------------------------------------------

@dataclass(frozen=True)
class Identity:
    """Who a request acts as. Harbor treats a failed Basic login as anonymous on the API."""

    name: str | None = None
    kind: str = "anonymous"           # anonymous | user | robot
    admin: bool = False
    scheme: str = "none"              # none | basic | bearer | other: what the client sent
    bad_credentials: bool = False     # an Authorization header was sent and rejected
    robot_project: str | None = None  # a project-level robot reaches only its project
    grant: TokenGrant | None = None

    @property
    def authenticated(self) -> bool:
        return self.kind != "anonymous"

    def can_read(self, project: Project | None) -> bool:
        if project is None:
            return False
        if project.public:
            return True
        if self.kind == "user":
            return True               # the stand-in makes every user a member of every project
        if self.kind == "robot":
            return self.robot_project in (None, project.name)
        return False


@dataclass
class TokenGrant:
    subject: Identity
    access: dict[str, set[str]]       # "repository:stable/python" -> {"pull"}, "registry:catalog" -> {"*"}
    expires: float

    def allows(self, resource: str, action: str) -> bool:
        acts = self.access.get(resource, set())
        return action in acts or "*" in acts


class Auth:
    """Checks Basic credentials and issues/looks up opaque bearer tokens (20.09 never parses them)."""

    def __init__(self, cfg: HarborConfig) -> None:
        self.cfg = cfg
        self.tokens: dict[str, TokenGrant] = {}

    def check_password(self, user: str, password: str) -> Identity | None:
        for table, kind in ((self.cfg.users, "user"), (self.cfg.robots, "robot")):
            want = table.get(user)
            if want is not None and hmac.compare_digest(want.encode(), password.encode()):
                robot_project = None
                if kind == "robot" and "+" in user:
                    robot_project = user.removeprefix(ROBOT_PREFIX).split("+", 1)[0]
                return Identity(user, kind, admin=(kind == "user" and user in self.cfg.admins),
                                scheme="basic", robot_project=robot_project)
        return None

    def identify(self, request: web.Request) -> Identity:
        header = request.headers.get("Authorization", "")
        scheme, _, value = header.partition(" ")
        scheme = scheme.lower()
        if not header:
            return Identity()
        if scheme == "basic":
            try:
                user, _, password = base64.b64decode(value.strip()).decode().partition(":")
            except (ValueError, UnicodeDecodeError):
                return Identity(scheme="basic", bad_credentials=True)
            who = self.check_password(user, password)
            return who or Identity(scheme="basic", bad_credentials=True)
        if scheme == "bearer":
            grant = self.tokens.get(value.strip())
            if grant is None or grant.expires < time.time():
                return Identity(scheme="bearer", bad_credentials=True)
            s = grant.subject
            return Identity(s.name, s.kind, s.admin, "bearer", False, s.robot_project, grant)
        return Identity(scheme="other", bad_credentials=True)

    def issue(self, subject: Identity, access: dict[str, set[str]]) -> tuple[str, TokenGrant]:
        now = time.time()
        self.tokens = {k: g for k, g in self.tokens.items() if g.expires > now}
        token = secrets.token_urlsafe(32)
        grant = TokenGrant(subject, access, now + self.cfg.switches.token_expires_in)
        self.tokens[token] = grant
        return token, grant


def auth_scheme(request: web.Request) -> str:
    return request.headers.get("Authorization", "").partition(" ")[0].lower() or "none"


# -- responses ----------------------------------------------------------------------------

def rfc3339(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{int(ts * 1000) % 1000:03d}Z"


def harbor_error(status: int, message: str, code: str | None = None,
                 headers: dict[str, str] | None = None) -> web.Response:
    """Harbor's error body, `application/json; charset=utf-8` (docs/harbor.md#errors)."""
    if status >= 500:
        message = "internal server error"     # Harbor hides 5xx details from clients
    body = {"errors": [{"code": code or STATUS_CODES.get(status, "UNKNOWN"), "message": message}]}
    return web.Response(status=status, text=json.dumps(body), content_type="application/json",
                        charset="utf-8", headers=headers)


def registry_error(status: int, code: str, message: str, detail: Any = None,
                   headers: dict[str, str] | None = None) -> web.Response:
    """Distribution's error body on /v2/ (docs/harbor.md#errors)."""
    err: dict[str, Any] = {"code": code, "message": message}
    if detail is not None:
        err["detail"] = detail
    return web.Response(status=status, text=json.dumps({"errors": [err]}), content_type="application/json",
                        charset="utf-8", headers={**API_VERSION_HEADER, **(headers or {})})


def json_response(data: Any, *, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(status=status, text=json.dumps(data), content_type="application/json",
                        headers=headers)
