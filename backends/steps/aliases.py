"""`aliases`: point every alias that resolves to Docker Hub at the same image on the target.

etcd era rules (reference/backendai.md s.4): `images/_aliases/<quote(alias)>` holds the target
string as given; the manager looks aliases up *unquoted*, following chains up to 8 hops, and
parses a target without a known registry as Docker Hub with `lablup/` prepended. So
`python:latest` means `index.docker.io/lablup/python:latest`. A proposal is made only when the
target image exists in the rescanned metadata, trying the target's projects in order
(`stable`, then `community`); everything else is flagged for the operator.
"""

from __future__ import annotations

import shlex
from dataclasses import asdict, dataclass
from typing import Any

from ..errors import ConfigError
from ..etcd import ALIASES_PREFIX, quote
from ..events import ChangeApplied, PlannedChange
from ..image_ref import DOCKER_HUB
from ..image_ref import parse_backendai_ref as parse_ref
from ..images import AliasLoop, metadata_images, resolve_alias
from .base import Finding, Step, StepPlan, Verification


@dataclass
class AliasRow:
    alias: str                 # the name as operators write it (unquoted)
    stored_key: str            # the quoted key segment in etcd
    current: str               # current target string
    resolved: str | None       # canonical reference the current target resolves to
    proposed: str | None       # new target, or None
    status: str                # remap | migrated | chain | other-registry | unresolvable | remove | skip | override
    note: str = ""
    risky: bool = False        # quoting changes the name: 20.09 never finds it by that name
    risk: str = ""             # why it is risky, kept apart from `note` (which says what happens)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def _alias_cmd(alias: str, target: str | None) -> str:
    if target is None:
        return f"backend.ai mgr etcd dealias {shlex.quote(alias)}"
    return f"backend.ai mgr etcd alias {shlex.quote(alias)} {shlex.quote(target)}"


async def target_images(step: Step) -> dict[str, Any]:
    target = step.cluster.plan.target
    flat = await step.cluster.kv_flat(f"images/{quote(target)}/")
    return metadata_images(flat)


async def analyse(step: Step) -> list[AliasRow]:
    """Every alias with what it resolves to now and what it should point at."""
    cluster = step.cluster
    plan = cluster.plan
    target = plan.target
    projects = cluster.target_validation().entries.get(target).projects \
        if target in cluster.target_validation().entries else ["stable", "community"]
    known = list((await cluster.registries()).keys()) + [target]
    raw = await cluster.aliases_raw()
    from urllib.parse import unquote
    available = await target_images(step)
    rows: list[AliasRow] = []
    for seg, value in sorted(raw.items()):
        alias = unquote(seg)
        risky = quote(alias) != alias
        row = AliasRow(alias, seg, value, None, None, "unresolvable", risky=risky)
        if risky:
            row.risk = (f"20.09 looks aliases up unquoted, and this name is stored as {seg!r}: typing "
                        f"{alias!r} never finds it (it falls back to Docker Hub's {alias})")
        if alias in plan.aliases.skip:
            row.status, row.note = "skip", "left as it is (plan: aliases.skip)"
            rows.append(row)
            continue
        if value in raw:  # a chain: fixing the end fixes this one too
            try:
                final, chain = resolve_alias(value, raw)
                row.resolved = final
            except AliasLoop as e:
                row.note = str(e)
                rows.append(row)
                continue
            row.status = "chain"
            row.note = "points at another alias: " + " -> ".join([alias, *chain])
            rows.append(row)
            continue
        try:
            ref = parse_ref(value, known)
        except ValueError as e:
            row.note = f"target does not parse as 20.09 would: {e}"
            rows.append(row)
            continue
        row.resolved = ref.canonical
        if alias in plan.aliases.remove:
            row.status, row.proposed = "remove", None
            row.note = "removed (plan: aliases.remove)"
            rows.append(row)
            continue
        override = plan.aliases.overrides.get(alias)
        if override is not None:
            try:
                oref = parse_ref(override, known)
            except ValueError as e:
                raise ConfigError(f"override for alias {alias!r} does not parse: {e}",
                                  key=f"aliases.overrides.{alias}", fix="write a full reference, e.g. "
                                  f"{target}/stable/python:3.9-ubuntu20.04") from None
            row.status, row.proposed = "override", oref.canonical
            if oref.canonical not in available and oref.registry == target:
                row.status, row.proposed = "unresolvable", None
                row.note = f"override {override!r} is not in the rescanned metadata of {target}"
            rows.append(row)
            continue
        if ref.registry == target:
            row.status = "migrated"
            row.note = "already on the target" + ("" if ref.canonical in available else
                                                  " (but missing from its metadata)")
            rows.append(row)
            continue
        if ref.registry != DOCKER_HUB:
            row.status = "other-registry"
            row.note = f"on {ref.registry}: not part of this migration"
            rows.append(row)
            continue
        base = ref.name.split("/", 1)[1] if ref.name.startswith("lablup/") else ref.name.rsplit("/", 1)[-1]
        for project in projects:
            candidate = f"{target}/{project}/{base}:{ref.tag}"
            if candidate in available:
                row.status, row.proposed = "remap", candidate
                row.note = f"found in project {project}"
                break
        else:
            row.note = (f"{base}:{ref.tag} is in none of the projects {', '.join(projects)} of {target}; "
                        "choose a target, remove the alias, or keep index.docker.io allowed")
        rows.append(row)
    return rows


def hub_aliases(rows: list[AliasRow]) -> list[AliasRow]:
    """Aliases that will still resolve to Docker Hub after this step's plan."""
    out = []
    for r in rows:
        if r.status in ("remap", "override", "remove"):
            continue
        if r.resolved and r.resolved.startswith(DOCKER_HUB + "/"):
            out.append(r)
    return out


class AliasesStep(Step):
    id = "aliases"
    title = "Image aliases"
    runbook = "3: update image aliases (backend.ai mgr etcd alias)"
    reversible = True

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
                ref = parse_ref(final, known)
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
