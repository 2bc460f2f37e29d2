"""Start: which cluster, from which files, can we reach it, and is there a run to resume.

An operator lands here over SSH, usually with no flags: the screen says which manager.toml
was found (and which environment variables overrode it), where etcd and PostgreSQL are, which
plan is used, then checks each connection and prints a failure as one line with its fix. The
operator can fix a file in another pane and check again (ctrl+r) or quit; nothing has been
written and no lock is held until Begin.
"""

from __future__ import annotations

from enum import StrEnum
from typing import TYPE_CHECKING

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.content import Content
from textual.reactive import var
from textual.screen import Screen
from textual.widgets import Footer, Static

from widgets.checks import ChecksView
from widgets.cluster_header import ClusterHeader
from widgets.items import CheckItem

from ..dialogs import ConfirmDialog, ResumeDialog
from ..messages import ProbeFinished, RunOpened, Update

if TYPE_CHECKING:
    from ..app import MigrationApp

INTRO = ("This wizard moves the cluster's kernel images from Docker Hub (index.docker.io, lablup/*) "
         "to {target}, one reviewed step at a time: preflight and backup, maintenance mode, registry "
         "configuration and rescan, pre-pull, aliases, domain allowlists, verification, removal of the old "
         "metadata and of the old images on the agents. Every change is shown with its manual command "
         "before it is made, and nothing is written without your confirmation.")

SHORT_INTRO = ("Moves kernel images from Docker Hub to {target}, one reviewed step at a time; nothing is "
               "written without your confirmation.")


class Phase(StrEnum):
    """Where the start screen is: checking the connections, ready to begin, failed, opening."""

    PROBING = "probing"
    READY = "ready"
    FAILED = "failed"
    OPENING = "opening"


