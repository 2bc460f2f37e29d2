"""Rescan of one registry into etcd image metadata, key for key what 20.09's `rescan-images` writes.

Same output as `container_registry/base.py` @20.09.29 (see `images.tag_keys`), same repository
name filter, same kernelspec rule, and the same all-or-nothing per registry: any failure other
than a missing tag aborts the scan and nothing is written. Differences, on purpose:

- on `harbor2` the artifacts API lists tags *with* their labels, so config blobs are not
  fetched; repositories are scanned concurrently (20.09 pings and logs in once per repository);
- a multi-arch tag (manifest list or OCI index) resolves to the child for the agents'
  architecture and is written as 20.09 writes a single-arch tag of that child. 20.09 itself
  fails the whole registry on such a tag against a real Harbor (docs/backendai-etcd.md#rescan).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .images import kernelspec_ok, repo_filtered, tag_keys
from .registry_api import RegistryClient, RegistryError, RegistryNotFound
from .registry_document import RegistryEntry

# Backend.AI names architectures as the kernel does; OCI/Docker as Go does.
DOCKER_ARCH = {"x86_64": "amd64", "aarch64": "arm64", "amd64": "amd64", "arm64": "arm64"}


@dataclass
class Skipped:
    repo: str
    tag: str | None
    reason: str


@dataclass
class ScanResult:
    registry: str
    keys: dict[str, str] = field(default_factory=dict)
    images: list[str] = field(default_factory=list)        # canonical names written
    multiarch: list[str] = field(default_factory=list)     # tags that are lists/indexes
    skipped: list[Skipped] = field(default_factory=list)
    repositories: int = 0
    tags: int = 0
    requests: dict[str, Any] = field(default_factory=dict)

    def counters(self) -> dict[str, int]:
        return {"repositories": self.repositories, "tags": self.tags, "images": len(self.images),
                "skipped": len(self.skipped), "multiarch": len(self.multiarch), "keys": len(self.keys)}


Progress = Callable[[str, dict[str, int]], None]


# Repositories in flight and HTTP connections. A scan is ~1 API call per repository plus 1
# manifest per tag, each a round trip to a remote Harbor: at 20 ms, 500 tags take ~1.5 s at 8
# and ~0.75 s at 16 (bench/rescan.py); beyond 16, httpx's pool costs more CPU than it saves.
# 20.09 itself opens up to 100 connections (`aiohttp.TCPConnector()` with aiohttp's default limit,
# container_registry/base.py @20.09.29).
SCAN_CONCURRENCY = 16


async def scan_registry(entry: RegistryEntry, *, architecture: str = "x86_64",
                        concurrency: int = SCAN_CONCURRENCY, on_progress: Progress | None = None,
                        client: RegistryClient | None = None) -> ScanResult:
    """Scans `entry` (its projects) and returns the etcd keys to write; writes nothing itself."""
    arch = DOCKER_ARCH.get(architecture, architecture)
    result = ScanResult(entry.name)
    own = client is None
    rc = client or RegistryClient.from_entry(entry, concurrency=concurrency)
    sem = asyncio.Semaphore(max(1, concurrency))

    def report(message: str) -> None:
        if on_progress is not None:
            on_progress(message, result.counters())

    try:
        names: list[str] = []
        if entry.type in ("harbor", "harbor2"):
            for project in entry.projects:
                for repo in await rc.repositories(project):
                    names.append(repo.name)
        else:
            prefixes = tuple(f"{p}/" for p in entry.projects) if entry.projects else ("",)
            names = [n for n in await rc.catalog() if n.startswith(prefixes)]
        kernel_repos = []
        for name in names:
            if repo_filtered(name):
                result.skipped.append(Skipped(name, None, "repository name filtered (20.09 skips "
                                                          "common-/base-/krunner/builder/backendai/geofront)"))
            else:
                kernel_repos.append(name)
        result.repositories = len(kernel_repos)
        report(f"{len(kernel_repos)} repositories to scan")

        async def one(name: str) -> None:
            async with sem:
                scan = await rc.scan_repository(name, architecture=arch,
                                                use_artifacts=entry.type == "harbor2")
            for p in scan.problems:
                result.tags += 1
                if p.status == 404:
                    result.skipped.append(Skipped(name, p.tag, "missing/deleted"))
                else:
                    raise RegistryError(f"{name}:{p.tag}: {p.message}", status=p.status,
                                        fix="fix the tag in the registry or retry; nothing was written")
            for img in scan.images:
                result.tags += 1
                ok, why = kernelspec_ok(img.labels)
                if not ok:
                    result.skipped.append(Skipped(name, img.tag, why or "not a kernel image"))
                    continue
                result.keys.update(tag_keys(entry.name, name, img.tag, img.config_digest, img.size_bytes,
                                            img.labels))
                result.images.append(f"{entry.name}/{name}:{img.tag}")
                if img.multiarch:
                    result.multiarch.append(f"{name}:{img.tag}")
            report(f"scanned {name}")

        await asyncio.gather(*(one(n) for n in kernel_repos))
        result.images.sort()
        result.skipped.sort(key=lambda k: (k.repo, k.tag or ""))   # repositories finish in any order
        result.keys = dict(sorted(result.keys.items()))
        result.requests = rc.stats.as_dict()
        report("scan complete")
        return result
    except RegistryNotFound as e:
        raise RegistryError(f"{entry.name}: {e.message}", status=404,
                            fix="check the project names in the registry JSON; nothing was written") from None
    finally:
        if own:
            await rc.aclose()
