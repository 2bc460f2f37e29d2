"""`prepull`: pull the essential images onto every agent before users need them.

Agents pull again after the migration because image references changed even where the
content did not (runbook step 3), and a session start waits for that pull. The essential
set defaults to the targets the aliases will point at plus the target equivalents of images
used by live and recently ended kernels. Pulls run with bounded concurrency per agent and
overall, with retries; every pull is confirmed by inspecting the image (its ID must equal
the config digest in the rescanned metadata); one agent failing never stops the others; a
resumed run skips the cells already done. The result is an agent x image matrix.
"""

from __future__ import annotations

import asyncio
import random
import shlex
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..docker import AgentDocker, AgentEndpoint, PullError, RegistryAuth
from ..errors import ConfigError, MigrateError
from ..etcd import quote
from ..events import PlannedChange, PullProgress
from ..image_ref import DOCKER_HUB, parse_backendai_ref
from ..images import metadata_images
from ..plan_file import PlanFile
from ..statuses import CellState
from .agents import agent_endpoints, tls_files
from .alias_analysis import analyse
from .base import Finding, Step, StepMeta, StepPlan, Verification
from .views import Cell, Grid


@dataclass
class Essential:
    image: str          # canonical target reference
    why: str


def cell_key(agent: str, image: str) -> str:
    return f"pull:{agent}:{image}"


