"""Drive the wizard with Textual's Pilot, by keys only, as an operator would.

Shared by the screenshot script and the UI tests, so the screenshots show exactly the flow
the tests prove works. Every helper presses keys (no direct calls into screens) and waits for
the controller to go idle; timeouts raise with what was still running.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from textual.pilot import Pilot

from .dialogs import ConfirmDialog, ErrorDialog, ResumeDialog, TypedConfirmDialog

if TYPE_CHECKING:
    from .app import MigrationApp


class AutopilotError(AssertionError):
    pass


def app_of(pilot: Pilot[object]) -> MigrationApp:
    return pilot.app  # type: ignore[return-value]


async def wait_idle(pilot: Pilot[object], limit: float = 120.0) -> None:
    """Until no engine call, probe or open is running (checked twice, a little apart)."""
    app = app_of(pilot)
    deadline = time.monotonic() + limit
    quiet = 0
    while time.monotonic() < deadline:
        await pilot.pause(0.02)
        running = [w for w in app.workers if w.is_running and w.name in ("probe", "open", "finish")]
        if app.controller.busy or running:
            quiet = 0
            continue
        quiet += 1
        if quiet >= 3:
            await pilot.pause()
            return
    raise AutopilotError(f"still busy after {limit:.0f}s: {app.controller.busy}")


async def wait_for(pilot: Pilot[object], cond: Callable[[], bool], what: str, limit: float = 60.0) -> None:
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if cond():
            return
        await pilot.pause(0.02)
    raise AutopilotError(f"timed out waiting for {what}")


def screen_step(pilot: Pilot[object]) -> str | None:
    return getattr(app_of(pilot).screen, "STEP", None)


async def begin(pilot: Pilot[object], *, resume: str | None = None) -> None:
    """Start screen: wait for the checks, press Enter (answer the resume offer), wait for a step."""
    app = app_of(pilot)
    await wait_idle(pilot)
    await wait_for(pilot, lambda: app.controller.probe_result is not None, "the connection checks")
    await pilot.pause(0.1)
    if isinstance(app.screen, ResumeDialog):
        await pilot.press({"resume": "r", "fresh": "n", None: "r"}[resume])
        if resume == "fresh":
            await wait_for(pilot, lambda: isinstance(app.screen, ConfirmDialog), "the start-over confirmation")
            await pilot.press("y")
    else:
        await pilot.press("enter")
    await wait_for(pilot, lambda: screen_step(pilot) is not None or type(app.screen).__name__ == "SummaryScreen"
                   or isinstance(app.screen, ErrorDialog), "the first step screen")
    if isinstance(app.screen, ErrorDialog):
        raise AutopilotError(f"could not open the run: {app.screen.message}")
    await wait_idle(pilot)


async def apply_current(pilot: Pilot[object], *, confirm: bool = True) -> str:
    """Press a on the current step, answer the confirmation, wait; returns the step's status."""
    app = app_of(pilot)
    step = screen_step(pilot)
    if step is None:
        raise AutopilotError(f"not on a step screen: {type(app.screen).__name__}")
    await wait_idle(pilot)
    await pilot.press("a")
    await pilot.pause(0.1)
    if isinstance(app.screen, TypedConfirmDialog):
        if confirm:
            await pilot.press(*list(step), "enter")
        else:
            await pilot.press("escape")
    elif isinstance(app.screen, ConfirmDialog):
        await pilot.press("y" if confirm else "n")
    await pilot.pause(0.1)
    await wait_idle(pilot)
    if isinstance(app.screen, ErrorDialog):
        raise AutopilotError(f"{step}: {app.screen.message}")
    return app.controller.status(step)


async def next_step(pilot: Pilot[object]) -> str | None:
    app = app_of(pilot)
    before = app.screen
    await pilot.press("ctrl+n")
    await wait_for(pilot, lambda: app.screen is not before, "the next screen")
    await wait_idle(pilot)
    return screen_step(pilot)


async def walk(pilot: Pilot[object], *, until: str | None = None,
               on_step: Callable[[str], Awaitable[None]] | None = None,
               at_gate: Callable[[], Awaitable[None]] | None = None) -> None:
    """Applies every step in order (and moves on) until the screen of `until`, or the summary.

    `on_step(step)` runs when a step's screen is ready (screenshots); `at_gate()` runs when
    the cleanup gate blocks (a test ends the sandbox's sessions there), then p checks again.
    """
    app = app_of(pilot)
    while True:
        step = screen_step(pilot)
        if step is None:
            return
        await wait_idle(pilot)
        if on_step is not None:
            await on_step(step)
        if step == until:
            return
        if app.controller.status(step) == "blocked" and at_gate is not None:
            await at_gate()
            await pilot.press("p")
            await pilot.pause(0.1)
            await wait_idle(pilot)
        if app.controller.status(step) not in ("verified", "skipped"):
            status = await apply_current(pilot)
            if status != "verified":
                raise AutopilotError(f"{step} ended {status}: {app.controller.error_of(step)}")
        await next_step(pilot)
