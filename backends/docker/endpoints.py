"""Where each agent's Docker daemon is: the URL template, its placeholders, TLS files.

An operator writes one template (`agents.docker-url`, e.g. `tcp://{host}:2376`) for every
agent; a mistake in it would show up as N identical connection failures, one per agent, in
the middle of a run. So the template is checked whole before any connection (unknown
placeholders, unbalanced braces, scheme, socket path length, port range, credentials in the
URL), and every message names the key and shows the URL with any password masked.
"""

from __future__ import annotations

import re
import ssl
import string
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlsplit

from ..errors import ConfigError

TEMPLATE_KEY = "agents.docker-url"
PLACEHOLDERS = ("id", "host", "port", "index")
SCHEMES = ("unix", "tcp", "http", "https", "ssh")
_SCHEME_FIX = ("use unix:///path/to/docker.sock, tcp://HOST:PORT (add TLS files for 2376), "
               "https://HOST:PORT or ssh://USER@HOST")
_PLACEHOLDER_FIX = ("use only {id}, {host}, {port} (both from agents.addr) and {index}; "
                    "write a literal brace as {{ or }}")


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
