"""`python -m tui.screenshots [SANDBOX_DIR] [--out DIR]`: regenerate screenshots/*.svg.

Brings the sandbox up (or reuses it: `up` is idempotent), resets it to the seeded legacy
cluster, then drives the wizard with the Pilot through a real migration, keys only (the same
autopilot the UI tests use), saving one SVG per screen: the start screen, every step once it
is applied and verified (the cleanup step at its live-sessions gate), and the summary.

Deterministic on purpose: a fixed 120x36 terminal, no cursor blink, no clock on screen, and
the pull grid is captured once its throughput window has emptied. Names that vary per sandbox
(ports, socket paths) are the sandbox's own; regenerate after `sandbox up --dir` moved them.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import sys
import tempfile
from pathlib import Path

from backends.sandbox.cluster import Sandbox

from .app import MigrationApp, make_app
from .autopilot import apply_current, begin, screen_step, wait_for, wait_idle

SIZE = (120, 36)
ROOT = Path(__file__).resolve().parents[1]
GRID_QUIET = 3.5   # seconds: PullGrid's throughput window (3 s) empties, so no rate is on screen


def save(app: MigrationApp, out: Path, name: str) -> Path:
    path = out / f"{name}.svg"
    path.write_text(app.export_screenshot(title=f"bai-registry-migrate: {name.split('-', 1)[1]}"))
    print(f"  {path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}")
    return path


async def shoot(sandbox_dir: Path, out: Path) -> list[Path]:
    sb = Sandbox(sandbox_dir)
    info = sb.info
    work = Path(tempfile.mkdtemp(prefix="bairm-screenshots-"))
    app = make_app(config=str(info.manager_toml), plan_path=str(info.plan_toml), state_dir=work / "state",
                   transcript_dir=work / "transcript", cursor_blink=False)
    saved: list[Path] = []
    order = {s: i + 1 for i, s in enumerate(app.controller.step_ids())}
    try:
        await _drive(app, sb, out, order, saved)
    finally:
        shutil.rmtree(work, ignore_errors=True)   # the run's state and transcript: not needed
    return saved


async def _drive(app: MigrationApp, sb: Sandbox, out: Path, order: dict[str, int], saved: list[Path]) -> None:
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.controller.probe_result is not None, "the connection checks")
        await wait_idle(pilot)
        saved.append(save(app, out, "00-start"))
        await begin(pilot)

        while (step := screen_step(pilot)) is not None:
            await wait_idle(pilot)
            if app.controller.status(step) == "blocked":
                # the live-sessions gate is the cleanup screen worth showing; then the users finish
                saved.append(save(app, out, f"{order[step]:02d}-{step}"))
                await asyncio.to_thread(sb.end_sessions)
                await pilot.press("p")
                await pilot.pause(0.1)
                await wait_idle(pilot)
            if app.controller.status(step) not in ("verified", "skipped"):
                await apply_current(pilot)
            if app.controller.meta(step).grid:
                await asyncio.sleep(GRID_QUIET)
                await pilot.pause()
            if not (out / f"{order[step]:02d}-{step}.svg").exists():
                saved.append(save(app, out, f"{order[step]:02d}-{step}"))
            await pilot.press("ctrl+n")
            await wait_for(pilot, lambda s=step: screen_step(pilot) != s, "the next screen")
            await wait_idle(pilot)
        await wait_for(pilot, lambda: getattr(app.screen, "finished", False), "the end of the run")
        await wait_idle(pilot)
        saved.append(save(app, out, f"{len(order) + 1:02d}-summary"))
        await pilot.press("ctrl+q")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m tui.screenshots", description=__doc__.split("\n\n")[0])
    p.add_argument("sandbox", nargs="?", default=os.environ.get("SANDBOX", str(ROOT / ".sandbox")),
                   help="sandbox directory (default: $SANDBOX or .sandbox, as make demo)")
    p.add_argument("--out", default=str(ROOT / "screenshots"), help="where the SVGs go (default: screenshots/)")
    args = p.parse_args(argv)
    sandbox_dir, out = Path(args.sandbox).resolve(), Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    sb = Sandbox(sandbox_dir)
    sb.up(log=lambda *a: print(*a, file=sys.stderr))
    sb.reset(log=lambda *a: print(*a, file=sys.stderr))
    for old in out.glob("[0-9][0-9]-*.svg"):
        old.unlink()
    print(f"screenshots of a migration on {sandbox_dir}:")
    saved = asyncio.run(shoot(sandbox_dir, out))
    print(f"{len(saved)} screenshots written; the sandbox is left migrated (`sandbox reset` restores it)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
