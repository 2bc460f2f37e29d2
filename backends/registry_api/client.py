"""`RegistryClient`: one etcd registry entry, both APIs, and tags resolved the way a scanner needs.

Resolving a tag needs both APIs (on harbor2 the artifacts listing gives tags and labels, the
manifests come from `/v2/`), so that part lives here, above `HarborAPI` and `DistributionAPI`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from ..errors import ConfigError
from ..registry_document import FALSE_WORDS
from .distribution import DistributionAPI
from .errors import (
    RegistryAuthError,
    RegistryError,
    RegistryNotFound,
    RegistryRedirectError,
    RegistryUnavailable,
)
from .harbor import HarborAPI, split_repo
from .models import HarborArtifact, RepositoryScan, ResolvedImage, TagProblem, labels_of


def _truthy(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    return str(value).strip().lower() not in FALSE_WORDS


class RegistryClient(HarborAPI, DistributionAPI):
    """One registry (one etcd registry entry); use as `async with RegistryClient(...) as rc:`."""

    @classmethod
    def from_entry(cls, entry: Any, name: str | None = None, **kw: Any) -> RegistryClient:
        """From a `registry_document.RegistryEntry` or the raw etcd mapping (`""`, `type`, `ssl-verify`...)."""
        if isinstance(entry, Mapping):
            url, rtype = entry.get(""), str(entry.get("type", "docker"))
            user, pw = entry.get("username"), entry.get("password")
            verify = _truthy(entry.get("ssl-verify", entry.get("ssl_verify", True)))
        else:
            url, rtype, user, pw = entry.url, entry.type, entry.username, entry.password
            verify, name = entry.ssl_verify, name or entry.name
        if not isinstance(url, str) or not url:
            raise ConfigError("the registry entry has no URL (the \"\" key)", key=name)
        return cls(url, username=user, password=pw, ssl_verify=verify, registry_type=rtype, name=name, **kw)

    # -- scanner building blocks ------------------------------------------------------------
    async def resolve_tag(self, name: str, tag: str, *, architecture: str = "amd64",
                          labels: Mapping[str, str] | None = None,
                          image_architecture: str | None = None) -> ResolvedImage:
        """Tag -> (digest, child for `architecture`, config digest, 20.09 size_bytes, labels).

        A list is narrowed to its linux/`architecture` child; a single image is returned as it
        is, with its own architecture (the caller decides whether it fits). `labels` (and
        `image_architecture`) from the artifacts API spare the config-blob fetch.
        """
        top = await self.manifest(name, tag)
        image, platforms = top, {}
        if top.is_index:
            platforms = top.platforms()
            child = top.child_for(architecture)
            if child is None:
                raise RegistryNotFound(f"{name}:{tag} has no linux/{architecture} image "
                                       f"(platforms: {', '.join(sorted(platforms)) or 'none'})", status=404)
            image = await self.manifest(name, child)
            image_architecture = architecture
        if not image.is_image:
            raise RegistryError(f"{name}:{tag} is a {image.media_type}, not an image manifest")
        if labels is None:
            config = await self.image_config(name, image.config_digest)
            labels = labels_of(config)
            image_architecture = image_architecture or config.get("architecture")
        return ResolvedImage(name, tag, top.digest, top.media_type, image_architecture or architecture,
                             image.digest, image.config_digest, image.size_bytes, dict(labels), platforms)

    async def scan_repository(self, name: str, *, architecture: str = "amd64",
                              use_artifacts: bool | None = None) -> RepositoryScan:
        """Every tag of one repository, resolved; per-tag failures are collected, not raised.

        On harbor2 the artifacts listing gives tags and labels at once, so only manifests are
        fetched (one per artifact, plus the child of a list); elsewhere tags/list + manifest +
        config blob per distinct config.
        """
        scan = RepositoryScan(name)
        harbor = self.type == "harbor2" if use_artifacts is None else use_artifacts
        jobs: list[tuple[list[str], Any]] = []
        if harbor:
            project, repo = split_repo(name)
            for art in await self.artifacts(project, repo):
                if art.tags:        # one resolution per artifact, shared by all its tags
                    jobs.append((art.tags, self._resolve_artifact(project, repo, name, art, architecture)))
        else:
            for tag in await self.tags(name):
                jobs.append(([tag], self.resolve_tag(name, tag, architecture=architecture)))
        results = await asyncio.gather(*(j for _, j in jobs), return_exceptions=True)
        for (tags, _), res in zip(jobs, results, strict=True):
            if isinstance(res, (RegistryAuthError, RegistryUnavailable, RegistryRedirectError)):
                raise res
            for tag in tags:
                if isinstance(res, ResolvedImage):
                    scan.images.append(replace(res, tag=tag))
                elif isinstance(res, RegistryError):
                    scan.problems.append(TagProblem(name, tag, str(res), res.status))
                elif isinstance(res, BaseException):
                    raise res
        scan.images.sort(key=lambda i: i.tag)
        scan.problems.sort(key=lambda p: p.tag)
        return scan

    async def _resolve_artifact(self, project: str, repo: str, name: str, art: HarborArtifact,
                                architecture: str) -> ResolvedImage:
        labels: Mapping[str, str] | None = art.labels
        arch = art.architecture
        if art.is_index:
            # The list's own listing has no labels; its child's artifact has (one API call, no blob).
            child = next((r for r in art.references if r.architecture == architecture), None)
            labels = (await self.artifact(project, repo, child.child_digest)).labels if child else None
            arch = None
        return await self.resolve_tag(name, art.digest, architecture=architecture, labels=labels,
                                      image_architecture=arch)
