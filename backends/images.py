"""Image metadata in etcd, with Backend.AI 20.09's exact rules (references are in image_ref).

- `tag_keys` is what 20.09's `rescan-images` puts for one kernel image tag
  (`_scan_tag` in `src/ai/backend/manager/container_registry/base.py` of
  lablup/backend.ai-manager @20.09.29): registry and repository quoted, the tag and label keys not.
- `kernelspec_ok` and `repo_filtered` are that scanner's two skip rules, so our scan writes
  exactly the keys 20.09's would.
- `resolve_alias` follows `ImageRef.resolve_alias` (`src/ai/backend/common/docker.py` of
  lablup/backend.ai-common @20.09.0): aliases are looked up *unquoted*, up to 8 hops.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from .etcd import quote
from .image_ref import KERNELSPEC_LABEL

MIN_KERNELSPEC = 1
MAX_KERNELSPEC = 1
MAX_ALIAS_HOPS = 8
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
