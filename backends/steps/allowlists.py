"""`allowlists`: per domain, allow the target registry and stop allowing Docker Hub.

Session creation checks `image_ref.registry in domain.allowed_docker_registries`
(gateway/session.py @20.09), so the target must be added before users start sessions from
it, and `index.docker.io` may only go once no alias resolves there any more, or old aliases
fail with "unknown alias or disallowed registry" (api/session.py @20.09.29; docs/backendai-etcd.md#session-start).
All domains change in one transaction that refuses if a row changed since the plan.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..db import DomainSnapshot, render_allowlist_update
from ..events import ChangeApplied, PlannedChange
from ..image_ref import DOCKER_HUB
from ..plan_file import PlanFile
from ..registry_document import valid_registry_name
from .alias_analysis import analyse, hub_aliases
from .base import Finding, Step, StepMeta, StepPlan, Verification
from .edits import Edit, EditResult, SetDomainRegistries, ToggleDomainRegistry
from .views import DomainView


def _show(lst: list[str]) -> str:
    return "{" + ",".join(lst) + "}"


def split_registries(text: str) -> list[str]:
    """A list as typed in the wizard: comma- or space-separated, "(none)" for an empty one."""
    if text.strip() == "(none)":
        return []
    return list(dict.fromkeys(p.strip() for p in text.replace(" ", ",").split(",") if p.strip()))


class AllowlistsStep(Step):
    meta = StepMeta("allowlists", "Domain allowlists", "Allowlists",
                    "4: update each domain's allowed_docker_registries", reversible=True)

    # -- the wizard's view and edits ---------------------------------------------------------
    @classmethod
    def inputs(cls, plan_file: PlanFile) -> dict[str, Any]:
        w = plan_file.allowlists
        return {"add": list(w.add), "remove": list(w.remove), "domains": {k: list(v) for k, v in w.domains.items()}}

    @classmethod
    def restore_inputs(cls, plan_file: PlanFile, saved: Mapping[str, Any]) -> bool:
        if cls.inputs(plan_file) == dict(saved):
            return False
        w = plan_file.allowlists
        w.add = [str(s) for s in saved.get("add", [])]
        w.remove = [str(s) for s in saved.get("remove", [])]
        w.domains = {str(k): [str(n) for n in v] for k, v in dict(saved.get("domains", {})).items()}
        return True

    def domains(self, plan: StepPlan | None) -> list[DomainView]:
        """Every domain, before and after: after from the plan where it changes, else unchanged."""
        changed: dict[str, dict[str, list[str]]] = plan.data.get("domains", {}) if plan else {}
        out: dict[str, DomainView] = {}
        for name, now in dict(self.edit_context.get("domains", {})).items():
            ba = changed.get(name)
            out[name] = DomainView(name, list(ba["before"]), list(ba["after"])) if ba else \
                DomainView(name, list(now), list(now))
        for name, ba in changed.items():
            out.setdefault(name, DomainView(name, list(ba["before"]), list(ba["after"])))
        return [out[k] for k in sorted(out)]

    async def load_edit_context(self) -> dict[str, Any]:
        """Every domain's list as read now (the table shows the unchanged ones too)."""
        return {"domains": {d.name: list(d.allowed_docker_registries) for d in await self.cluster.domains()}}

    def check_edit(self, edit: Edit) -> EditResult:
        if isinstance(edit, ToggleDomainRegistry):
            return EditResult.ok()
        if not isinstance(edit, SetDomainRegistries):
            return super().check_edit(edit)
        for n in split_registries(edit.text):
            why = valid_registry_name(n)
            if why:
                return EditResult.refused(f"{n!r} {why}")
        return EditResult.ok()

    def take_edit(self, edit: Edit) -> EditResult:
        result = self.check_edit(edit)
        if not result.taken:
            return result
        if isinstance(edit, SetDomainRegistries):
            names = split_registries(edit.text)
        elif isinstance(edit, ToggleDomainRegistry):
            registry = DOCKER_HUB if edit.hub else self.cluster.plan.target
            plan = self.state.plan
            after = next((d.after for d in self.domains(StepPlan.from_json(plan) if plan else None)
                          if d.domain == edit.domain), [])
            names = [r for r in after if r != registry] if registry in after else [*after, registry]
        else:
            return super().check_edit(edit)
        self.cluster.plan.allowlists.domains[edit.domain] = names
        return result

    async def _proposal(self) -> tuple[dict[str, tuple[list[str], list[str]]], list[Finding]]:
        plan = self.cluster.plan.allowlists
        add = self.cluster.plan.allowlist_add()
        domains = await self.cluster.domains()
        findings: list[Finding] = []
        names = {d.name for d in domains}
        for name in plan.domains:
            if name not in names:
                findings.append(Finding("blocking", "unknown-domain", f"the plan sets domain {name!r}, which does not exist",
                                        "remove it from [allowlists.domains] or check its spelling"))
        out: dict[str, tuple[list[str], list[str]]] = {}
        for d in domains:
            before = list(d.allowed_docker_registries)
            if d.name in plan.domains:
                after = list(dict.fromkeys(plan.domains[d.name]))
            else:
                after = list(before)
                for r in add:
                    if r not in after:
                        after.append(r)
                after = [r for r in after if r not in plan.remove]
            out[d.name] = (before, after)
        drops_hub = any(DOCKER_HUB in b and DOCKER_HUB not in a for b, a in out.values())
        if drops_hub:
            left = hub_aliases(await analyse(self))
            if left:
                findings.append(Finding(
                    "blocking", "aliases-on-docker-hub",
                    f"dropping {DOCKER_HUB} is refused while {len(left)} alias(es) still resolve there: "
                    + ", ".join(f"{r.alias} -> {r.current}" for r in left),
                    f"remap or remove them in the aliases step, or keep {DOCKER_HUB} "
                    "(set allowlists.remove = [] or list the domains explicitly)"))
        target = self.cluster.plan.target
        for name, (_b, a) in out.items():
            if target not in a:
                findings.append(Finding("warning", "target-not-allowed",
                                        f"domain {name!r} will not allow {target}: its users cannot start "
                                        "sessions from the new registry"))
            if not a:
                findings.append(Finding("warning", "empty-allowlist",
                                        f"domain {name!r} will allow no registry at all"))
        return out, findings

    async def inspect(self) -> list[Finding]:
        proposal, findings = await self._proposal()
        changed = sum(b != a for b, a in proposal.values())
        out = [self.finding(Finding("info", "domains", f"{len(proposal)} domains, {changed} to change"))]
        return out + [self.finding(f) for f in findings]

    async def plan(self) -> StepPlan:
        proposal, _ = await self._proposal()
        changes = []
        for name, (before, after) in sorted(proposal.items()):
            if before == after:
                continue
            changes.append(PlannedChange(f"sql domains[{name}].allowed_docker_registries", "update", _show(before),
                                         _show(after), render_allowlist_update(name, before, after)))
        data = {"domains": {k: {"before": b, "after": a} for k, (b, a) in proposal.items() if b != a}}
        return StepPlan(f"{len(changes)} domain(s) to update in one transaction", changes, data=data)

    async def apply(self, plan: StepPlan) -> dict[str, Any]:
        want: dict[str, dict[str, list[str]]] = plan.data.get("domains", {})
        if not want:
            return {"changed": 0}
        if self.state.backup is None:
            snap = await self.cluster.db.snapshot_domains()
            self.state.backup = {"domains": snap.to_json()}
            self.journal("backup")
        if self.cluster.dry_run:
            for name, ba in want.items():
                self.cluster.overlay.domains[name] = list(ba["after"])
        else:
            current = {d.name: d.allowed_docker_registries for d in await self.cluster.db.domains()}
            todo = {n: (ba["before"], ba["after"]) for n, ba in want.items() if current.get(n) != ba["after"]}
            if todo:  # on resume, rows already at `after` are not touched again
                await self.cluster.db.update_allowlists(todo)
        for c in plan.changes:
            self.emit(ChangeApplied(self.id, c.target, c.action, c.before, c.after, c.command))
        self.journal("written")
        return {"changed": len(want)}

    async def verify(self, plan: StepPlan) -> Verification:
        v = Verification()
        rows = {d.name: d for d in await self.cluster.domains()}
        for name, ba in plan.data.get("domains", {}).items():
            got = rows.get(name)
            ok = got is not None and got.allowed_docker_registries == ba["after"]
            v.add(f"domain {name} reads back", ok,
                  _show(got.allowed_docker_registries) if got else "domain is gone")
        target = self.cluster.plan.target
        active = [d for d in rows.values() if d.is_active]
        missing = [d.name for d in active if target not in d.allowed_docker_registries]
        v.add(f"every active domain allows {target}", not missing,
              "all do" if not missing else "not: " + ", ".join(missing))
        return v

    async def rollback(self) -> list[PlannedChange]:
        if not self.state.backup:
            return []
        snap = DomainSnapshot.from_json(self.state.backup["domains"])
        changed = list(self.state.plan.get("data", {}).get("domains", {}) if self.state.plan else [])
        current = {d.name: d.allowed_docker_registries for d in await self.cluster.db.domains()}
        await self.cluster.db.restore_domains(snap, only=changed)
        changes = [PlannedChange(f"sql domains[{n}].allowed_docker_registries", "update",
                                 _show(current.get(n, [])), _show(snap.domains[n]),
                                 render_allowlist_update(n, current.get(n, []), snap.domains[n]))
                   for n in changed if n in snap.domains and current.get(n) != snap.domains[n]]
        for c in changes:
            self.emit(ChangeApplied(self.id, c.target, c.action, c.before, c.after, c.command))
        return changes
