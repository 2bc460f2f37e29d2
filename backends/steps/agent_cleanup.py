"""`agent-cleanup`: remove the old `lablup/*` kernel images from every agent (runbook step 7).

Candidates are images carrying the `ai.backend.kernelspec` label whose name is a Docker Hub
`lablup/...` name. Spared: infrastructure images (socket relay, krunner extractor,
`lablup/importer`), anything in the plan's keep list, and any image a container uses (running
or not). Removal is a plain, non-forced `docker rmi` of one tag: a 409 "in use" answer is
reported and the image kept, never forced (docs/docker.md#removing-images). Reclaimed bytes are the
sizes of images actually deleted.
"""

from __future__ import annotations

import asyncio
import shlex
from typing import Any

from ..docker import AgentDocker, AgentEndpoint, is_infrastructure
from ..errors import ConfigError, MigrateError
from ..events import PlannedChange, PullProgress
from ..plan_file import PlanFile
from ..statuses import CellState
from .agents import agent_endpoints, tls_files
from .base import Finding, Step, StepMeta, StepPlan, Verification
from .views import Cell, Grid

OLD_PREFIXES = ("lablup/", "docker.io/lablup/", "index.docker.io/lablup/")


def _rmi_key(agent: str, image: str) -> str:
    return f"rmi:{agent}:{image}"


def _old_tags(tags: list[str]) -> list[str]:
    return [t for t in tags if t.startswith(OLD_PREFIXES)]


def _human(n: int) -> str:
    """Decimal units, as `docker images` prints sizes (and as the wizard's grid does)."""
    value = float(n)
    for unit in ("B", "kB", "MB", "GB"):
        if value < 999.5 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    return f"{value:.1f} GB"


