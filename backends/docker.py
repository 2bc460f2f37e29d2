"""One aiodocker client per agent: endpoint templates, pulls with progress, safe removals.

Facts this module is built on (cite when changing it):
- Engine pull stream: HTTP 200 + JSON lines; a failure mid-stream is an object with
  `error`/`errorDetail` while the status stays 200; success is a final
  `Status: Downloaded newer image for` / `Status: Image is up to date for` line
  (reference/harbor.md s.4.1). aiodocker either raises `DockerStreamError` for such an object
  (0.27) or yields it (older), and silently ends the iteration on a dropped connection
  (harbor.md s.4.4), so "no success line" is a failure and every pull is confirmed with
  `images.inspect`.
- A daemon killed mid-pull surfaces as `aiohttp.ClientPayloadError`, not `DockerError`
  (reference/agents.md s.4).
- `DELETE /images/{ref}` without force answers 409 only when the *last* tag of an image is
  used by a container (running or stopped); with another tag left it just untags
  (agents.md s.3, harbor.md s.4.2). Never force: force untags an in-use image silently.
- X-Registry-Auth must be base64url, which aiodocker does since 0.25 (harbor.md s.4.4).
- Agent clean-up spares infrastructure images: `backendai-socket-relay`,
  `backendai-krunner-extractor`, `lablup/importer`, and anything without the
  `ai.backend.kernelspec` label (reference/backendai.md s.10 item 12).
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import inspect
import re
import socket
import ssl
import string
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any, Protocol
from urllib.parse import urlsplit

import aiodocker
import aiohttp
from aiodocker.exceptions import DockerError, DockerStreamError

from .errors import ConfigError, ConnectError, MigrateError
from .image_ref import KERNELSPEC_LABEL, daemon_registry_name, parse_docker_ref
from .secrets import Redactor, Secret

TEMPLATE_KEY = "agents.docker-url"
PLACEHOLDERS = ("id", "host", "port", "index")
SCHEMES = ("unix", "tcp", "http", "https", "ssh")
INFRA_REPO_NAMES = ("backendai-socket-relay", "backendai-krunner-extractor")
INFRA_REPOS = ("lablup/importer",)
PULL_STATES = ("queued", "pulling", "extracting", "verifying", "done", "failed")
_SCHEME_FIX = ("use unix:///path/to/docker.sock, tcp://HOST:PORT (add TLS files for 2376), "
               "https://HOST:PORT or ssh://USER@HOST")
_PLACEHOLDER_FIX = ("use only {id}, {host}, {port} (both from agents.addr) and {index}; "
                    "write a literal brace as {{ or }}")


# -- errors -----------------------------------------------------------------------------

class AgentConnectError(ConnectError):
    """The agent's Docker daemon cannot be reached (or the connection broke)."""

    def __init__(self, agent: str, endpoint: str, reason: str, *, fix: str | None = None) -> None:
        self.agent = agent
        self.endpoint = endpoint
        self.reason = reason
        super().__init__(f"agent {agent}: cannot reach the Docker daemon at {endpoint}: {reason}",
                         fix=fix or "check the agents' Docker URL template and that dockerd runs there "
                                    "and is reachable from this host")


class DockerOpError(MigrateError):
    """The daemon answered, but refused or failed the operation."""

    def __init__(self, agent: str, endpoint: str, op: str, status: int, reason: str,
                 *, fix: str | None = None) -> None:
        self.agent = agent
        self.endpoint = endpoint
        self.op = op
        self.status = status
        self.reason = reason
        super().__init__(f"agent {agent} ({endpoint}): {op} failed: {reason} (HTTP {status})", fix=fix)


class PullError(MigrateError):
    """A pull did not produce the image; the failed progress event was already emitted."""

    def __init__(self, agent: str, endpoint: str, image: str, reason: str, *, fix: str | None = None) -> None:
        self.agent = agent
        self.endpoint = endpoint
        self.image = image
        self.reason = reason
        super().__init__(f"agent {agent} ({endpoint}): pull of {image} failed: {reason}", fix=fix)


# -- endpoints --------------------------------------------------------------------------

class AgentLike(Protocol):
    """What a template needs from an agent row (db.AgentRow fits)."""

    @property
    def id(self) -> str: ...
    @property
    def host(self) -> str | None: ...
    @property
    def port(self) -> int | None: ...


@dataclass(frozen=True)
class TLSFiles:
    """Client TLS material for `tcp://HOST:2376` / `https://` (dockerd --tlsverify)."""

    ca: str | None = None
    cert: str | None = None
    key: str | None = None

    def __bool__(self) -> bool:
        return bool(self.ca or self.cert or self.key)


