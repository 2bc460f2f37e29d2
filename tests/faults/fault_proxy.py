"""A fault-injecting HTTP reverse proxy on 127.0.0.1, in front of one registry (the Harbor stand-in).

The registry JSON of a test plan points at the proxy instead of the stand-in; every request
is forwarded unchanged (method, path, query, headers, body; responses streamed back with
their status, headers and body, redirects not followed) unless a rule matches. Rules are
programmed while the proxy runs, per path pattern (a regular expression searched in the
path), first match wins, each optionally for a limited number of requests:

    proxy.add(r"^/api/v2.0/projects/[^/]+/repositories$", Status(500), times=2)
    proxy.add(r"/manifests/", Delay(0.3))
    proxy.add(r"^/api/", Drop(), times=1)       # the connection closes, no response at all
    proxy.add(r"^/api/", Status(429, {"Retry-After": "1"}), times=1)
    proxy.add(r"^/api/v2.0/users/current$", Hold(release))   # until release.set()

Every request is logged (monotonic time, method, path, what was done), so a test can prove
a retry happened, or how long the client waited before it. With `ssl` the proxy serves TLS
(a self-signed certificate: the security suite's TLS endpoint). The proxy runs its own event
loop in a thread, so both in-process engines and runner subprocesses can use it.
"""

from __future__ import annotations

import asyncio
import json
import re
import ssl as ssl_mod
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field

import aiohttp
from aiohttp import web

HOP_BY_HOP = frozenset({"connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailer",
                        "trailers", "transfer-encoding", "upgrade", "host"})


@dataclass(frozen=True)
class Status:
    """Answer with this status (a Harbor-style error body) instead of forwarding."""

    status: int
    headers: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Delay:
    """Wait this long, then forward: a slow registry."""

    seconds: float


@dataclass(frozen=True)
class Drop:
    """Close the connection without answering: a dropped connection."""


@dataclass(frozen=True)
class Hold:
    """Keep the request waiting until the test sets `release` (at most `timeout` s), then forward."""

    release: threading.Event
    timeout: float = 60.0


Fault = Status | Delay | Drop | Hold


@dataclass
class Rule:
    pattern: re.Pattern[str]
    fault: Fault
    times: int | None            # None: every matching request
    methods: frozenset[str] | None
    hits: int = 0


@dataclass(frozen=True)
class Entry:
    t: float                     # time.monotonic() when the request arrived
    method: str
    path: str
    action: str                  # "forward" | "status 500" | "delay 0.3" | "drop"
    status: int | None           # what the client got (None: dropped)


class FaultProxy:
    def __init__(self, upstream: str, *, ssl: ssl_mod.SSLContext | None = None) -> None:
        self.upstream = upstream.rstrip("/")
        self.ssl = ssl
        self.port = 0
        self._rules: list[Rule] = []
        self._log: list[Entry] = []
        self._lock = threading.Lock()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="fault-proxy", daemon=True)
        self._runner: web.AppRunner | None = None
        self._session: aiohttp.ClientSession | None = None

    # -- life cycle -----------------------------------------------------------------------
    @property
    def url(self) -> str:
        return f"{'https' if self.ssl else 'http'}://127.0.0.1:{self.port}"

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> FaultProxy:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(15)
        return self

    def stop(self) -> None:
        if self._thread.is_alive():
            asyncio.run_coroutine_threadsafe(self._stop(), self._loop).result(15)
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(15)
        self._loop.close()

    def __enter__(self) -> FaultProxy:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    async def _start(self) -> None:
        self._session = aiohttp.ClientSession(auto_decompress=False, timeout=aiohttp.ClientTimeout(total=None))
        app = web.Application(client_max_size=1 << 30)
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0, ssl_context=self.ssl)
        await site.start()
        self.port = int(self._runner.addresses[0][1])

    async def _stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
        if self._session is not None:
            await self._session.close()

    # -- programming ----------------------------------------------------------------------
    def add(self, pattern: str, fault: Fault, *, times: int | None = None,
            methods: tuple[str, ...] | None = None) -> Rule:
        rule = Rule(re.compile(pattern), fault, times, frozenset(methods) if methods else None)
        with self._lock:
            self._rules.append(rule)
        return rule

    def clear(self) -> None:
        with self._lock:
            self._rules.clear()

    def log(self) -> list[Entry]:
        with self._lock:
            return list(self._log)

    def _match(self, method: str, path: str) -> Fault | None:
        with self._lock:
            for r in self._rules:
                if r.methods is not None and method not in r.methods:
                    continue
                if r.times is not None and r.hits >= r.times:
                    continue
                if r.pattern.search(path):
                    r.hits += 1
                    return r.fault
        return None

    def _record(self, t: float, method: str, path: str, action: str, status: int | None) -> None:
        with self._lock:
            self._log.append(Entry(t, method, path, action, status))

    # -- serving --------------------------------------------------------------------------
    async def _handle(self, request: web.Request) -> web.StreamResponse:
        t = time.monotonic()
        fault = self._match(request.method, request.path)
        if isinstance(fault, Drop):
            self._record(t, request.method, request.path, "drop", None)
            assert request.transport is not None
            request.transport.abort()
            return web.Response(status=204)    # never sent: the connection is gone
        if isinstance(fault, Status):
            self._record(t, request.method, request.path, f"status {fault.status}", fault.status)
            body = json.dumps({"errors": [{"code": "INJECTED", "message": f"injected fault {fault.status}"}]})
            return web.Response(status=fault.status, body=body.encode(), content_type="application/json",
                                headers=dict(fault.headers))
        action = "forward"
        if isinstance(fault, Delay):
            action = f"delay {fault.seconds:g}"
            await asyncio.sleep(fault.seconds)
        elif isinstance(fault, Hold):
            action = "held"
            await asyncio.to_thread(fault.release.wait, fault.timeout)
        assert self._session is not None
        headers = {k: v for k, v in request.headers.items() if k.lower() not in HOP_BY_HOP}
        body = await request.read()
        async with self._session.request(request.method, self.upstream + request.path_qs, headers=headers,
                                         data=body or None, allow_redirects=False) as up:
            out = web.StreamResponse(status=up.status, reason=up.reason)
            for k, v in up.headers.items():
                if k.lower() not in HOP_BY_HOP:
                    out.headers.add(k, v)
            if "Content-Length" not in up.headers:
                out.headers.pop("Content-Length", None)
            await out.prepare(request)
            if request.method != "HEAD":
                async for chunk in up.content.iter_chunked(1 << 16):
                    await out.write(chunk)
            await out.write_eof()
        self._record(t, request.method, request.path, action, up.status)
        return out
