"""Summary: every step's outcome, the freeze lifted, and where the transcript is.

Reaching it ends the run: the maintenance freeze (if any) is lifted, the state is marked
finished (a later start begins a new run) and the engine closes, releasing the cluster lock.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from textual.app import ComposeResult
from textual.containers import VerticalScroll
from textual.content import Content
from textual.screen import Screen
from textual.widgets import Footer, Static

from backends.statuses import Status
from widgets.cluster_header import ClusterHeader
from widgets.step_list import STATUS_LOOK

if TYPE_CHECKING:
    from ..app import MigrationApp


class SummaryScreen(Screen[None]):
    help_title = "Summary"   # the help screen's heading

    def __init__(self) -> None:
        super().__init__(id="summary")
        self.finished = False

    @property
    def wizard(self) -> MigrationApp:
        return self.app  # type: ignore[return-value]

    def compose(self) -> ComposeResult:
        yield ClusterHeader(id="header")
        with VerticalScroll(id="summary-body"):
            yield Static(id="summary-title", markup=False)
            yield Static(id="summary-steps", markup=False)
            yield Static("Transcript", classes="section", markup=False)
            yield Static(id="summary-transcript", markup=False)
            yield Static(id="summary-hint", markup=False)
        yield Footer(show_command_palette=False, compact=self.app.size.width < 120)

    def on_mount(self) -> None:
        self.render_view()
        self.app.run_worker(self._finish(), name="finish", group="finish", exit_on_error=False)

    async def _finish(self) -> None:
        await self.wizard.controller.finish()
        self.finished = True
        if self.is_attached:
            self.render_view()

    def render_view(self) -> None:
        ctl = self.wizard.controller
        ident = ctl.identity()
        self.query_one("#header", ClusterHeader).update_identity(ident.namespace, ident.etcd, ident.manager,
                                                                ident.era, ident.dry_run)
        statuses = ctl.statuses()
        failed = [s for s, st in statuses.items() if not st.finished]
        if ctl.dry_run:
            title = Content.assemble(("Dry run complete", "bold"), ": every step was walked; nothing was written.")
        elif not failed:
            target = ctl.target() or "the target registry"
            title = Content.assemble(("✔ Migration complete", "$text-success bold"),
                                     f": the cluster now uses {target}.")
        else:
            title = Content.assemble(("Run stopped", "$text-warning bold"), ": some steps are not done: ",
                                     ", ".join(failed))
        self.query_one("#summary-title", Static).update(title)
        lines = []
        for sid, st in statuses.items():
            glyph, style = STATUS_LOOK.get(st, ("?", ""))
            plan = ctl.plan_of(sid)
            v = ctl.verification(sid)
            checks = f"{sum(c.ok for c in v.checks)}/{len(v.checks)} checks ok" if v else ""
            lines.append(Content.assemble((f"{glyph} ", style), (f"{ctl.title(sid):<36}", "bold"),
                                          (f"{st:<10}", style), "  ", (checks, "$foreground-muted")))
            if plan is not None and st is not Status.SKIPPED:
                lines.append(Content.styled(f"    {plan.summary}", "$foreground-muted"))
        if self.finished and not ctl.dry_run:
            if ctl.freeze_lifted():
                lines.append(Content.styled("New sessions are allowed again; the announcement was restored.",
                                            "$text-success"))
        self.query_one("#summary-steps", Static).update(Content("\n").join(lines))
        paths = ctl.transcript_paths()
        tr = [Content.assemble(("Markdown   ", "$foreground-muted"), str(paths[0])),
              Content.assemble(("JSON Lines ", "$foreground-muted"), str(paths[1]))] if paths else [
            Content.styled("no transcript was written", "$foreground-muted")]
        self.query_one("#summary-transcript", Static).update(Content("\n").join(tr))
        hint = ("ctrl+e copies the transcript to another directory · t shows it · ctrl+q quits"
                if self.finished else "finishing the run (lifting the freeze, releasing the lock)…")
        self.query_one("#summary-hint", Static).update(Content.styled(hint, "$foreground-muted"))

    def copy_text(self) -> str | None:
        paths = self.wizard.controller.transcript_paths()
        return str(paths[0]) if paths else None
