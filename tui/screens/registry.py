"""`registry`: edit and validate the registry JSON, review the etcd diff, stop/write/rescan/start.

The editor validates as you type with the registry step's own rules (line:column and the
rule's fix); while any error stands, Apply and Next are greyed and the plan is not touched,
so nothing invalid can reach etcd. A valid edit is posted as `SetRegistryDocument` (with the
real password put back in place of the mask) and makes the current plan stale: Apply waits
for `p`, which rescans and shows the new key diff.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.content import Content
from textual.events import Resize
from textual.widgets import Static, TextArea

from backends.statuses import Operation, Status
from backends.steps.edits import SetRegistryDocument
from widgets.counters import CounterBar
from widgets.items import IssueItem
from widgets.json_editor import JsonEditor

from ..convert import issue_items
from ..masked_registry_text import MaskedRegistryText
from .step import BUSY_TEXT, StepScreen

if TYPE_CHECKING:
    from backends.steps.registry import RegistryStep
    from backends.steps.views import RegistryProgress


class RegistryScreen(StepScreen):
    STEP = "registry"
    BINDINGS = [
        Binding("e", "edit_json", "Edit JSON", id="edit", tooltip="Put the cursor in the registry JSON"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.set_class(self.app.size.width < 150, "-narrow")   # editor above the plan, not beside it
        self.valid = True
        self.masker: MaskedRegistryText | None = None

    def compose_body(self) -> ComposeResult:
        yield from self.compose_findings()
        yield from self.compose_checks()
        yield Static("Rescan and apply", id="progress-title", classes="section", markup=False)
        yield CounterBar(id="counters")
        yield Static(id="phases", markup=False)
        with Horizontal(id="registry-split"):
            with Vertical(id="registry-editor-box"):
                yield Static("Registry JSON  (e: edit · Esc: leave · F8: next issue)", classes="section",
                             markup=False)
                step = self.step()
                self.masker = MaskedRegistryText(step.document() if step else "{}")
                yield JsonEditor(self.masker.masked, self.validator, id="editor",
                                 cursor_blink=self.wizard.cursor_blink)
            with Vertical(id="registry-plan-box"):
                yield from self.compose_plan()

    def on_resize(self, event: Resize) -> None:
        self.set_class(event.size.width < 150, "-narrow")

    def help_notes(self) -> list[str]:
        return ["In the registry JSON: Esc leaves the editor, F8 moves to the next issue. Apply and Next wait "
                "while the JSON has an error; a valid edit makes the plan out of date until p."]

    def step(self) -> RegistryStep | None:
        return self.ctl.step_view(self.STEP)  # type: ignore[return-value]

    # -- validation ------------------------------------------------------------------------------
    def validator(self, text: str) -> list[IssueItem]:
        step = self.step()
        if step is None:
            return []
        items = issue_items(step.check_document(text))
        if self.masker is not None and not any(i.severity == "error" for i in items):
            _real, extra = self.masker.unmask(text)
            items += extra
        return items

    @on(JsonEditor.Validated, "#editor")
    def _validated(self, event: JsonEditor.Validated) -> None:
        event.stop()
        self.valid = event.ok
        step = self.step()
        if event.ok and step is not None and self.masker is not None:
            real, issues = self.masker.unmask(event.text)
            if real is None or issues:
                self.valid = False
            elif real != step.document() and self.editable():
                result = self.ctl.edit(SetRegistryDocument(real), replan=False)
                self.valid = result.taken
        self.refresh_view()

    def editable(self) -> bool:
        return self.status not in (Status.APPLYING, Status.APPLIED, Status.VERIFIED) and not self.busy

    def inputs_ok(self) -> bool:
        return self.valid

    def refresh_step(self) -> None:
        editor = self.query_one("#editor", JsonEditor)
        area = editor.query_one(TextArea)
        area.read_only = not self.editable()
        step = self.step()
        view = step.progress_view(self.ctl.plan_of(self.STEP), self.ctl.counters.get(self.STEP)) if step else None
        shown = view.counters if view else {}
        bar = self.query_one("#counters", CounterBar)
        bar.show(shown, title="rescan", styles={"skipped": "warning"} if shown.get("skipped") else {})
        self.query_one("#phases", Static).update(self.phases(view) if view else Content(""))

    def phases(self, view: RegistryProgress) -> Content:
        lines: list[Content] = []
        running = self.busy is Operation.APPLY
        first_open = True
        for phase in view.phases:
            if phase.done:
                lines.append(Content.assemble(("✓ ", "$text-success"), phase.label))
            elif running and first_open:
                lines.append(Content.assemble(("⟳ ", "$text-warning bold"), (phase.label, "bold")))
                first_open = False
            else:
                lines.append(Content.assemble(("· ", "$foreground-muted"), (phase.label, "$foreground-muted")))
                first_open = False if running else first_open
        if view.skipped:
            lines.append(Content.styled(f"skipped by the rescan ({len(view.skipped)}), and why:",
                                        "$foreground-muted"))
            for s in view.skipped[:12]:
                lines.append(Content.assemble(("  – ", "$foreground-muted"), s.name, ("  " + s.reason,
                                                                                      "$text-warning")))
            if len(view.skipped) > 12:
                lines.append(Content.styled(f"  … and {len(view.skipped) - 12} more (see the transcript)",
                                            "$foreground-muted"))
        msgs = self.ctl.phases.get(self.STEP) or []
        if msgs and (running or self.status in (Status.APPLYING, Status.FAILED)):
            lines.append(Content.assemble(("now: ", "$foreground-muted"), msgs[-1]))
        return Content("\n").join(lines)

    def action_edit_json(self) -> None:
        """Once the step is applied the editor is read-only: say so and how to edit again,
        rather than put the cursor in a field that ignores every key typed."""
        why = self.not_editable_reason()
        if why:
            self.notify(why, severity="warning", markup=False)
            return
        self.query_one("#editor", JsonEditor).text_area.focus()

    def not_editable_reason(self) -> str | None:
        if self.editable():
            return None
        if self.busy:
            return f"the registry step is {BUSY_TEXT[self.busy].rstrip('…')}; the JSON can be edited once it ends"
        if self.check_action("rollback", ()) is True:
            return f"the registry step is {self.status}; roll it back (x) to edit the JSON"
        return f"the registry step is {self.status}; its JSON is what was applied and cannot be edited now"

    def copy_text(self) -> str | None:
        if isinstance(self.focused, TextArea):
            return self.focused.selected_text or None
        return super().copy_text()
