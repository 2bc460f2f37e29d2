"""`cleanup`: remove Docker Hub's image metadata and registry entry, once nobody uses them.

Runbook step 6, gated: while any kernel on an old image is live (status not TERMINATED or
CANCELLED), nothing is deleted and the live sessions are listed. Deletes exactly the trees
`images/index.docker.io` and `config/docker/registry/index.docker.io` (the key and `key/...`,
never a sibling that merely shares the string prefix), in one transaction, after a backup.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from ..etcd import REGISTRY_PREFIX, Snapshot, quote
from ..events import ChangeApplied, PlannedChange
from ..image_ref import DOCKER_HUB
from .alias_analysis import analyse, hub_aliases
from .base import Finding, Step, StepMeta, StepPlan, Verification

OLD = DOCKER_HUB


def trees(registry: str = OLD) -> list[str]:
    return [f"images/{quote(registry)}", f"{REGISTRY_PREFIX}/{quote(registry)}"]


class CleanupStep(Step):
    meta = StepMeta("cleanup", "Remove old metadata", "Cleanup",
                    "6: delete images/index.docker.io and config/docker/registry/index.docker.io",
                    reversible=True, destructive=True)

    def confirm_lines(self, plan: StepPlan) -> list[str]:
        return ["Deletes exactly the trees images/index.docker.io and config/docker/registry/index.docker.io "
                "(the key and everything below it), in one transaction, after a backup. x restores them."]

    async def live_on_old(self) -> list[Any]:
        return await self.cluster.db.live_kernels(OLD)

    async def inspect(self) -> list[Finding]:
        out: list[Finding] = []
        wait = self.cluster.plan.cleanup.wait_for_sessions
        deadline = time.monotonic() + wait
        live = await self.live_on_old()
        while live and time.monotonic() < deadline:
            self.progress("wait", f"waiting for {len(live)} session(s) on old images to end "
                                  f"({int(deadline - time.monotonic())}s left)", counters={"live": len(live)})
            await asyncio.sleep(min(self.cluster.plan.cleanup.poll_interval, max(0.1, deadline - time.monotonic())))
            live = await self.live_on_old()
        if live:
            out.append(self.finding(Finding(
                "blocking", "live-sessions",
                f"{len(live)} session(s) still run on {OLD} images",
                "wait until they end (or ask their owners), then run this step again",
                details=[f"{k.session_name or k.session_id} ({k.status}) {k.image} on {k.agent or '-'} "
                         f"domain {k.domain_name} key {k.access_key or '-'}" for k in live])))
        left = hub_aliases(await analyse(self))
        if left:
            out.append(self.finding(Finding(
                "blocking", "aliases-on-docker-hub",
                f"{len(left)} alias(es) still resolve to {OLD}; deleting its metadata would break them: "
                + ", ".join(r.alias for r in left), "remap or remove them in the aliases step first")))
        regs = await self.cluster.registries()
        if self.cluster.plan.target not in regs:
            out.append(self.finding(Finding("blocking", "no-target", f"{self.cluster.plan.target} is not configured",
                                            "apply the registry step first")))
        still = [d.name for d in await self.cluster.domains() if OLD in d.allowed_docker_registries]
        if still:
            out.append(self.finding(Finding("warning", "domains-allow-old",
                                            f"domains still allow {OLD}: {', '.join(still)}",
                                            "drop it in the allowlists step")))
        if not out:
            out.append(self.finding(Finding("info", "clear", f"no live session uses {OLD} images")))
        return out

    async def plan(self) -> StepPlan:
        changes = []
        total = 0
        for t in trees():
            flat = await self.cluster.kv_tree_flat(t)
            total += len(flat)
            if flat:
                changes.append(PlannedChange(f"etcd {t}", "delete", f"{len(flat)} keys", None,
                                             f"backend.ai mgr etcd delete --prefix {t}",
                                             note="the key and everything below it, nothing else"))
        return StepPlan(f"delete {total} keys of {OLD} (backed up first)", changes,
                        data={"trees": trees(), "keys": total}, destructive=True)

    async def apply(self, plan: StepPlan) -> dict[str, Any]:
        tlist: list[str] = plan.data["trees"]
        if self.state.backup is None:
            items: dict[str, str] = {}
            for t in tlist:
                items.update(await self.cluster.kv_tree_flat(t))
            snap = Snapshot(self.cluster.etcd.namespace, "", await self.cluster.etcd.revision(), items)
            self.state.backup = {"etcd": snap.to_json()}
            self.journal("backup")
        await self.cluster.kv_write({}, delete_trees=tlist)
        for c in plan.changes:
            self.emit(ChangeApplied(self.id, c.target, c.action, c.before, c.after, c.command))
        self.journal("deleted")
        return {"deleted": plan.data.get("keys", 0)}

    async def verify(self, plan: StepPlan) -> Verification:
        v = Verification()
        for t in plan.data.get("trees", trees()):
            left = await self.cluster.kv_tree_flat(t)
            v.add(f"{t} is gone", not left, f"{len(left)} keys remain" if left else "no keys")
        regs = await self.cluster.registries()
        v.add(f"{self.cluster.plan.target} is still configured", self.cluster.plan.target in regs,
              ", ".join(sorted(regs)) or "(none)")
        return v

    async def rollback(self) -> list[PlannedChange]:
        if not self.state.backup:
            return []
        snap = Snapshot.from_json(self.state.backup["etcd"])
        # A secret whose sealed value cannot be opened is left out and named by the rollback.
        missing = self.cluster.restorable({k: v for k, v in snap.items.items() if await self.cluster.kv_get(k) != v})
        await self.cluster.kv_write(missing)
        c = PlannedChange("etcd " + ", ".join(trees()), "put", None, f"{len(missing)} keys restored",
                          "backend.ai mgr etcd put-json '' backup.json")
        self.emit(ChangeApplied(self.id, c.target, c.action, c.before, c.after, c.command))
        return [c]
