"""`aliases`: every alias with its current and proposed target; edit a target inline.

An edited target is checked before it is taken: it must parse as 20.09 parses image
references and name an image that exists in the target registry's rescanned metadata
(`images/<quote(target)>/...`, canonical names). Anything else is refused in the table with
the reason (and the closest existing image), and neither the plan nor etcd changes. A valid
edit becomes an override in the plan (`aliases.overrides`) and the step is planned again.
Unresolved aliases are red, risky ones (names 20.09 never finds because of quoting) yellow.
"""

from __future__ import annotations

import difflib
from typing import Any

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.content import Content
from textual.widget import Widget
from textual.widgets import Static

from backends.image_ref import parse_backendai_ref as parse_ref
from backends.plan_file import reference_problem
from widgets.editable_table import EditableTable

from .step import PLANNABLE, StepScreen

COLUMNS = [("alias", "alias"), ("current", "current target"), ("proposed", "proposed target"),
           ("status", "status")]
STYLE = {"unresolvable": "error", "remap": "ok", "override": "ok", "remove": "warning", "migrated": "muted",
         "chain": "muted", "other-registry": "muted", "skip": "muted"}


def short_ref(ref: str, width: int = 34) -> str:
    """A long current target, cut in the middle: registry and name:tag stay recognisable; the
    full value is in the detail line under the table."""
    if len(ref) <= width:
        return ref
    head, _, tail = ref.partition("/")
    last = ref.rsplit("/", 1)[-1]
    short = f"{head}/…/{last}" if tail and len(head) + len(last) + 3 <= width else f"…/{last}"
    return short if len(short) <= width else short[: width - 1] + "…"


class AliasesScreen(StepScreen):
    STEP = "aliases"
    BINDINGS = [
        Binding("d", "toggle_remove", "Remove/keep alias", id="remove",
                tooltip="Delete the highlighted alias (dealias), or keep it again"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self._rows_key: Any = None
        self._highlighted: str | None = None

    def compose_body(self) -> ComposeResult:
        yield from self.compose_findings()
        yield from self.compose_checks()
        yield Static("Aliases  (Enter or e: edit the proposed target · d: remove/keep)", classes="section",
                     markup=False)
        table = EditableTable(id="aliases", cursor_blink=self.wizard.cursor_blink)
        table.validator = self.validate_target
        yield table
        yield Static(id="alias-detail", markup=False)
        yield from self.compose_plan()

    def default_focus(self) -> Widget | None:
        return self.query_one("#aliases", EditableTable).table

    # -- data ------------------------------------------------------------------------------------
    def rows(self) -> list[dict[str, Any]]:
        plan = self.ctl.plan_of(self.STEP)
        return list(plan.data.get("rows", [])) if plan else []

    def refresh_step(self) -> None:
        rows = self.rows()
        key = [(r["alias"], r.get("proposed"), r["status"], r.get("risky")) for r in rows]
        if key != self._rows_key:
            self._rows_key = key
            table_rows, styles = [], {}
            for r in rows:
                status = r["status"] + (" · risky name" if r.get("risky") else "")
                proposed = r.get("proposed") or ("(delete)" if r["status"] == "remove" else
                                                 "(choose a target)" if r["status"] == "unresolvable" else "")
                table_rows.append({"alias": r["alias"], "current": short_ref(r["current"], 24), "proposed": proposed,
                                   "status": status})
                style = STYLE.get(r["status"], "")
                if r.get("risky") and style != "error":
                    style = "warning"
                if style:
                    styles[r["alias"]] = style
            self.query_one("#aliases", EditableTable).set_rows(COLUMNS, table_rows, row_key="alias",
                                                               editable="proposed", styles=styles)
            self.refresh_bindings()   # the table's own Edit key appears once it has rows
        self._show_detail()

    def _show_detail(self) -> None:
        alias = self._highlighted
        row = next((r for r in self.rows() if r["alias"] == alias), None)
        detail = self.query_one("#alias-detail", Static)
        if row is None:
            detail.update(Content.styled("move over an alias to see how it resolves", "$foreground-muted"))
            return
        parts: list[tuple[str, str] | str] = [(row["alias"], "bold"), " → ", row["current"]]
        if row.get("resolved"):
            parts += [("  resolves to ", "$foreground-muted"), row["resolved"]]
        lines = [Content.assemble(*parts)]
        if row.get("note"):
            style = "$text-error" if row["status"] == "unresolvable" else "$foreground-muted"
            lines.append(Content.styled(row["note"], style))
        if row.get("risk"):
            lines.append(Content.styled(row["risk"], "$text-warning"))
        detail.update(Content("\n").join(lines))

    @on(EditableTable.RowHighlighted, "#aliases")
    def _row(self, event: EditableTable.RowHighlighted) -> None:
        self._highlighted = event.row_id
        self._show_detail()

    # -- editing ---------------------------------------------------------------------------------
    def validate_target(self, alias: str, value: str) -> str | None:
        """None to accept; else why not (shown under the input, and nothing changes)."""
        if self.status not in PLANNABLE or self.busy:
            return "this step is applied; roll it back (x) to change aliases"
        cluster = self.ctl.cluster()
        if cluster is None:
            return "the run is not open"
        value = value.strip()
        target = cluster.plan.target
        if not value:
            return "type an image on the target registry, or press Escape and d to remove the alias"
        extra = self.ctl.extra.get(self.STEP, {})
        known = extra.get("known") or [target]
        why = reference_problem(value, list(known))
        if why:   # the rule the plan file's aliases.overrides follow too
            return f"{value!r} {why}"
        ref = parse_ref(value, known)
        if ref.registry != target:
            return (f"{ref.canonical} is on {ref.registry}, not {target}: aliases are remapped to the target "
                    f"registry (write e.g. {target}/stable/NAME:TAG)")
        available: list[str] = extra.get("available") or []
        if ref.canonical not in available:
            near = difflib.get_close_matches(ref.canonical, available, n=1, cutoff=0.5)
            hint = f"; closest: {near[0]}" if near else ""
            return f"{ref.canonical} is not in {target}'s rescanned metadata ({len(available)} images){hint}"
        return None

    @on(EditableTable.Edited, "#aliases")
    def _edited(self, event: EditableTable.Edited) -> None:
        cluster = self.ctl.cluster()
        if cluster is None:
            return
        extra = self.ctl.extra.get(self.STEP, {})
        ref = parse_ref(event.value.strip(), extra.get("known") or [cluster.plan.target])
        a = cluster.plan.aliases
        a.overrides[event.row_id] = ref.canonical
        for lst in (a.remove, a.skip):
            if event.row_id in lst:
                lst.remove(event.row_id)
        self.ctl.run(self.STEP, "refresh")

    def action_toggle_remove(self) -> None:
        if self.check_action("toggle_remove", ()) is not True:
            return
        cluster = self.ctl.cluster()
        alias = self.query_one("#aliases", EditableTable).cursor_row_id
        if cluster is None or alias is None:
            return
        a = cluster.plan.aliases
        if alias in a.remove:
            a.remove.remove(alias)
        else:
            a.remove.append(alias)
            a.overrides.pop(alias, None)
            if alias in a.skip:
                a.skip.remove(alias)
        self.ctl.run(self.STEP, "refresh")

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "toggle_remove":
            if self._text_focused() or self.ctl.engine is None or self.status not in PLANNABLE:
                return False
            return None if self.busy else True
        return super().check_action(action, parameters)
