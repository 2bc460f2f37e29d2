"""`startup`: `bai-registry-migrate --version`, and the wizard's first rendered screen on the sandbox.

- `version`: wall time of `bai-registry-migrate --version` as a subprocess (the installed
  console script), next to `python_floor`, the same interpreter running `pass`.
- `first_frame`: from spawning `python -m bench.first_frame` (which builds the app with
  `tui.app.make_app` from the bench sandbox's manager.toml and plan, as the CLI does, and runs it
  headless at 120x40) to the first frame of the start screen reaching `App._display`.
- `ready`: to the first frame after the start screen's connection checks (etcd, PostgreSQL,
  manager) have finished, i.e. when the operator can press Enter.

Medians of at least 5 runs, min-max shown.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from .env import REPO_ROOT, BenchEnv, venv_bin
from .timing import Samples, runs

NAME = "startup"
TIMEOUT = 60.0


def _wall(argv: list[str]) -> float:
    t0 = time.perf_counter()
    subprocess.run(argv, check=True, capture_output=True, timeout=TIMEOUT, cwd=REPO_ROOT)
    return time.perf_counter() - t0


def _first_frame(env: BenchEnv) -> tuple[float, float, str]:
    info = env.info
    with tempfile.TemporaryDirectory(prefix="bairm-bench-startup-") as tmp:
        out = Path(tmp) / "events"
        argv = [sys.executable, "-m", "bench.first_frame", "--config", str(info.manager_toml),
                "--plan", str(info.plan_toml), "--state-dir", str(Path(tmp) / "state"), "--out", str(out)]
        t0 = time.time()
        proc = subprocess.Popen(argv, cwd=REPO_ROOT, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                stderr=subprocess.PIPE, env={**os.environ, "TERM": "xterm-256color"})
        try:
            _, err = proc.communicate(timeout=TIMEOUT)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate()
            raise RuntimeError("the wizard did not show its start screen within "
                               f"{TIMEOUT:g}s") from None
        events: dict[str, list[str]] = {}
        if out.exists():
            for line in out.read_text().splitlines():
                name, *rest = line.split()
                events[name] = rest
        if "first_frame" not in events or "ready" not in events:
            raise RuntimeError(f"bench.first_frame exited {proc.returncode} without a start screen: "
                               f"{err.decode(errors='replace').strip()[-400:]}")
        ready = events["ready"]
        return float(events["first_frame"][0]) - t0, float(ready[0]) - t0, ready[1]


def main(env: BenchEnv) -> dict[str, Any]:
    env.sandbox()
    exe = venv_bin("bai-registry-migrate")
    if not exe.exists():
        raise RuntimeError(f"{exe} is missing; run `make venv`")
    version, floor, frame, ready = Samples(), Samples(), Samples(), Samples()
    checks = "?"
    _first_frame(env)   # warm-up: byte-compiled modules and the page cache, as on any second start
    for _ in range(runs()):
        floor.add(_wall([sys.executable, "-c", "pass"]))
        version.add(_wall([str(exe), "--version"]))
        f, r, checks = _first_frame(env)
        frame.add(f)
        ready.add(r)
    figures: dict[str, Any] = {}
    figures.update(version.figures("version"))
    figures.update(frame.figures("first_frame"))
    figures.update(ready.figures("ready"))
    figures["checks"] = checks
    figures["python_floor"] = floor.median
    figures["runs"] = len(version.values)
    figures["size"] = "120x40"
    return figures
