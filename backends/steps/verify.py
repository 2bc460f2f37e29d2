"""`verify`: prove that new sessions can start from the new registry (runbook step 5).

Nothing is written. Every check reads the cluster as the manager would: the registry config
must pass 20.09's validator, every alias must resolve (unquoted lookup, 8 hops) to an image
present in the target's metadata, every active domain must allow the target, and the
pre-pull matrix must be complete. The exit code of nothing is trusted.
"""

from __future__ import annotations

from ..etcd import quote
from ..image_ref import parse_backendai_ref
from ..images import AliasLoop, metadata_images, resolve_alias
from ..registry_document import REGISTRY_TYPES
from .base import Finding, Step, StepMeta, StepPlan, Verification


class VerifyStep(Step):
    meta = StepMeta("verify", "Verify", "Verify", "5: new sessions can start from the new registry", writes=False,
                    checklist=True)

    async def inspect(self) -> list[Finding]:
        return [self.finding(Finding("info", "read-only", "this step only reads; it changes nothing"))]

    async def plan(self) -> StepPlan:
        return StepPlan("read-only checks: registry config, aliases, domains, pre-pulled images")

    async def apply(self, plan: StepPlan) -> dict[str, object]:
        return {}

    async def verify(self, plan: StepPlan) -> Verification:
        v = Verification()
        target = self.cluster.plan.target
        regs = await self.cluster.registries()
        for name, e in sorted(regs.items()):
            if e is None:
                v.add(f"registry {name} passes 20.09's validator", False, "no URL (\"\") key: the manager will not start")
                continue
            problems = []
            if "://" not in e.url:
                problems.append("URL without scheme")
            if e.type not in REGISTRY_TYPES:
                problems.append(f"type {e.type!r}")
            if e.type in ("harbor", "harbor2") and not e.projects:
                problems.append("no project")
            if e.type in ("harbor", "harbor2") and (e.username is None) != (e.password is None):
                problems.append("username without password (or the reverse): the Harbor scanner fails")
            v.add(f"registry {name} passes 20.09's validator", not problems, "; ".join(problems) or e.url)
        v.add(f"{target} is configured", target in regs, ", ".join(sorted(regs)))
        flat = await self.cluster.kv_flat(f"images/{quote(target)}/")
        images = metadata_images(flat)
        v.add(f"{target} has image metadata", bool(images), f"{len(images)} images")

        raw = await self.cluster.aliases_raw()
        known = list(regs)
        bad = []
        for seg in sorted(raw):
            try:
                final, _ = resolve_alias(seg, raw)
                ref = parse_backendai_ref(final, known)
            except (AliasLoop, ValueError) as e:
                bad.append(f"{seg}: {e}")
                continue
            if ref.registry == target and ref.canonical not in images:
                bad.append(f"{seg} -> {ref.canonical} (not in metadata)")
            elif ref.registry != target:
                bad.append(f"{seg} -> {ref.canonical}")
        v.add(f"every alias resolves to an image on {target}", not bad, "; ".join(bad) or f"{len(raw)} aliases")

        domains = await self.cluster.domains()
        missing = [d.name for d in domains if d.is_active and target not in d.allowed_docker_registries]
        v.add(f"every active domain allows {target}", not missing, ", ".join(missing) or f"{len(domains)} domains")

        pre = self.run.steps.get("prepull") if self.run else None
        if pre is None or pre.status == "skipped":
            v.add("essential images are pre-pulled on every agent", True, "pre-pull was skipped by the operator")
        else:
            matrix = (pre.result or {}).get("apply", {}).get("matrix", {})
            failed = [f"{a}: {img}" for a, row in matrix.items() for img, st in row.items() if st != "done"]
            v.add("essential images are pre-pulled on every agent", pre.status == "verified" and not failed,
                  "; ".join(failed) or f"{sum(len(r) for r in matrix.values())} pulls done"
                  if pre.status == "verified" else f"pre-pull is {pre.status}")
        v.add("the manager answers", await self.cluster.manager.is_up(), self.cluster.manager.url or "")
        return v
