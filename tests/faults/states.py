"""What the cluster holds, read back without the engine, and what "old" and "new" mean per step.

The reference is one uninterrupted migration driven step by step in-process on a fresh
sandbox whose sessions have ended, with the cluster read back (etcd through etcdctl, every
domain row through asyncpg, every agent's tags through aiodocker) before the first step and
after each step, and once more after the end of the run lifts the freeze. For a step S:

- old(S) is the state after the step before S (or the seeded cluster, for preflight);
- new(S) is the state after S.

"Never a mix" is then checked precisely: the whole etcd namespace and every domain row equal
old(S) or new(S) as a whole; an agent's images, which a step changes tag by tag (one pull or
one removal each), hold for every tag either its old or its new image id, and no other tag.
The run's end (lifting maintenance, marking the run finished) is the pseudo-step "finish".
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from typing import Any

from engine.support import Cli, EndState, agents, domain_rows, etcd_ns, manager_up

from backends.cluster import Cluster
from backends.config import load_settings
from backends.engine import Engine
from backends.events import Emit
from backends.plan_file import load_plan
from backends.sandbox.layout import SandboxInfo
from backends.steps import STEP_ORDER
from backends.vault import Vault

PHASES: tuple[str, ...] = (*STEP_ORDER, "finish")


@dataclass
class ClusterState:
    etcd: dict[bytes, bytes]
    domains: list[tuple[Any, ...]]
    agents: dict[str, dict[str, str]]      # agent -> tag -> image id
    manager_up: bool

    @classmethod
    def read(cls, info: SandboxInfo, *, with_agents: bool = True) -> ClusterState:
        imgs = {a: v.images for a, v in agents(info).items()} if with_agents else {}
        return cls(etcd_ns(info), domain_rows(info), imgs, manager_up(info))

    @classmethod
    def read_without(cls, info: SandboxInfo, dead_agent: str) -> ClusterState:
        """While one agent's daemon is down: its images are taken as the reference's (unknowable)."""
        live = SandboxInfo(**{**info.__dict__, "agents": [a for a in info.agents if a.id != dead_agent]})
        return cls.read(live)

    def store_differences(self, other: ClusterState) -> list[str]:
        """etcd and domains only: the two things a step writes as a whole."""
        out = [f"etcd {k!r}: {self.etcd.get(k)!r} != {other.etcd.get(k)!r}"
               for k in sorted(set(self.etcd) | set(other.etcd)) if self.etcd.get(k) != other.etcd.get(k)]
        if self.domains != other.domains:
            out.append(f"domains: {self.domains} != {other.domains}")
        return out


def old_or_new(now: ClusterState, old: ClusterState, new: ClusterState, what: str, *,
               via: tuple[str, str] | None = None) -> str:
    """Asserts the never-a-mix rule; returns "old" or "new" (the store's side; "old" if both equal).

    `via` = (source host, target registry): the sandbox serves the target under another host
    name, so a pull fetches `HOST/p/i:t` and then retags it as `TARGET/p/i:t` (two daemon
    calls; backends.docker.client `pull(via=...)`). A run killed between them leaves the source tag on the
    very image the new target tag gets: allowed, and the resumed pull removes it.
    """
    to_old, to_new = now.store_differences(old), now.store_differences(new)
    assert not to_old or not to_new, (
        f"{what}: the store is neither the old nor the new state of the step\n  vs old: "
        + "\n  ".join(to_old[:12]) + "\n  vs new: " + "\n  ".join(to_new[:12]))
    problems = []
    for agent in sorted(now.agents):         # an agent whose daemon is down is not read
        o, n, c = old.agents.get(agent, {}), new.agents.get(agent, {}), now.agents.get(agent, {})
        for tag in sorted(set(o) | set(n) | set(c)):
            if via is not None and tag.startswith(via[0] + "/") and tag not in o and tag not in n:
                if c[tag] == n.get(via[1] + tag[len(via[0]):]):
                    continue
            if c.get(tag) not in (o.get(tag), n.get(tag)):
                problems.append(f"{agent} {tag}: {c.get(tag)} is neither old {o.get(tag)} nor new {n.get(tag)}")
    assert not problems, f"{what}: agent images mixed inside a cell:\n" + "\n".join(problems[:20])
    return "old" if not to_old else "new"


@dataclass
class Reference:
    states: dict[str, ClusterState]        # "start", each step id, "finish"
    end: EndState                          # the end state as engine.support compares it

    def around(self, phase: str) -> tuple[ClusterState, ClusterState]:
        i = PHASES.index(phase)
        before = self.states["start"] if i == 0 else self.states[PHASES[i - 1]]
        return before, self.states[phase]


def vault_of(c: Cli) -> Vault:
    """The seal key the CLI of this test uses (its XDG_CONFIG_HOME), so in-process and CLI runs share state."""
    return Vault(c.home / "xdg-config" / "bai-registry-migrate" / "seal.key")


async def open_engine(c: Cli, *, sinks: list[Emit] | None = None) -> Engine:
    cluster = Cluster(load_settings(str(c.info.manager_toml)), load_plan(str(c.plan)), vault=vault_of(c))
    return await Engine.open(cluster, state_dir=c.state_dir, transcript_dir=c.transcript_dir, sinks=sinks or [])


async def drive(eng: Engine, info: SandboxInfo, states: dict[str, ClusterState] | None = None,
                until: str | None = None) -> None:
    """What `run --yes` does (runner.run), step by step; reads the cluster after each step if asked."""
    for sid in STEP_ORDER:
        if sid == until:
            return
        assert await eng.run_step(sid) == "verified", sid
        if states is not None:
            states[sid] = await asyncio.to_thread(ClusterState.read, info)
    await eng.finish_maintenance()
    eng.state.finished = True
    eng.save()


async def reference_run(c: Cli) -> dict[str, ClusterState]:
    states = {"start": await asyncio.to_thread(ClusterState.read, c.info)}
    eng = await open_engine(c)
    try:
        await drive(eng, c.info, states)
    finally:
        await eng.close("verified")
    states["finish"] = await asyncio.to_thread(ClusterState.read, c.info)
    return states


def current_phase(c: Cli) -> str:
    """The step a run stopped in, from the state file it left: the first not verified or skipped."""
    steps = json.loads((c.state_dir / "state.json").read_text())["steps"]
    for sid in STEP_ORDER:
        if steps[sid]["status"] not in ("verified", "skipped"):
            return sid
    return "finish"


def step_status(c: Cli, step: str) -> tuple[str, list[str]]:
    st = json.loads((c.state_dir / "state.json").read_text())["steps"][step]
    return st["status"], [j["key"] for j in st["journal"]]


def last_error_line(output: str) -> str:
    """The runner's final one-line verdict about a failure (`bai-registry-migrate: ...`)."""
    lines = [ln for ln in output.splitlines() if ln.startswith("bai-registry-migrate: ")]
    assert lines, output[-3000:]
    return lines[-1]
