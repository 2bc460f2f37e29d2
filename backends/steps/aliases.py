"""`aliases`: point every alias that resolves to Docker Hub at the same image on the target.

How aliases resolve (and what each should point at) is `alias_analysis`: `python:latest`
means `index.docker.io/lablup/python:latest` to 20.09. Everything without a proposal is
flagged for the operator, who can choose a target in the wizard: an edited target is taken
only when it parses as 20.09 parses references and names an image in the target registry's
rescanned metadata; anything else is refused with the reason and the closest existing image.
"""

from __future__ import annotations

import difflib
import shlex
from collections.abc import Mapping
from typing import Any

from ..etcd import ALIASES_PREFIX
from ..events import ChangeApplied, PlannedChange
from ..image_ref import parse_backendai_ref
from ..images import resolve_alias
from ..plan_file import PlanFile, reference_problem
from .alias_analysis import AliasRow, analyse, hub_aliases, target_images
from .base import Finding, Step, StepMeta, StepPlan, Verification
from .edits import Edit, EditResult, SetAliasTarget, ToggleAliasRemoval
from .views import AliasView


def _alias_cmd(alias: str, target: str | None) -> str:
    if target is None:
        return f"backend.ai mgr etcd dealias {shlex.quote(alias)}"
    return f"backend.ai mgr etcd alias {shlex.quote(alias)} {shlex.quote(target)}"


