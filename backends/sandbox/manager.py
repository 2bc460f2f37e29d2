"""The manager stand-in: answers `GET /` as a Backend.AI 20.09 manager, stops and starts for real.

Only the manager's version endpoint and its stop/start are stood in for (the project's rule);
everything else about the cluster is real. `GET /` returns what `manager/server.py hello()`
returns in 20.09.29: `{"version": LATEST_API_VERSION, "manager": __version__}`.

    python -m backends.sandbox.manager serve --port P --version 20.09.29 --api v6.20210815
    python -m backends.sandbox.manager stop  --dir DIR      # what the plan's stop command runs
    python -m backends.sandbox.manager start --dir DIR      # and its start command

Fault switches for tests, as files in DIR: `manager.fail-stop` makes `stop` exit 1 without
stopping; `manager.fail-start` makes `start` exit 0 while the server never comes up (a manager
that does not come back).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from aiohttp import web


def make_app(version: str, api_version: str) -> web.Application:
    async def hello(request: web.Request) -> web.Response:
        return web.json_response({"version": api_version, "manager": version},
                                 headers={"Server": "BackendAI"})

    app = web.Application()
    app.router.add_get("/", hello)
    return app


def _serve(args: argparse.Namespace) -> int:
    web.run_app(make_app(args.version, args.api), host="127.0.0.1", port=args.port,
                print=None, handle_signals=True)
    return 0


def _control(args: argparse.Namespace) -> int:
    from .cluster import Sandbox

    sb = Sandbox(Path(args.dir))
    if args.action == "stop":
        if (sb.path / "manager.fail-stop").exists():
            print("manager stop failed (sandbox fault switch manager.fail-stop)", file=sys.stderr)
            return 1
        sb.stop_manager()
        return 0
    if (sb.path / "manager.fail-start").exists():
        return 0  # "started", yet never answers: the wizard must notice
    sb.start_manager()
    return 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m backends.sandbox.manager")
    sub = p.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("serve")
    s.add_argument("--port", type=int, required=True)
    s.add_argument("--version", required=True)
    s.add_argument("--api", required=True)
    for name in ("stop", "start"):
        c = sub.add_parser(name)
        c.add_argument("--dir", required=True)
    args = p.parse_args(argv)
    if args.cmd == "serve":
        return _serve(args)
    args.action = args.cmd
    return _control(args)


if __name__ == "__main__":
    sys.exit(main())
