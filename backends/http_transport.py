"""An httpx transport whose idle-connection check costs a poll(), not a dict of socket facts.

httpcore 1.0's pool asks every idle connection `has_expired()` before each request, which calls
`get_extra_info("is_readable")` on the anyio stream; anyio rebuilds its whole attribute table
(peer name, family, ...) for that every time. With 16 pooled connections that was about a third
of the scanner's CPU (bench/rescan.py, pyinstrument). The stream below keeps the raw socket it
got at connect time and answers that one question directly; everything else is delegated.
"""

from __future__ import annotations

import select
import socket
import ssl
from typing import Any

import httpcore
import httpx


def _readable(sock: socket.socket | None) -> bool:
    """A readable idle HTTP/1.1 socket means the server closed it (httpcore's own rule)."""
    if sock is None:
        return False
    try:
        p = select.poll()
        p.register(sock, select.POLLIN)
        return bool(p.poll(0))
    except (OSError, ValueError):
        return True   # a socket we cannot poll is not one to reuse


class _Stream(httpcore.AsyncNetworkStream):
    def __init__(self, inner: httpcore.AsyncNetworkStream) -> None:
        self._inner = inner
        self._sock = inner.get_extra_info("socket")

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:  # noqa: ASYNC109 - httpcore API
        return await self._inner.read(max_bytes, timeout)

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:  # noqa: ASYNC109 - httpcore API
        await self._inner.write(buffer, timeout)

    async def aclose(self) -> None:
        await self._inner.aclose()

    async def start_tls(self, ssl_context: ssl.SSLContext, server_hostname: str | None = None,
                        timeout: float | None = None) -> httpcore.AsyncNetworkStream:  # noqa: ASYNC109
        return _Stream(await self._inner.start_tls(ssl_context, server_hostname, timeout))

    def get_extra_info(self, info: str) -> Any:
        if info == "is_readable":
            return _readable(self._sock)
        if info == "socket":
            return self._sock
        return self._inner.get_extra_info(info)


class CachedSocketBackend(httpcore.AsyncNetworkBackend):
    def __init__(self) -> None:
        self._inner = httpcore.AnyIOBackend()

    async def connect_tcp(self, *args: Any, **kwargs: Any) -> httpcore.AsyncNetworkStream:
        return _Stream(await self._inner.connect_tcp(*args, **kwargs))

    async def connect_unix_socket(self, *args: Any, **kwargs: Any) -> httpcore.AsyncNetworkStream:
        return _Stream(await self._inner.connect_unix_socket(*args, **kwargs))

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


def fast_transport(*, verify: bool | ssl.SSLContext, limits: httpx.Limits) -> httpx.AsyncHTTPTransport:
    """httpx's own transport with the cheaper network backend in its pool.

    The pool's backend is a private attribute of httpcore's pool (httpx exposes no parameter
    for it); `tests/test_http_transport.py` fails if a version bump moves it.
    """
    t = httpx.AsyncHTTPTransport(verify=verify, limits=limits)
    pool = getattr(t, "_pool", None)
    if isinstance(pool, httpcore.AsyncConnectionPool) and hasattr(pool, "_network_backend"):
        pool._network_backend = CachedSocketBackend()
    return t
