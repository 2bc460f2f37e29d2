"""`bai-registry-migrate sandbox up|down|status --dir DIR`."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from ..errors import EXIT_FAILED, EXIT_OK, EXIT_USAGE
from .cluster import Sandbox
from .procs import ServiceError


def run_sandbox(args: argparse.Namespace) -> int:
    sb = Sandbox(Path(args.dir))
    if args.action == "up":
        if args.agents < 1 or args.agents > 32:
            print("bai-registry-migrate sandbox: --agents must be between 1 and 32")
            return EXIT_USAGE
        try:
            info = sb.up(agents=args.agents, docker=not args.no_docker)
        except ServiceError as e:
            print(f"bai-registry-migrate sandbox: {e}")
            return EXIT_FAILED
        print(f"  manager.toml: {info.manager_toml}")
        print(f"  plan:         {info.plan_toml}")
        print(f"  next:         bai-registry-migrate --config {info.manager_toml} --plan {info.plan_toml}")
        return EXIT_OK
    if args.action == "reset":
        if not (sb.path / "sandbox.json").exists():
            print(f"no sandbox at {sb.path}; run `sandbox up` first")
            return EXIT_USAGE
        sb.up(agents=args.agents, docker=not args.no_docker, log=lambda *_: None)
        sb.reset()
        return EXIT_OK
    if args.action == "end-sessions":
        n = sb.end_sessions()
        print(f"marked {n} live session(s) as TERMINATED (the sandbox's users have finished)")
        return EXIT_OK
    if args.action == "down":
        sb.down(purge=args.purge)
        return EXIT_OK
    st = sb.status()
    if args.json:
        print(json.dumps(st, indent=2))
    elif not st["exists"]:
        print(f"no sandbox at {st['dir']}")
    else:
        print(f"sandbox {st['dir']} (namespace {st['namespace']})")
        for name, s in st["services"].items():
            state = f"running (pid {s['pid']})" if s["running"] else "stopped"
            print(f"  {name:<22} {state}")
        print(f"  manager.toml: {st['manager_toml']}\n  plan:         {st['plan']}")
    running = [s["running"] for s in st["services"].values()]
    return EXIT_OK if st["exists"] and all(running) else EXIT_FAILED
