"""`bai-registry-migrate`: one entry point for the wizard and its headless subcommands.

Imports are deferred to the branch that needs them: `--version` and the headless commands
must not pay for loading Textual, and the headless commands must run where no terminal is.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from backends import __version__
from backends.errors import MigrateError


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", metavar="PATH",
                   help="manager.toml (default: $BACKEND_CONFIG_FILE, ./manager.toml, "
                        "~/.config/backend.ai/manager.toml, /etc/backend.ai/manager.toml)")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="bai-registry-migrate",
        description="Move a Backend.AI cluster from Docker Hub images to a Harbor v2 registry, "
                    "one reviewed step at a time. With no subcommand, opens the wizard.",
    )
    p.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    _common(p)
    p.add_argument("--plan", metavar="PATH", help="plan file (TOML) with the migration's inputs")
    p.add_argument("--state-dir", metavar="DIR", help="where run state is kept (default: "
                   "$XDG_STATE_HOME/bai-registry-migrate/<namespace>/)")
    p.add_argument("--dry-run", action="store_true", help="walk every step, write nothing")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")

    sb = sub.add_parser("sandbox", help="a local Backend.AI 20.09 cluster on 127.0.0.1 for trying this tool")
    sb.add_argument("action", choices=["up", "down", "status"])
    sb.add_argument("--dir", required=True, metavar="DIR", help="where the sandbox keeps its data")
    sb.add_argument("--agents", type=int, default=3, metavar="N", help="Docker daemons as agents (default 3)")
    sb.add_argument("--no-docker", action="store_true", help="no agents (needs no root)")
    sb.add_argument("--purge", action="store_true", help="with down: also delete DIR's data")
    sb.add_argument("--json", action="store_true", help="with status: machine-readable")

    ins = sub.add_parser("inspect", help="a read-only first look at a cluster")
    _common(ins)
    ins.add_argument("--plan", metavar="PATH", help="plan file (for the manager URL and agent endpoints)")
    ins.add_argument("--json", action="store_true", help="machine-readable output")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.command == "sandbox":
            from backends.sandbox.cli import run_sandbox

            return run_sandbox(args)
        if args.command == "inspect":
            from backends.inspect import run_inspect

            return run_inspect(args)
        from tui.launch import launch

        return launch(args)
    except MigrateError as e:
        print(f"bai-registry-migrate: error: {e.one_line()}", file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:
        print("bai-registry-migrate: interrupted", file=sys.stderr)
        return 130


def entry() -> None:
    sys.exit(main())


if __name__ == "__main__":
    entry()
