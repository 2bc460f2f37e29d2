"""`registry`: edit and validate the registry JSON, review the etcd diff, stop/write/rescan/start.

The editor validates as you type with `backends.registry_doc.validate` (the same rules the
engine applies, line:column and the rule's fix); while any error stands, Apply and Next are
greyed and the plan is not touched, so nothing invalid can reach etcd. A valid edit is
adopted into the plan (`cluster.set_registry_json`) and makes the current plan stale: Apply
waits for `p`, which rescans and shows the new key diff.
"""

from __future__ import annotations

from typing import Any

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.content import Content
from textual.events import Resize
from textual.widgets import Static, TextArea

from backends.registry_document import validate
from widgets.counters import CounterBar
from widgets.items import IssueItem
from widgets.json_editor import JsonEditor

from ..convert import issue_items
from ..masked_registry_text import MaskedRegistryText
from .step import StepScreen

PHASES = (("manager-stopped", "stop the manager"), ("config-written", "write the registry keys (one transaction)"),
          ("images-written", "write the rescanned image keys"), ("manager-started", "start the manager"))


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
                cluster = self.ctl.cluster()
                self.masker = MaskedRegistryText(cluster.plan.registry_json if cluster else "{}")
                yield JsonEditor(self.masker.masked, self.validator, id="editor",
                                 cursor_blink=self.wizard.cursor_blink)
            with Vertical(id="registry-plan-box"):
                yield from self.compose_plan()

    def on_resize(self, event: Resize) -> None:
        self.set_class(event.size.width < 150, "-narrow")

    # -- validation ------------------------------------------------------------------------------
    def validator(self, text: str) -> list[IssueItem]:
        cluster = self.ctl.cluster()
        target = cluster.plan.target if cluster else None
        items = issue_items(validate(text, target=target))
        if self.masker is not None and not any(i.severity == "error" for i in items):
            _real, extra = self.masker.unmask(text)
            items += extra
        return items

    @on(JsonEditor.Validated, "#editor")
    def _validated(self, event: JsonEditor.Validated) -> None:
        event.stop()
        self.valid = event.ok
        cluster = self.ctl.cluster()
        if event.ok and cluster is not None and self.masker is not None:
            real, issues = self.masker.unmask(event.text)
            if real is None or issues:
                self.valid = False
            elif real != cluster.plan.registry_json and self.editable():
                cluster.set_registry_json(real)
        self.refresh_view()

    def editable(self) -> bool:
        return self.status not in ("applying", "applied", "verified") and not self.busy

    def inputs_ok(self) -> bool:
        return self.valid

    def refresh_step(self) -> None:
        editor = self.query_one("#editor", JsonEditor)
        area = editor.query_one(TextArea)
        area.read_only = not self.editable()
        plan = self.ctl.plan_of(self.STEP)
        counters = self.ctl.counters.get(self.STEP) or (plan.data.get("counters") if plan else None) or {}
        shown = {k: counters[k] for k in ("repositories", "tags", "images", "skipped", "multiarch", "keys")
                 if k in counters}
        bar = self.query_one("#counters", CounterBar)
        bar.show(shown, title="rescan", styles={"skipped": "warning"} if shown.get("skipped") else {})
        self.query_one("#phases", Static).update(self.phases())

    def phases(self) -> Content:
        eng = self.ctl.engine
        st = eng.state.step(self.STEP) if eng else None
        plan = self.ctl.plan_of(self.STEP)
        lines: list[Content] = []
        running = self.busy == "apply"
        first_open = True
        for key, label in PHASES:
            done = bool(st and st.journaled(key))
            if done:
                lines.append(Content.assemble(("✓ ", "$text-success"), label))
            elif running and first_open:
                lines.append(Content.assemble(("⟳ ", "$text-warning bold"), (label, "bold")))
                first_open = False
            else:
                lines.append(Content.assemble(("· ", "$foreground-muted"), (label, "$foreground-muted")))
                first_open = False if running else first_open
        skipped: list[dict[str, Any]] = sorted(  # the scan is concurrent: its order is not stable
            plan.data.get("skipped", []) if plan else [], key=lambda s: (s.get("repo", ""), s.get("tag") or ""))
        if skipped:
            lines.append(Content.styled(f"skipped by the rescan ({len(skipped)}), and why:", "$foreground-muted"))
            for s in skipped[:12]:
                name = s.get("repo", "?") + (f":{s['tag']}" if s.get("tag") else "")
                lines.append(Content.assemble(("  – ", "$foreground-muted"), name, ("  " + str(s.get("reason", "")),
                                                                                    "$text-warning")))
            if len(skipped) > 12:
                lines.append(Content.styled(f"  … and {len(skipped) - 12} more (see the transcript)",
                                            "$foreground-muted"))
        msgs = self.ctl.phases.get(self.STEP) or []
        if msgs and (running or (st and st.status in ("applying", "failed"))):
            lines.append(Content.assemble(("now: ", "$foreground-muted"), msgs[-1]))
        return Content("\n").join(lines)

    def confirm_lines(self) -> list[str]:
        plan = self.ctl.plan_of(self.STEP)
        n_img = len(plan.data.get("image_puts", {})) if plan else 0
        return ["The manager is stopped, the registry keys are written in one transaction, "
                f"{n_img} rescanned image keys are written, and the manager is started again.",
                "Sessions keep running; service ports disconnect briefly while the manager restarts."]

    def action_edit_json(self) -> None:
        self.query_one("#editor", JsonEditor).text_area.focus()

    def copy_text(self) -> str | None:
        if isinstance(self.focused, TextArea):
            return self.focused.selected_text or None
        return super().copy_text()
