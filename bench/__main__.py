"""`python -m bench [NAME ...]`: run every benchmark (or the named ones) in order, one line each.

Each benchmark is a `main(env) -> figures` function; the runner prints `name key=value ...`
and keeps going when one fails (its line then says `error=...`), so one broken benchmark never
hides the others' figures. Progress goes to stderr, figures to stdout. Exit status is 0 unless
a benchmark could not run at all (then 1), so `make bench` shows what is missing.
"""

from __future__ import annotations

import importlib
import sys
import time
import traceback
from collections.abc import Callable, Sequence
from typing import Any

import backends  # noqa: F401  (pure-python protobuf runtime before etcd3)

from .env import BenchEnv
from .timing import line

# name -> module, in the order of the README's Performance table (rescan, etcd-write, prepull, grid, startup).
BENCHMARKS: dict[str, str] = {
    "rescan": "bench.rescan",
    "etcd-write": "bench.etcd_write",
    "prepull": "bench.prepull",
    "grid": "bench.grid",
    "startup": "bench.startup",
}


def _grid(_env: BenchEnv) -> dict[str, Any] | None:
    """bench/grid.py's `main()` prints its own `grid ...` line, so nothing is returned here."""
    try:
        mod = importlib.import_module("bench.grid")
    except ModuleNotFoundError as e:
        if e.name != "bench.grid":
            raise
        print("grid skipped=bench/grid.py_not_present", flush=True)
        return None
    mod.main()
    return None


def _runner(name: str) -> Callable[[BenchEnv], dict[str, Any] | None]:
    if name == "grid":
        return _grid
    mod = importlib.import_module(BENCHMARKS[name])
    return mod.main


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    unknown = [a for a in args if a not in BENCHMARKS]
    if unknown:
        print(f"usage: python -m bench [{' | '.join(BENCHMARKS)}] ...; unknown: {', '.join(unknown)}",
              file=sys.stderr)
        return 2
    names = args or list(BENCHMARKS)
    env = BenchEnv()
    failed = 0
    t0 = time.monotonic()
    try:
        for name in names:
            env.say(f"{name}: starting")
            try:
                figures = _runner(name)(env)
            except Exception as e:  # noqa: BLE001 - reported on the benchmark's own line; the rest run
                traceback.print_exc(file=sys.stderr)
                print(line(name, {"error": f"{type(e).__name__}:{str(e)[:200]}"}), flush=True)
                failed += 1
                continue
            if figures is not None:
                print(line(name, figures), flush=True)
    finally:
        env.close()
    env.say(f"all done in {time.monotonic() - t0:.0f}s")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