class AliasesStep(Step):
    meta = StepMeta("aliases", "Image aliases", "Aliases", "3: update image aliases (backend.ai mgr etcd alias)",
                    reversible=True)

    # -- the wizard's view and edits ---------------------------------------------------------
    @classmethod
    def inputs(cls, plan_file: PlanFile) -> dict[str, Any]:
        a = plan_file.aliases
        return {"overrides": dict(a.overrides), "skip": list(a.skip), "remove": list(a.remove)}

    @classmethod
    def restore_inputs(cls, plan_file: PlanFile, saved: Mapping[str, Any]) -> bool:
        if cls.inputs(plan_file) == dict(saved):
            return False
        a = plan_file.aliases
        a.overrides = {str(k): str(v) for k, v in dict(saved.get("overrides", {})).items()}
        a.skip = [str(s) for s in saved.get("skip", [])]
        a.remove = [str(s) for s in saved.get("remove", [])]
        return True

    @staticmethod
    def rows(plan: StepPlan | None) -> list[AliasView]:
        return [AliasRow.view(r) for r in plan.data.get("rows", [])] if plan else []

    async def load_edit_context(self) -> dict[str, Any]:
        """The canonical names in the target's rescanned metadata, and the registries a
        reference may name."""
        target = self.cluster.plan.target
        return {"available": sorted(await target_images(self)),
                "known": [*list(await self.cluster.registries()), target]}

    def check_edit(self, edit: Edit) -> EditResult:
        if isinstance(edit, ToggleAliasRemoval):
            return EditResult.ok()
        if not isinstance(edit, SetAliasTarget):
            return super().check_edit(edit)
        value = edit.target.strip()
        target = self.cluster.plan.target
        if not value:
            return EditResult.refused("type an image on the target registry, or press Escape and d to remove "
                                      "the alias")
        known = self.edit_context.get("known") or [target]
        available: list[str] = self.edit_context.get("available") or []
        why = reference_problem(value, list(known))
        if why:   # the rule the plan file's aliases.overrides follow too
            return EditResult.refused(f"{value!r} {why}")
        ref = parse_backendai_ref(value, known)
        if ref.registry != target:
            return EditResult.refused(f"{ref.canonical} is on {ref.registry}, not {target}: aliases are remapped "
                                      f"to the target registry (write e.g. {target}/stable/NAME:TAG)")
        if ref.canonical not in available:
            near = difflib.get_close_matches(ref.canonical, available, n=1, cutoff=0.5)
            hint = f"; closest: {near[0]}" if near else ""
            return EditResult.refused(f"{ref.canonical} is not in {target}'s rescanned metadata "
                                      f"({len(available)} images){hint}")
        return EditResult.ok(ref.canonical)

    def take_edit(self, edit: Edit) -> EditResult:
        result = self.check_edit(edit)
        if not result.taken:
            return result
        a = self.cluster.plan.aliases
        if isinstance(edit, SetAliasTarget):
            a.overrides[edit.alias] = result.message
            for lst in (a.remove, a.skip):
                if edit.alias in lst:
                    lst.remove(edit.alias)
        elif isinstance(edit, ToggleAliasRemoval):
            if edit.alias in a.remove:
                a.remove.remove(edit.alias)
            else:
                a.remove.append(edit.alias)
                a.overrides.pop(edit.alias, None)
                if edit.alias in a.skip:
                    a.skip.remove(edit.alias)
        return result

    # -- the protocol --------------------------------------------------------------------------

    async def inspect(self) -> list[Finding]:
        rows = await analyse(self)
        out = []
        n_remap = sum(r.status in ("remap", "override") for r in rows)
        out.append(self.finding(Finding("info", "aliases", f"{len(rows)} aliases: {n_remap} to remap, "
                                        f"{sum(r.status == 'migrated' for r in rows)} already on the target, "
                                        f"{sum(r.status == 'chain' for r in rows)} chained")))
        if not await target_images(self):
            out.append(self.finding(Finding("blocking", "no-target-metadata",
                                            f"no image metadata for {self.cluster.plan.target} in etcd",
                                            "apply the registry step (rescan) first")))
        for r in rows:
            if r.status == "unresolvable":
                out.append(self.finding(Finding("warning", "unresolvable", f"alias {r.alias!r} -> {r.current}: {r.note}",
                                                "set [aliases.overrides] or [aliases] remove in the plan")))
            if r.risky:
                out.append(self.finding(Finding("warning", "quoted-name", f"alias {r.alias!r}: {r.risk}",
                                                "prefer names without ':' or '/' (remove it and add one)")))
        return out

    async def plan(self) -> StepPlan:
        rows = await analyse(self)
        changes = []
        for r in rows:
            key = f"{ALIASES_PREFIX}/{r.stored_key}"
            if r.status in ("remap", "override") and r.proposed and r.proposed != r.current:
                changes.append(PlannedChange(f"etcd {key}", "put", r.current, r.proposed,
                                             _alias_cmd(r.alias, r.proposed), note=r.note))
            elif r.status == "remove":
                changes.append(PlannedChange(f"etcd {key}", "delete", r.current, None, _alias_cmd(r.alias, None),
                                             note=r.note))
        left = hub_aliases(rows)
        summary = f"{len(changes)} alias change(s)"
        if left:
            summary += f"; {len(left)} alias(es) will still point at Docker Hub: " + ", ".join(r.alias for r in left)
        return StepPlan(summary, changes, data={"rows": [r.to_json() for r in rows]})

    async def apply(self, plan: StepPlan) -> dict[str, Any]:
        keys = [c.target.removeprefix("etcd ") for c in plan.changes]
        if self.state.backup is None:
            self.state.backup = {"aliases": {k: await self.cluster.kv_get(k) for k in keys}}
            self.journal("backup")
        puts = {c.target.removeprefix("etcd "): c.after for c in plan.changes if c.action == "put" and c.after}
        deletes = [c.target.removeprefix("etcd ") for c in plan.changes if c.action == "delete"]
        await self.cluster.kv_write(puts, deletes=deletes)   # one transaction: all or nothing
        for c in plan.changes:
            self.emit(ChangeApplied(self.id, c.target, c.action, c.before, c.after, c.command))
        self.journal("written")
        return {"changed": len(plan.changes)}

    async def verify(self, plan: StepPlan) -> Verification:
        v = Verification()
        for c in plan.changes:
            key = c.target.removeprefix("etcd ")
            got = await self.cluster.kv_get(key)
            shown = "deleted" if got is None else repr(got)
            v.add(f"{key}", got == c.after, shown if got == c.after else f"expected {c.after!r}, found {got!r}")
        available = await target_images(self)
        raw = await self.cluster.aliases_raw()
        known = list((await self.cluster.registries()).keys())
        for c in plan.changes:
            if c.action != "put" or not c.after:
                continue
            seg = c.target.removeprefix(f"etcd {ALIASES_PREFIX}/")
            try:
                final, _ = resolve_alias(seg, raw)
                ref = parse_backendai_ref(final, known)
            except ValueError as e:
                v.add(f"alias {seg} resolves", False, str(e))
                continue
            v.add(f"alias {seg} resolves to a target image", ref.canonical in available, ref.canonical)
        if not plan.changes:
            v.add("no alias needed a change", True)
        return v

    async def rollback(self) -> list[PlannedChange]:
        if not self.state.backup:
            return []
        before: dict[str, str | None] = self.state.backup["aliases"]
        changes = []
        puts, deletes = {}, []
        for k, old in before.items():
            cur = await self.cluster.kv_get(k)
            if cur == old:
                continue
            if old is None:
                deletes.append(k)
            else:
                puts[k] = old
            alias = k.removeprefix(ALIASES_PREFIX + "/")
            changes.append(PlannedChange(f"etcd {k}", "put" if old is not None else "delete", cur, old,
                                         _alias_cmd(alias, old)))
        await self.cluster.kv_write(puts, deletes=deletes)
        for c in changes:
            self.emit(ChangeApplied(self.id, c.target, c.action, c.before, c.after, c.command))
        return changes
