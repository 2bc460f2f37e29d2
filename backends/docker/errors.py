"""Errors from agents' Docker daemons, and the one place that turns library exceptions into them.

aiodocker raises `DockerError` (with the HTTP status, 900 for "cannot connect", and since 0.27
`DockerStreamError` for an error object inside a pull stream; older versions yield that
object, which `PullTracker.feed` reads). aiohttp's `ClientError`s get past it: a daemon killed
mid-pull ends the stream with `ClientPayloadError` (`test_daemon_killed_mid_pull_fails_cleanly`
in tests/test_docker.py). The OS adds `OSError` and `TimeoutError`. aiodocker funnels aiohttp's
connection errors through one choke point (`Docker._do_query` in `aiodocker/docker.py`);
`DaemonErrors` is ours: the client catches `DAEMON_EXCEPTIONS` and hands them here, so every
failure names the agent, the endpoint and the cause, carries a fix, and shows no secret and no
traceback.
"""

from __future__ import annotations

import errno
import socket
import ssl
from collections.abc import Callable
from typing import TYPE_CHECKING

import aiohttp
from aiodocker.exceptions import DockerError, DockerStreamError

from ..errors import ConnectError, MigrateError

if TYPE_CHECKING:
    from .endpoints import AgentEndpoint

# What a daemon call can raise besides our own errors; TimeoutError is also asyncio's.
DAEMON_EXCEPTIONS: tuple[type[BaseException], ...] = (DockerError, aiohttp.ClientError, OSError, TimeoutError)
# What creating the aiodocker client can raise (a URL it rejects is a ValueError).
OPEN_EXCEPTIONS: tuple[type[BaseException], ...] = (DockerError, ValueError, OSError)


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


class DaemonErrors:
    """Translates one agent's library exceptions into ours (`MigrateError`s)."""

    def __init__(self, endpoint: AgentEndpoint, *, request_timeout: float, redact: Callable[[str], str]) -> None:
        self.endpoint = endpoint
        self.request_timeout = request_timeout
        self.redact = redact

    @property
    def agent(self) -> str:
        return self.endpoint.agent_id

    def connect(self, e: BaseException) -> AgentConnectError:
        """The daemon cannot be reached, or the connection broke."""
        ep = str(self.endpoint)
        if isinstance(e, DockerError):
            msg = self.redact(e.message)
            if self.endpoint.scheme == "ssh" and "asyncssh" in msg:
                return AgentConnectError(self.agent, ep, "ssh:// needs the asyncssh package",
                                         fix="install the ssh extra: pip install 'aiodocker[ssh]'")
            if self.endpoint.scheme == "ssh" and "Host key" in msg:
                return AgentConnectError(self.agent, ep, "the host key is not known",
                                         fix=f"add it first: ssh-keyscan -H {self.endpoint.host} >> ~/.ssh/known_hosts")
            return AgentConnectError(self.agent, ep, self.redact(connect_reason(e)))
        if isinstance(e, TimeoutError):
            return AgentConnectError(self.agent, ep, f"no answer within {self.request_timeout:g}s")
        if isinstance(e, aiohttp.ClientPayloadError):
            return AgentConnectError(self.agent, ep, "the connection broke mid-response (daemon stopped?)")
        return AgentConnectError(self.agent, ep, self.redact(connect_reason(e)))

    def opening(self, e: BaseException) -> AgentConnectError:
        """Creating the client failed (one of OPEN_EXCEPTIONS)."""
        if isinstance(e, DockerError):
            return self.connect(e)
        return AgentConnectError(self.agent, str(self.endpoint), self.redact(str(e)))

    def call(self, op: str, e: BaseException) -> AgentConnectError | DockerOpError:
        """A request/response call failed (one of DAEMON_EXCEPTIONS): unreachable, or refused
        with an HTTP status that callers may inspect (`DockerOpError.status`, e.g. 404, 409)."""
        if isinstance(e, DockerError):
            if e.status == 900 or (self.endpoint.scheme == "ssh" and "ssh" in str(e.message).lower()):
                return self.connect(e)
            return DockerOpError(self.agent, str(self.endpoint), op, e.status, self.redact(str(e.message)))
        return self.connect(e)

    @staticmethod
    def pull_failure(e: BaseException, *, registry: str, stall_timeout: float,
                     total_timeout: float) -> tuple[str, str | None]:
        """(reason, fix) for a pull stream that raised (one of DAEMON_EXCEPTIONS); the client
        emits the failed progress event with them, then raises `PullError`. Not yet redacted."""
        if isinstance(e, DockerStreamError):
            return str(e.message), pull_fix(str(e.message))
        if isinstance(e, DockerError):
            if e.status == 900:
                return connect_reason(e), "check that dockerd runs at this endpoint and is reachable"
            if e.status == 404:
                return (f"not found in {registry}: {e.message}",
                        "check the image name and tag, and that the registry has it")
            return f"{e.message} (HTTP {e.status})", pull_fix(str(e.message))
        if isinstance(e, aiohttp.ClientPayloadError):
            return ("the connection to the daemon broke mid-pull (daemon stopped or crashed?)",
                    "check dockerd on this agent, then retry the pull")
        if isinstance(e, TimeoutError):
            return (f"no progress for {stall_timeout:g}s or longer than {total_timeout:g}s in total",
                    "check the agent's network path to the registry, then retry")
        return (f"connection to the daemon failed ({type(e).__name__})",
                "check dockerd on this agent, then retry the pull")


def connect_reason(exc: BaseException) -> str:
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


def pull_fix(reason: str) -> str | None:
    low = reason.lower()
    if "unauthorized" in low or "authentication required" in low or "denied" in low or "no basic auth" in low:
        return "check the registry credentials and that the account may pull this project"
    if "not found" in low or "manifest unknown" in low:
        return "check the image name and tag, and that the registry has it"
    if "no space left" in low:
        return "free disk space on the agent (docker system df), then retry"
    return None
