"""Image references: one type, because Backend.AI and the Docker daemon name the same images.

The two read the same string differently, and the migration needs both readings:

- Backend.AI 20.09 (`ImageRef` in `src/ai/backend/common/docker.py` of lablup/backend.ai-common
  @20.09.0): a first path part that is not a known registry (nor an IP, nor `localhost`) means
  Docker Hub, spelled `index.docker.io`, and a bare name gets the `lablup/` prefix, so
  `python:3.6` is `index.docker.io/lablup/python:3.6`. etcd's `images/` keys, aliases, allow-lists
  and `kernels.image` are in this reading: `parse_backendai_ref`.
- Docker (github.com/distribution/reference, `normalize.go`): a first part with `.` or `:`, or
  `localhost`, is a host; Docker Hub is `docker.io` (`index.docker.io` is folded into it) and a
  bare name gets `library/`, so `python:3.6` is `docker.io/library/python:3.6`. What we hand to
  the daemon and what it reports in `RepoTags` are in this reading: `parse_docker_ref`.

So there is one `ImageRef` and two named constructors, and each call site says which reading
it means. Docker Hub has one name in this project, Backend.AI's (`DOCKER_HUB`); the daemon's
spelling is `DOCKER_DAEMON_HUB`, used only where we talk to or read from a daemon.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable
from dataclasses import dataclass, replace

# Docker Hub's registry name as Backend.AI 20.09 spells it (etcd keys, allow-lists, kernels rows).
DOCKER_HUB = "index.docker.io"
# Docker Hub as the Docker daemon spells it: distribution/reference's `defaultDomain`; the daemon
# folds `index.docker.io` (its `legacyDefaultDomain`) into it and shows familiar names in RepoTags.
DOCKER_DAEMON_HUB = "docker.io"
# Other spellings of Docker Hub that a daemon-side reference may carry; folded to DOCKER_DAEMON_HUB.
DOCKER_HUB_ALIASES = ("index.docker.io", "registry-1.docker.io")
# Backend.AI 20.09 puts a bare image name under this Docker Hub namespace.
DEFAULT_NAMESPACE = "lablup"
# The label that makes an image a Backend.AI kernel image: the scanner skips images without it
# (images.kernelspec_ok) and agent clean-up never touches them (docker.models).
KERNELSPEC_LABEL = "ai.backend.kernelspec"

_RX_SLUG = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?$")
_REF_COMPONENT = re.compile(r"^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$")


@dataclass(frozen=True)
class ImageRef:
    """`registry/name[:tag][@digest]`, from `parse_backendai_ref` or `parse_docker_ref`.

    A Backend.AI reference always has a tag and no digest; a Docker reference may have either.
    """

    registry: str          # "index.docker.io" (Backend.AI) or "docker.io" (Docker) for Docker Hub
    name: str              # repository path: "lablup/python", "library/ubuntu", "stable/python"
    tag: str | None
    digest: str | None = None

    # -- Backend.AI's names ---------------------------------------------------------------
    @property
    def canonical(self) -> str:
        """`registry/name:tag`: the name Backend.AI stores and resolves aliases to."""
        return f"{self.registry}/{self.short}"

    @property
    def short(self) -> str:
        if self.digest and not self.tag:
            return f"{self.name}@{self.digest}"
        return f"{self.name}:{self.tag or 'latest'}"

    @property
    def project(self) -> str:
        return self.name.split("/", 1)[0] if "/" in self.name else ""

    @property
    def basename(self) -> str:
        return self.name.rsplit("/", 1)[-1]

    # -- the daemon's names ---------------------------------------------------------------
    @property
    def familiar_repo(self) -> str:
        if daemon_registry_name(self.registry) == DOCKER_DAEMON_HUB:
            return self.name.removeprefix("library/")
        return f"{self.registry}/{self.name}"

    @property
    def full_repo(self) -> str:
        return f"{self.registry}/{self.name}"

    @property
    def familiar(self) -> str:
        """The name `docker images` shows and `images.inspect` accepts."""
        if self.digest and not self.tag:
            return f"{self.familiar_repo}@{self.digest}"
        return f"{self.familiar_repo}:{self.tag or 'latest'}"

    @property
    def tag_or_digest(self) -> str:
        return self.digest if self.digest and not self.tag else (self.tag or "latest")

    def with_registry(self, registry: str) -> ImageRef:
        """The same image on another registry host, named as the daemon names hosts."""
        return replace(self, registry=daemon_registry_name(registry))


# -- Backend.AI 20.09's reading ------------------------------------------------------------

def is_known_registry(value: str, known_registries: Iterable[str] = ()) -> bool:
    """`is_known_registry` @20.09: Docker Hub, a configured registry name, or an IP host."""
    if value == DOCKER_HUB or value in set(known_registries):
        return True
    host = value.rsplit(":", 1)[0] if value.count(":") == 1 else value
    try:
        ipaddress.ip_address(host.strip("[]"))
        return True
    except ValueError:
        return False


def _image_tag(s: str, using_default: bool) -> tuple[str, str]:
    image, sep, tag = s.rpartition(":")
    if not sep:
        image, tag = s, "latest"
    if not image:
        raise ValueError("empty image repository/name")
    if "/" not in image and using_default:
        image = f"{DEFAULT_NAMESPACE}/{image}"
    return image, tag


def parse_backendai_ref(value: str, known_registries: Iterable[str] = ()) -> ImageRef:
    """`ImageRef(value, known_registries)` @20.09; raises ValueError where 20.09 does."""
    if "://" in value or value.startswith("//"):
        raise ValueError("an image reference must not contain a URL scheme")
    parts = value.split("/", 1)
    if len(parts) == 1:
        registry = DOCKER_HUB
        name, tag = _image_tag(value, True)
    elif is_known_registry(parts[0], known_registries):
        registry = parts[0]
        using_default = parts[0].endswith(".docker.io") or parts[0] == "docker.io"
        name, tag = _image_tag(parts[1], using_default)
    else:
        registry = DOCKER_HUB
        name, tag = _image_tag(value, True)
    if not _RX_SLUG.search(tag):
        raise ValueError(f"invalid image tag {tag!r}")
    return ImageRef(registry, name, tag)


# -- the Docker daemon's reading ------------------------------------------------------------

def daemon_registry_name(host: str) -> str:
    """A registry host as the daemon names it: every Docker Hub spelling becomes `docker.io`."""
    host = host.strip().lower()
    return DOCKER_DAEMON_HUB if host in DOCKER_HUB_ALIASES else host


def parse_docker_ref(ref: str) -> ImageRef:
    """Splits `[registry/]repo[:tag][@digest]`; a first part with `.`/`:` or `localhost` is a host."""
    if not ref or ref != ref.strip() or any(c.isspace() for c in ref):
        raise ValueError(f"image reference {ref!r} is empty or contains spaces")
    rest, digest = ref, None
    if "@" in ref:
        rest, digest = ref.split("@", 1)
    tag = None
    last = rest.rsplit("/", 1)[-1]
    if ":" in last:
        rest, tag = rest.rsplit(":", 1)
        if not tag:
            raise ValueError(f"image reference {ref!r} has an empty tag")
    first, sep, remainder = rest.partition("/")
    if sep and ("." in first or ":" in first or first == "localhost"):
        registry, repo = daemon_registry_name(first), remainder
    else:
        registry, repo = DOCKER_DAEMON_HUB, rest
    if registry == DOCKER_DAEMON_HUB and "/" not in repo:
        repo = f"library/{repo}"
    if not repo or not all(_REF_COMPONENT.match(c) for c in repo.split("/")):
        raise ValueError(f"image reference {ref!r}: repository {repo!r} is not a valid name")
    if digest is not None and not re.match(r"^[a-z0-9]+:[a-f0-9]{32,}$", digest):
        raise ValueError(f"image reference {ref!r}: {digest!r} is not a digest")
    return ImageRef(registry, repo, tag, digest)
