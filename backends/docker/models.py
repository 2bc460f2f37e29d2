"""What a daemon tells us, and which local images agent clean-up must spare.

The daemon answers with loosely typed JSON (`RepoTags` may hold `<none>:<none>`, `Labels` may
be null); these frozen values are what is left after the client has read it once.

Agent clean-up spares infrastructure images: the agent's own `backendai-socket-relay` and
`backendai-krunner-extractor` (`src/ai/backend/agent/docker/agent.py` of lablup/backend.ai-agent
@20.09.0), the manager's `importer-image` (default `lablup/importer:manylinux2010`,
`src/ai/backend/manager/config.py` of lablup/backend.ai-manager @20.09.29), and anything without
the `ai.backend.kernelspec` label, i.e. everything that is not a kernel image.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ..image_ref import KERNELSPEC_LABEL, parse_docker_ref
from ..secrets import Secret

INFRA_REPO_NAMES = ("backendai-socket-relay", "backendai-krunner-extractor")
INFRA_REPOS = ("lablup/importer",)


@dataclass(frozen=True)
class RegistryAuth:
    username: str
    password: Secret

    @classmethod
    def of(cls, username: str, password: str | Secret) -> RegistryAuth:
        return cls(username, password if isinstance(password, Secret) else Secret(password))


@dataclass(frozen=True)
class PullResult:
    agent: str
    image: str                  # the name asked for, as the daemon now shows it
    source: str                 # what was pulled (differs when pulled `via` another host)
    image_id: str               # the config digest with the classic image store
    repo_tags: list[str]
    repo_digests: list[str]
    digest: str | None          # manifest digest from the stream (`Digest: ...`)
    up_to_date: bool
    size: int
    architecture: str | None
    labels: dict[str, str]
    seconds: float


@dataclass(frozen=True)
class RemoveResult:
    agent: str
    image: str
    outcome: str                 # removed | untagged | in_use | not_found
    image_id: str | None = None
    reclaimed_bytes: int | None = None  # image size when the image itself was deleted; 0 on untag
    containers: list[str] = field(default_factory=list)  # in_use: containers holding it
    message: str = ""

    @property
    def ok(self) -> bool:
        return self.outcome != "in_use"


@dataclass(frozen=True)
class LocalImage:
    id: str
    repo_tags: list[str]
    repo_digests: list[str]
    size: int
    created: int
    labels: dict[str, str]

    @property
    def is_kernel(self) -> bool:
        return KERNELSPEC_LABEL in self.labels


@dataclass(frozen=True)
class ContainerRef:
    id: str
    name: str
    image: str
    image_id: str
    state: str      # running, exited, created, ...


@dataclass(frozen=True)
class DaemonInfo:
    agent: str
    server_version: str
    api_version: str
    os: str
    architecture: str      # `uname -m` style: x86_64, aarch64
    ncpu: int
    mem_total: int
    docker_root_dir: str
    storage_driver: str
    registry_mirrors: list[str]
    images: int
    containers_running: int


def local_image(r: Mapping[str, Any]) -> LocalImage:
    """One row of `GET /images/json`, without Docker's `<none>` placeholders."""
    tags = [t for t in (r.get("RepoTags") or []) if t != "<none>:<none>"]
    digests = [d for d in (r.get("RepoDigests") or []) if d != "<none>@<none>"]
    return LocalImage(str(r.get("Id", "")), tags, digests, int(r.get("Size") or 0), int(r.get("Created") or 0),
                      dict(r.get("Labels") or {}))


def infrastructure_reason(image: LocalImage) -> str | None:
    """Why agent clean-up must leave this image alone, or None if it is a kernel image."""
    for t in image.repo_tags:
        try:
            r = parse_docker_ref(t)
        except ValueError:
            continue
        name = r.name.rsplit("/", 1)[-1]
        if name in INFRA_REPO_NAMES:
            return f"agent infrastructure image ({name})"
        if any(r.name == x or r.name.endswith("/" + x) for x in INFRA_REPOS):
            return f"agent infrastructure image ({r.name})"
    if not image.is_kernel:
        return f"no {KERNELSPEC_LABEL} label (not a kernel image)"
    return None


def is_infrastructure(image: LocalImage) -> bool:
    return infrastructure_reason(image) is not None
