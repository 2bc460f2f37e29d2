"""The registry client's transport: httpx with a cheaper idle-connection check, still httpx.

If an httpx/httpcore upgrade moves the pool's private network backend, the fast path silently
disappears; this test notices. It also checks that pooled connections are reused and that a
connection the server closed is not reused (the one thing `is_readable` is for).
"""

from __future__ import annotations

import asyncio

import httpx
from aiohttp import web

from backends.http_transport import CachedSocketBackend, fast_transport
from backends.sandbox.layout import free_port


async def test_fast_transport_is_in_effect_and_correct() -> None:
    t = fast_transport(verify=True, limits=httpx.Limits(max_connections=4, max_keepalive_connections=4))
    assert isinstance(t._pool._network_backend, CachedSocketBackend)
    peers: set[tuple[str, int]] = set()

    async def hello(request: web.Request) -> web.Response:
        peers.add(request.transport.get_extra_info("peername"))  # type: ignore[union-attr]
        if request.query.get("close"):
            return web.Response(text="bye", headers={"Connection": "close"})
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_get("/", hello)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        async with httpx.AsyncClient(transport=t) as c:
            rs = await asyncio.gather(*(c.get(f"http://127.0.0.1:{port}/") for _ in range(40)))
            assert all(r.text == "ok" for r in rs)
            assert len(peers) <= 4                     # pooled, reused
            r = await c.get(f"http://127.0.0.1:{port}/?close=1")
            assert r.text == "bye"
            r = await c.get(f"http://127.0.0.1:{port}/")  # a closed connection is not reused
            assert r.text == "ok"
    finally:
        await runner.cleanup()
