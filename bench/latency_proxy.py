"""A TCP proxy on 127.0.0.1 that adds a fixed delay to every request: a "remote" registry.

Harbor is remote in real life; on 127.0.0.1 every request is nearly free, which would hide
exactly what a scanner's concurrency is for. Every chunk the client sends (for HTTP/1.1
without pipelining, one chunk is one request) is forwarded `delay_ms` after it arrived,
in order; answers flow back undelayed. Working on bytes, not HTTP, keeps the proxy cheap
(the stand-in behind it is the CPU-bound part) and leaves `Host` and every header exactly as
the client sent them, so the stand-in's `external_url` should be the proxy's URL.

    python -m bench.latency_proxy --listen 0 --target 127.0.0.1:5080 --delay-ms 20

prints `listening 127.0.0.1:PORT` once ready. `LatencyProxy` runs the same in a loop.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sys
from collections.abc import Sequence

HOST = "127.0.0.1"
CHUNK = 256 * 1024


class LatencyProxy:
    def __init__(self, target_port: int, *, delay_ms: float, listen_port: int = 0,
                 target_host: str = HOST) -> None:
        if target_host != HOST:
            raise ValueError("the proxy only forwards to 127.0.0.1")
        self.target = (target_host, target_port)
        self.delay = delay_ms / 1000.0
        self.listen_port = listen_port
        self.port = 0
        self.connections = 0
        self.chunks = 0
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    async def start(self) -> LatencyProxy:
        self._server = await asyncio.start_server(self._handle, HOST, self.listen_port, reuse_address=True)
        self.port = int(self._server.sockets[0].getsockname()[1])
        return self

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            for t in list(self._tasks):
                t.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)
            await self._server.wait_closed()
            self._server = None

    async def _handle(self, c_reader: asyncio.StreamReader, c_writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        self.connections += 1
        try:
            u_reader, u_writer = await asyncio.open_connection(*self.target)
        except OSError:
            c_writer.close()
            self._tasks.discard(task)
            return
        try:
            await asyncio.gather(self._delayed(c_reader, u_writer), self._pipe(u_reader, c_writer))
        except (OSError, asyncio.IncompleteReadError):
            pass
        finally:
            for w in (u_writer, c_writer):
                with contextlib.suppress(Exception):
                    w.close()
            self._tasks.discard(task)

    async def _delayed(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Client to server: each chunk leaves `delay` after it arrived, order kept."""
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()

        async def send() -> None:
            while True:
                due, data = await queue.get()
                if not data:
                    with contextlib.suppress(OSError):
                        writer.write_eof()
                    return
                wait = due - loop.time()
                if wait > 0:
                    await asyncio.sleep(wait)
                writer.write(data)
                await writer.drain()

        sender = asyncio.ensure_future(send())
        try:
            while True:
                data = await reader.read(CHUNK)
                self.chunks += 1 if data else 0
                queue.put_nowait((loop.time() + self.delay, data))
                if not data:
                    break
            await sender
        finally:
            sender.cancel()

    @staticmethod
    async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            data = await reader.read(CHUNK)
            if not data:
                with contextlib.suppress(OSError):
                    writer.write_eof()
                return
            writer.write(data)
            await writer.drain()


async def _serve(args: argparse.Namespace) -> None:
    host, _, port = args.target.rpartition(":")
    proxy = await LatencyProxy(int(port), delay_ms=args.delay_ms, listen_port=args.listen,
                               target_host=host or HOST).start()
    print(f"listening {HOST}:{proxy.port}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await proxy.close()


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.latency_proxy", description=__doc__.split("\n")[0])
    ap.add_argument("--listen", type=int, default=0, help="port on 127.0.0.1 (0: any free port)")
    ap.add_argument("--target", required=True, help="127.0.0.1:PORT to forward to")
    ap.add_argument("--delay-ms", type=float, default=20.0, help="added to every request (default 20)")
    args = ap.parse_args(argv)
    try:
        asyncio.run(_serve(args))
    except ValueError as e:
        print(f"latency_proxy: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
