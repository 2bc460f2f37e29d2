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


def _common(p: argparse.ArgumentParser, *, sub: bool = False) -> None:
    """Options accepted both before and after the subcommand; a subparser must not reset them."""
    kw = {"default": argparse.SUPPRESS} if sub else {}
    p.add_argument("--config", metavar="PATH", **kw,
                   help="manager.toml (default: $BACKEND_CONFIG_FILE, ./manager.toml, "
                        "~/.config/backend.ai/manager.toml, /etc/backend.ai/manager.toml)")
    p.add_argument("--plan", metavar="PATH", **kw, help="plan file (TOML) with the migration's inputs")
    p.add_argument("--state-dir", metavar="DIR", **kw, help="where run state is kept (default: "
                   "$XDG_STATE_HOME/bai-registry-migrate/<namespace>/)")
    p.add_argument("--dry-run", action="store_true", **kw, help="walk every step, write nothing")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="bai-registry-migrate",
        description="Move a Backend.AI cluster from Docker Hub images to a Harbor v2 registry, "
                    "one reviewed step at a time. With no subcommand, opens the wizard.",
    )
    p.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    _common(p)
    sub = p.add_subparsers(dest="command", metavar="COMMAND")

    sb = sub.add_parser("sandbox", help="a local Backend.AI 20.09 cluster on 127.0.0.1 for trying this tool")
    sb.add_argument("action", choices=["up", "down", "status", "reset", "end-sessions"],
                    help="reset: back to the freshly seeded cluster; "
                         "end-sessions: mark live kernels TERMINATED, as when users finish")
    sb.add_argument("--dir", required=True, metavar="DIR", help="where the sandbox keeps its data")
    sb.add_argument("--agents", type=int, default=3, metavar="N", help="Docker daemons as agents (default 3)")
    sb.add_argument("--no-docker", action="store_true", help="no agents (needs no root)")
    sb.add_argument("--purge", action="store_true", help="with down: also delete DIR's data")
    sb.add_argument("--json", action="store_true", help="with status: machine-readable")

    for name, help_ in (("run", "run the migration steps headless"),
                        ("plan", "print every planned change of every step; writes nothing"),
                        ("rollback", "undo reversible steps from their backups (latest first)")):
        r = sub.add_parser(name, help=help_)
        _common(r, sub=True)
        r.add_argument("--transcript", metavar="DIR", help="where the transcript (Markdown + JSON Lines) goes")
        r.add_argument("--steps", metavar="A,B", help="only these steps (comma-separated)")
        r.add_argument("--manager-version", metavar="V", help="use this manager version instead of asking GET /")
        if name == "run":
            r.add_argument("--yes", action="store_true", help="apply without asking (required unless --dry-run)")
            r.add_argument("--fresh", action="store_true", help="archive an unfinished run's state and start over")

    ins = sub.add_parser("inspect", help="a read-only first look at a cluster")
    _common(ins, sub=True)
    ins.add_argument("--json", action="store_true", help="machine-readable output")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.command == "sandbox":
            from backends.sandbox.cli import run_sandbox

            return run_sandbox(args)
        if args.command in ("run", "plan", "rollback"):
            from backends import runner

            opts = runner.RunOptions(
                config=args.config, plan=args.plan, state_dir=args.state_dir, transcript=args.transcript,
                steps=[s.strip() for s in args.steps.split(",") if s.strip()] if args.steps else None,
                dry_run=args.dry_run, yes=getattr(args, "yes", False),
                manager_version=args.manager_version, fresh=getattr(args, "fresh", False))
            fn = {"run": runner.main_run, "plan": runner.main_plan, "rollback": runner.main_rollback}[args.command]
            return fn(opts)
        if args.command == "inspect":
            from backends.inspection import run_inspect

            return run_inspect(args)
        from tui.launch import launch

        return launch(args)
    except MigrateError as e:
        from backends.textsafe import terminal_safe

        # a message may quote a value from a file or the cluster: its control characters are shown
        print(f"bai-registry-migrate: error: {terminal_safe(e.one_line())}", file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:
        print("bai-registry-migrate: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `... | head`: the reader left; not an error of ours
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


def entry() -> None:
    sys.exit(main())


if __name__ == "__main__":
    entry()