def check_template(template: str, *, key: str = TEMPLATE_KEY) -> tuple[str, ...]:
    """Validates a Docker URL template; returns the placeholders it uses (in order)."""
    if not isinstance(template, str) or not template.strip():
        raise ConfigError("is empty", key=key, fix="set it, e.g. unix:///var/run/docker.sock or tcp://{host}:2376")
    try:
        parsed = list(string.Formatter().parse(template))
    except ValueError as e:
        raise ConfigError(f"{template!r} has unbalanced braces ({e})", key=key, fix=_PLACEHOLDER_FIX) from None
    used: list[str] = []
    for _lit, name, spec, conv in parsed:
        if name is None:
            continue
        if name not in PLACEHOLDERS:
            shown = "{" + name + "}" if name else "{}"
            raise ConfigError(f"{template!r} uses unknown placeholder {shown}", key=key, fix=_PLACEHOLDER_FIX)
        if spec or conv:
            raise ConfigError(f"{template!r}: placeholder {{{name}}} must not carry a format spec or conversion",
                              key=key, fix=f"write plain {{{name}}}")
        used.append(name)
    # The fixed parts must already make a valid URL: render with harmless sample values.
    sample = render_template(template, agent_id="i-sample", host="127.0.0.1", port=6001, index=1, key=key)
    _parse_endpoint_url(sample, key=key, agent=None)
    return tuple(used)


def render_template(template: str, *, agent_id: str, host: str | None, port: int | None, index: int,
                    key: str = TEMPLATE_KEY) -> str:
    values: dict[str, Any] = {"id": agent_id, "host": host, "port": port, "index": index}
    try:
        parsed = list(string.Formatter().parse(template))
    except ValueError as e:
        raise ConfigError(f"{template!r} has unbalanced braces ({e})", key=key, fix=_PLACEHOLDER_FIX) from None
    for _lit, name, _spec, _conv in parsed:
        if name is None:
            continue
        if name not in PLACEHOLDERS:
            raise ConfigError(f"{template!r} uses unknown placeholder {{{name}}}", key=key, fix=_PLACEHOLDER_FIX)
        if values[name] is None or values[name] == "":
            raise ConfigError(f"agent {agent_id}: {template!r} needs {{{name}}}, but the agent's addr has none",
                              key=key, fix="check agents.addr for this agent (tcp://HOST:PORT), or use a template "
                                           "built from {id} or a fixed host")
    host_v = values["host"]
    if isinstance(host_v, str) and ":" in host_v and not host_v.startswith("["):
        values["host"] = f"[{host_v}]"  # an IPv6 literal must be bracketed in a URL
    return template.format(**{k: ("" if v is None else v) for k, v in values.items()})


@dataclass(frozen=True)
class _ParsedURL:
    scheme: str
    host: str | None
    port: int | None
    path: str | None
    user: str | None


def _parse_endpoint_url(raw_url: str, *, key: str, agent: str | None) -> _ParsedURL:
    who = f"agent {agent}: " if agent else ""
    url = _masked(raw_url)  # every message below shows this one, never a password
    if "://" not in url:
        raise ConfigError(f"{who}{url!r} has no scheme", key=key, fix=_SCHEME_FIX)
    scheme = url.split("://", 1)[0].lower()
    if scheme not in SCHEMES:
        raise ConfigError(f"{who}{url!r}: scheme {scheme!r} is not supported", key=key, fix=_SCHEME_FIX)
    if scheme == "unix":
        path = url[len("unix://"):]
        if not path:
            raise ConfigError(f"{who}{url!r} has no socket path", key=key, fix="write unix:///absolute/path.sock")
        if not path.startswith("/"):
            raise ConfigError(f"{who}{url!r}: the socket path must be absolute", key=key,
                              fix="write three slashes: unix:///absolute/path.sock")
        if len(path.encode()) > 107:
            raise ConfigError(f"{who}{url!r}: the socket path is longer than 107 bytes (the unix socket limit)",
                              key=key, fix="use a shorter path, e.g. a symlink under /tmp")
        return _ParsedURL(scheme, None, None, path, None)
    try:
        parts = urlsplit(raw_url)
    except ValueError as e:
        raise ConfigError(f"{who}{url!r} is not a valid URL ({e})", key=key, fix=_SCHEME_FIX) from None
    host = parts.hostname
    if not host:
        raise ConfigError(f"{who}{url!r} has an empty host", key=key,
                          fix="put the agent's host name or address after the scheme, e.g. tcp://{host}:2376")
    if any(c.isspace() for c in host):
        raise ConfigError(f"{who}{url!r}: the host contains spaces", key=key, fix="remove the spaces")
    try:
        port = parts.port
    except ValueError:
        raw = parts.netloc.rsplit(":", 1)[-1]
        rule = f"port {raw} is out of range 1-65535" if raw.isdigit() else \
            f"port {raw!r} is not a number between 1 and 65535"
        raise ConfigError(f"{who}{url!r}: {rule}", key=key,
                          fix="use a port between 1 and 65535 (Docker: 2375 plain, 2376 TLS)") from None
    if port is not None and not 1 <= port <= 65535:
        raise ConfigError(f"{who}{url!r}: port {port} is out of range 1-65535", key=key,
                          fix="use a port between 1 and 65535 (Docker: 2375 plain, 2376 TLS)")
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise ConfigError(f"{who}{url!r} must not have a path, query or fragment", key=key,
                          fix="write only SCHEME://HOST:PORT")
    if scheme == "ssh":
        if parts.password is not None:
            raise ConfigError(f"{who}ssh URL must not carry a password", key=key,
                              fix="use key authentication (ssh-agent or ~/.ssh/config): ssh://USER@HOST")
        return _ParsedURL(scheme, host, port or 22, None, parts.username)
    if parts.username is not None or parts.password is not None:
        raise ConfigError(f"{who}{scheme}:// URLs cannot carry user credentials", key=key,
                          fix="remove USER@ (Docker's API uses TLS client certificates, not passwords)")
    return _ParsedURL(scheme, host, port, None, None)


