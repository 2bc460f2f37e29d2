"""Image references and image metadata keys, with Backend.AI 20.09's exact rules.

- `tag_keys` is what 20.09's `rescan-images` puts for one kernel image tag
  (container_registry/base.py `_scan_tag` @20.09.29, reference/backendai.md s.3.6):
  registry and repository quoted, the tag and label keys not.
- `parse_ref` follows `ai.backend.common.docker.ImageRef` @20.09: a first path part that is not
  a known registry (nor an IP, nor `localhost`) means Docker Hub, and a bare name gets the
  `lablup/` prefix, so `python:3.6` is `index.docker.io/lablup/python:3.6`.
- `resolve_alias` follows `ImageRef.resolve_alias`: aliases are looked up *unquoted*, up to 8 hops.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from .etcd import quote

DOCKER_HUB = "index.docker.io"
DEFAULT_NAMESPACE = "lablup"
MIN_KERNELSPEC = 1
MAX_KERNELSPEC = 1
MAX_ALIAS_HOPS = 8
KERNELSPEC_LABEL = "ai.backend.kernelspec"
RESOURCE_MIN_PREFIX = "ai.backend.resource.min."
# 20.09's scanner skips repositories whose full name contains any of these (base.py @20.09.29).
NON_KERNEL_WORDS = ("common-", "commons-", "base-", "krunner", "builder", "backendai", "geofront")


def kernelspec_ok(labels: Mapping[str, str]) -> tuple[bool, str | None]:
    """(accepted, skip reason) exactly as 20.09 decides; a non-integer kernelspec is a skip here
    (20.09 raises ValueError and aborts the whole registry; we report instead)."""
    v = labels.get(KERNELSPEC_LABEL)
    if v is None:
        return False, "missing kernelspec"
    try:
        n = int(v)
    except (TypeError, ValueError):
        return False, f"kernelspec {v!r} is not an integer"
    if not MIN_KERNELSPEC <= n <= MAX_KERNELSPEC:
        return False, "unsupported kernelspec"
    return True, None


def repo_filtered(repo: str) -> bool:
    return any(w in repo for w in NON_KERNEL_WORDS)


def tag_keys(registry: str, repo: str, tag: str, config_digest: str, size_bytes: int,
             labels: Mapping[str, str]) -> dict[str, str]:
    """The etcd puts (relative to the namespace) for one scanned tag, values as `str()`."""
    reg_q, repo_q = quote(registry), quote(repo)
    out = {f"images/{reg_q}/{repo_q}": "1"}
    prefix = f"images/{reg_q}/{repo_q}/{tag}"
    out[prefix] = config_digest
    out[f"{prefix}/size_bytes"] = str(size_bytes)
    for k, v in labels.items():
        out[f"{prefix}/labels/{k}"] = str(v)
    accels = labels.get("ai.backend.accelerators")
    if accels:
        out[f"{prefix}/accels"] = str(accels)
    for k, v in labels.items():
        if k.startswith(RESOURCE_MIN_PREFIX):
            out[f"{prefix}/resource/{k[len(RESOURCE_MIN_PREFIX):]}/min"] = str(v)
    return out


_RX_SLUG = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?$")


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


@dataclass(frozen=True)
class ImageRef:
    registry: str
    name: str    # repository path, e.g. "lablup/python" or "stable/python"
    tag: str

    @property
    def canonical(self) -> str:
        return f"{self.registry}/{self.name}:{self.tag}"

    @property
    def short(self) -> str:
        return f"{self.name}:{self.tag}"

    @property
    def project(self) -> str:
        return self.name.split("/", 1)[0] if "/" in self.name else ""

    @property
    def basename(self) -> str:
        return self.name.rsplit("/", 1)[-1]


def _image_tag(s: str, using_default: bool) -> tuple[str, str]:
    image, sep, tag = s.rpartition(":")
    if not sep:
        image, tag = s, "latest"
    if not image:
        raise ValueError("empty image repository/name")
    if "/" not in image and using_default:
        image = f"{DEFAULT_NAMESPACE}/{image}"
    return image, tag


def parse_ref(value: str, known_registries: Iterable[str] = ()) -> ImageRef:
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


class AliasLoop(ValueError):
    """More than 8 hops: 20.09 raises AliasResolutionFailed and the session cannot start."""


def resolve_alias(name: str, aliases: Mapping[str, str]) -> tuple[str, list[str]]:
    """`ImageRef.resolve_alias` @20.09: look up `images/_aliases/<name>` *unquoted*, up to 8 hops.

    `aliases` maps the names as stored (the quoted key segment) to targets, because that is
    what the manager's unquoted lookup actually finds. Returns (final name, chain).
    """
    chain = [name]
    current = name
    for _ in range(MAX_ALIAS_HOPS):
        nxt = aliases.get(current)
        if nxt is None:
            return current, chain
        current = nxt
        chain.append(current)
    raise AliasLoop(f"alias {name!r} does not resolve within {MAX_ALIAS_HOPS} hops: {' -> '.join(chain)}")


@dataclass(frozen=True)
class MetaImage:
    """One `images/<registry>/<repo>/<tag>` entry of etcd image metadata."""

    registry: str
    repo: str
    tag: str
    digest: str

    @property
    def canonical(self) -> str:
        return f"{self.registry}/{self.repo}:{self.tag}"


def metadata_images(flat: Mapping[str, str]) -> dict[str, MetaImage]:
    """Canonical name -> entry, from flat etcd pairs under `images/` (quoted keys).

    A tag entry is exactly `images/R/I/T` whose value is the config digest; deeper keys
    (`.../labels/...`, `.../resource/...`) and the `images/R/I = 1` marker are not entries.
    """
    from urllib.parse import unquote

    out: dict[str, MetaImage] = {}
    for k, v in flat.items():
        parts = k.split("/")
        if len(parts) != 4 or parts[0] != "images" or parts[1] == "_aliases":
            continue
        reg, repo, tag = unquote(parts[1]), unquote(parts[2]), parts[3]
        img = MetaImage(reg, repo, tag, v)
        out[img.canonical] = img
    return out
