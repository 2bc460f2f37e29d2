"""`allowlists`: each domain's `allowed_docker_registries`, before and after, editable per domain.

g toggles the target registry and h toggles index.docker.io on the highlighted domain; Enter
or e edits the whole list (comma-separated, each a registry host[:port]). Every edit becomes
an explicit list for that domain in the plan (`allowlists.domains`) and the step is planned
again; the plan shows the exact SQL (one guarded UPDATE per domain, in one transaction)
before anything runs. Dropping Docker Hub while aliases still resolve there is refused by
the step itself (a blocking finding).
"""

from __future__ import annotations

from typing import Any

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.widget import Widget
from textual.widgets import Static

from backends.image_ref import DOCKER_HUB
from backends.registry_document import valid_registry_name
from widgets.editable_table import EditableTable

from .step import PLANNABLE, StepScreen

COLUMNS = [("domain", "domain"), ("before", "allowed now"), ("after", "allowed after"), ("change", "change")]


def _split(value: str) -> list[str]:
    return list(dict.fromkeys(p.strip() for p in value.replace(" ", ",").split(",") if p.strip()))


class AllowlistsScreen(StepScreen):
    STEP = "allowlists"
    BINDINGS = [
        Binding("g", "toggle_target", "Toggle target", id="toggle-target",
                tooltip="Allow or disallow the target registry for the highlighted domain"),
        Binding("h", "toggle_hub", "Toggle Docker Hub", id="toggle-hub",
                tooltip="Allow or disallow index.docker.io for the highlighted domain"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self._rows_key: Any = None

    def compose_body(self) -> ComposeResult:
        yield from self.compose_findings()
        yield from self.compose_checks()
        yield Static("Domains  (Enter or e: edit the list · g: toggle the target · h: toggle Docker Hub)",
                     classes="section", markup=False)
        table = EditableTable(id="domains", cursor_blink=self.wizard.cursor_blink)
        table.validator = self.validate_list
        yield table
        yield from self.compose_plan()

    def default_focus(self) -> Widget | None:
        return self.query_one("#domains", EditableTable).table

    # -- data ------------------------------------------------------------------------------------
    def proposal(self) -> dict[str, tuple[list[str], list[str]]]:
        """domain -> (before, after): after from the plan where it changes, else unchanged."""
        before: dict[str, list[str]] = self.ctl.extra.get(self.STEP, {}).get("domains", {})
        plan = self.ctl.plan_of(self.STEP)
        changed: dict[str, dict[str, list[str]]] = plan.data.get("domains", {}) if plan else {}
        out = {}
        for name, b in before.items():
            ba = changed.get(name)
            out[name] = (list(ba["before"]), list(ba["after"])) if ba else (list(b), list(b))
        for name, ba in changed.items():
            out.setdefault(name, (list(ba["before"]), list(ba["after"])))
        return dict(sorted(out.items()))

    def refresh_step(self) -> None:
        prop = self.proposal()
        key = sorted((k, tuple(b), tuple(a)) for k, (b, a) in prop.items())
        if key == self._rows_key:
            return
        self._rows_key = key
        rows, styles = [], {}
        target = self.ctl.cluster().plan.target if self.ctl.cluster() else ""
        for name, (b, a) in prop.items():
            added = [r for r in a if r not in b]
            dropped = [r for r in b if r not in a]
            change = " ".join([*(f"+{r}" for r in added), *(f"-{r}" for r in dropped)]) or "unchanged"
            rows.append({"domain": name, "before": ", ".join(b) or "(none)", "after": ", ".join(a) or "(none)",
                         "change": change})
            if target and target not in a:
                styles[name] = "error"
            elif added or dropped:
                styles[name] = "ok"
            else:
                styles[name] = "muted"
        self.query_one("#domains", EditableTable).set_rows(COLUMNS, rows, row_key="domain", editable="after",
                                                           styles=styles)
        self.refresh_bindings()   # the table's own Edit key appears once it has rows

    # -- editing ---------------------------------------------------------------------------------
    def validate_list(self, domain: str, value: str) -> str | None:
        if self.status not in PLANNABLE or self.busy:
            return "this step is applied; roll it back (x) to change allowlists"
        names = _split(value)
        if value.strip() in ("(none)",):
            names = []
        for n in names:
            why = valid_registry_name(n)
            if why:
                return f"{n!r} {why}"
        return None

    def _set(self, domain: str, names: list[str]) -> None:
        cluster = self.ctl.cluster()
        if cluster is None:
            return
        cluster.plan.allowlists.domains[domain] = names
        self.ctl.run(self.STEP, "refresh")

    @on(EditableTable.Edited, "#domains")
    def _edited(self, event: EditableTable.Edited) -> None:
        names = [] if event.value.strip() == "(none)" else _split(event.value)
        self._set(event.row_id, names)

    def _toggle(self, registry: str) -> None:
        domain = self.query_one("#domains", EditableTable).cursor_row_id
        if domain is None:
            return
        _b, after = self.proposal().get(domain, ([], []))
        names = [r for r in after if r != registry] if registry in after else [*after, registry]
        self._set(domain, names)

    def action_toggle_target(self) -> None:
        cluster = self.ctl.cluster()
        if cluster is not None and self.check_action("toggle_target", ()) is True:
            self._toggle(cluster.plan.target)

    def action_toggle_hub(self) -> None:
        if self.check_action("toggle_hub", ()) is True:
            self._toggle(DOCKER_HUB)

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action in ("toggle_target", "toggle_hub"):
            if self._text_focused() or self.ctl.engine is None or self.status not in PLANNABLE:
                return False
            return None if self.busy else True
        return super().check_action(action, parameters)