class PrepullStep(Step):
    meta = StepMeta("prepull", "Pre-pull essential images", "Pre-pull",
                    "3: pre-pull the essential images on agents (docker pull)", skippable=True, grid=True,
                    grid_title="Pre-pull: agents × images")

    # -- the wizard's view and edits ---------------------------------------------------------
    @classmethod
    def inputs(cls, plan_file: PlanFile) -> dict[str, Any]:
        return {"images": list(plan_file.prepull.images)}

    @classmethod
    def restore_inputs(cls, plan_file: PlanFile, saved: Mapping[str, Any]) -> bool:
        if cls.inputs(plan_file) == dict(saved):
            return False
        plan_file.prepull.images = [str(i) for i in saved.get("images", [])]
        return True

    def confirm_lines(self, plan: StepPlan) -> list[str]:
        n = len(plan.data.get("agents", [])) * len(plan.data.get("images", []))
        return [f"{n} pulls with bounded concurrency; each pull is confirmed by inspecting the image. "
                "One agent failing never stops the others; ctrl+p pauses, r retries failed cells."]

    def grid(self, plan: StepPlan) -> Grid:
        """Every agent x image of the plan: finished ones (journaled) done, the rest queued with why."""
        why = plan.data.get("why", {})
        agents = [a["id"] for a in plan.data.get("agents", [])]
        images = list(plan.data.get("images", []))
        cells = []
        for agent in agents:
            for img in images:
                done = self.done(cell_key(agent, img))
                cells.append(Cell(agent, img, CellState.DONE if done else CellState.QUEUED, 0, 0,
                                  "done in an earlier attempt" if done else why.get(img, "")))
        return Grid(agents, images, cells)

    def result_cells(self, plan: StepPlan) -> list[Cell]:
        matrix = ((self.state.result or {}).get("apply") or {}).get("matrix") or {}
        out = []
        for agent, row in matrix.items():
            for image, value in row.items():
                state, _, msg = str(value).partition(": ")
                if self.cluster.dry_run:
                    state, msg = CellState.SKIPPED, "dry run: not pulled"
                out.append(Cell(agent, image, CellState(state), message=msg))
        return out

    async def essential(self) -> tuple[list[Essential], list[Finding]]:
        cluster = self.cluster
        target = cluster.plan.target
        metadata = metadata_images(await cluster.kv_flat(f"images/{quote(target)}/"))
        entry = cluster.target_validation().entries.get(target)
        projects = entry.projects if entry else ["stable", "community"]
        findings: list[Finding] = []
        out: dict[str, Essential] = {}
        if cluster.plan.prepull.images:
            known = list(await cluster.registries()) + [target]
            for ref in cluster.plan.prepull.images:
                try:
                    canonical = parse_backendai_ref(ref, known).canonical
                except ValueError as e:
                    raise ConfigError(f"{ref!r} is not an image reference: {e}", key="prepull.images",
                                      fix=f"write full names such as {target}/stable/python:3.9-ubuntu20.04") from None
                if canonical not in metadata:
                    findings.append(Finding("warning", "not-in-metadata", f"{canonical} is not in {target}'s "
                                            "rescanned metadata", "check the name, or rescan"))
                out[canonical] = Essential(canonical, "listed in the plan")
            return list(out.values()), findings
        for row in await analyse(self):
            dest = row.proposed if row.status in ("remap", "override") else (
                row.resolved if row.status == "migrated" else None)
            if dest and dest in metadata:
                out.setdefault(dest, Essential(dest, f"alias {row.alias}"))
        usage = await cluster.db.recent_kernel_images(cluster.plan.prepull.recent_days)
        for u in usage:
            try:
                ref = parse_backendai_ref(u.image, [target])
            except ValueError:
                continue
            if ref.registry == target:
                if ref.canonical in metadata:
                    out.setdefault(ref.canonical, Essential(ref.canonical, "used by recent sessions"))
                continue
            if ref.registry != DOCKER_HUB:
                continue
            base = ref.name.split("/", 1)[1] if "/" in ref.name else ref.name
            for p in projects:
                cand = f"{target}/{p}/{base}:{ref.tag}"
                if cand in metadata:
                    why = f"{u.live_kernels} live session(s)" if u.live_kernels else \
                        f"{u.recent_kernels} session(s) in the last {cluster.plan.prepull.recent_days} days"
                    out.setdefault(cand, Essential(cand, f"replaces {ref.canonical}: {why}"))
                    break
            else:
                findings.append(Finding("warning", "no-equivalent", f"{ref.canonical} (used recently) has no "
                                        f"equivalent on {target}", "nothing to pre-pull for it"))
        return sorted(out.values(), key=lambda e: e.image), findings

    async def inspect(self) -> list[Finding]:
        out: list[Finding] = []
        try:
            agents, eps = await agent_endpoints(self)
        except ConfigError as e:
            return [self.finding(Finding("blocking", "agent-url", e.message, e.fix or ""))]
        if not agents:
            out.append(Finding("warning", "no-agents", "no ALIVE agents: nothing to pre-pull"))
        images, f2 = await self.essential()
        out.extend(f2)
        if not images:
            out.append(Finding("warning", "no-images", "the essential image set is empty",
                               "apply the registry step first, or list images in [prepull] images"))
        out.append(Finding("info", "matrix", f"{len(agents)} agents x {len(images)} images"))
        return [self.finding(f) for f in out]

    async def plan(self) -> StepPlan:
        _agents, eps = await agent_endpoints(self)
        images, _ = await self.essential()
        target = self.cluster.plan.target
        entry = self.cluster.target_entry()
        via = _via(target, entry.url)
        metadata = metadata_images(await self.cluster.kv_flat(f"images/{quote(target)}/"))
        changes = []
        for ep in eps:
            for e in images:
                src = e.image if via is None else e.image.replace(target, via, 1)
                cmd = f"docker -H {shlex.quote(ep.docker_url())} pull {shlex.quote(src)}"
                if via is not None:
                    cmd += f" && docker -H {shlex.quote(ep.docker_url())} tag {shlex.quote(src)} {shlex.quote(e.image)}"
                changes.append(PlannedChange(f"docker {ep.agent_id}", "pull", None, e.image, cmd, note=e.why))
        data = {
            "agents": [{"id": ep.agent_id, "url": ep.url} for ep in eps],
            "images": [e.image for e in images],
            "why": {e.image: e.why for e in images},
            "digests": {e.image: metadata[e.image].digest for e in images if e.image in metadata},
            "via": via,
        }
        return StepPlan(f"pull {len(images)} images on {len(eps)} agents ({len(eps) * len(images)} pulls)",
                        changes, data=data)

    async def apply(self, plan: StepPlan) -> dict[str, Any]:
        d = plan.data
        pp = self.cluster.plan.prepull
        images: list[str] = d["images"]
        matrix: dict[str, dict[str, str]] = {a["id"]: {} for a in d["agents"]}
        if self.cluster.dry_run:
            for a in d["agents"]:
                for img in images:
                    matrix[a["id"]][img] = "done"
                    self.emit(PullProgress(self.id, a["id"], img, "skipped", message="dry run: not pulled"))
            return {"matrix": matrix}
        entry = self.cluster.target_entry()
        auth = RegistryAuth.of(entry.username, entry.password) if entry.username and entry.password else None
        overall = asyncio.Semaphore(pp.concurrency)
        eps = [AgentEndpoint.from_url(a["id"], a["url"], tls=tls_files(self)) for a in d["agents"]]

        async def agent_job(ep: AgentEndpoint) -> None:
            per_agent = asyncio.Semaphore(pp.concurrency_per_agent)
            try:
                docker = await AgentDocker(ep).open()
            except MigrateError as e:
                for img in images:
                    matrix[ep.agent_id][img] = f"failed: {e.message}"
                    self.emit(PullProgress(self.id, ep.agent_id, img, "failed", message=e.message))
                return
            try:
                await asyncio.gather(*(cell(docker, ep, img, per_agent) for img in images))
            finally:
                await docker.close()

        async def cell(docker: AgentDocker, ep: AgentEndpoint, img: str, per_agent: asyncio.Semaphore) -> None:
            key = cell_key(ep.agent_id, img)
            want = d["digests"].get(img)
            if self.done(key):
                matrix[ep.agent_id][img] = "done"
                self.emit(PullProgress(self.id, ep.agent_id, img, "done", message="done in an earlier attempt"))
                return
            try:
                have = await _present(docker, img)
            except MigrateError:
                # The daemon went away (tests/faults/test_dockerd_kill.py): this cell fails after
                # its pull retries below, like the others of this agent, and never takes the
                # other agents' pulls down with it (gather would propagate it).
                have = None
            if have is not None and (want is None or have == want):
                if d.get("via"):
                    await _drop_source_tag(docker, img.replace(self.cluster.plan.target, d["via"], 1), have)
                matrix[ep.agent_id][img] = "done"
                self.journal(key, "present")
                self.emit(PullProgress(self.id, ep.agent_id, img, "done", message="already present"))
                return
            self.emit(PullProgress(self.id, ep.agent_id, img, "queued"))
            last = ""
            for attempt in range(pp.retries + 1):
                async with per_agent, overall:
                    try:
                        res = await docker.pull(img, auth=auth, via=d.get("via"), total_timeout=pp.timeout,
                                                on_progress=lambda ev: self._relay(ev, img))
                    except PullError as e:
                        last = e.message
                        res = None
                if res is not None:
                    if want is not None and res.image_id != want:
                        last = f"pulled image {res.image_id[:19]} is not the scanned {want[:19]} (architecture?)"
                        self.emit(PullProgress(self.id, ep.agent_id, img, "failed", message=last))
                        break
                    matrix[ep.agent_id][img] = "done"
                    self.journal(key, res.image_id)
                    return
                if attempt < pp.retries:
                    await asyncio.sleep(min(30.0, 0.5 * 2 ** attempt) * (0.5 + random.random()))
            matrix[ep.agent_id][img] = f"failed: {last}"

        await asyncio.gather(*(agent_job(ep) for ep in eps))
        return {"matrix": matrix}

    def _relay(self, ev: Any, image: str) -> None:
        self.emit(PullProgress(self.id, ev.agent, image, ev.state, ev.layers_done, ev.layers_total,
                               ev.bytes_current, ev.bytes_total, ev.message))

    async def verify(self, plan: StepPlan) -> Verification:
        v = Verification()
        d = plan.data
        if self.cluster.dry_run:
            v.add("dry run: pulls not performed", True, f"{len(d['agents'])} x {len(d['images'])} planned")
            return v
        if not d["images"] or not d["agents"]:
            v.add("nothing to pre-pull", True)
            return v
        eps = [AgentEndpoint.from_url(a["id"], a["url"], tls=tls_files(self)) for a in d["agents"]]

        async def check(ep: AgentEndpoint) -> tuple[list[tuple[str, bool, str]], str | None]:
            try:
                async with AgentDocker(ep) as docker:
                    rows = []
                    for img in d["images"]:
                        have = await _present(docker, img)
                        want = d["digests"].get(img)
                        ok = have is not None and (want is None or have == want)
                        rows.append((img, ok, "present" if ok else ("missing" if have is None else "wrong image")))
                    return rows, None
            except MigrateError as e:
                return [(img, False, "unknown") for img in d["images"]], e.message

        results = await asyncio.gather(*(check(ep) for ep in eps))
        for ep, (rows, unreachable) in zip(eps, results, strict=True):
            bad = [(img, why) for img, ok, why in rows if not ok]
            if unreachable:
                # One reason for all of them: say it once, so the verdict stays one readable line.
                detail = f"{len(bad)} of {len(rows)} images unknown: {unreachable}"
            else:
                detail = "; ".join(f"{img} ({why})" for img, why in bad) or f"{len(rows)} images present"
            v.add(f"agent {ep.agent_id} holds the essential images", not bad, detail)
        return v


async def _present(docker: AgentDocker, ref: str) -> str | None:
    data = await docker.inspect(ref)
    return str(data.get("Id")) if data else None


async def _drop_source_tag(docker: AgentDocker, source: str, image_id: str) -> None:
    """A pull `via` another host tags the image twice for a moment (source, then target, then
    the source tag is removed). A run or daemon killed in between leaves the source tag; the
    next attempt finds the target present and removes that leftover if it is the same image."""
    try:
        if (await _present(docker, source)) == image_id:
            await docker.remove(source)
    except MigrateError:
        pass   # cosmetic: the image the cluster uses is in place either way


def _via(target: str, url: str) -> str | None:
    """When the registry's name is not the host its URL serves from, pull from the URL's host."""
    from urllib.parse import urlsplit

    host = urlsplit(url).netloc
    return None if not host or host == target else host

