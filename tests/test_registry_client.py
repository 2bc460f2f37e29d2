"""backends.registry_api against the real stand-in, real docker-registry and a small real fault server.

The fault server is an aiohttp app on 127.0.0.1 whose URL prefix picks a behaviour (429 with
Retry-After, 500 then 200, dropped connections, slow answers, redirects, echoed secrets), so
retries, timeouts and error reporting are exercised over real sockets, not mocks.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import ssl
import subprocess
import time
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from test_seed_images import NESTED, PASSWORD, PRIVATE_REPO, ROBOT, ROBOT_SECRET, USER, Stack, stack

from backends import registry_document
from backends.errors import ConfigError, ConnectError
from backends.registry_api import (
    RegistryAuthError,
    RegistryClient,
    RegistryError,
    RegistryNotFound,
    RegistryRedirectError,
    RegistryUnavailable,
)
from backends.registry_api.harbor import encode_repo
from backends.registry_api.models import MT_LIST, labels_of
from backends.registry_api.transport import Challenge
from backends.sandbox import seed_images as si
from backends.sandbox.harbor import running
from backends.sandbox.layout import free_port

__all__ = ["stack"]


def read_log(path: Path) -> list[dict[str, Any]]:
    return [json.loads(x) for x in path.read_text().splitlines()]


@asynccontextmanager
async def standin(stack: Stack, **switches: Any) -> AsyncIterator[str]:
    async with running(stack.harbor_config(**switches)) as url:
        yield url


# -- Harbor API ----------------------------------------------------------------------------

async def test_credential_check_matrix(stack: Stack) -> None:
    async with RegistryClient(stack.harbor_url, username=USER, password=PASSWORD) as rc:
        assert await rc.ping() == "Pong"
        who = await rc.current_user()
        assert (who.kind, who.username, who.admin) == ("user", USER, True)
        assert "harbor_version" in await rc.systeminfo()
        assert (await rc.health())["status"] == "healthy"
    async with RegistryClient(stack.harbor_url, username=ROBOT, password=ROBOT_SECRET) as rc:
        assert (await rc.check_credentials()).kind == "robot"            # 412 = authenticated robot
    async with RegistryClient(stack.harbor_url) as rc:
        assert (await rc.current_user()).kind == "anonymous"
        assert "harbor_version" not in await rc.systeminfo()
    async with RegistryClient(stack.harbor_url, username=USER, password="wrong-" + PASSWORD) as rc:
        # Public projects still list with a wrong password; users/current tells the truth.
        assert [p.name for p in await rc.projects()] == ["stable", "community"]
        with pytest.raises(RegistryAuthError) as ei:
            await rc.current_user()
        assert ei.value.status == 401 and isinstance(ei.value, ConnectError)
        assert PASSWORD not in str(ei.value) and "proves nothing" in str(ei.value)


async def test_projects_and_repositories(stack: Stack) -> None:
    async with RegistryClient(stack.harbor_url, username=USER, password=PASSWORD) as rc:
        projects = await rc.projects()
        assert [(p.name, p.public) for p in projects] == [("stable", True), ("community", True)]
        assert (await rc.project("stable")).id == projects[0].id
        assert await rc.project_exists("community") and not await rc.project_exists("ghost")
        repos = await rc.repositories("stable")
        expected = sorted({t.repo for t in stack.record.in_registry(si.UPSTREAM) if t.repo.startswith("stable/")}
                          | {NESTED})
        assert [r.name for r in repos] == expected
        nested = next(r for r in repos if r.name == NESTED)
        assert (nested.project, nested.repo) == ("stable", "ngc/pytorch")
        with pytest.raises(RegistryNotFound) as ei:
            await rc.repositories("ghost")          # admin: 404 NOT_FOUND
        assert ei.value.code == "NOT_FOUND" and ei.value.status == 404
    async with RegistryClient(stack.harbor_url) as rc:
        with pytest.raises(RegistryAuthError) as ei:
            await rc.repositories("ghost")          # anonymous: Harbor says 401
        assert ei.value.code == "UNAUTHORIZED"


async def test_pagination_loops_on_total_count(stack: Stack) -> None:
    async with standin(stack, force_page_size=3) as url, RegistryClient(url) as rc:
        repos = await rc.repositories("stable")
        n = len(repos)
        assert n == len({t.repo for t in stack.record.in_registry(si.UPSTREAM) if t.repo.startswith("stable/")}) + 1
        assert rc.stats.by_kind["api"] == -(-n // 3)         # one request per page of 3


async def test_artifacts_double_encoding_and_labels(stack: Stack) -> None:
    assert encode_repo("ngc/pytorch") == "ngc%252Fpytorch"
    async with RegistryClient(stack.harbor_url) as rc:
        arts = await rc.artifacts("stable", "ngc/pytorch")
        assert [a.tags for a in arts] == [["21.03-py3"]] and arts[0].labels == {"ai.backend.kernelspec": "1"}
        arts = {a.tags[0]: a for a in await rc.artifacts("stable", "python", q="tags=*")}
        rec = stack.record.find(si.UPSTREAM, "stable/python", "3.8-ubuntu20.04")
        assert arts["3.8-ubuntu20.04"].labels == rec.labels and arts["3.8-ubuntu20.04"].architecture == "amd64"
        multi = arts["3.9-ubuntu20.04"]
        assert multi.is_index and {r.architecture for r in multi.references} == {"amd64", "arm64"}
        child = await rc.artifact("stable", "python", multi.references[0].child_digest)
        assert child.labels == rec.labels | {"ai.backend.base-distro": "ubuntu20.04"}


# -- Distribution --------------------------------------------------------------------------

async def test_token_flow_cache_and_refresh(stack: Stack) -> None:
    async with standin(stack, token_expires_in=11) as url, RegistryClient(url) as rc:
        assert await rc.ping_v2() == "bearer"
        for _ in range(3):
            await rc.manifest("stable/python", "3.8-ubuntu20.04")
        assert rc.stats.by_kind["token"] == 1 and rc.stats.by_kind["ping"] == 1
        await rc.tags("stable/r-base")                # another scope: another token
        assert rc.stats.by_kind["token"] == 2
        await asyncio.sleep(1.2)                      # 11 s lifetime - 10 s margin: expired now
        await rc.manifest("stable/python", "3.8-ubuntu20.04")
        assert rc.stats.by_kind["token"] == 3
    # With credentials Harbor accepts Basic on /v2/: no token at all (docs/harbor.md#registry-front).
    async with RegistryClient(stack.harbor_url, username=USER, password=PASSWORD) as rc:
        assert await rc.ping_v2() == "basic"
        assert await rc.tags(PRIVATE_REPO.replace("internal", "stable").replace("tool", "python"))
        assert rc.stats.by_kind["token"] == 0
    async with standin(stack, token_only=True) as url, RegistryClient(url, username=USER, password=PASSWORD) as rc:
        assert await rc.ping_v2() == "bearer"
        assert await rc.tags("stable/python") == ["3.6-ubuntu18.04", "3.8-ubuntu20.04", "3.9-ubuntu20.04"]
        assert rc.stats.by_kind["token"] == 1
    async with RegistryClient(stack.harbor_url, username=USER, password="bad-password") as rc:
        with pytest.raises(RegistryAuthError) as ei:
            await rc.tags("stable/python")
        assert "bad-password" not in str(ei.value)


async def test_20_09_compat_warnings(stack: Stack) -> None:
    async with standin(stack, relative_realm=True, token_field="access_token") as url, RegistryClient(url) as rc:
        assert await rc.tags("stable/python")          # works for us...
        assert len(rc.compat_warnings) == 2             # ...but not for 20.09's scanner
        assert "relative" in rc.compat_warnings[0] and "access_token" in rc.compat_warnings[1]
    async with RegistryClient(stack.harbor_url) as rc:
        await rc.tags("stable/python")
        assert rc.compat_warnings == []


def test_challenge_parsing() -> None:
    ch = Challenge.parse('Bearer realm="https://h/service/token",service="harbor-registry",'
                         'scope="repository:a/b:pull",error="insufficient_scope"')
    assert ch is not None and (ch.scheme, ch.realm, ch.service, ch.scope) == \
        ("bearer", "https://h/service/token", "harbor-registry", "repository:a/b:pull")
    basic = Challenge.parse('Basic realm="harbor"')
    assert basic is not None and basic.scheme == "basic" and basic.realm == "harbor"
    assert Challenge.parse(None) is None
    assert labels_of({"container_config": {"Labels": {"a": "1"}}, "config": {"Labels": {"b": "2"}}}) == {"a": "1"}
    assert labels_of({"config": {"Labels": None}}) == {}


async def test_tags_link_pagination_and_catalog(stack: Stack) -> None:
    async with RegistryClient(stack.harbor_url) as rc:
        tags = await rc.tags("stable/python", page_size=1)
        assert tags == ["3.6-ubuntu18.04", "3.8-ubuntu20.04", "3.9-ubuntu20.04"]
        assert rc.stats.by_kind["tags"] == 3
    async with RegistryClient(stack.hub_url, registry_type="docker") as rc:
        assert await rc.ping_v2() == "open"
        names = await rc.catalog(page_size=3)
        assert set(names) >= {t.repo for t in stack.record.in_registry(si.HUB)}
        assert rc.stats.by_kind["catalog"] >= 4


async def test_multiarch_tag_resolution(stack: Stack) -> None:
    rec = stack.record.find(si.UPSTREAM, "stable/python", "3.9-ubuntu20.04")
    async with RegistryClient(stack.harbor_url) as rc:
        m = await rc.manifest("stable/python", "3.9-ubuntu20.04")
        assert m.media_type == MT_LIST and m.digest == rec.digest and m.platforms() == \
            {a: i.digest for a, i in rec.images.items()}
        assert await rc.head_manifest("stable/python", "3.9-ubuntu20.04") == (rec.digest, MT_LIST)
        for arch in ("amd64", "arm64"):
            res = await rc.resolve_tag("stable/python", "3.9-ubuntu20.04", architecture=arch)
            img = rec.images[arch]
            assert (res.digest, res.manifest_digest, res.config_digest, res.size_bytes, res.labels) == \
                (rec.digest, img.digest, img.config_digest, img.size_bytes, img.labels)
            assert res.multiarch
        with pytest.raises(RegistryNotFound, match="no linux/s390x image"):
            await rc.resolve_tag("stable/python", "3.9-ubuntu20.04", architecture="s390x")
        with pytest.raises(RegistryNotFound):
            await rc.manifest("stable/python", "no-such-tag")


async def test_scan_repository_both_ways_match_the_seed(stack: Stack) -> None:
    results = {}
    for use_artifacts in (True, False):
        async with RegistryClient(stack.harbor_url) as rc:
            scans = [await rc.scan_repository(r, use_artifacts=use_artifacts)
                     for r in ("stable/python", "stable/ngc-pytorch", "community/julia")]
            results[use_artifacts] = ([(i.repo, i.tag, i.digest, i.config_digest, i.size_bytes, i.labels)
                                       for s in scans for i in s.images], dict(rc.stats.by_kind))
            assert not any(s.problems for s in scans)
    assert results[True][0] == results[False][0]
    for repo, tag, digest, cfg, size, labels in results[True][0]:
        t = stack.record.find(si.UPSTREAM, repo, tag)
        assert (t.digest, t.config_digest, t.size_bytes, t.labels) == (digest, cfg, size, labels)
    assert results[True][1].get("blob", 0) == 0          # labels came with the artifacts listing
    assert results[False][1]["blob"] == len(results[False][0])


async def test_scan_collects_per_tag_problems(stack: Stack) -> None:
    await si.push_image(stack.upstream_url, "stable/armonly", "1.0", {"ai.backend.kernelspec": "1"},
                        multiarch=True)
    await si.push_image(stack.upstream_url, "stable/armonly", "2.0", {"ai.backend.kernelspec": "1"})
    async with RegistryClient(stack.harbor_url) as rc:
        for use_artifacts in (True, False):
            scan = await rc.scan_repository("stable/armonly", architecture="arm64", use_artifacts=use_artifacts)
            # The list yields its arm64 child; a single image comes back with its own architecture.
            assert [(i.tag, i.architecture, i.multiarch) for i in scan.images] == \
                [("1.0", "arm64", True), ("2.0", "amd64", False)]
            scan = await rc.scan_repository("stable/armonly", architecture="s390x", use_artifacts=use_artifacts)
            assert [i.tag for i in scan.images] == ["2.0"]
            assert [(p.tag, p.status) for p in scan.problems] == [("1.0", 404)]
            assert "no linux/s390x image (platforms: amd64, arm64)" in scan.problems[0].message


# -- transport: retries, timeouts, redirects, secrets, concurrency --------------------------

class Faults:
    """A real HTTP server on 127.0.0.1 whose first path segment selects a behaviour."""

    def __init__(self) -> None:
        self.hits: Counter[str] = Counter()
        self.in_flight = 0
        self.max_in_flight = 0
        self.seen_auth: list[str | None] = []
        self.port = free_port()
        self.other_port = free_port()

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_route("*", "/{mode}/{tail:.*}", self.handle)
        return app

    def other_app(self) -> web.Application:
        async def blob(request: web.Request) -> web.Response:
            self.seen_auth.append(request.headers.get("Authorization"))
            return web.Response(body=b"blob-bytes")
        app = web.Application()
        app.router.add_get("/blob", blob)
        return app

    async def handle(self, request: web.Request) -> web.StreamResponse:
        mode = request.match_info["mode"]
        self.hits[mode] += 1
        n = self.hits[mode]
        ok = web.Response(text="Pong", content_type="text/plain")
        if mode == "r429":
            return web.Response(status=429, headers={"Retry-After": "1"}) if n == 1 else ok
        if mode == "r500":
            return web.json_response({"errors": [{"code": "UNKNOWN", "message": "boom"}]}, status=500) if n == 1 else ok
        if mode == "drop":
            if n <= 2:
                assert request.transport is not None
                request.transport.close()          # connection dropped without an answer
                await asyncio.sleep(0.05)
            return ok
        if mode == "slow":
            await asyncio.sleep(1)
            return ok
        if mode == "always503":
            return web.json_response({"errors": [{"code": "UNKNOWN", "message": "x"}]}, status=503)
        if mode == "redirect":
            raise web.HTTPMovedPermanently(f"http://127.0.0.1:{self.port}/moved{request.path_qs[len('/redirect'):]}")
        if mode == "echo":
            return web.json_response({"errors": [{"code": "BAD_REQUEST",
                                                  "message": f"bad Authorization: {request.headers.get('Authorization')}"}]},
                                     status=400)
        if mode == "notjson":
            return web.Response(text="<html>login</html>", content_type="text/html")
        if mode == "conc":
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
            await asyncio.sleep(0.05)
            self.in_flight -= 1
            return ok
        if mode == "blobs":
            if request.path.endswith("/v2/"):
                return web.json_response({})
            raise web.HTTPTemporaryRedirect(f"http://127.0.0.1:{self.other_port}/blob")
        return web.Response(status=404)


@pytest.fixture
async def faults() -> AsyncIterator[Faults]:
    f = Faults()
    runners = []
    for app, port in ((f.app(), f.port), (f.other_app(), f.other_port)):
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", port).start()
        runners.append(runner)
    try:
        yield f
    finally:
        for r in runners:
            await r.cleanup()


def fault_client(f: Faults, mode: str, **kw: Any) -> RegistryClient:
    kw.setdefault("backoff", 0.01)
    return RegistryClient(f"http://127.0.0.1:{f.port}/{mode}", **kw)


async def test_retry_after_is_honoured(faults: Faults) -> None:
    async with fault_client(faults, "r429") as rc:
        t0 = time.monotonic()
        assert await rc.ping() == "Pong"
        assert time.monotonic() - t0 >= 0.95
        assert rc.stats.retries == 1 and rc.stats.by_kind["api"] == 2


async def test_5xx_then_success_and_dropped_connections(faults: Faults) -> None:
    async with fault_client(faults, "r500") as rc:
        assert await rc.ping() == "Pong" and rc.stats.retries == 1
    async with fault_client(faults, "drop") as rc:
        assert await rc.ping() == "Pong" and rc.stats.retries == 2 and faults.hits["drop"] == 3


async def test_gives_up_after_fixed_attempts(faults: Faults) -> None:
    async with fault_client(faults, "always503", attempts=3) as rc:
        with pytest.raises(RegistryUnavailable) as ei:
            await rc.ping()
        assert faults.hits["always503"] == 3 and ei.value.status == 503 and "after 3 attempts" in str(ei.value)
    async with fault_client(faults, "slow", attempts=2, timeout=0.3) as rc:
        t0 = time.monotonic()
        with pytest.raises(RegistryUnavailable, match="ReadTimeout"):
            await rc.ping()
        assert time.monotonic() - t0 < 0.95 and faults.hits["slow"] == 2
    async with RegistryClient(f"http://127.0.0.1:{free_port()}", attempts=2, backoff=0.01) as rc:
        with pytest.raises(RegistryUnavailable, match="ConnectError") as ei:
            await rc.ping()
        assert ei.value.fix and rc.stats.total == 2


async def test_redirect_is_a_configuration_error(faults: Faults) -> None:
    async with fault_client(faults, "redirect") as rc:
        with pytest.raises(RegistryRedirectError) as ei:
            await rc.repositories("stable")
    err = ei.value
    assert isinstance(err, ConfigError) and err.exit_code == 2
    assert err.location == f"http://127.0.0.1:{faults.port}/moved/api/v2.0/projects/stable/repositories?page=1&page_size=100"
    assert err.suggested == f"http://127.0.0.1:{faults.port}/moved"
    assert "Backend.AI's scanner does not follow redirects; use " + err.suggested in str(err)
    assert faults.hits["redirect"] == 1 and faults.hits["moved"] == 0


async def test_errors_carry_no_secrets(faults: Faults) -> None:
    secret = "Sup3r-Secret-Pw"
    async with fault_client(faults, "echo", username="ops", password=secret) as rc:
        with pytest.raises(RegistryError) as ei:
            await rc.systeminfo()
    text = str(ei.value) + repr(ei.value.detail)
    assert ei.value.code == "BAD_REQUEST" and ei.value.status == 400
    assert secret not in text and base64.b64encode(f"ops:{secret}".encode()).decode() not in text
    async with fault_client(faults, "notjson") as rc:
        with pytest.raises(RegistryError, match="expected JSON, got text/html"):
            await rc.systeminfo()


async def test_concurrency_is_bounded(faults: Faults) -> None:
    async with fault_client(faults, "conc", concurrency=3) as rc:
        await asyncio.gather(*(rc.ping() for _ in range(12)))
        assert rc.stats.total == 12
    assert faults.max_in_flight == 3


async def test_blob_redirect_drops_authorization(faults: Faults) -> None:
    async with fault_client(faults, "blobs", username="ops", password="pw-xyz") as rc:
        digest = "sha256:" + hashlib.sha256(b"blob-bytes").hexdigest()
        assert await rc.blob("p/r", digest) == b"blob-bytes"
    assert faults.seen_auth == [None]         # cross-origin hop: no credentials leaked to storage


@pytest.fixture
def tls_context(tmp_path: Path) -> ssl.SSLContext:
    """A server context with a fresh self-signed certificate for 127.0.0.1."""
    key, cert = tmp_path / "k.pem", tmp_path / "c.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(cert),
                    "-days", "1", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"],
                   check=True, capture_output=True, timeout=60)
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(cert, key)
    return ctx


async def test_ssl_verify_follows_the_entry(tls_context: ssl.SSLContext) -> None:
    ctx = tls_context
    app = web.Application()
    async def pong(request: web.Request) -> web.Response:
        return web.Response(text="Pong")

    app.router.add_get("/api/v2.0/ping", pong)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port, ssl_context=ctx).start()
    try:
        entry = {"": f"https://127.0.0.1:{port}", "type": "harbor2", "project": "stable"}
        async with RegistryClient.from_entry(entry, "cr.example") as rc:
            with pytest.raises(RegistryUnavailable, match="certificate verification failed") as ei:
                await rc.ping()
            assert "ssl-verify" in str(ei.value)
        async with RegistryClient.from_entry({**entry, "ssl-verify": "false"}, "cr.example") as rc:
            assert await rc.ping() == "Pong"
    finally:
        await runner.cleanup()


def test_from_entry_reads_etcd_strings() -> None:
    rc = RegistryClient.from_entry({"": "https://cr.example", "type": "harbor2", "username": "u",
                                    "password": "p@ss", "ssl-verify": "0"}, "cr.example")
    assert (rc.name, rc.type, rc.username, rc.has_credentials) == ("cr.example", "harbor2", "u", True)
    assert "p@ss" not in repr(vars(rc))
    with pytest.raises(ConfigError):
        RegistryClient.from_entry({"type": "docker"}, "broken")
    asyncio.run(rc.aclose())
    entry = registry_document.entry_from_etcd("cr.backend.ai", {"": "https://cr.example", "type": "harbor2",
                                                           "project": "stable,community", "ssl-verify": "false"})
    assert entry is not None
    rc = RegistryClient.from_entry(entry)
    assert (rc.name, rc.type, rc.base_url, rc.has_credentials) == ("cr.backend.ai", "harbor2", "https://cr.example", False)
    asyncio.run(rc.aclose())


async def test_request_counts_match_the_standin_log(stack: Stack) -> None:
    cfg = stack.harbor_config()
    async with running(cfg) as url, RegistryClient(url) as rc:
        await rc.repositories("stable")
        await rc.scan_repository("stable/python")
        stats = rc.stats.as_dict()
    lines = read_log(Path(cfg.request_log or ""))
    assert stats["total"] == len(lines)
    assert Counter(x["kind"] for x in lines) == Counter({k: v for k, v in stats.items() if k not in ("total", "retries")})
