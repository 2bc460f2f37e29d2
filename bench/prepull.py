"""`prepull`: 3 agents x 12 images, ours vs the runbook's `docker pull` loop, and vs the limit.

- A dedicated docker-registry (stopped afterwards; its data is kept in the bench directory)
  holds 12 kernel images of 4 MiB each (2 layers of incompressible data, distinct per image),
  pushed with `seed_images.push_many`.
- **ours**: the `prepull` step's own `apply` (`PrepullStep`, the bench sandbox's plan:
  concurrency per agent and overall, retries, inspect-confirmed pulls) on the sandbox's 3
  Docker daemons at once.
- **baseline** (runbook step 3): `docker -H <agent> pull <image>` for every image, one agent
  after another, with the docker CLI.
- **limit**: the same machinery on one agent alone, for each agent; the slowest of the three.
  `vs_limit` = ours / limit (1.0 would mean three agents cost no more than one).

Every pulled image is deleted from every agent before each measured pull, so every pull is a
cold pull; the registry's files are warm (one untimed pull first). On the sandbox the three
daemons share one machine: `ours_cpu` (CPU seconds of the daemons, containerd and the registry
during ours) over the CPU count is a floor no scheduling can beat, shown as `vs_limit_floor`.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import subprocess
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiodocker

from backends.cluster import Cluster
from backends.config import load_settings
from backends.plan_file import load_plan
from backends.sandbox import seed_images, services
from backends.state import StepState
from backends.steps.base import StepPlan
from backends.steps.prepull import PrepullStep

from .env import BenchEnv, free_port
from .rescan import LABELS
from .timing import Samples, Stopwatch, ratio, runs

NAME = "prepull"
IMAGES = 12
LAYERS = 2
LAYER_KIB = 2048
CLK_TCK = os.sysconf("SC_CLK_TCK")


def _tree_cpu(roots: list[int]) -> float:
    """CPU seconds of `roots` and all their descendants (dockerd runs containerd as a child)."""
    parent: dict[int, int] = {}
    times: dict[int, float] = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            f = Path(f"/proc/{d}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        parent[int(d)] = int(f[1])
        times[int(d)] = sum(int(x) for x in f[11:15]) / CLK_TCK   # utime stime cutime cstime
    wanted = set(roots)
    changed = True
    while changed:
        changed = False
        for pid, pp in parent.items():
            if pp in wanted and pid not in wanted:
                wanted.add(pid)
                changed = True
    return sum(times.get(p, 0.0) for p in wanted)


def _items() -> list[tuple[str, str, dict[str, str]]]:
    return [(f"bench/pull-{i:02d}", "1.0", dict(LABELS)) for i in range(IMAGES)]


class PullRig:
    def __init__(self, env: BenchEnv) -> None:
        self.env = env
        self.info = env.info
        self.proc = env.proc("prepull-registry")
        self.port = 0
        self.refs: list[str] = []
        self.digests: dict[str, str] = {}
        settings = load_settings(str(self.info.manager_toml))
        self.plan = load_plan(self.info.plan_toml)
        self.cluster = Cluster(settings, self.plan)

    async def start(self) -> None:
        self.proc.stop(timeout=5)
        self.port = free_port()
        services.start_registry(self.proc, self.env.path / "bench-prepull" / "registry", self.port)
        host = f"127.0.0.1:{self.port}"
        with Stopwatch() as sw:
            pushed = await seed_images.push_many(f"http://{host}", _items(), concurrency=4, layers=LAYERS,
                                                 layer_kib=LAYER_KIB)
        self.refs = [f"{host}/{t.repo}:{t.tag}" for t in pushed]
        self.digests = {f"{host}/{t.repo}:{t.tag}": t.config_digest for t in pushed}
        self.env.say(f"prepull: {len(pushed)} images of {LAYERS * LAYER_KIB // 1024} MiB in {host} "
                     f"({sw.seconds:.1f}s)")

    def cpu(self) -> float:
        """CPU seconds used so far by the 3 Docker daemons (with containerd) and the registry."""
        sb = self.env.sandbox()
        roots = [p for p in [*(sb.agent_proc(a).pid() for a in self.info.agents), self.proc.pid()] if p]
        return _tree_cpu(roots)

    async def measured(self, fn: Callable[[], Awaitable[float]], cpu: Samples | None = None) -> float:
        c0 = self.cpu()
        seconds = await fn()
        if cpu is not None:
            cpu.add(self.cpu() - c0)
        return seconds

    async def stop(self) -> None:
        with contextlib.suppress(Exception):
            await self.clean()
        await self.cluster.close()
        self.proc.stop(timeout=10)

    # -- sides ------------------------------------------------------------------------------
    def step_plan(self, agents: list[Any]) -> StepPlan:
        return StepPlan("bench", [], data={
            "agents": [{"id": a.id, "url": a.docker_url} for a in agents],
            "images": list(self.refs), "why": {}, "digests": dict(self.digests), "via": None})

    async def ours(self, agents: list[Any]) -> float:
        step = PrepullStep(self.cluster, StepState("prepull"), emit=lambda _ev: None)
        with Stopwatch() as sw:
            result = await step.apply(self.step_plan(agents))
        bad = [f"{a}:{img}={s}" for a, row in result["matrix"].items() for img, s in row.items() if s != "done"]
        if bad:
            raise RuntimeError(f"prepull step failed: {'; '.join(bad)[:400]}")
        return sw.seconds

    async def runbook(self) -> float:
        docker = shutil.which("docker")
        if docker is None:
            raise RuntimeError("the docker CLI is not installed (needed for the runbook baseline)")

        def loop() -> None:
            for agent in self.info.agents:
                for ref in self.refs:
                    subprocess.run([docker, "-H", agent.docker_url, "pull", ref], check=True,
                                   capture_output=True, timeout=600)

        with Stopwatch() as sw:
            await asyncio.to_thread(loop)
        return sw.seconds

    async def clean(self) -> None:
        async def one(url: str) -> None:
            d = aiodocker.Docker(url=url)
            try:
                for ref in self.refs:
                    with contextlib.suppress(aiodocker.DockerError):
                        await d.images.delete(ref, force=False)
            finally:
                await d.close()

        await asyncio.gather(*(one(a.docker_url) for a in self.info.agents))


async def run(env: BenchEnv) -> dict[str, Any]:
    env.sandbox()
    if not env.info.agents:
        raise RuntimeError("the bench sandbox has no Docker agents (not root?)")
    rig = PullRig(env)
    try:
        await rig.start()
        agents = rig.info.agents
        await rig.clean()
        await rig.ours(agents)          # warm-up: registry files into the page cache
        ours, base, limit, ours_cpu = Samples(), Samples(), Samples(), Samples()
        per_agent: dict[str, Samples] = {a.id: Samples() for a in agents}
        for i in range(runs()):
            await rig.clean()
            base.add(await rig.runbook())
            await rig.clean()
            ours.add(await rig.measured(lambda: rig.ours(agents), ours_cpu))
            singles = []
            for a in agents:
                await rig.clean()
                t = await rig.ours([a])
                per_agent[a.id].add(t)
                singles.append(t)
            limit.add(max(singles))
            env.say(f"prepull run {i + 1}: runbook {base.values[-1]:.2f}s ours {ours.values[-1]:.2f}s "
                    f"single agents {' '.join(f'{t:.2f}' for t in singles)}s")
        pp = rig.plan.prepull
        figures: dict[str, Any] = {}
        figures.update(ours.figures("ours"))
        figures.update(limit.figures("limit"))
        figures["vs_limit"] = ratio(ours.median, limit.median)
        figures.update(base.figures("baseline"))
        figures["vs_runbook"] = ratio(base.median, ours.median)
        figures["speedup"] = figures["vs_runbook"]
        figures["runs"] = len(ours.values)
        figures.update({f"alone_{a}": s.median for a, s in per_agent.items()})
        # The daemons share this machine's CPUs: 3 agents' pull work needs ours_cpu CPU-seconds,
        # so no scheduling can beat ours_cpu / cpus; vs_limit_floor is that bound over the limit.
        cpus = os.cpu_count() or 1
        figures.update({"ours_cpu": ours_cpu.median, "cpus": cpus,
                        "vs_limit_floor": ratio(ours_cpu.median / cpus, limit.median)})
        figures.update({"agents": len(agents), "images": IMAGES, "image_mib": LAYERS * LAYER_KIB // 1024,
                        "concurrency_per_agent": pp.concurrency_per_agent, "concurrency": pp.concurrency,
                        "target": "vs_limit<=1.25"})
        return figures
    finally:
        await rig.stop()


def main(env: BenchEnv) -> dict[str, Any]:
    env.sandbox()    # before the loop: Sandbox.up() runs its own asyncio.run()
    return asyncio.run(run(env))
