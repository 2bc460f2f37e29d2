"""What registries answer, as typed values: manifests, Harbor projects/repositories/artifacts,
and a tag resolved the way Backend.AI 20.09's scanner resolves it.

Both APIs describe the same images (a Harbor artifact is a manifest plus its tags and its
config labels), and the scan mixes them, so their shapes live together here and the two API
modules only fetch.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

MT_OCI_INDEX = "application/vnd.oci.image.index.v1+json"
MT_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
MT_OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
MT_SCHEMA2 = "application/vnd.docker.distribution.manifest.v2+json"
INDEX_TYPES = frozenset({MT_OCI_INDEX, MT_LIST})
IMAGE_TYPES = frozenset({MT_OCI_MANIFEST, MT_SCHEMA2})
# Offer all four: a registry answers 404 MANIFEST_UNKNOWN for a manifest whose type the client did not
# accept (distribution `registry/handlers/manifests.go` `GetManifest`), so OCI artifacts would vanish.
MANIFEST_ACCEPT = ", ".join((MT_OCI_INDEX, MT_LIST, MT_OCI_MANIFEST, MT_SCHEMA2))


@dataclass
class Manifest:
    media_type: str
    digest: str
    raw: bytes
    body: dict[str, Any]

    @property
    def is_index(self) -> bool:
        return self.media_type in INDEX_TYPES

    @property
    def is_image(self) -> bool:
        return self.media_type in IMAGE_TYPES

    @property
    def config_digest(self) -> str:
        return str(self.body["config"]["digest"])

    @property
    def size_bytes(self) -> int:
        """Backend.AI 20.09: sum(layers[].size) + config.size (`_scan_tag` in
        `src/ai/backend/manager/container_registry/base.py` of lablup/backend.ai-manager @20.09.29)."""
        return sum(int(la["size"]) for la in self.body.get("layers", [])) + int(self.body["config"]["size"])

    def child_for(self, architecture: str, os: str = "linux") -> str | None:
        for m in self.body.get("manifests", []):
            p = m.get("platform") or {}
            if p.get("architecture") == architecture and p.get("os", "linux") == os:
                return str(m["digest"])
        return None

    def platforms(self) -> dict[str, str]:
        """architecture -> child digest, skipping `unknown` entries (attestations), as Backend.AI does."""
        out: dict[str, str] = {}
        for m in self.body.get("manifests", []):
            arch = (m.get("platform") or {}).get("architecture", "unknown")
            if arch != "unknown":
                out.setdefault(arch, str(m["digest"]))
        return out


@dataclass
class CredentialCheck:
    kind: str                  # user | robot | anonymous
    username: str | None
    admin: bool = False


@dataclass
class HarborProject:
    name: str
    id: int
    public: bool
    repo_count: int | None
    raw: dict[str, Any]


@dataclass
class HarborRepository:
    name: str                  # full name, e.g. "stable/python"
    project: str
    repo: str                  # without the project: "python", "ngc/pytorch"
    artifact_count: int | None
    raw: dict[str, Any]


@dataclass
class ArtifactRef:
    child_digest: str
    architecture: str | None
    os: str | None
    variant: str | None


@dataclass
class HarborArtifact:
    digest: str
    media_type: str
    manifest_media_type: str
    size: int
    tags: list[str]
    labels: dict[str, str]     # extra_attrs.config.Labels: the image labels, no blob fetch needed
    architecture: str | None
    os: str | None
    references: list[ArtifactRef]
    push_time: str | None
    raw: dict[str, Any]

    @property
    def is_index(self) -> bool:
        return self.manifest_media_type in INDEX_TYPES

    @classmethod
    def from_json(cls, a: dict[str, Any]) -> HarborArtifact:
        extra = a.get("extra_attrs") or {}
        cfg = extra.get("config") or {}
        refs = [ArtifactRef(r["child_digest"], (r.get("platform") or {}).get("architecture"),
                            (r.get("platform") or {}).get("os"), (r.get("platform") or {}).get("variant"))
                for r in a.get("references") or []]
        return cls(a["digest"], a.get("media_type", ""), a.get("manifest_media_type", ""), int(a.get("size") or 0),
                   [t["name"] for t in a.get("tags") or []], dict(cfg.get("Labels") or {}),
                   extra.get("architecture"), extra.get("os"), refs, a.get("push_time"), a)


@dataclass
class ResolvedImage:
    """One tag resolved the way a scanner needs it, for one architecture."""

    repo: str                  # full repository name
    tag: str
    digest: str                # what the tag points at (the list for a multi-arch tag)
    media_type: str
    architecture: str
    manifest_digest: str       # the image manifest (the child of a list)
    config_digest: str         # = image ID on an agent = the value 20.09 stores for the tag
    size_bytes: int            # sum(layers) + config, as 20.09 computes it
    labels: dict[str, str]
    platforms: dict[str, str] = field(default_factory=dict)   # arch -> child digest (lists only)

    @property
    def multiarch(self) -> bool:
        return self.media_type in INDEX_TYPES


@dataclass
class TagProblem:
    repo: str
    tag: str
    message: str
    status: int | None = None


@dataclass
class RepositoryScan:
    repo: str
    images: list[ResolvedImage] = field(default_factory=list)
    problems: list[TagProblem] = field(default_factory=list)


def labels_of(config: Mapping[str, Any]) -> dict[str, str]:
    """20.09 reads `container_config.Labels` when that key exists, else `config.Labels`."""
    src = config.get("container_config") if "container_config" in config else config.get("config")
    return dict((src or {}).get("Labels") or {})