@dataclass(frozen=True)
class AgentEndpoint:
    """Where one agent's Docker daemon is reached from the manager node."""

    agent_id: str
    url: str                     # as rendered from the template
    scheme: str
    host: str | None = None
    port: int | None = None
    path: str | None = None      # unix socket
    user: str | None = None      # ssh
    tls: TLSFiles | None = None
    key: str = TEMPLATE_KEY

    @classmethod
    def from_url(cls, agent_id: str, url: str, *, tls: TLSFiles | None = None,
                 key: str = TEMPLATE_KEY) -> AgentEndpoint:
        p = _parse_endpoint_url(url, key=key, agent=agent_id)
        if tls and p.scheme not in ("tcp", "https"):
            raise ConfigError(f"agent {agent_id}: TLS files are set but {url!r} is a {p.scheme}:// URL", key=key,
                              fix="TLS applies to tcp://HOST:2376 or https://; drop the TLS files or change the URL")
        port = p.port
        if p.scheme in ("tcp", "http", "https") and port is None:
            port = 2376 if (tls or p.scheme == "https") else 2375
        return cls(agent_id, url, p.scheme, p.host, port, p.path, p.user, tls or None, key)

    @classmethod
    def from_template(cls, template: str, agent: AgentLike | Mapping[str, Any], *, index: int,
                      tls: TLSFiles | None = None, key: str = TEMPLATE_KEY) -> AgentEndpoint:
        if isinstance(agent, Mapping):
            agent_id, host, port = agent["id"], agent.get("host"), agent.get("port")
        else:
            agent_id, host, port = agent.id, agent.host, agent.port
        check_template(template, key=key)
        url = render_template(template, agent_id=agent_id, host=host, port=port, index=index, key=key)
        return cls.from_url(agent_id, url, tls=tls, key=key)

    @property
    def uses_tls(self) -> bool:
        return self.scheme == "https" or (self.scheme == "tcp" and bool(self.tls))

    def docker_url(self) -> str:
        """The URL handed to aiodocker: TLS over tcp:// becomes https://."""
        if self.scheme == "unix":
            return f"unix://{self.path}"
        if self.scheme == "ssh":
            user = f"{self.user}@" if self.user else ""
            return f"ssh://{user}{_host_in_url(self.host)}:{self.port}"
        scheme = "https" if self.uses_tls else "http"
        return f"{scheme}://{_host_in_url(self.host)}:{self.port}"

    def __str__(self) -> str:
        return self.docker_url()

    def ssl_context(self) -> ssl.SSLContext | None:
        if not self.uses_tls:
            return None
        t = self.tls or TLSFiles()
        for label, path in (("tls-ca", t.ca), ("tls-cert", t.cert), ("tls-key", t.key)):
            if path is not None and not Path(path).is_file():
                raise ConfigError(f"agent {self.agent_id}: {label} file {path} does not exist", key=label,
                                  fix="give the path of the PEM file (dockerd --tlscacert/--tlscert/--tlskey)")
        if bool(t.cert) != bool(t.key):
            raise ConfigError(f"agent {self.agent_id}: a client certificate needs both tls-cert and tls-key",
                              key="tls-cert", fix="set both, or neither")
        try:
            ctx = ssl.create_default_context(cafile=t.ca) if t.ca else ssl.create_default_context()
            if t.cert and t.key:
                ctx.load_cert_chain(t.cert, t.key)
        except (ssl.SSLError, OSError) as e:
            raise ConfigError(f"agent {self.agent_id}: cannot load the TLS files ({e.__class__.__name__}: "
                              f"{getattr(e, 'reason', None) or e})", key="tls-cert",
                              fix="check that they are PEM files and that the key matches the certificate") from None
        return ctx


