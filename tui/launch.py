"""`bai-registry-migrate` with no subcommand: the wizard, with the same options as `run`.

Configuration errors are not fatal here: the start screen shows them as one line with the fix,
so an operator who typed a wrong path or has a broken manager.toml sees why and can quit.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from .app import make_app


def launch(args: argparse.Namespace) -> int:
    state_dir = getattr(args, "state_dir", None)
    app = make_app(config=getattr(args, "config", None), plan_path=getattr(args, "plan", None),
                   dry_run=bool(getattr(args, "dry_run", False)),
                   state_dir=Path(state_dir) if state_dir else None)
    result = app.run()
    return int(result) if isinstance(result, int) else (app.return_code or 0)
