"""The wizard's App: routing between screens, app-wide keys, relaying engine updates.

`make_app` is the one factory the CLI, the tests and the screenshot script share (as
posting's `make_posting` is), so what is tested is what runs.
Everything long-running lives in the controller's App-level workers; this module only
routes: which screen shows, which dialog answers an error, how the app ends.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from pathlib import Path
from typing import Any

from textual.app import App
from textual.binding import Binding
from textual.events import Resize
from textual.widgets import Footer

from backends.config import Settings
from backends.errors import MigrateError
from backends.plan_file import PlanFile
from backends.replay import Recording
from backends.statuses import Operation

from .controller import Controller
from .dialogs import ConfirmDialog, ErrorDialog, ExportDialog
from .help import HELP_BINDING, HelpScreen, text_field
from .messages import (
    EngineEvent,
    EngineOpened,
    EventHeard,
    OpDone,
    OpFinished,
    ProbeDone,
    ProbeFinished,
    RunOpened,
)

OP_WORDS = {Operation.REFRESH: "planning", Operation.APPLY: "applying", Operation.VERIFY: "verifying",
            Operation.ROLLBACK: "rolling back", Operation.SKIP: "skipping"}


class MigrationApp(App[int]):
    CSS_PATH = "app.tcss"
    TITLE = "bai-registry-migrate"
    ENABLE_COMMAND_PALETTE = False

    BINDINGS = [
        Binding("ctrl+q", "quit", "Quit", priority=True, id="quit",
                tooltip="Leave the wizard; an unfinished run resumes next time"),
        HELP_BINDING,
        Binding("t", "transcript", "Transcript", id="transcript", tooltip="Show everything done so far"),
        Binding("ctrl+e", "export", "Export", id="export", tooltip="Copy the transcript to a directory"),
        Binding("ctrl+y", "copy", "Copy", id="copy", tooltip="Copy the highlighted command (OSC 52)"),
    ]

    def __init__(self, controller_kw: dict[str, Any], *, cursor_blink: bool = True) -> None:
        super().__init__()
        self.controller = Controller(self, **controller_kw)
        self.cursor_blink = cursor_blink
        self.refreshed: set[str] = set()
        self.quit_code = 0

    # -- start -----------------------------------------------------------------------------------
    def on_mount(self) -> None:
        from .screens.start import StartScreen

        self.set_interval(0.1, self.controller.flush_pulls, name="pull-flush")
        self._size_classes(self.size.width, self.size.height)
        self.push_screen(StartScreen())
        # SIGTERM and SIGHUP (a closed SSH session) end the wizard as a quit does: running work
        # stops where it is (resumable), the ending is recorded, the lock is released.
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGHUP):
            with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
                loop.add_signal_handler(sig, self._on_signal, sig)

    def _on_signal(self, sig: int) -> None:
        if self.quit_code >= 128:
            return
        self.quit_code = 128 + sig

        async def stop() -> None:
            await self.controller.close("aborted", self.quit_code,
                                        f"stopped by {signal.Signals(sig).name}; run the wizard again to resume")
            self.exit(self.quit_code)

        self.run_worker(stop(), name="signal-quit", exit_on_error=False)

    def on_resize(self, event: Resize) -> None:
        self._size_classes(event.size.width, event.size.height)

    def _size_classes(self, width: int, height: int) -> None:
        """80x24 is the floor: a slimmer step list, shorter findings, a compact footer."""
        self.set_class(width < 100, "-narrow-app")
        self.set_class(height < 30, "-short-app")
        for screen in self.screen_stack:
            for footer in screen.query(Footer):
                footer.compact = width < 120

    async def on_unmount(self) -> None:
        # However the app ends (quit, a test's pilot leaving, a crash), the lock is released.
        await self.controller.close()

    # -- routing ---------------------------------------------------------------------------------
    def show_step(self, step: str) -> None:
        from .screens import screen_for

        self.switch_screen(screen_for(step, self.controller.meta(step)))

    def go_next(self, step: str) -> None:
        ids = self.controller.step_ids()
        i = ids.index(step)
        if i + 1 < len(ids):
            self.show_step(ids[i + 1])
        else:
            self.show_summary()

    def show_summary(self) -> None:
        from .screens.summary import SummaryScreen

        self.switch_screen(SummaryScreen())

    def begin(self, *, resume: bool) -> None:
        """The operator chose to begin (or resume, or start over): open the engine."""
        self.refreshed.clear()
        self.controller.open_engine(resume=resume)

    # -- relaying the controller's messages ------------------------------------------------------
    def on_engine_event(self, message: EngineEvent) -> None:
        self.controller.absorb(message.event)
        self.controller.updates.publish(EventHeard(message.event))

    def on_op_done(self, message: OpDone) -> None:
        self.controller.updates.publish(OpFinished(message.step, message.op, message.error, message.fix,
                                                  message.cancelled))
        if message.error:
            title = f"{self.controller.title(message.step)}: {OP_WORDS.get(message.op, message.op)} failed"
            self.push_screen(ErrorDialog(title, message.error, message.fix))

    def on_probe_done(self, _message: ProbeDone) -> None:
        self.controller.updates.publish(ProbeFinished())

    def on_engine_opened(self, message: EngineOpened) -> None:
        self.controller.updates.publish(RunOpened(message.error, message.fix))
        if message.error:
            self.push_screen(ErrorDialog("Cannot open the run", message.error, message.fix))
            return
        if self.controller.restored:
            names = ", ".join(self.controller.title(s) for s in self.controller.restored)
            self.notify(f"your edits from the interrupted session are back: {names}", title="Resumed",
                        markup=False, timeout=8)
        step = self.controller.current_step()
        if step:
            self.show_step(step)
        else:
            self.show_summary()

    # -- app-wide actions --------------------------------------------------------------------------
    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action in ("transcript",) and text_field(self.focused):
            return False
        if action == "export":
            return bool(self.controller.transcript_paths())
        return True

    def action_help(self) -> None:
        if isinstance(self.screen, HelpScreen):
            self.screen.dismiss(None)
        else:
            self.push_screen(HelpScreen(self.screen))

    def action_transcript(self) -> None:
        from .screens.transcript import TranscriptScreen

        if not isinstance(self.screen, TranscriptScreen):
            self.push_screen(TranscriptScreen())

    def action_export(self) -> None:
        paths = self.controller.transcript_paths()
        if not paths:
            self.notify("no transcript yet: begin the run first", severity="warning")
            return
        run_id = self.controller.engine.state.run_id if self.controller.engine else "run"
        default = Path.cwd() / f"bai-registry-migrate-{run_id}"

        def done(dest: object) -> None:
            if not isinstance(dest, Path):
                return
            try:
                out = self.controller.export(dest)
            except MigrateError as e:
                self.push_screen(ErrorDialog("Export failed", e.one_line(), e.fix))
                return
            self.notify("\n".join(str(p) for p in out), title="Transcript exported", markup=False, timeout=8)

        self.push_screen(ExportDialog(paths, default), done)

    def action_copy(self) -> None:
        getter = getattr(self.screen, "copy_text", None)
        text = getter() if callable(getter) else None
        if not text:
            self.notify("nothing to copy here", severity="warning")
            return
        self.copy_to_clipboard(text)
        self.notify(text if len(text) < 200 else text[:197] + "…", title="Copied (OSC 52)", markup=False)

    async def action_quit(self) -> None:
        busy = dict(self.controller.busy)
        if busy and not self.controller.closed:
            step, op = next(iter(busy.items()))

            def done(ok: object) -> None:
                if ok:
                    self.run_worker(self._quit(), name="quit", exit_on_error=False)

            self.push_screen(ConfirmDialog("Quit while a step is running?", [
                f"{self.controller.title(step)} is {OP_WORDS.get(op, op)}. Quitting stops it where it is.",
                "The run state is saved: start the wizard again to resume; finished work is not repeated.",
                *self._frozen_note(),
            ]), done)
            return
        if self._frozen_note():
            def leave(ok: object) -> None:
                if ok:
                    self.run_worker(self._quit(), name="quit", exit_on_error=False)

            self.push_screen(ConfirmDialog("Quit with new sessions frozen?", [
                *self._frozen_note(),
                "The run state is saved: start the wizard again to resume where it stopped.",
            ]), leave)
            return
        await self._quit()

    def _frozen_note(self) -> list[str]:
        """The maintenance freeze outlives a quit (lifted at the end of the run): say so."""
        ctl = self.controller
        if ctl.engine is None or ctl.closed or ctl.dry_run or ctl.all_done():
            return []
        if not ctl.frozen():
            return []
        return ["Maintenance mode is on: users cannot start new sessions until the run ends "
                "(or until maintenance is rolled back with x on its step)."]

    async def _quit(self) -> None:
        await self.controller.close()
        self.exit(self.quit_code)


def make_app(settings: Settings | MigrateError | None = None, plan: PlanFile | MigrateError | None = None, *,
             config: str | None = None, plan_path: str | None = None, dry_run: bool = False,
             state_dir: Path | None = None, transcript_dir: Path | None = None,
             manager_version: str | None = None, cursor_blink: bool = True, replay: Recording | None = None,
             record: Path | None = None) -> MigrationApp:
    """The wizard, from loaded settings/plan (or the errors loading them gave) or from paths.

    With `settings`/`plan` None, they are read from `config`/`plan_path` like the CLI does;
    the start screen's recheck reads them again from the same paths.
    """
    kw = dict(config=config, plan=plan_path, dry_run=dry_run, state_dir=state_dir,
              transcript_dir=transcript_dir, settings=settings, plan_obj=plan, manager_version=manager_version,
              replay=replay, record=record)
    return MigrationApp(kw, cursor_blink=cursor_blink)
