"""The base of every step screen: the shell (header, step list, footer) and the step life cycle.

A step screen is built from the engine's state, never the other way round: on mount and on
every update it re-reads status, findings, plan and verification from the controller, so
going back and forth, or resuming after a dropped link, shows the same thing. Operator edits
are posted to the controller as commands (`backends.steps.edits`); a taken edit makes the
current plan *stale*: Apply stays greyed (`check_action` returns None, which Textual shows
as a disabled binding) until the step is planned again, so what is applied is always what
was reviewed. What is on screen lives in reactives: a widget is redrawn only when the value
it shows changed (engine events arrive by the hundred during a scan, and a re-layout or a
footer rebuild per event would eat the CPU the engine's etcd client needs).

Keys: letters act only when no text field has focus (a TextArea or Input would swallow them,
and the footer hides them meanwhile). Next is ctrl+n, which no text field binds, so it works
while typing, or `]`; Back is `b` or `[`. Back was ctrl+b, which is tmux's prefix key (and
ctrl+a is screen's): operators run long jobs in tmux over SSH, where it never reached the
wizard. ctrl+arrows are avoided too: many terminals send them differently, or not at all,
over SSH.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.content import Content
from textual.reactive import var
from textual.screen import Screen
from textual.widget import Widget
from textual.widgets import Footer, Static

from backends.statuses import Operation, Status
from backends.steps.base import StepMeta
from widgets.change_table import ChangeTable
from widgets.checks import ChecksView
from widgets.cluster_header import ClusterHeader
from widgets.findings import FindingsView
from widgets.items import ChangeItem, CheckItem, FindingItem, StepItem
from widgets.step_list import StepList

from ..convert import change_items, check_items, finding_items, step_items
from ..dialogs import ConfirmDialog, TypedConfirmDialog
from ..help import HELP_BINDING, text_field
from ..messages import CellsChanged, EventHeard, OpFinished, Update

if TYPE_CHECKING:
    from ..app import MigrationApp
    from ..controller import Controller, Identity
# Actions that are single letters: hidden while a text field has focus (it would eat them).
LETTER_ACTIONS = frozenset({"back", "plan", "apply", "verify", "rollback", "skip", "retry", "edit_json",
                            "toggle_target", "toggle_hub", "toggle_remove", "transcript"})

STATUS_TEXT: dict[Status, str] = {
    Status.PENDING: "not started",
    Status.INSPECTING: "inspecting…",
    Status.INSPECTED: "inspected",
    Status.PLANNED: "planned: review the changes, then press a to apply",
    Status.APPLYING: "applying…",
    Status.APPLIED: "applied: verification pending (press v)",
    Status.VERIFIED: "done and verified",
    Status.SKIPPED: "skipped",
    Status.FAILED: "failed",
    Status.BLOCKED: "blocked",
    Status.ROLLED_BACK: "rolled back: plan again to redo it",
}
STATUS_STYLE: dict[Status, str] = {Status.VERIFIED: "$text-success bold", Status.FAILED: "$text-error bold",
                                   Status.BLOCKED: "$text-error bold", Status.SKIPPED: "$foreground-muted",
                                   Status.APPLYING: "$text-warning bold"}
STATUS_GLYPH: dict[Status, str] = {Status.VERIFIED: "✔ ", Status.FAILED: "✗ ", Status.BLOCKED: "⊘ ",
                                   Status.APPLYING: "⟳ "}
BUSY_TEXT: dict[Operation, str] = {Operation.REFRESH: "inspecting and planning…", Operation.APPLY: "applying…",
                                   Operation.VERIFY: "verifying…", Operation.ROLLBACK: "rolling back…",
                                   Operation.SKIP: "skipping…"}


class StepScreen(Screen[None]):
    """A step's screen. Subclasses exist only for steps with widgets of their own (an editor, an
    editable table, a grid); they declare the step they show in `STEP`. Every other step is shown
    by this class itself, given the step id."""

    STEP: ClassVar[str] = ""
    AUTO_FOCUS = None

    # What is on screen: set by refresh_view() from the controller, drawn by the watchers.
    identity: var[Identity | None] = var(None, init=False)
    sidebar: var[tuple[StepItem, ...]] = var((), init=False)
    title_line: var[Content] = var(Content(""), init=False)
    status_line: var[Content] = var(Content(""), init=False)
    finding_rows: var[tuple[FindingItem, ...]] = var((), init=False)
    plan_rows: var[tuple[ChangeItem, ...] | None] = var(None, init=False)
    plan_heading: var[Content] = var(Content(""), init=False)
    check_rows: var[tuple[CheckItem, ...] | None] = var(None, init=False)
    key_states: var[tuple[Any, ...]] = var((), init=False)

    BINDINGS = [
        # first, so that it leads the footer: at 80 columns the footer is cut after a few keys
        HELP_BINDING,
        Binding("ctrl+n,right_square_bracket", "next", "Next", id="next",
                tooltip="Go to the next step (when this one is done)"),
        Binding("b,left_square_bracket", "back", "Back", id="back", tooltip="Show the previous step"),
        Binding("p", "plan", "Plan", id="plan", tooltip="Inspect again and make a new plan (read-only)"),
        Binding("a", "apply", "Apply", id="apply", tooltip="Apply the reviewed plan (asks first)"),
        Binding("v", "verify", "Verify", id="verify", tooltip="Read the result back and check it"),
        Binding("x", "rollback", "Roll back", id="rollback", tooltip="Restore this step's backup"),
        Binding("s", "skip", "Skip", id="skip", tooltip="Skip this optional step"),
        Binding("escape", "leave_field", "Leave the field", id="leave-field", show=False,
                tooltip="Back to where the cursor starts, so that letter keys act again"),
    ]

    def __init__(self, step: str | None = None) -> None:
        if step is not None:
            self.STEP = step
        # Classes known before mount: changing them afterwards restyles the whole screen.
        ctl: Controller = self.app.controller  # type: ignore[attr-defined]
        meta = ctl.meta(self.STEP)
        classes = ["step-screen", *(["-grid"] if meta.grid else []), *(["-checklist"] if meta.checklist else [])]
        if ctl.status(self.STEP).finished:
            classes.append("-done")
        if ctl.blocking(self.STEP):
            classes.append("-blocked")
        super().__init__(id=f"step-{self.STEP}", classes=" ".join(classes))
        self._refresh_pending = False
        self._change_index: int | None = None

    # -- plumbing ------------------------------------------------------------------------------
    @property
    def wizard(self) -> MigrationApp:
        return self.app  # type: ignore[return-value]

    @property
    def ctl(self) -> Controller:
        return self.wizard.controller

    @property
    def meta(self) -> StepMeta:
        return self.ctl.meta(self.STEP)

    @property
    def status(self) -> Status:
        return self.ctl.status(self.STEP)

    @property
    def busy(self) -> Operation | None:
        return self.ctl.busy.get(self.STEP)

    @property
    def help_title(self) -> str:
        return self.meta.title

    def help_notes(self) -> list[str]:
        """Hook: keys that act through a widget rather than a binding (Enter on a row)."""
        return []

    # -- layout --------------------------------------------------------------------------------
    def compose(self) -> ComposeResult:
        yield ClusterHeader(id="header")
        with Horizontal(id="shell"):
            with Vertical(id="sidebar"):
                yield StepList(id="steps")
            with Vertical(id="main"):
                yield Static(id="step-title", markup=False)
                yield Static(id="step-state", markup=False)
                with Vertical(id="body"):
                    yield from self.compose_body()
        yield Footer(show_command_palette=False, compact=self.app.size.width < 120)

    def compose_body(self) -> ComposeResult:
        """Default body: findings, verification (once there is one), the plan review."""
        yield from self.compose_findings()
        yield from self.compose_checks()
        yield from self.compose_plan()

    # The sections are built with the data they show (not filled after mount), so entering a
    # step lays the screen out once.
    def compose_findings(self) -> ComposeResult:
        rows = tuple(finding_items(self.ctl.findings(self.STEP)))
        self.set_reactive(StepScreen.finding_rows, rows)
        yield FindingsView(list(rows), id="findings")

    def compose_plan(self) -> ComposeResult:
        plan = self.ctl.plan_of(self.STEP)
        rows = tuple(change_items(plan.changes)) if plan else None
        self.set_reactive(StepScreen.plan_rows, rows)
        heading = self.plan_title()
        self.set_reactive(StepScreen.plan_heading, heading)
        yield Static(heading, id="plan-title", classes="section", markup=False)
        # always shown (an empty plan says so): the cursor starts here on every step, and a
        # focus target that comes and goes would make where the keys go depend on timing
        yield ChangeTable(list(rows or ()), id="changes")

    def compose_checks(self) -> ComposeResult:
        v = self.ctl.verification(self.STEP)
        rows = tuple(check_items(v.checks)) if v else None
        self.set_reactive(StepScreen.check_rows, rows)
        title = Static("Verification", id="checks-title", classes="section", markup=False)
        view = ChecksView(list(rows or ()), id="checks")
        title.display = view.display = v is not None
        yield title
        yield view

    # -- life cycle ------------------------------------------------------------------------------
    def on_mount(self) -> None:
        self.ctl.updates.subscribe(self, self.hear)
        self.refresh_view()
        target = self.default_focus()
        if target is not None:
            target.focus()
        self.maybe_start()

    def default_focus(self) -> Widget | None:
        """Where the cursor starts: the plan review, never a text field (it would eat the keys)."""
        tables = self.query("#changes")
        return tables.first(ChangeTable).table if tables else None

    def maybe_start(self) -> None:
        """Entering a step inspects and plans it (read-only) unless that was done this session."""
        if self.busy or self.status.finished or self.status in (Status.APPLYING, Status.APPLIED):
            return
        if self.STEP not in self.wizard.refreshed:
            self.wizard.refreshed.add(self.STEP)
            # off in the plan file: skipped, as the headless runner does (reason in the transcript)
            self.ctl.run(self.STEP, Operation.SKIP if self.ctl.disabled_reason(self.STEP) else Operation.REFRESH)

    def hear(self, u: Update) -> None:
        if not self.alive:
            return
        if isinstance(u, CellsChanged):
            if u.step == self.STEP:
                self.on_cells(u)
            return
        if isinstance(u, EventHeard) and u.step not in (None, self.STEP):
            # another step's status: only the sidebar changes
            self.refresh_steps()
            return
        if isinstance(u, OpFinished) and u.step == self.STEP:
            self.on_op_finished(u)
        self.schedule_refresh()

    def on_op_finished(self, u: OpFinished) -> None:
        """Hook: an operation on this step ended (before the view refreshes)."""

    def on_cells(self, u: CellsChanged) -> None:
        """Hook for grid screens: a batch of coalesced cell states."""

    def schedule_refresh(self) -> None:
        if not self._refresh_pending:
            self._refresh_pending = True
            self.call_after_refresh(self._do_refresh)

    def _do_refresh(self) -> None:
        self._refresh_pending = False
        if self.alive:
            self.refresh_view()

    @property
    def alive(self) -> bool:
        """Mounted and not being removed (a switch_screen prunes it while messages still arrive)."""
        return self.is_attached and not self._pruning and bool(self.query("#header"))

    # -- rendering: compute, assign the reactives; the watchers draw what changed -------------
    def refresh_steps(self) -> None:
        self.sidebar = tuple(step_items(self.ctl.statuses(), self.ctl.short_title))

    def watch_sidebar(self, items: tuple[StepItem, ...]) -> None:
        steps = self.query_one("#steps", StepList)
        steps.set_steps(list(items))
        steps.current = self.STEP

    def watch_identity(self, ident: Identity | None) -> None:
        if ident is not None:
            self.query_one("#header", ClusterHeader).update_identity(ident.namespace, ident.etcd, ident.manager,
                                                                     ident.era, ident.dry_run)

    def watch_title_line(self, line: Content) -> None:
        self.query_one("#step-title", Static).update(line)

    def watch_status_line(self, line: Content) -> None:
        self.query_one("#step-state", Static).update(line)

    def watch_finding_rows(self, rows: tuple[FindingItem, ...]) -> None:
        self.query_one("#findings", FindingsView).show(list(rows))

    def watch_plan_rows(self, rows: tuple[ChangeItem, ...] | None) -> None:
        if self.query("#changes"):
            self.query_one("#changes", ChangeTable).show(list(rows or ()))
            self.refresh_bindings()   # the focused table's own keys (copy, edit) depend on its rows

    def watch_plan_heading(self, heading: Content) -> None:
        if self.query("#plan-title"):
            self.query_one("#plan-title", Static).update(heading)

    def watch_check_rows(self, rows: tuple[CheckItem, ...] | None) -> None:
        if self.query("#checks"):
            self.query_one("#checks", ChecksView).show(list(rows or ()))
            self.query_one("#checks-title", Static).display = rows is not None
            self.query_one("#checks", ChecksView).display = rows is not None

    def watch_key_states(self) -> None:
        self.refresh_bindings()   # rebuilds the footer: only when some binding's state changed

    def refresh_view(self) -> None:
        """Everything from the controller into the reactives."""
        self.identity = self.ctl.identity()
        self.refresh_steps()
        ids = self.ctl.step_ids()
        n = ids.index(self.STEP) + 1 if self.STEP in ids else 0
        self.title_line = Content.assemble((f"step {n} of {len(ids)}  ", "$foreground-muted"),
                                           (self.meta.title, "bold"), (f"   ({self.meta.runbook_ref})",
                                                                       "$foreground-muted"))
        self.status_line = self.make_status_line()
        self.set_class(self.status.finished, "-done")
        self.set_class(bool(self.ctl.blocking(self.STEP)), "-blocked")
        self.finding_rows = tuple(finding_items(self.ctl.findings(self.STEP)))
        plan = self.ctl.plan_of(self.STEP)
        self.plan_rows = tuple(change_items(plan.changes)) if plan else None
        self.plan_heading = self.plan_title()
        v = self.ctl.verification(self.STEP)
        self.check_rows = tuple(check_items(v.checks)) if v else None
        self.refresh_step()
        self.refresh_keys()

    def refresh_keys(self) -> None:
        names = {b.action for cls in type(self).__mro__ for b in getattr(cls, "BINDINGS", ())
                 if isinstance(b, Binding)}
        state = tuple((a, self.check_action(a, ())) for a in sorted(names))
        self.key_states = (*state, ("text", self._text_focused()))

    def refresh_step(self) -> None:
        """Hook: the step's own widgets, from the controller's state."""

    def plan_title(self) -> Content:
        plan = self.ctl.plan_of(self.STEP)
        if plan is None:
            why = "made once nothing blocks (p checks again)" if self.ctl.blocking(self.STEP) else "not made yet"
            return Content.styled(f"Plan: {why}", "$foreground-muted")
        parts: list[tuple[str, str] | str] = [("Plan", "bold"), "  ", plan.summary]
        if self.ctl.stale(self.STEP):
            parts += ["  ", ("(out of date: inputs changed, press p)", "$text-warning bold")]
        return Content.assemble(*parts)

    def make_status_line(self) -> Content:
        st = self.status
        busy = self.busy
        if busy:
            return Content.assemble(("⟳ ", "$text-warning bold"), (BUSY_TEXT[busy], "bold"), self.busy_hint())
        if self.ctl.stale(self.STEP) and st.plannable:
            return Content.assemble(("! ", "$text-warning bold"),
                                    ("inputs changed since the plan: press p to plan again", "$text-warning"))
        text = STATUS_TEXT[st]
        style = STATUS_STYLE.get(st, "bold")
        glyph = STATUS_GLYPH.get(st, "• ")
        parts: list[tuple[str, str] | str] = [(glyph, style), (text, style)]
        if st is Status.BLOCKED:
            b = self.ctl.blocking(self.STEP)
            if b:
                parts += [": ", b[0].message]
                if b[0].fix:
                    parts += ["  fix: ", (b[0].fix, "$text-success")]
        elif st is Status.FAILED:
            err = self.ctl.error_of(self.STEP)
            if err:
                parts += [": ", err]
        elif st is Status.APPLYING:
            parts += [("  interrupted: press a to resume (finished work is not repeated)", "$text-warning")]
        elif st.finished:
            parts += [("   ctrl+n: next step", "$foreground-muted")]
        if self.ctl.dry_run and st in (Status.PLANNED, Status.APPLIED, Status.VERIFIED):
            parts += [("   (dry run: nothing is written)", "$text-warning")]
        return Content.assemble(*parts)

    def busy_hint(self) -> Content:
        return Content("")

    # -- bindings --------------------------------------------------------------------------------
    def _text_focused(self) -> bool:
        return text_field(self.focused)

    def on_descendant_focus(self) -> None:
        self.refresh_keys()

    def on_descendant_blur(self) -> None:
        self.refresh_keys()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action in LETTER_ACTIONS and self._text_focused():
            return False
        if action == "leave_field":
            return self._text_focused()
        if self.ctl.engine is None:
            return action in ("back",) or None
        st, busy = self.status, self.busy
        if action == "next":
            return True if (st.finished and not busy and self.inputs_ok()) else None
        if action == "back":
            ids = self.ctl.step_ids()
            return self.STEP in ids and ids.index(self.STEP) > 0
        if action == "plan":
            if not st.plannable:
                return False
            return None if busy else True
        if action == "apply":
            if not st.applyable:
                return False
            if busy or self.ctl.blocking(self.STEP) and st is not Status.APPLYING:
                return None
            if self.ctl.plan_of(self.STEP) is None or self.ctl.stale(self.STEP) or not self.inputs_ok():
                return None
            return True
        if action == "verify":
            # a verified step too: the cluster can change after the check (read back again)
            return (st in (Status.APPLIED, Status.FAILED, Status.VERIFIED) and self.ctl.plan_of(self.STEP) is not None
                    and not busy)
        if action == "rollback":
            return (self.meta.reversible and self.ctl.has_backup(self.STEP) and not busy
                    and st in (Status.APPLIED, Status.VERIFIED, Status.FAILED))
        if action == "skip":
            return (self.meta.skippable and st not in (Status.VERIFIED, Status.SKIPPED, Status.APPLYING)
                    and not busy)
        return True

    def inputs_ok(self) -> bool:
        """Hook: False while the screen's inputs are invalid (e.g. broken registry JSON)."""
        return True

    # -- actions ---------------------------------------------------------------------------------
    def action_next(self) -> None:
        if self.check_action("next", ()) is True:
            self.wizard.go_next(self.STEP)

    def action_back(self) -> None:
        ids = self.ctl.step_ids()
        i = ids.index(self.STEP)
        if i > 0:
            self.wizard.show_step(ids[i - 1])

    def action_leave_field(self) -> None:
        target = self.default_focus()
        if target is not None:
            target.focus()

    def action_plan(self) -> None:
        if self.check_action("plan", ()) is True:
            self.ctl.run(self.STEP, Operation.REFRESH)

    def action_apply(self) -> None:
        if self.check_action("apply", ()) is not True:
            return
        plan = self.ctl.plan_of(self.STEP)
        assert plan is not None
        if self.status is Status.APPLYING:
            # Resuming an interrupted apply: the same, already confirmed plan.
            self.ctl.run(self.STEP, Operation.APPLY)
            return
        if not self.meta.writes:
            self.ctl.run(self.STEP, Operation.APPLY)
            return
        lines = [plan.summary, f"{len(plan.changes)} change(s), each listed in the plan with its command."]
        lines += self.ctl.confirm_lines(self.STEP)
        if self.ctl.dry_run:
            lines.append("Dry run: nothing is written; the wizard records what would change.")
        elif self.meta.reversible:
            lines.append("A backup is taken first; x rolls this step back.")
        else:
            lines.append("This step cannot be rolled back.")

        def done(ok: object) -> None:
            if ok:
                self.ctl.run(self.STEP, Operation.APPLY)

        title = f"Apply {self.meta.title.lower()}?"
        if plan.destructive and not self.ctl.dry_run:
            self.app.push_screen(TypedConfirmDialog(title, lines, self.STEP), done)
        else:
            self.app.push_screen(ConfirmDialog(title, lines), done)

    def action_verify(self) -> None:
        if self.check_action("verify", ()) is True:
            self.ctl.run(self.STEP, Operation.VERIFY)

    def action_rollback(self) -> None:
        if self.check_action("rollback", ()) is not True:
            return

        def done(ok: object) -> None:
            if ok:
                self.ctl.run(self.STEP, Operation.ROLLBACK)

        self.app.push_screen(ConfirmDialog(f"Roll back {self.meta.title.lower()}?", [
            "Restores what this step overwrote, from the backup taken before it wrote.",
            "Later steps that depend on it may need to be planned again.",
        ]), done)

    def action_skip(self) -> None:
        if self.check_action("skip", ()) is not True:
            return

        def done(ok: object) -> None:
            if ok:
                self.ctl.run(self.STEP, Operation.SKIP)

        self.app.push_screen(ConfirmDialog(f"Skip {self.meta.title.lower()}?", [
            "Nothing of this step is done; the run goes on with the next step.",
        ]), done)

    @on(StepList.Selected, "#steps")
    def _step_selected(self, event: StepList.Selected) -> None:
        event.stop()
        if event.step_id == self.STEP:
            return
        if self.ctl.reachable(event.step_id):
            self.wizard.show_step(event.step_id)
        else:
            self.notify(f"{self.ctl.title(event.step_id)} comes after {self.ctl.title(self.ctl.current_step())}, "
                        "which is not done yet", severity="warning", markup=False)

    @on(ChangeTable.Highlighted)
    def _change_highlighted(self, event: ChangeTable.Highlighted) -> None:
        self._change_index = event.index

    def copy_text(self) -> str | None:
        """What ctrl+y copies here: the highlighted change's command, else the plan summary."""
        plan = self.ctl.plan_of(self.STEP)
        if plan is None:
            return None
        if self._change_index is not None and self._change_index < len(plan.changes):
            return plan.changes[self._change_index].command
        return plan.summary