def _masked(url: str) -> str:
    return re.sub(r"(://[^/@:\s]*:)[^@/\s]*@", r"\1***@", url)


def _host_in_url(host: str | None) -> str:
    return f"[{host}]" if host and ":" in host else (host or "")


def endpoints_from_template(template: str, agents: Sequence[AgentLike | Mapping[str, Any]], *,
                            tls: TLSFiles | None = None, key: str = TEMPLATE_KEY) -> list[AgentEndpoint]:
    """One endpoint per agent, `{index}` counting from 1 in the given order."""
    check_template(template, key=key)
    return [AgentEndpoint.from_template(template, a, index=i, tls=tls, key=key) for i, a in enumerate(agents, 1)]


# -- results ----------------------------------------------------------------------------

@dataclass(frozen=True)
class RegistryAuth:
    username: str
    password: Secret

    @classmethod
    def of(cls, username: str, password: str | Secret) -> RegistryAuth:
        return cls(username, password if isinstance(password, Secret) else Secret(password))


@dataclass(frozen=True)
class PullSnapshot:
    """Where one pull stands, handed to `pull(on_progress=...)`; the prepull step turns it into an
    `events.PullProgress` for the grid."""

    agent: str
    image: str
    layers_done: int
    layers_total: int
    bytes_current: int
    bytes_total: int
    state: str       # one of PULL_STATES
    message: str = ""


@dataclass(frozen=True)
class PullResult:
    agent: str
    image: str                  # the name asked for, as the daemon now shows it
    source: str                 # what was pulled (differs when pulled `via` another host)
    image_id: str               # classic store: the config digest (harbor.md s.4.3)
    repo_tags: list[str]
    repo_digests: list[str]
    digest: str | None          # manifest digest from the stream (`Digest: ...`)
    up_to_date: bool
    size: int
    architecture: str | None
    labels: dict[str, str]
    seconds: float


@dataclass(frozen=True)
class RemoveResult:
    agent: str
    image: str
    outcome: str                 # removed | untagged | in_use | not_found
    image_id: str | None = None
    reclaimed_bytes: int | None = None  # image size when the image itself was deleted; 0 on untag
    containers: list[str] = field(default_factory=list)  # in_use: containers holding it
    message: str = ""

    @property
    def ok(self) -> bool:
        return self.outcome != "in_use"


@dataclass(frozen=True)
class LocalImage:
    id: str
    repo_tags: list[str]
    repo_digests: list[str]
    size: int
    created: int
    labels: dict[str, str]

    @property
    def is_kernel(self) -> bool:
        return KERNELSPEC_LABEL in self.labels


@dataclass(frozen=True)
class ContainerRef:
    id: str
    name: str
    image: str
    image_id: str
    state: str      # running, exited, created, ...


@dataclass(frozen=True)
class DaemonInfo:
    agent: str
    server_version: str
    api_version: str
    os: str
    architecture: str      # `uname -m` style: x86_64, aarch64
    ncpu: int
    mem_total: int
    docker_root_dir: str
    storage_driver: str
    registry_mirrors: list[str]
    images: int
    containers_running: int


def infrastructure_reason(image: LocalImage) -> str | None:
    """Why agent clean-up must leave this image alone, or None if it is a kernel image."""
    for t in image.repo_tags:
        try:
            r = parse_docker_ref(t)
        except ValueError:
            continue
        name = r.name.rsplit("/", 1)[-1]
        if name in INFRA_REPO_NAMES:
            return f"agent infrastructure image ({name})"
        if any(r.name == x or r.name.endswith("/" + x) for x in INFRA_REPOS):
            return f"agent infrastructure image ({r.name})"
    if not image.is_kernel:
        return f"no {KERNELSPEC_LABEL} label (not a kernel image)"
    return None


def is_infrastructure(image: LocalImage) -> bool:
    return infrastructure_reason(image) is not None


ProgressCallback = Callable[[PullSnapshot], Awaitable[None] | None]


# -- pull progress ----------------------------------------------------------------------

_LAYER_STATUSES = ("Pulling fs layer", "Waiting", "Downloading", "Verifying Checksum", "Download complete",
                   "Extracting", "Pull complete", "Already exists", "Retrying in")


@dataclass
class _Layer:
    status: str = ""
    current: int = 0
    total: int = 0
    done: bool = False
    skipped: bool = False  # already present locally


