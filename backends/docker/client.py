"""One agent's Docker daemon: connect, inspect, list, pull with progress, remove without force.

Every pull is confirmed with `images.inspect`, because a pull stream can end without an error
and without the image: aiodocker ends the iteration silently when the connection drops
(`_JsonStreamResult.__anext__` in `aiodocker/jsonstream.py`), so "no success line" counts as
a failure. Removals never force: `DELETE /images/{name}` without force answers 409 only when
the *last* tag of an image is used by a container (running or stopped) and just untags when
another tag is left, while force untags an in-use image silently (moby
`daemon/images/image_delete.go`, `ImageDelete`; `test_remove_in_use_free_and_gone` in
tests/test_docker.py). Registry credentials go in X-Registry-Auth, which the Engine API wants
base64url-encoded (Engine API docs, "Authentication"); aiodocker encodes it so since 0.25.0
(aio-libs/aiodocker#941), and the daemon silently pulls anonymously on a bad encoding.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import re
import time
from collections.abc import Awaitable, Mapping, Sequence
from types import TracebackType
from typing import Any

import aiodocker
import aiohttp

from ..errors import MigrateError
from ..image_ref import KERNELSPEC_LABEL, daemon_registry_name, parse_docker_ref
from ..secrets import Redactor, Secret
from .endpoints import AgentEndpoint
from .errors import DAEMON_EXCEPTIONS, OPEN_EXCEPTIONS, DaemonErrors, DockerOpError, PullError, pull_fix
from .models import ContainerRef, DaemonInfo, LocalImage, PullResult, RegistryAuth, RemoveResult, local_image
from .pull_tracker import ProgressCallback, PullSnapshot, PullTracker

_CONTAINER_IN_MSG = re.compile(r"container ([0-9a-f]{6,64})")


class AgentDocker:
    """One agent's Docker daemon. Every failure names the agent and endpoint, never a traceback."""

    def __init__(self, endpoint: AgentEndpoint, *, connect_timeout: float = 10.0,
                 request_timeout: float = 120.0, secrets: Sequence[Secret | str] = ()) -> None:
        self.endpoint = endpoint
        self.connect_timeout = connect_timeout
        self.request_timeout = request_timeout
        self._secrets = list(secrets)
        self._redact = Redactor(self._secrets)
        self._errors = DaemonErrors(endpoint, request_timeout=request_timeout, redact=self._redact)
        self._docker: aiodocker.Docker | None = None

    @property
    def agent(self) -> str:
        return self.endpoint.agent_id

    # -- lifecycle ----------------------------------------------------------------------
    async def open(self) -> AgentDocker:
        if self._docker is not None:
            return self
        ctx = self.endpoint.ssl_context()  # ConfigError on bad TLS files
        timeout = aiohttp.ClientTimeout(total=self.request_timeout, connect=self.connect_timeout,
                                        sock_connect=self.connect_timeout)
        try:
            self._docker = aiodocker.Docker(url=self.endpoint.docker_url(), ssl_context=ctx, timeout=timeout)
        except OPEN_EXCEPTIONS as e:
            raise self._errors.opening(e) from None
        return self

    async def close(self) -> None:
        if self._docker is not None:
            d, self._docker = self._docker, None
            # Closing a broken session must not mask the error that got us here.
            with contextlib.suppress(Exception):
                await d.close()

    async def __aenter__(self) -> AgentDocker:
        return await self.open()

    async def __aexit__(self, et: type[BaseException] | None, ev: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self.close()

    @property
    def docker(self) -> aiodocker.Docker:
        if self._docker is None:
            raise RuntimeError("AgentDocker.open() was not called")
        return self._docker

    # -- error translation --------------------------------------------------------------
    async def _call(self, op: str, coro: Awaitable[Any]) -> Any:
        """Every request/response call goes through here; failures leave as ours."""
        try:
            return await coro
        except DAEMON_EXCEPTIONS as e:
            raise self._errors.call(op, e) from None

    # -- daemon -------------------------------------------------------------------------
    async def ping(self) -> bool:
        await self.version()
        return True

    async def version(self) -> dict[str, Any]:
        return dict(await self._call("version", self.docker.version()))

    async def info(self) -> DaemonInfo:
        i = await self._call("info", self.docker.system.info())
        v = await self.version()
        reg = i.get("RegistryConfig") or {}
        return DaemonInfo(
            agent=self.agent, server_version=str(i.get("ServerVersion", "")),
            api_version=str(v.get("ApiVersion", "")), os=str(i.get("OSType", "")),
            architecture=str(i.get("Architecture", "")), ncpu=int(i.get("NCPU") or 0),
            mem_total=int(i.get("MemTotal") or 0), docker_root_dir=str(i.get("DockerRootDir", "")),
            storage_driver=str(i.get("Driver", "")), registry_mirrors=list(reg.get("Mirrors") or []),
            images=int(i.get("Images") or 0), containers_running=int(i.get("ContainersRunning") or 0))

    # -- images -------------------------------------------------------------------------
    async def inspect(self, ref: str) -> dict[str, Any] | None:
        """The image's inspect data, or None when the daemon does not have it."""
        try:
            return dict(await self._call(f"inspect {ref}", self.docker.images.inspect(ref)))
        except DockerOpError as e:
            if e.status == 404:
                return None
            raise

    async def list_images(self, *, label: str | None = None) -> list[LocalImage]:
        filters = {"label": [label]} if label else None
        rows = await self._call("list images", self.docker.images.list(filters=filters))
        return [local_image(r) for r in rows]

    async def kernel_images(self) -> list[LocalImage]:
        return await self.list_images(label=KERNELSPEC_LABEL)

    async def containers(self) -> list[ContainerRef]:
        rows = await self._call("list containers", self.docker.containers.list(all=True))
        out = []
        for c in rows:
            names = c["Names"] or []
            out.append(ContainerRef(str(c["Id"]), (names[0] if names else "").lstrip("/"), str(c["Image"]),
                                    str(c["ImageID"]), str(c["State"])))
        return out

    async def containers_using(self) -> dict[str, list[ContainerRef]]:
        """Image id -> containers created from it, running or not (they all block a removal)."""
        out: dict[str, list[ContainerRef]] = {}
        for c in await self.containers():
            out.setdefault(c.image_id, []).append(c)
        return out

    async def pull(self, ref: str, *, auth: RegistryAuth | Mapping[str, Any] | None = None,
                   via: str | None = None, on_progress: ProgressCallback | None = None,
                   total_timeout: float = 7200.0, stall_timeout: float = 300.0,
                   keep_source_tag: bool = False) -> PullResult:
        """Pulls `ref` and proves it arrived with `images.inspect`.

        `via` ("HOST:PORT" or a URL) is where to fetch from when that differs from the host in
        `ref`: the image is pulled from `via` and tagged as `ref` (the sandbox serves
        `cr.backend.ai` at 127.0.0.1:PORT). Raises `PullError` after emitting a `failed` event.
        """
        started = time.monotonic()
        wanted = parse_docker_ref(ref)
        source = wanted
        if via:
            host = re.sub(r"^[a-z]+://", "", via.strip(), flags=re.I).rstrip("/")
            if daemon_registry_name(host) != wanted.registry:
                if not wanted.tag:
                    raise ValueError(f"{ref}: a reference without a tag cannot be re-tagged after a pull via {host}")
                source = wanted.with_registry(host)
        redact = self._redact
        aiodocker_auth: dict[str, str] | None = None
        if auth is not None:
            user = auth.username if isinstance(auth, RegistryAuth) else str(auth.get("username", ""))
            pw = auth.password if isinstance(auth, RegistryAuth) else auth.get("password")
            secret = pw if isinstance(pw, Secret) else Secret(str(pw or ""))
            redact = Redactor(self._secrets)
            redact.add(secret, user=user)
            aiodocker_auth = {"username": user, "password": secret.reveal()}
        tracker = PullTracker(self.agent, wanted.familiar)
        ep = str(self.endpoint)

        async def emit(ev: PullSnapshot) -> None:
            if on_progress is not None:
                r = on_progress(ev)
                if inspect.isawaitable(r):
                    await r

        async def fail(reason: str, fix: str | None = None) -> PullError:
            reason = redact(reason)
            await emit(tracker.event("failed", reason))
            return PullError(self.agent, ep, wanted.familiar, reason, fix=fix)

        await emit(PullSnapshot(self.agent, wanted.familiar, 0, 0, 0, 0, "queued", ""))
        pull_timeout = aiohttp.ClientTimeout(total=None, connect=self.connect_timeout,
                                             sock_connect=self.connect_timeout, sock_read=stall_timeout)
        from_image = source.full_repo
        try:
            async with asyncio.timeout(total_timeout):
                stream = self.docker.images.pull(from_image, tag=source.tag_or_digest, auth=aiodocker_auth,
                                                 stream=True, timeout=pull_timeout)
                async for item in stream:
                    if tracker.feed(item):
                        if tracker.error:
                            break
                        await emit(tracker.event())
        except DAEMON_EXCEPTIONS as e:
            reason, fix = DaemonErrors.pull_failure(e, registry=source.registry, stall_timeout=stall_timeout,
                                                    total_timeout=total_timeout)
            raise await fail(reason, fix=fix) from None
        if tracker.error:
            raise await fail(tracker.error, fix=pull_fix(tracker.error))
        if not tracker.success:
            raise await fail("the daemon's progress stream ended without a success status "
                             "(connection dropped or daemon stopped?)",
                             fix="check dockerd on this agent, then retry the pull")
        # Never trust the stream alone: the image must now exist under the asked-for name.
        try:
            if source != wanted:
                await self._call("tag", self.docker.images.tag(source.familiar, wanted.familiar_repo, tag=wanted.tag))
                if not keep_source_tag:
                    await self._call("untag", self.docker.images.delete(source.familiar, force=False))
            data = await self.inspect(wanted.familiar)
        except MigrateError as e:
            raise await fail(f"could not confirm the image afterwards: {e.message}") from None
        if data is None:
            raise await fail("the daemon reported success but does not have the image afterwards")
        cfg = data.get("Config") or {}
        result = PullResult(
            agent=self.agent, image=wanted.familiar, source=source.familiar, image_id=str(data.get("Id", "")),
            repo_tags=list(data.get("RepoTags") or []), repo_digests=list(data.get("RepoDigests") or []),
            digest=tracker.digest, up_to_date=tracker.up_to_date, size=int(data.get("Size") or 0),
            architecture=data.get("Architecture"), labels=dict(cfg.get("Labels") or {}),
            seconds=time.monotonic() - started)
        await emit(tracker.event("done", "up to date" if tracker.up_to_date else "pulled"))
        return result

    async def tag(self, src: str, ref: str) -> None:
        r = parse_docker_ref(ref)
        await self._call(f"tag {src} as {ref}", self.docker.images.tag(src, r.familiar_repo, tag=r.tag or "latest"))

    async def remove(self, ref: str) -> RemoveResult:
        """Non-forced removal of one tag. In use -> outcome "in_use" (HTTP 409), gone -> "not_found"."""
        data = await self.inspect(ref)
        if data is None:
            return RemoveResult(self.agent, ref, "not_found", message="not present (already removed)")
        image_id = str(data.get("Id", ""))
        size = int(data.get("Size") or 0)
        try:
            resp = await self._call(f"remove {ref}", self.docker.images.delete(ref, force=False, noprune=False))
        except DockerOpError as e:
            if e.status == 404:
                return RemoveResult(self.agent, ref, "not_found", image_id, 0, message="already removed")
            if e.status != 409:
                raise
            users = [c.id for c in (await self.containers_using()).get(image_id, [])]
            if not users:
                users = _CONTAINER_IN_MSG.findall(e.reason)
            return RemoveResult(self.agent, ref, "in_use", image_id, 0, users, e.reason)
        deleted = [d.get("Deleted") for d in resp or [] if isinstance(d, Mapping) and d.get("Deleted")]
        if image_id in deleted:
            return RemoveResult(self.agent, ref, "removed", image_id, size,
                                message=f"deleted the image ({len(deleted)} layer/image records)")
        return RemoveResult(self.agent, ref, "untagged", image_id, 0,
                            message="untagged; the image keeps other tags")
