"""A Harbor v2 stand-in: Harbor's API, registry front and token service on ONE base URL.

No Harbor server can be installed without containers (Debian and PyPI have none), so this
aiohttp app plays one in front of a real docker-registry that holds `stable/*` and
`community/*`. It is faithful where Backend.AI 20.09's `harbor2` scanner, Docker and the
wizard can tell the difference (docs/sandbox.md#the-harbor-stand-in), and every deliberate
deviation is a switch (`harbor_core.Switches`). Run it as

    python -m backends.sandbox.harbor --config harbor.json

with a config such as

    {"listen": {"host": "127.0.0.1", "port": 5080},
     "external_url": "http://127.0.0.1:5080",
     "upstream": {"url": "http://127.0.0.1:5071"},          # + "username"/"password" if needed
     "users": {"admin": "..."}, "admins": ["admin"],
     "robots": {"robot$stable+ci": "..."},
     "projects": {"stable": {"public": true}, "community": {"public": true}},
     "request_log": "/path/harbor-requests.jsonl",
     "switches": {"v2_auth": "bearer", "resolve_digest": true, ...}}   # see harbor_core.Switches

Every request is logged as one JSON line (method, path, query, auth scheme, Accept, status,
duration, kind) so benchmarks can count what a scan costs.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import IO, Any

import aiohttp
from aiohttp import web

from .harbor_api import HarborAPI
from .harbor_core import Auth, ConfigProblem, HarborConfig, Switches, auth_scheme, harbor_error
from .harbor_registry import RegistryFront
from .harbor_upstream import Upstream

__all__ = ["HarborConfig", "Switches", "make_app", "request_kind", "running", "main"]

CONFIG_KEY = web.AppKey("config", HarborConfig)
UPSTREAM_KEY = web.AppKey("upstream", Upstream)


def request_kind(method: str, path: str) -> str:
    """Coarse class of a request, the unit benchmarks count by."""
    if path.startswith("/api/"):
        return "api"
    if path == "/service/token":
        return "token"
    if path in ("/v2", "/v2/"):
        return "ping"
    if path == "/v2/_catalog":
        return "catalog"
    if path.endswith("/tags/list"):
        return "tags"
    if "/manifests/" in path:
        return "manifest"
    if "/blobs/" in path:
        return "blob"
    return "other"


class RequestLog:
    def __init__(self, path: str | None) -> None:
        self._fh: IO[str] | None = None
        if path:
            Path(path).parent.mkdir(parents=True, exist_ok=True)
            self._fh = open(path, "a", buffering=1)   # closed by the app cleanup

    def write(self, entry: dict[str, Any]) -> None:
        if self._fh is not None:
            self._fh.write(json.dumps(entry, separators=(",", ":")) + "\n")

    def close(self) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def make_app(cfg: HarborConfig) -> web.Application:
    auth = Auth(cfg)
    upstream = Upstream(cfg.upstream, aiohttp.BasicAuth(cfg.upstream_user, cfg.upstream_password or "")
                        if cfg.upstream_user else None, storage=cfg.upstream_storage)
    api = HarborAPI(cfg, auth, upstream)
    front = RegistryFront(cfg, auth, upstream)
    log = RequestLog(cfg.request_log)
    faults = list(cfg.switches.api_faults)

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        t0 = time.monotonic()
        status = 500
        try:
            resp = await _with_switches(request, handler)
            status = resp.status
            return resp
        except web.HTTPException as e:
            status = e.status
            raise
        finally:
            log.write({"ts": round(time.time(), 3), "method": request.method, "path": request.path,
                       "query": request.query_string, "auth": auth_scheme(request),
                       "accept": ", ".join(request.headers.getall("Accept", [])), "status": status,
                       "ms": round((time.monotonic() - t0) * 1000, 2),
                       "kind": request_kind(request.method, request.path)})

    async def _with_switches(request: web.Request, handler: Handler) -> web.StreamResponse:
        sw = cfg.switches
        if sw.latency_ms:
            await asyncio.sleep(sw.latency_ms / 1000)
        if not request.path.startswith("/api/"):
            return await handler(request)
        if sw.redirect_api:
            raise web.HTTPMovedPermanently(sw.redirect_api.rstrip("/") + request.path_qs)
        if faults:
            status = faults.pop(0)
            headers = {"Retry-After": sw.fault_retry_after} if status in (429, 503) and sw.fault_retry_after else None
            return harbor_error(status, "injected fault", headers=headers)
        resp = await handler(request)
        if sw.api_content_type and isinstance(resp, web.Response) and resp.content_type == "application/json":
            resp.content_type = sw.api_content_type
        return resp

    async def api_handler(request: web.Request) -> web.StreamResponse:
        return await api.dispatch(request)

    async def v2_handler(request: web.Request) -> web.StreamResponse:
        return await front.dispatch(request)

    async def token_handler(request: web.Request) -> web.StreamResponse:
        return await front.token(request, auth.identify(request))

    async def lifecycle(app: web.Application) -> AsyncIterator[None]:
        await upstream.start()
        yield
        await upstream.close()
        log.close()

    app = web.Application(middlewares=[middleware])
    app[CONFIG_KEY] = cfg
    app[UPSTREAM_KEY] = upstream
    app.cleanup_ctx.append(lifecycle)
    app.router.add_route("*", "/api/v2.0/{tail:.*}", api_handler)
    app.router.add_route("*", "/service/token", token_handler)
    app.router.add_route("*", "/v2", v2_handler)
    app.router.add_route("*", "/v2/{tail:.*}", v2_handler)
    return app


@asynccontextmanager
async def running(cfg: HarborConfig) -> AsyncIterator[str]:
    """Serves `cfg` inside the current event loop (tests); yields the base URL."""
    runner = web.AppRunner(make_app(cfg), access_log=None, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, cfg.host, cfg.port, reuse_address=True)
    await site.start()
    try:
        yield f"http://{cfg.host}:{cfg.port}"
    finally:
        await runner.cleanup()


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m backends.sandbox.harbor", description=__doc__.split("\n")[0])
    ap.add_argument("--config", type=Path, required=True, help="JSON config (see the module docstring)")
    args = ap.parse_args(argv)
    try:
        cfg = HarborConfig.load(args.config)
    except (OSError, ValueError, ConfigProblem) as e:
        ap.error(f"{args.config}: {e}")
    web.run_app(make_app(cfg), host=cfg.host, port=cfg.port, access_log=None, print=None,
                reuse_address=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