class _PullTracker:
    """Folds the Engine's per-layer JSON lines into one agent-level progress state."""

    def __init__(self, agent: str, image: str, min_interval: float = 0.1) -> None:
        self.agent = agent
        self.image = image
        self.layers: dict[str, _Layer] = {}
        self.state = "pulling"
        self.success = False
        self.up_to_date = False
        self.digest: str | None = None
        self.error: str | None = None
        self.last_message = ""
        self._min_interval = min_interval
        self._last_emit = 0.0
        self._last_key: tuple[Any, ...] = ()

    def feed(self, item: Mapping[str, Any]) -> bool:
        """Returns True when the change is worth an event (state, layer count, or 100 ms passed)."""
        if item.get("error") or item.get("errorDetail"):
            detail = item.get("errorDetail")
            msg = (detail.get("message") if isinstance(detail, Mapping) else None) or item.get("error")
            self.error = str(msg or "the daemon reported an error")
            return True
        status = str(item.get("status") or "")
        lid = item.get("id")
        if status.startswith("Digest:"):
            self.digest = status.split(":", 1)[1].strip()
        elif status.startswith("Status: Downloaded newer image") or status.startswith("Status: Image is up to date"):
            self.success = True
            self.up_to_date = "up to date" in status
        elif lid and status.startswith(_LAYER_STATUSES):
            layer = self.layers.setdefault(str(lid), _Layer())
            layer.status = status
            detail = item.get("progressDetail") or {}
            if status == "Downloading" and isinstance(detail, Mapping):
                layer.current = int(detail.get("current") or 0)
                layer.total = int(detail.get("total") or layer.total or 0)
            elif status in ("Download complete", "Verifying Checksum", "Extracting", "Pull complete"):
                layer.current = layer.total
            if status == "Already exists":
                layer.done = layer.skipped = True
            elif status == "Pull complete":
                layer.done = True
        if status:
            self.last_message = status
        self.state = self._overall()
        key = (self.state, self.layers_done, self.layers_total, self.success)
        now = time.monotonic()
        if key != self._last_key or now - self._last_emit >= self._min_interval:
            self._last_key = key
            self._last_emit = now
            return True
        return False

    def _overall(self) -> str:
        if self.layers and all(lay.done for lay in self.layers.values()):
            return "verifying"  # every layer is in; what is left is confirming the image
        active = [lay.status for lay in self.layers.values() if not lay.done]
        if "Extracting" in active:
            return "extracting"
        if "Verifying Checksum" in active:
            return "verifying"
        if active and all(st == "Download complete" for st in active):
            return "extracting"  # downloaded, queued for the (sequential) extraction
        return "pulling"

    @property
    def layers_done(self) -> int:
        return sum(1 for lay in self.layers.values() if lay.done)

    @property
    def layers_total(self) -> int:
        return len(self.layers)

    def event(self, state: str | None = None, message: str | None = None) -> PullSnapshot:
        cur = sum(lay.current for lay in self.layers.values() if not lay.skipped)
        tot = sum(lay.total for lay in self.layers.values() if not lay.skipped)
        state = state or self.state
        done, total = self.layers_done, self.layers_total
        if state == "done":
            done, cur = total, tot
        return PullSnapshot(self.agent, self.image, done, total, cur, max(tot, cur), state,
                            self.last_message if message is None else message)


# -- the client -------------------------------------------------------------------------

_CONTAINER_IN_MSG = re.compile(r"container ([0-9a-f]{6,64})")