class StartScreen(Screen[None]):
    help_title = "Start"   # the help screen's heading
    BINDINGS = [
        Binding("enter,ctrl+n", "begin", "Begin", id="begin", tooltip="Open the run (takes the cluster lock)"),
        Binding("ctrl+r", "recheck", "Check again", id="recheck", tooltip="Re-read the files, reconnect"),
    ]

    # The screen's phase: set by the probe and the run's opening; the view follows it.
    state: var[Phase] = var(Phase.PROBING, init=False, bindings=True)

    def __init__(self) -> None:
        super().__init__(id="start")
        self.offered = False

    def watch_state(self) -> None:
        self.render_config()

    @property
    def wizard(self) -> MigrationApp:
        return self.app  # type: ignore[return-value]

    def compose(self) -> ComposeResult:
        # The checks and what to do next come before the configuration they were made with: at
        # 80x24 the checks were below the fold, under the intro and the configuration. On a
        # short terminal the intro is one line (app.tcss).
        yield ClusterHeader(id="header")
        with VerticalScroll(id="start-body"):
            yield Static(id="start-title", markup=False)
            yield Static(id="start-intro", markup=False)
            yield Static(id="start-intro-short", markup=False)
            yield Static("Connection checks", classes="section", markup=False)
            with Vertical(id="start-checks-box"):
                yield ChecksView(id="start-checks")
            yield Static(id="start-hint", markup=False)
            yield Static("Configuration", classes="section", markup=False)
            yield Static(id="start-config", markup=False)
        yield Footer(show_command_palette=False, compact=self.app.size.width < 120)

    def on_mount(self) -> None:
        self.wizard.controller.updates.subscribe(self, self.hear)
        self.render_config()
        self.recheck()

    def recheck(self) -> None:
        self.state = Phase.PROBING
        self.offered = False
        self.wizard.controller.run_probe()
        self.render_config()

    def hear(self, u: Update) -> None:
        ctl = self.wizard.controller
        if isinstance(u, ProbeFinished):
            res = ctl.probe_result
            self.state = Phase.READY if res and res.ready else Phase.FAILED
            self.render_config()
            if self.state is Phase.READY and res and res.unfinished and not self.offered:
                self.offered = True
                self.offer_resume()
        elif isinstance(u, RunOpened) and u.error:
            self.state = Phase.READY if ctl.probe_result and ctl.probe_result.ready else Phase.FAILED
            self.render_config()

    # -- rendering ---------------------------------------------------------------------------------
    def render_config(self) -> None:
        ctl = self.wizard.controller
        ident = ctl.identity()
        self.query_one("#header", ClusterHeader).update_identity(ident.namespace, ident.etcd, ident.manager,
                                                                ident.era, ident.dry_run)
        target = ctl.plan.target if ctl.plan else "cr.backend.ai"
        self.query_one("#start-title", Static).update(Content.assemble(
            ("Backend.AI registry migration", "bold"), ("  Docker Hub → ", "$foreground-muted"), (target, "bold")))
        self.query_one("#start-intro", Static).update(INTRO.format(target=target))
        self.query_one("#start-intro-short", Static).update(SHORT_INTRO.format(target=target))
        self.query_one("#start-config", Static).update(self.config_lines())
        res = ctl.probe_result if self.state is not Phase.PROBING else None
        checks = [CheckItem(c.name, c.ok, c.detail) for c in res.checks] if res else []
        view = self.query_one("#start-checks", ChecksView)
        if checks:
            view.show(checks)
        else:
            view.show([CheckItem("connecting", True, "reading the configuration and connecting…")])
        self.query_one("#start-hint", Static).update(self.hint())
        self.refresh_bindings()

    def config_lines(self) -> Content:
        ctl = self.wizard.controller
        s, p = ctl.settings, ctl.plan
        rows: list[tuple[str, str]] = []
        if s is not None:
            rows.append(("manager.toml", str(s.config_path)))
            if s.overridden:
                rows.append(("overrides", ", ".join(s.overridden)))
            rows.append(("etcd", f"{s.etcd.addr}  namespace {s.etcd.namespace!r}"
                                 + (f"  user {s.etcd.user!r}" if s.etcd.user else "")))
            rows.append(("PostgreSQL", f"{s.db.addr}  database {s.db.name!r}  user {s.db.user!r}"))
        else:
            rows.append(("manager.toml", ctl.config_arg or "(searched: $BACKEND_CONFIG_FILE, ./manager.toml, "
                                                          "~/.config/backend.ai, /etc/backend.ai)"))
        if p is not None:
            rows.append(("plan", p.source or "(none given: built-in defaults)"))
            rows.append(("target", p.target))
        else:
            rows.append(("plan", ctl.plan_arg or "(none)"))
        res = ctl.probe_result
        if ctl.dry_run:
            rows.append(("mode", "DRY RUN: every step is walked, nothing is written"))
        else:
            rows.append(("mode", "live: changes are written after your confirmation"))
            if res and res.state_dir:
                rows.append(("state", str(res.state_dir)))
        width = max(len(k) for k, _ in rows)
        lines = [Content.assemble((k.ljust(width) + "  ", "$foreground-muted"), v) for k, v in rows]
        return Content("\n").join(lines)

    def hint(self) -> Content:
        ctl = self.wizard.controller
        if self.state is Phase.PROBING:
            return Content.styled("Checking…", "$foreground-muted")
        if self.state is Phase.OPENING:
            return Content.styled("Opening the run (taking the cluster lock)…", "bold")
        if self.state is Phase.FAILED:
            return Content.assemble(("✗ ", "$text-error bold"),
                                    ("The wizard cannot start until the failures above are fixed. ", "bold"),
                                    "Fix them (another terminal is fine), then press ctrl+r to check again, "
                                    "or ctrl+q to quit. Nothing has been written.")
        res = ctl.probe_result
        if res and res.unfinished:
            return Content.assemble(("Press Enter ", "bold"), "to resume or start over the unfinished run.")
        return Content.assemble(("Press Enter ", "bold"), "to begin: the first step only reads.")

    # -- actions ---------------------------------------------------------------------------------
    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "begin":
            return True if self.state is Phase.READY else None
        if action == "recheck":
            return None if self.state in (Phase.PROBING, Phase.OPENING) else True
        return True

    def action_recheck(self) -> None:
        if self.check_action("recheck", ()) is True:
            self.recheck()

    def action_begin(self) -> None:
        if self.check_action("begin", ()) is not True:
            return
        res = self.wizard.controller.probe_result
        if res and res.unfinished:
            self.offer_resume()
            return
        self.open(resume=True)

    def open(self, *, resume: bool) -> None:
        self.state = Phase.OPENING
        self.render_config()
        self.wizard.begin(resume=resume)

    def offer_resume(self) -> None:
        res = self.wizard.controller.probe_result
        assert res is not None and res.unfinished is not None

        def chosen(choice: object) -> None:
            if choice == "resume":
                self.open(resume=True)
            elif choice == "fresh":
                self.confirm_fresh()

        self.app.push_screen(ResumeDialog(res.unfinished.describe(), res.unfinished.path), chosen)

    def confirm_fresh(self) -> None:
        def done(ok: object) -> None:
            if ok:
                self.open(resume=False)

        self.app.push_screen(ConfirmDialog("Start over?", [
            "The unfinished run's state is archived (renamed next to it, never deleted), with its backups.",
            "A new run begins at preflight. What the old run already changed on the cluster stays changed; "
            "the new plans start from the cluster as it is now.",
        ]), done)