class AgentCleanupStep(Step):
    meta = StepMeta("agent-cleanup", "Remove old images from agents", "Agent cleanup",
                    "7: docker rmi the old lablup/* images on each agent", skippable=True, destructive=True, grid=True,
                    grid_title="Old images on agents")

    @classmethod
    def disabled_reason(cls, plan_file: PlanFile) -> str | None:
        return None if plan_file.agent_cleanup.enabled else "agent cleanup is off in the plan"

    def confirm_lines(self, plan: StepPlan) -> list[str]:
        rows = plan.data.get("agents", [])
        n = sum(len(r.get("remove", [])) for r in rows)
        size = sum(i.get("size", 0) for r in rows for i in r.get("remove", []))
        return [f"{n} image tag(s) are removed with a plain `docker rmi` (never forced), up to {_human(size)}. "
                "Images still used by a container are kept and reported."]

    def grid(self, plan: StepPlan) -> Grid:
        """Per agent, the tags removed and kept (with why); cells not on an agent are absent."""
        rows = plan.data.get("agents", [])
        cells: list[Cell] = []
        images: dict[str, None] = {}
        for r in rows:
            for i in r.get("remove", []):
                val = self.state.journal_value(_rmi_key(r["agent"], i["image"]))
                cells.append(Cell(r["agent"], i["image"], CellState(val) if val else CellState.QUEUED,
                                  message=f"to remove ({_human(i.get('size', 0))})"))
                images.setdefault(i["image"], None)
            for k in r.get("keep", []):
                cells.append(Cell(r["agent"], k["image"], CellState.KEPT, message=k["why"]))
                images.setdefault(k["image"], None)
        agents = [r["agent"] for r in rows]
        have = {c.key for c in cells}
        ordered = sorted(images)
        absent = [(a, i) for a in agents for i in ordered if (a, i) not in have]
        reclaimed = ((self.state.result or {}).get("apply") or {}).get("reclaimed")
        summary = f"reclaimed {_human(sum(reclaimed.values()))} on {len(rows)} agents" \
            if reclaimed and not self.cluster.dry_run else ""
        return Grid(agents, ordered, cells, absent, summary)

    def cell_of(self, event: PullProgress) -> Cell:
        state = CellState.REMOVING if event.state == CellState.PULLING else CellState(event.state)
        return Cell(event.agent, event.image, state, event.bytes_done, event.bytes_total, event.message)

    def result_cells(self, plan: StepPlan) -> list[Cell]:
        result = (self.state.result or {}).get("apply") or {}
        msgs = {(r["agent"], i["image"]): f"to remove ({_human(i.get('size', 0))})"
                for r in plan.data.get("agents", []) for i in r.get("remove", [])}
        out = []
        for agent, row in (result.get("results") or {}).items():
            for image, value in row.items():
                state, _, msg = str(value).partition(": ")
                if state == "planned":
                    state, msg = CellState.SKIPPED, "dry run: not removed"
                out.append(Cell(agent, image, CellState(state), message=msg or msgs.get((agent, image), "")))
        return out

    async def survey(self) -> tuple[list[dict[str, Any]], list[Finding]]:
        """Per agent: what would be removed and what is kept, and why."""
        keep = set(self.cluster.plan.agent_cleanup.keep)
        findings: list[Finding] = []
        try:
            _agents, eps = await agent_endpoints(self)
        except ConfigError as e:
            return [], [Finding("blocking", "agent-url", e.message, e.fix or "")]

        async def one(ep: AgentEndpoint) -> dict[str, Any]:
            row: dict[str, Any] = {"agent": ep.agent_id, "url": ep.url, "remove": [], "keep": [], "error": None}
            try:
                async with AgentDocker(ep) as docker:
                    using = await docker.containers_using()
                    for img in await docker.list_images():
                        old = _old_tags(img.repo_tags)
                        if not old:
                            continue
                        for tag in old:
                            if is_infrastructure(img):
                                row["keep"].append({"image": tag, "why": "agent infrastructure"})
                            elif not img.is_kernel:
                                row["keep"].append({"image": tag, "why": "not a kernel image (no kernelspec label)"})
                            elif tag in keep:
                                row["keep"].append({"image": tag, "why": "in the plan's keep list"})
                            elif img.id in using:
                                users = ", ".join(f"{c.name or c.id[:12]} ({c.state})" for c in using[img.id])
                                row["keep"].append({"image": tag, "why": f"used by container {users}"})
                            else:
                                row["remove"].append({"image": tag, "id": img.id, "size": img.size})
            except MigrateError as e:
                row["error"] = e.message
            return row

        rows = list(await asyncio.gather(*(one(ep) for ep in eps)))
        for r in rows:  # Docker lists images in no stable order: keep plans (and their diffs) stable
            r["remove"].sort(key=lambda i: i["image"])
            r["keep"].sort(key=lambda k: k["image"])
        for r in rows:
            if r["error"]:
                findings.append(Finding("warning", "agent-unreachable", f"agent {r['agent']}: {r['error']}",
                                        "its old images stay until it is reachable; run this step again"))
            for k in r["keep"]:
                if k["why"].startswith("used by"):
                    findings.append(Finding("warning", "in-use", f"{r['agent']}: {k['image']} is kept: {k['why']}",
                                            "remove it by hand once that container is gone"))
        return rows, findings

    async def inspect(self) -> list[Finding]:
        rows, findings = await self.survey()
        n = sum(len(r["remove"]) for r in rows)
        size = sum(i["size"] for r in rows for i in r["remove"])
        findings.insert(0, Finding("info", "candidates", f"{n} old kernel image tag(s) on {len(rows)} agents "
                                   f"(up to {_human(size)})"))
        return [self.finding(f) for f in findings]

    async def plan(self) -> StepPlan:
        rows, _ = await self.survey()
        changes = []
        for r in rows:
            host = shlex.quote(AgentEndpoint.from_url(r["agent"], r["url"]).docker_url())
            for i in r["remove"]:
                changes.append(PlannedChange(f"docker {r['agent']}", "remove", i["image"], None,
                                             f"docker -H {host} rmi {shlex.quote(i['image'])}",
                                             note=_human(i["size"])))
            for k in r["keep"]:
                changes.append(PlannedChange(f"docker {r['agent']}", "keep", k["image"], k["image"], "(none)",
                                             note=k["why"]))
        n = sum(c.action == "remove" for c in changes)
        return StepPlan(f"remove {n} old image tag(s) from {len(rows)} agents; "
                        f"{sum(c.action == 'keep' for c in changes)} kept", changes,
                        data={"agents": rows}, destructive=n > 0)

    async def apply(self, plan: StepPlan) -> dict[str, Any]:
        rows: list[dict[str, Any]] = plan.data["agents"]
        results: dict[str, dict[str, str]] = {r["agent"]: {} for r in rows}
        reclaimed = {r["agent"]: 0 for r in rows}
        if self.cluster.dry_run:
            for r in rows:
                for i in r["remove"]:
                    results[r["agent"]][i["image"]] = "planned"
            return {"results": results, "reclaimed": reclaimed}

        async def one(r: dict[str, Any]) -> None:
            ep = AgentEndpoint.from_url(r["agent"], r["url"], tls=tls_files(self))
            try:
                async with AgentDocker(ep) as docker:
                    for i in r["remove"]:
                        key = _rmi_key(r["agent"], i["image"])
                        if self.done(key):
                            results[r["agent"]][i["image"]] = str(self.state.journal_value(key))
                            continue
                        self.emit(PullProgress(self.id, r["agent"], i["image"], "pulling", message="removing"))
                        res = await docker.remove(i["image"])
                        if res.outcome == "in_use":
                            state, msg = "kept", f"in use by {', '.join(c[:12] for c in res.containers)} (409)"
                        else:
                            state, msg = "removed", res.outcome.replace("_", " ")
                            reclaimed[r["agent"]] += res.reclaimed_bytes or 0
                        results[r["agent"]][i["image"]] = state
                        self.journal(key, state)
                        self.emit(PullProgress(self.id, r["agent"], i["image"], state,
                                               bytes_done=res.reclaimed_bytes or 0, message=msg))
            except MigrateError as e:
                for i in r["remove"]:
                    results[r["agent"]].setdefault(i["image"], f"failed: {e.message}")
                    self.emit(PullProgress(self.id, r["agent"], i["image"], "failed", message=e.message))

        await asyncio.gather(*(one(r) for r in rows))
        total = sum(reclaimed.values())
        self.progress("summary", f"reclaimed {_human(total)} on {len(rows)} agents", counters={"bytes": total})
        return {"results": results, "reclaimed": reclaimed}

    async def verify(self, plan: StepPlan) -> Verification:
        v = Verification()
        if self.cluster.dry_run:
            v.add("dry run: nothing removed", True)
            return v
        rows, _ = await self.survey()
        res = ((self.state.result or {}).get("apply") or {}).get("results", {})
        for r in rows:
            leftover = [i["image"] for i in r["remove"] if res.get(r["agent"], {}).get(i["image"]) != "kept"]
            kept = [k["image"] for k in r["keep"]]
            v.add(f"agent {r['agent']}: no removable old kernel image left", not leftover and not r["error"],
                  r["error"] or ("; ".join(leftover) or f"kept: {', '.join(kept) or 'none'}"))
        return v
