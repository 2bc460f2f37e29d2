"""The base of every step screen: the shell (header, step list, footer) and the step life cycle.

A step screen is built from the engine's state, never the other way round: on mount and on
every update it re-reads status, findings, plan and verification from the controller, so
going back and forth, or resuming after a dropped link, shows the same thing. Operator edits
go into `cluster.plan` (the plan file's data) and make the current plan *stale*: Apply stays
greyed (check_action -> None, reference/textual.md s.2 "Gating Next") until the step is
planned again, so what is applied is always what was reviewed.

Keys: letters act only when no text field has focus (a TextArea or Input would swallow them,
and the footer hides them meanwhile); the wizard's navigation is on ctrl keys that neither
TextArea nor DataTable binds (ctrl+n, ctrl+b).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.content import Content
from textual.screen import Screen
from textual.widget import Widget
from textual.widgets import Footer, Input, Static, TextArea

from backends.state import FINISHED
from backends.steps import STEP_CLASSES
from backends.steps.base import StepPlan, Verification
from widgets.change_table import ChangeTable
from widgets.checks import ChecksView
from widgets.cluster_header import ClusterHeader
from widgets.findings import FindingsView
from widgets.step_list import StepList

from ..controller import SKIPPABLE
from ..convert import change_items, check_items, finding_items, step_items
from ..dialogs import ConfirmDialog, TypedConfirmDialog
from ..messages import Update

if TYPE_CHECKING:
    from ..app import MigrationApp
    from ..controller import Controller

PLANNABLE = frozenset({"pending", "inspecting", "inspected", "planned", "blocked", "failed", "rolled-back"})
APPLYABLE = frozenset({"planned", "failed", "applying"})
# Actions that are single letters: hidden while a text field has focus (it would eat them).
LETTER_ACTIONS = frozenset({"plan", "apply", "verify", "rollback", "skip", "retry", "edit_json",
                            "toggle_target", "toggle_hub", "toggle_remove", "transcript"})

STATUS_TEXT: dict[str, str] = {
    "pending": "not started",
    "inspecting": "inspecting…",
    "inspected": "inspected",
    "planned": "planned: review the changes, then press a to apply",
    "applying": "applying…",
    "applied": "applied: verification pending (press v)",
    "verified": "done and verified",
    "skipped": "skipped",
    "failed": "failed",
    "blocked": "blocked",
    "rolled-back": "rolled back: plan again to redo it",
}


class StepScreen(Screen[None]):
    STEP: ClassVar[str] = ""
    AUTO_FOCUS = None

    BINDINGS = [
        Binding("ctrl+n", "next", "Next", id="next", tooltip="Go to the next step (when this one is done)"),
        Binding("ctrl+b", "back", "Back", id="back", tooltip="Show the previous step"),
        Binding("p", "plan", "Plan", id="plan", tooltip="Inspect again and make a new plan (read-only)"),
        Binding("a", "apply", "Apply", id="apply", tooltip="Apply the reviewed plan (asks first)"),
        Binding("v", "verify", "Verify", id="verify", tooltip="Read the result back and check it"),
        Binding("x", "rollback", "Roll back", id="rollback", tooltip="Restore this step's backup"),
        Binding("s", "skip", "Skip", id="skip", tooltip="Skip this optional step"),
    ]

    def __init__(self) -> None:
        # Classes known before mount: changing them afterwards restyles the whole screen.
        ctl: Controller = self.app.controller  # type: ignore[attr-defined]
        classes = ["step-screen"]
        if ctl.status(self.STEP) in FINISHED:
            classes.append("-done")
        if ctl.blocking(self.STEP):
            classes.append("-blocked")
        super().__init__(id=f"step-{self.STEP}", classes=" ".join(classes))
        self._shown: dict[str, Any] = {}
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
    def status(self) -> str:
        return self.ctl.status(self.STEP)

    @property
    def busy(self) -> str | None:
        return self.ctl.busy.get(self.STEP)

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
        findings = self.ctl.findings(self.STEP)
        self._shown["findings"] = [f.to_json() for f in findings]
        yield FindingsView(finding_items(findings), id="findings")

    def compose_plan(self) -> ComposeResult:
        plan = self.ctl.plan_of(self.STEP)
        self._shown["plan"] = plan.to_json() if plan else None
        yield Static(self.plan_title(), id="plan-title", classes="section", markup=False)
        # always shown (an empty plan says so): the cursor starts here on every step, and a
        # focus target that comes and goes would make where the keys go depend on timing
        yield ChangeTable(change_items(plan.changes) if plan else [], id="changes")

    def compose_checks(self) -> ComposeResult:
        v = self.ctl.verification(self.STEP)
        self._shown["checks"] = [c.to_json() for c in v.checks] if v else None
        title = Static("Verification", id="checks-title", classes="section", markup=False)
        view = ChecksView(check_items(v.checks) if v else [], id="checks")
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
        if self.busy or self.status in FINISHED or self.status in ("applying", "applied"):
            return
        if self.STEP not in self.wizard.refreshed:
            self.wizard.refreshed.add(self.STEP)
            # off in the plan file: skipped, as the headless runner does (reason in the transcript)
            self.ctl.run(self.STEP, "skip" if self.ctl.disabled_by_plan(self.STEP) else "refresh")

    def hear(self, u: Update) -> None:
        if not self.alive:
            return
        if u.kind == "pulls":
            if u.step == self.STEP:
                self.on_pulls(u.cells)
            return
        if u.kind == "event" and u.step not in (None, self.STEP):
            # another step's status: only the sidebar changes
            self.refresh_steps()
            return
        self.on_step_update(u)
        self.schedule_refresh()

    def on_step_update(self, u: Update) -> None:
        """Hook: an update about this step (event, op start/done) before the view refreshes."""

    def on_pulls(self, cells: list[Any]) -> None:
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

    # -- rendering ---------------------------------------------------------------------------------
    def refresh_steps(self) -> None:
        statuses = self.ctl.statuses()
        self._show_if_changed("steps", statuses, lambda: self._set_steps(statuses))

    def _set_steps(self, statuses: dict[str, str]) -> None:
        steps = self.query_one("#steps", StepList)
        steps.set_steps(step_items(statuses))
        steps.current = self.STEP

    def refresh_view(self) -> None:
        """Everything from the controller; each widget is touched only when its data changed
        (engine events arrive by the hundred during a scan, and a re-layout or a footer rebuild
        per event would eat the CPU the engine's etcd client needs)."""
        ident = self.ctl.identity()
        self._show_if_changed("identity", ident, lambda: self.query_one("#header", ClusterHeader).update_identity(
            ident.namespace, ident.etcd, ident.manager, ident.era, ident.dry_run))
        self.refresh_steps()
        ids = self.ctl.step_ids()
        n = ids.index(self.STEP) + 1 if self.STEP in ids else 0
        runbook = self.ctl.runbook(self.STEP).split(":", 1)[0]
        runbook = f"runbook step {runbook}" if runbook[:1].isdigit() else f"runbook: {runbook}"
        self._show_if_changed("title", n, lambda: self.query_one("#step-title", Static).update(Content.assemble(
            (f"step {n} of {len(ids)}  ", "$foreground-muted"), (self.ctl.title(self.STEP), "bold"),
            (f"   ({runbook})", "$foreground-muted"))))
        line = self.state_line()
        self._show_if_changed("state", line.markup, lambda: self.query_one("#step-state", Static).update(line))
        self.set_class(self.status in FINISHED, "-done")
        self.set_class(bool(self.ctl.blocking(self.STEP)), "-blocked")
        self._show_if_changed("findings", [f.to_json() for f in self.ctl.findings(self.STEP)],
                              lambda: self.query_one("#findings", FindingsView).show(
                                  finding_items(self.ctl.findings(self.STEP))))
        plan = self.ctl.plan_of(self.STEP)
        if self.query("#changes"):
            self._show_if_changed("plan", plan.to_json() if plan else None, lambda: self._show_plan(plan))
            title = self.plan_title()
            self._show_if_changed("plan-title", title.markup,
                                  lambda: self.query_one("#plan-title", Static).update(title))
        if self.query("#checks"):
            v = self.ctl.verification(self.STEP)
            self._show_if_changed("checks", [c.to_json() for c in v.checks] if v else None,
                                  lambda: self._show_checks(v))
        self.refresh_step()
        self.refresh_keys()

    def _show_plan(self, plan: StepPlan | None) -> None:
        self.query_one("#changes", ChangeTable).show(change_items(plan.changes) if plan else [])
        self.refresh_bindings()   # the focused table's own keys (copy, edit) depend on its rows

    def _show_checks(self, v: Verification | None) -> None:
        self.query_one("#checks", ChecksView).show(check_items(v.checks) if v else [])
        self.query_one("#checks-title", Static).display = v is not None
        self.query_one("#checks", ChecksView).display = v is not None

    def refresh_keys(self) -> None:
        """refresh_bindings() rebuilds the footer: only when some binding's state changed."""
        names = {b.action for cls in type(self).__mro__ for b in getattr(cls, "BINDINGS", ())
                 if isinstance(b, Binding)}
        state = tuple((a, self.check_action(a, ())) for a in sorted(names))
        state += (("text", self._text_focused()),)
        self._show_if_changed("keys", state, self.refresh_bindings)

    def refresh_step(self) -> None:
        """Hook: the step's own widgets, from the controller's state."""

    def _show_if_changed(self, key: str, value: Any, show: Any) -> None:
        if self._shown.get(key, object()) != value:
            self._shown[key] = value
            show()

    def plan_title(self) -> Content:
        plan = self.ctl.plan_of(self.STEP)
        if plan is None:
            why = "made once nothing blocks (p checks again)" if self.ctl.blocking(self.STEP) else "not made yet"
            return Content.styled(f"Plan: {why}", "$foreground-muted")
        parts: list[tuple[str, str] | str] = [("Plan", "bold"), "  ", plan.summary]
        if self.ctl.stale(self.STEP):
            parts += ["  ", ("(out of date: inputs changed, press p)", "$text-warning bold")]
        return Content.assemble(*parts)

    def state_line(self) -> Content:
        st = self.status
        busy = self.busy
        if busy:
            words = {"refresh": "inspecting and planning…", "apply": "applying…", "verify": "verifying…",
                     "rollback": "rolling back…", "skip": "skipping…"}
            return Content.assemble(("⟳ ", "$text-warning bold"), (words.get(busy, busy + "…"), "bold"),
                                    self.busy_hint())
        if self.ctl.stale(self.STEP) and st in PLANNABLE:
            return Content.assemble(("! ", "$text-warning bold"),
                                    ("inputs changed since the plan: press p to plan again", "$text-warning"))
        text = STATUS_TEXT.get(st, st)
        style = {"verified": "$text-success bold", "failed": "$text-error bold", "blocked": "$text-error bold",
                 "skipped": "$foreground-muted", "applying": "$text-warning bold"}.get(st, "bold")
        glyph = {"verified": "✔ ", "failed": "✗ ", "blocked": "⊘ ", "applying": "⟳ "}.get(st, "• ")
        parts: list[tuple[str, str] | str] = [(glyph, style), (text, style)]
        if st == "blocked":
            b = self.ctl.blocking(self.STEP)
            if b:
                parts += [": ", b[0].message]
                if b[0].fix:
                    parts += ["  fix: ", (b[0].fix, "$text-success")]
        elif st == "failed":
            err = self.ctl.error_of(self.STEP)
            if err:
                parts += [": ", err]
        elif st == "applying":
            parts += [("  interrupted: press a to resume (finished work is not repeated)", "$text-warning")]
        elif st in FINISHED:
            parts += [("   ctrl+n: next step", "$foreground-muted")]
        if self.ctl.dry_run and st in ("planned", "applied", "verified"):
            parts += [("   (dry run: nothing is written)", "$text-warning")]
        return Content.assemble(*parts)

    def busy_hint(self) -> Content:
        return Content("")

    # -- bindings --------------------------------------------------------------------------------
    def _text_focused(self) -> bool:
        return isinstance(self.focused, (TextArea, Input))

    def on_descendant_focus(self) -> None:
        self.refresh_keys()

    def on_descendant_blur(self) -> None:
        self.refresh_keys()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action in LETTER_ACTIONS and self._text_focused():
            return False
        if self.ctl.engine is None:
            return action in ("back",) or None
        st, busy = self.status, self.busy
        if action == "next":
            return True if (st in FINISHED and not busy and self.inputs_ok()) else None
        if action == "back":
            ids = self.ctl.step_ids()
            return self.STEP in ids and ids.index(self.STEP) > 0
        if action == "plan":
            if st not in PLANNABLE:
                return False
            return None if busy else True
        if action == "apply":
            if st not in APPLYABLE:
                return False
            if busy or self.ctl.blocking(self.STEP) and st != "applying":
                return None
            if self.ctl.plan_of(self.STEP) is None or self.ctl.stale(self.STEP) or not self.inputs_ok():
                return None
            return True
        if action == "verify":
            return st in ("applied", "failed") and self.ctl.plan_of(self.STEP) is not None and not busy
        if action == "rollback":
            return (self.ctl.reversible(self.STEP) and self.ctl.has_backup(self.STEP) and not busy
                    and st in ("applied", "verified", "failed"))
        if action == "skip":
            return self.STEP in SKIPPABLE and st not in ("verified", "skipped", "applying") and not busy
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

    def action_plan(self) -> None:
        if self.check_action("plan", ()) is True:
            self.before_plan()
            self.ctl.run(self.STEP, "refresh")

    def before_plan(self) -> None:
        """Hook: push pending edits into the plan before planning."""

    def action_apply(self) -> None:
        if self.check_action("apply", ()) is not True:
            return
        plan = self.ctl.plan_of(self.STEP)
        assert plan is not None
        if self.status == "applying":
            # Resuming an interrupted apply: the same, already confirmed plan.
            self.ctl.run(self.STEP, "apply")
            return
        cls_ = STEP_CLASSES[self.STEP]
        if not cls_.writes:
            self.ctl.run(self.STEP, "apply")
            return
        lines = [plan.summary, f"{len(plan.changes)} change(s), each listed in the plan with its command."]
        lines += self.confirm_lines()
        if self.ctl.dry_run:
            lines.append("Dry run: nothing is written; the wizard records what would change.")
        elif self.ctl.reversible(self.STEP):
            lines.append("A backup is taken first; x rolls this step back.")
        else:
            lines.append("This step cannot be rolled back.")

        def done(ok: object) -> None:
            if ok:
                self.ctl.run(self.STEP, "apply")

        title = f"Apply {self.ctl.title(self.STEP).lower()}?"
        if plan.destructive and not self.ctl.dry_run:
            self.app.push_screen(TypedConfirmDialog(title, lines, self.STEP), done)
        else:
            self.app.push_screen(ConfirmDialog(title, lines), done)

    def confirm_lines(self) -> list[str]:
        """Hook: what else the confirmation says (e.g. the manager is stopped meanwhile)."""
        return []

    def action_verify(self) -> None:
        if self.check_action("verify", ()) is True:
            self.ctl.run(self.STEP, "verify")

    def action_rollback(self) -> None:
        if self.check_action("rollback", ()) is not True:
            return

        def done(ok: object) -> None:
            if ok:
                self.ctl.run(self.STEP, "rollback")

        self.app.push_screen(ConfirmDialog(f"Roll back {self.ctl.title(self.STEP).lower()}?", [
            "Restores what this step overwrote, from the backup taken before it wrote.",
            "Later steps that depend on it may need to be planned again.",
        ]), done)

    def action_skip(self) -> None:
        if self.check_action("skip", ()) is not True:
            return

        def done(ok: object) -> None:
            if ok:
                self.ctl.run(self.STEP, "skip")

        self.app.push_screen(ConfirmDialog(f"Skip {self.ctl.title(self.STEP).lower()}?", [
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
