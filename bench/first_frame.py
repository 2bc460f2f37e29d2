"""Child process of the `startup` benchmark: the wizard as the CLI starts it, until its first frame.

    python -m bench.first_frame --config manager.toml --plan plan.toml --state-dir DIR --out FILE

Builds the app exactly as `bai-registry-migrate --config ... --plan ...` does (`tui.app.make_app`),
runs it headless at 120x40 and writes `event epoch_seconds` lines to FILE: `first_frame` when the
first compositor update of the start screen reaches `App._display` (the one place a frame goes
to the terminal), `ready` at the first frame after the start screen's connection checks
finished (etcd, PostgreSQL, manager), then exits (the parent kills it if that never happens). Imports only what the CLI path imports.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any


def main() -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.first_frame")
    ap.add_argument("--config", required=True)
    ap.add_argument("--plan", required=True)
    ap.add_argument("--state-dir", required=True)
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    out = open(args.out, "w", buffering=1)   # line-buffered: each event lands when it happens

    from tui.app import make_app

    app = make_app(config=args.config, plan_path=args.plan, state_dir=Path(args.state_dir), cursor_blink=False)
    seen: set[str] = set()
    original = type(app)._display

    def display(screen: Any, renderable: Any) -> None:
        original(app, screen, renderable)
        if renderable is None or type(screen).__name__ != "StartScreen":
            return
        if "first_frame" not in seen:
            seen.add("first_frame")
            out.write(f"first_frame {time.time():.6f}\n")
        if "ready" not in seen and getattr(screen, "state", "probing") != "probing":
            seen.add("ready")
            out.write(f"ready {time.time():.6f} {screen.state}\n")
            app.exit(0)

    app._display = display  # type: ignore[method-assign]
    app.run(headless=True, size=(120, 40))
    out.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
