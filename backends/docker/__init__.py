"""Agents' Docker daemons, reached from the manager node: one client per agent.

Split by what each part holds: `endpoints` (where a daemon is: URL template, TLS files),
`client` (`AgentDocker`: the calls), `pull_tracker` (a pull stream folded into progress),
`models` (what a daemon tells us, and which images clean-up spares), `errors` (our errors, and
the one place that translates aiodocker/aiohttp exceptions into them). The names the steps and
tests use are re-exported here, so call sites read `from ..docker import AgentDocker`.
"""

from __future__ import annotations

from .client import AgentDocker
from .endpoints import AgentEndpoint, TLSFiles, check_template, endpoints_from_template
from .errors import AgentConnectError, DockerOpError, PullError
from .models import LocalImage, RegistryAuth, infrastructure_reason, is_infrastructure
from .pull_tracker import PullSnapshot

__all__ = [
    "AgentConnectError",
    "AgentDocker",
    "AgentEndpoint",
    "DockerOpError",
    "LocalImage",
    "PullError",
    "PullSnapshot",
    "RegistryAuth",
    "TLSFiles",
    "check_template",
    "endpoints_from_template",
    "infrastructure_reason",
    "is_infrastructure",
]
