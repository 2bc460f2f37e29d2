"""Reaching the agents' Docker daemons, as the pre-pull and the agent cleanup both do.

The endpoint of every ALIVE agent comes from the plan's URL template over the `agents` table
(`[agents] docker_url`), with the plan's TLS files; a template the agents cannot be reached
by is a bad input, reported once for both steps.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..db import AgentRow
from ..docker import AgentEndpoint, TLSFiles, endpoints_from_template

if TYPE_CHECKING:
    from .base import Step


def tls_files(step: Step) -> TLSFiles | None:
    a = step.cluster.plan.agents
    t = TLSFiles(a.tls_ca, a.tls_cert, a.tls_key)
    return t if t else None


async def agent_endpoints(step: Step) -> tuple[list[AgentRow], list[AgentEndpoint]]:
    agents = await step.cluster.db.alive_agents()
    eps = endpoints_from_template(step.cluster.plan.agents.docker_url, agents, tls=tls_files(step))
    return agents, eps