class AgentDocker:
    """One agent's Docker daemon. Every failure names the agent and endpoint, never a traceback."""

    def __init__(self, endpoint: AgentEndpoint, *, connect_timeout: float = 10.0,
                 request_timeout: float = 120.0, secrets: Sequence[Secret | str] = ()) -> None:
        self.endpoint = endpoint
        self.connect_timeout = connect_timeout
        self.request_timeout = request_timeout
        self._secrets = list(secrets)
        self._redact = Redactor(self._secrets)
        self._docker: aiodocker.Docker | None = None

    @property
    def agent(self) -> str:
        return self.endpoint.agent_id

    # -- lifecycle ----------------------------------------------------------------------
    async def open(self) -> AgentDocker:
        if self._docker is not None:
            return self
        ctx = self.endpoint.ssl_context()  # ConfigError on bad TLS files
        timeout = aiohttp.ClientTimeout(total=self.request_timeout, connect=self.connect_timeout,
                                        sock_connect=self.connect_timeout)
        try:
            self._docker = aiodocker.Docker(url=self.endpoint.docker_url(), ssl_context=ctx, timeout=timeout)
        except DockerError as e:
            raise self._connect_error(e) from None
        except (ValueError, OSError) as e:
            raise AgentConnectError(self.agent, str(self.endpoint), self._redact(str(e))) from None
        return self

    async def close(self) -> None:
        if self._docker is not None:
            d, self._docker = self._docker, None
            # Closing a broken session must not mask the error that got us here.
            with contextlib.suppress(Exception):
                await d.close()

    async def __aenter__(self) -> AgentDocker:
        return await self.open()

    async def __aexit__(self, et: type[BaseException] | None, ev: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self.close()

    @property
    def docker(self) -> aiodocker.Docker:
        if self._docker is None:
            raise RuntimeError("AgentDocker.open() was not called")
        return self._docker

    # -- error translation --------------------------------------------------------------
    def _connect_error(self, e: BaseException) -> AgentConnectError:
        ep = str(self.endpoint)
        if isinstance(e, DockerError):
            msg = self._redact(e.message)
            if self.endpoint.scheme == "ssh" and "asyncssh" in msg:
                return AgentConnectError(self.agent, ep, "ssh:// needs the asyncssh package",
                                         fix="install the ssh extra: pip install 'aiodocker[ssh]'")
            if self.endpoint.scheme == "ssh" and "Host key" in msg:
                return AgentConnectError(self.agent, ep, "the host key is not known",
                                         fix=f"add it first: ssh-keyscan -H {self.endpoint.host} >> ~/.ssh/known_hosts")
            return AgentConnectError(self.agent, ep, self._redact(_connect_reason(e)))
        if isinstance(e, TimeoutError):
            return AgentConnectError(self.agent, ep, f"no answer within {self.request_timeout:g}s")
        if isinstance(e, aiohttp.ClientPayloadError):
            return AgentConnectError(self.agent, ep, "the connection broke mid-response (daemon stopped?)")
        return AgentConnectError(self.agent, ep, self._redact(_connect_reason(e)))

    async def _call(self, op: str, coro: Awaitable[Any], *, ok_statuses: tuple[int, ...] = ()) -> Any:
        try:
            return await coro
        except DockerError as e:
            if e.status == 900 or (self.endpoint.scheme == "ssh" and "ssh" in str(e.message).lower()):
                raise self._connect_error(e) from None
            if e.status in ok_statuses:
                raise
            raise DockerOpError(self.agent, str(self.endpoint), op, e.status, self._redact(str(e.message))) from None
        except (aiohttp.ClientError, OSError, TimeoutError) as e:
            raise self._connect_error(e) from None

    # -- daemon -------------------------------------------------------------------------
    async def ping(self) -> bool:
        await self.version()
        return True

    async def version(self) -> dict[str, Any]:
        return dict(await self._call("version", self.docker.version()))

    async def info(self) -> DaemonInfo:
        i = await self._call("info", self.docker.system.info())
        v = await self.version()
        reg = i.get("RegistryConfig") or {}
        return DaemonInfo(
            agent=self.agent, server_version=str(i.get("ServerVersion", "")),
            api_version=str(v.get("ApiVersion", "")), os=str(i.get("OSType", "")),
            architecture=str(i.get("Architecture", "")), ncpu=int(i.get("NCPU") or 0),
            mem_total=int(i.get("MemTotal") or 0), docker_root_dir=str(i.get("DockerRootDir", "")),
            storage_driver=str(i.get("Driver", "")), registry_mirrors=list(reg.get("Mirrors") or []),
            images=int(i.get("Images") or 0), containers_running=int(i.get("ContainersRunning") or 0))

    # -- images -------------------------------------------------------------------------
    async def inspect(self, ref: str) -> dict[str, Any] | None:
        """The image's inspect data, or None when the daemon does not have it."""
        try:
            return dict(await self._call(f"inspect {ref}", self.docker.images.inspect(ref), ok_statuses=(404,)))
        except DockerError as e:
            if e.status == 404:
                return None
            raise

    async def list_images(self, *, label: str | None = None) -> list[LocalImage]:
        filters = {"label": [label]} if label else None
        rows = await self._call("list images", self.docker.images.list(filters=filters))
        return [_local_image(r) for r in rows]

    async def kernel_images(self) -> list[LocalImage]:
        return await self.list_images(label=KERNELSPEC_LABEL)

    async def containers(self) -> list[ContainerRef]:
        rows = await self._call("list containers", self.docker.containers.list(all=True))
        out = []
        for c in rows:
            names = c["Names"] or []
            out.append(ContainerRef(str(c["Id"]), (names[0] if names else "").lstrip("/"), str(c["Image"]),
                                    str(c["ImageID"]), str(c["State"])))
        return out

    async def containers_using(self) -> dict[str, list[ContainerRef]]:
        """Image id -> containers created from it, running or not (they all block a removal)."""
        out: dict[str, list[ContainerRef]] = {}
        for c in await self.containers():
            out.setdefault(c.image_id, []).append(c)
        return out

    async def pull(self, ref: str, *, auth: RegistryAuth | Mapping[str, Any] | None = None,
                   via: str | None = None, on_progress: ProgressCallback | None = None,
                   total_timeout: float = 7200.0, stall_timeout: float = 300.0,
                   keep_source_tag: bool = False) -> PullResult:
        """Pulls `ref` and proves it arrived with `images.inspect`.

        `via` ("HOST:PORT" or a URL) is where to fetch from when that differs from the host in
        `ref`: the image is pulled from `via` and tagged as `ref` (the sandbox serves
        `cr.backend.ai` at 127.0.0.1:PORT). Raises `PullError` after emitting a `failed` event.
        """
        started = time.monotonic()
        wanted = parse_docker_ref(ref)
        source = wanted
        if via:
            host = re.sub(r"^[a-z]+://", "", via.strip(), flags=re.I).rstrip("/")
            if daemon_registry_name(host) != wanted.registry:
                if not wanted.tag:
                    raise ValueError(f"{ref}: a reference without a tag cannot be re-tagged after a pull via {host}")
                source = wanted.with_registry(host)
        redact = self._redact
        aiodocker_auth: dict[str, str] | None = None
        if auth is not None:
            user = auth.username if isinstance(auth, RegistryAuth) else str(auth.get("username", ""))
            pw = auth.password if isinstance(auth, RegistryAuth) else auth.get("password")
            secret = pw if isinstance(pw, Secret) else Secret(str(pw or ""))
            redact = Redactor(self._secrets)
            redact.add(secret, user=user)
            aiodocker_auth = {"username": user, "password": secret.reveal()}
        tracker = _PullTracker(self.agent, wanted.familiar)
        ep = str(self.endpoint)

        async def emit(ev: PullSnapshot) -> None:
            if on_progress is not None:
                r = on_progress(ev)
                if inspect.isawaitable(r):
                    await r

        async def fail(reason: str, fix: str | None = None) -> PullError:
            reason = redact(reason)
            await emit(tracker.event("failed", reason))
            return PullError(self.agent, ep, wanted.familiar, reason, fix=fix)

        await emit(PullSnapshot(self.agent, wanted.familiar, 0, 0, 0, 0, "queued", ""))
        pull_timeout = aiohttp.ClientTimeout(total=None, connect=self.connect_timeout,
                                             sock_connect=self.connect_timeout, sock_read=stall_timeout)
        from_image = source.full_repo
        try:
            async with asyncio.timeout(total_timeout):
                stream = self.docker.images.pull(from_image, tag=source.tag_or_digest, auth=aiodocker_auth,
                                                 stream=True, timeout=pull_timeout)
                async for item in stream:
                    if tracker.feed(item):
                        if tracker.error:
                            break
                        await emit(tracker.event())
        except DockerStreamError as e:
            tracker.error = str(e.message)
        except DockerError as e:
            if e.status == 900:
                raise await fail(_connect_reason(e),
                                 fix="check that dockerd runs at this endpoint and is reachable") from None
            if e.status == 404:
                raise await fail(f"not found in {source.registry}: {e.message}",
                                 fix="check the image name and tag, and that the registry has it") from None
            raise await fail(f"{e.message} (HTTP {e.status})", fix=_pull_fix(str(e.message))) from None
        except aiohttp.ClientPayloadError:
            raise await fail("the connection to the daemon broke mid-pull (daemon stopped or crashed?)",
                             fix="check dockerd on this agent, then retry the pull") from None
        except TimeoutError:
            raise await fail(f"no progress for {stall_timeout:g}s or longer than {total_timeout:g}s in total",
                             fix="check the agent's network path to the registry, then retry") from None
        except (aiohttp.ClientError, OSError) as e:
            raise await fail(f"connection to the daemon failed ({type(e).__name__})",
                             fix="check dockerd on this agent, then retry the pull") from None
        if tracker.error:
            raise await fail(tracker.error, fix=_pull_fix(tracker.error))
        if not tracker.success:
            raise await fail("the daemon's progress stream ended without a success status "
                             "(connection dropped or daemon stopped?)",
                             fix="check dockerd on this agent, then retry the pull")
        # Never trust the stream alone: the image must now exist under the asked-for name.
        try:
            if source != wanted:
                await self._call("tag", self.docker.images.tag(source.familiar, wanted.familiar_repo, tag=wanted.tag))
                if not keep_source_tag:
                    await self._call("untag", self.docker.images.delete(source.familiar, force=False))
            data = await self.inspect(wanted.familiar)
        except MigrateError as e:
            raise await fail(f"could not confirm the image afterwards: {e.message}") from None
        if data is None:
            raise await fail("the daemon reported success but does not have the image afterwards")
        cfg = data.get("Config") or {}
        result = PullResult(
            agent=self.agent, image=wanted.familiar, source=source.familiar, image_id=str(data.get("Id", "")),
            repo_tags=list(data.get("RepoTags") or []), repo_digests=list(data.get("RepoDigests") or []),
            digest=tracker.digest, up_to_date=tracker.up_to_date, size=int(data.get("Size") or 0),
            architecture=data.get("Architecture"), labels=dict(cfg.get("Labels") or {}),
            seconds=time.monotonic() - started)
        await emit(tracker.event("done", "up to date" if tracker.up_to_date else "pulled"))
        return result

    async def tag(self, src: str, ref: str) -> None:
        r = parse_docker_ref(ref)
        await self._call(f"tag {src} as {ref}", self.docker.images.tag(src, r.familiar_repo, tag=r.tag or "latest"))

    async def remove(self, ref: str) -> RemoveResult:
        """Non-forced removal of one tag. In use -> outcome "in_use" (HTTP 409), gone -> "not_found"."""
        data = await self.inspect(ref)
        if data is None:
            return RemoveResult(self.agent, ref, "not_found", message="not present (already removed)")
        image_id = str(data.get("Id", ""))
        size = int(data.get("Size") or 0)
        try:
            resp = await self._call(f"remove {ref}", self.docker.images.delete(ref, force=False, noprune=False),
                                    ok_statuses=(404, 409))
        except DockerError as e:
            if e.status == 404:
                return RemoveResult(self.agent, ref, "not_found", image_id, 0, message="already removed")
            users = [c.id for c in (await self.containers_using()).get(image_id, [])]
            if not users:
                users = _CONTAINER_IN_MSG.findall(str(e.message))
            return RemoveResult(self.agent, ref, "in_use", image_id, 0, users, self._redact(str(e.message)))
        deleted = [d.get("Deleted") for d in resp or [] if isinstance(d, Mapping) and d.get("Deleted")]
        if image_id in deleted:
            return RemoveResult(self.agent, ref, "removed", image_id, size,
                                message=f"deleted the image ({len(deleted)} layer/image records)")
        return RemoveResult(self.agent, ref, "untagged", image_id, 0,
                            message="untagged; the image keeps other tags")


# -- helpers ----------------------------------------------------------------------------

def _local_image(r: Mapping[str, Any]) -> LocalImage:
    tags = [t for t in (r.get("RepoTags") or []) if t != "<none>:<none>"]
    digests = [d for d in (r.get("RepoDigests") or []) if d != "<none>@<none>"]
    return LocalImage(str(r.get("Id", "")), tags, digests, int(r.get("Size") or 0), int(r.get("Created") or 0),
                      dict(r.get("Labels") or {}))


def _connect_reason(exc: BaseException) -> str:
    """The OS-level reason behind a connection failure, from the exception chain.

    aiodocker raises DockerError(900, "Cannot connect ... [<aiohttp repr>]") *while handling*
    aiohttp's error, so the real cause (errno, TLS) sits in `__context__`; the text alone says
    "Connect call failed" for a refused connection.
    """
    seen: list[BaseException] = []
    cur: BaseException | None = exc
    while cur is not None and cur not in seen and len(seen) < 8:
        seen.append(cur)
        cur = cur.__cause__ or cur.__context__
    for x in seen:
        if isinstance(x, aiohttp.ClientConnectorCertificateError | ssl.SSLCertVerificationError):
            return "TLS certificate verification failed"
        if isinstance(x, aiohttp.ClientSSLError | ssl.SSLError):
            return "TLS handshake failed"
    for x in seen:
        err = x.os_error if isinstance(x, aiohttp.ClientConnectorError) else x
        if isinstance(err, socket.gaierror):
            return "host name cannot be resolved"
        if isinstance(err, OSError) and err.errno in _ERRNO_REASONS:
            return _ERRNO_REASONS[err.errno]
        if isinstance(err, TimeoutError):
            return "timed out"
    text = str(getattr(exc, "message", "") or exc)
    for pat, reason in (("No such file or directory", "no such socket"), ("Connection refused", "connection refused"),
                        ("Connect call failed", "connection refused"), ("Permission denied", "permission denied")):
        if pat in text:
            return reason
    inner = text.split("[", 1)[1].rstrip("]") if "[" in text else text
    return inner.strip() or "connection failed"


_ERRNO_REASONS = {
    errno.ENOENT: "no such socket",
    errno.ECONNREFUSED: "connection refused",
    errno.EACCES: "permission denied",
    errno.EPERM: "permission denied",
    errno.ETIMEDOUT: "timed out",
    errno.EHOSTUNREACH: "host unreachable",
    errno.ENETUNREACH: "network unreachable",
    errno.ECONNRESET: "connection reset",
    errno.ENOTSOCK: "not a socket",
}


def _pull_fix(reason: str) -> str | None:
    low = reason.lower()
    if "unauthorized" in low or "authentication required" in low or "denied" in low or "no basic auth" in low:
        return "check the registry credentials and that the account may pull this project"
    if "not found" in low or "manifest unknown" in low:
        return "check the image name and tag, and that the registry has it"
    if "no space left" in low:
        return "free disk space on the agent (docker system df), then retry"
    return None
