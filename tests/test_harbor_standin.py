"""The Harbor v2 stand-in against Harbor's behaviour (docs/harbor.md) and docs/sandbox.md#the-harbor-stand-in.

The module's stand-in runs as a subprocess (`python -m backends.sandbox.harbor --config`) in
front of a real docker-registry; behaviours behind switches get their own in-process instance
on another port. The last test has a real dockerd pull through the stand-in.
"""

from __future__ import annotations

import json
import secrets
import shutil
import subprocess
import sys
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiodocker
import httpx
import pytest
from test_seed_images import NESTED, PASSWORD, PRIVATE_REPO, ROBOT, ROBOT_SECRET, USER, Stack, stack

from backends.sandbox import seed_images as si
from backends.sandbox.harbor import running
from backends.sandbox.layout import SandboxInfo, free_port
from backends.sandbox.procs import Proc
from backends.sandbox.services import start_dockerd, stop_dockerd

__all__ = ["stack"]

SCHEMA2 = "application/vnd.docker.distribution.manifest.v2+json"
API = "/api/v2.0"


def client(base: str, auth: tuple[str, str] | None = None) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=base, auth=auth, trust_env=False, timeout=30)


@asynccontextmanager
async def standin(stack: Stack, **switches: Any) -> AsyncIterator[str]:
    async with running(stack.harbor_config(**switches)) as url:
        yield url


def read_log(path: Path, skip: int = 0) -> list[dict[str, Any]]:
    return [json.loads(x) for x in path.read_text().splitlines()[skip:]]


def errors_of(r: httpx.Response) -> list[dict[str, str]]:
    assert r.headers["content-type"].startswith("application/json")
    return r.json()["errors"]


async def test_ping_systeminfo_health(stack: Stack) -> None:
    async with client(stack.harbor_url) as anon, client(stack.harbor_url, (USER, PASSWORD)) as admin:
        r = await anon.get(f"{API}/ping")
        assert r.status_code == 200 and r.text == "Pong" and r.headers["content-type"].startswith("text/plain")
        info = (await anon.get(f"{API}/systeminfo")).json()
        assert info["auth_mode"] == "db_auth" and "harbor_version" not in info and "external_url" not in info
        info = (await admin.get(f"{API}/systeminfo")).json()
        assert info["harbor_version"].startswith("v2.") and info["external_url"] == stack.harbor_url
        health = (await anon.get(f"{API}/health")).json()
        assert health["status"] == "healthy" and {"name": "registry", "status": "healthy"} in health["components"]


async def test_projects_pagination_and_filters(stack: Stack) -> None:
    async with client(stack.harbor_url) as c:
        r = await c.get(f"{API}/projects", params={"page_size": 1})
        assert r.status_code == 200 and r.headers["x-total-count"] == "2"
        assert [p["name"] for p in r.json()] == ["stable"]
        assert r.headers["link"] == f'<{API}/projects?page=2&page_size=1>; rel="next"'
        r = await c.get(f"{API}/projects", params={"page": 2, "page_size": 1})
        assert [p["name"] for p in r.json()] == ["community"]
        assert r.headers["link"] == f'<{API}/projects?page=1&page_size=1>; rel="prev"'
        assert [p["name"] for p in (await c.get(f"{API}/projects", params={"name": "tab"})).json()] == ["stable"]
        assert [p["name"] for p in (await c.get(f"{API}/projects", params={"q": "name=~comm"})).json()] == ["community"]
        stable = (await c.get(f"{API}/projects", params={"name": "stable"})).json()[0]
        assert stable["metadata"]["public"] == "true" and stable["repo_count"] >= 10
        r = await c.get(f"{API}/projects", params={"page_size": 101})
        assert r.status_code == 422
        assert errors_of(r) == [{"code": "UNPROCESSABLE_ENTITY", "message": "validation failure list:\n"
                                 "page_size in query should be less than or equal to 100"}]
        assert (await c.head(f"{API}/projects", params={"project_name": "stable"})).status_code == 200
        assert (await c.head(f"{API}/projects", params={"project_name": "nope"})).status_code == 404
        by_id = await c.get(f"{API}/projects/{stable['project_id']}")
        assert by_id.json()["name"] == "stable"
        r = await c.get(f"{API}/projects/{stable['project_id']}", headers={"X-Is-Resource-Name": "true"})
        assert r.status_code == 401       # "1" as a name: no such project, and we are anonymous


async def test_repositories_pagination_link_format(stack: Stack) -> None:
    expected = sorted({t.repo for t in stack.record.in_registry(si.UPSTREAM) if t.repo.startswith("stable/")}
                      | {NESTED})
    async with client(stack.harbor_url) as c:
        names: list[str] = []
        r = await c.get(f"{API}/projects/stable/repositories", params={"page_size": 30})   # what 20.09 sends
        assert [x["name"] for x in r.json()] == expected and "link" not in r.headers
        page, url = 1, f"{API}/projects/stable/repositories?page_size=4&q=name%3D~stable"
        while url:
            r = await c.get(url)
            assert r.headers["x-total-count"] == str(len(expected))
            names += [x["name"] for x in r.json()]
            links = r.headers.get("link", "")
            if page > 1:
                assert links.startswith(f'<{API}/projects/stable/repositories?page={page - 1}&page_size=4&q=name=~stable>; '
                                        'rel="prev"')
            url = r.links.get("next", {}).get("url")
            if url:
                assert ' , <' in links or page == 1      # Harbor's " , " separator between prev and next
            page += 1
        assert names == expected
        repo = (await c.get(f"{API}/projects/stable/repositories/python")).json()
        assert repo["name"] == "stable/python" and repo["artifact_count"] == 3


async def test_forced_page_size_switch(stack: Stack) -> None:
    async with standin(stack, force_page_size=3) as url, client(url) as c:
        r = await c.get(f"{API}/projects/stable/repositories", params={"page_size": 30})
        assert len(r.json()) == 3 and 'page=2&page_size=3>; rel="next"' in r.headers["link"]


async def test_repository_names_are_double_encoded(stack: Stack) -> None:
    async with client(stack.harbor_url) as c:
        r = await c.get(f"{API}/projects/stable/repositories/ngc%252Fpytorch")
        assert r.status_code == 200 and r.json()["name"] == NESTED
        arts = (await c.get(f"{API}/projects/stable/repositories/ngc%252Fpytorch/artifacts")).json()
        assert [t["name"] for t in arts[0]["tags"]] == ["21.03-py3"]
        # Encoded once, the router already splits the name: Harbor answers 404.
        assert (await c.get(f"{API}/projects/stable/repositories/ngc%2Fpytorch")).status_code == 404


async def test_artifacts_carry_labels_and_references(stack: Stack) -> None:
    async with client(stack.harbor_url) as c:
        r = await c.get(f"{API}/projects/stable/repositories/python/artifacts",
                        params={"with_label": "true", "q": "tags=*", "page_size": 100})
        arts = {a["tags"][0]["name"]: a for a in r.json()}
        assert r.headers["x-total-count"] == "3"
        single = arts["3.8-ubuntu20.04"]
        rec = stack.record.find(si.UPSTREAM, "stable/python", "3.8-ubuntu20.04")
        assert single["digest"] == rec.digest and single["manifest_media_type"] == SCHEMA2
        assert single["media_type"] == si.MT_CONFIG and single["labels"] == [] and single["references"] is None
        extra = single["extra_attrs"]
        assert extra["architecture"] == "amd64" and extra["os"] == "linux" and extra["created"] == si.SEED_CREATED
        assert extra["config"]["Labels"] == rec.labels and extra["author"]
        async with client(stack.upstream_url) as up:
            manifest = (await up.get(f"/v2/stable/python/manifests/{rec.digest}", headers={"Accept": SCHEMA2})).json()
        assert single["size"] == len(json.dumps(manifest, indent=3, sort_keys=True)) + rec.size_bytes
        multi = arts["3.9-ubuntu20.04"]
        mrec = stack.record.find(si.UPSTREAM, "stable/python", "3.9-ubuntu20.04")
        assert multi["manifest_media_type"] == si.MT_LIST and multi["media_type"] == si.MT_LIST
        refs = {x["platform"]["architecture"]: x for x in multi["references"]}
        assert {a: x["child_digest"] for a, x in refs.items()} == {a: i.digest for a, i in mrec.images.items()}
        # A child fetched by digest has its own extra_attrs (the scanner's route to its labels).
        child = (await c.get(f"{API}/projects/stable/repositories/python/artifacts/{refs['arm64']['child_digest']}")).json()
        assert child["extra_attrs"]["architecture"] == "arm64" and child["tags"] == []
        assert child["extra_attrs"]["config"]["Labels"] == mrec.labels
        # with_tag=false, q filters, one artifact by tag, its tags.
        r = await c.get(f"{API}/projects/stable/repositories/python/artifacts", params={"with_tag": "false"})
        assert all(a["tags"] is None and a["labels"] is None for a in r.json())
        assert (await c.get(f"{API}/projects/stable/repositories/python/artifacts", params={"q": "tags=nil"})).json() == []
        r = await c.get(f"{API}/projects/stable/repositories/python/artifacts", params={"q": "tags=~3.9"})
        assert [a["digest"] for a in r.json()] == [mrec.digest]
        one = (await c.get(f"{API}/projects/stable/repositories/python/artifacts/3.9-ubuntu20.04")).json()
        assert one["digest"] == mrec.digest
        tags = (await c.get(f"{API}/projects/stable/repositories/python/artifacts/{mrec.digest}/tags")).json()
        assert [t["name"] for t in tags] == ["3.9-ubuntu20.04"]
        r = await c.get(f"{API}/projects/stable/repositories/python/artifacts/nope")
        assert r.status_code == 404 and errors_of(r)[0]["code"] == "NOT_FOUND"


async def test_api_auth_matrix(stack: Stack) -> None:
    projects = {"stable": {"public": True}, "community": {"public": True}, "internal": {"public": False}}
    async with standin(stack, projects=projects) as url:
        async with client(url) as anon, client(url, (USER, PASSWORD)) as admin, \
                client(url, (USER, "wrong-password")) as wrong, client(url, (ROBOT, ROBOT_SECRET)) as robot, \
                client(url, ("dev", "sbx-dev-pw")) as dev:
            assert (await admin.get(f"{API}/users/current")).json()["username"] == USER
            r = await robot.get(f"{API}/users/current")
            assert r.status_code == 412 and errors_of(r)[0]["code"] == "PRECONDITION"
            for c in (anon, wrong):
                r = await c.get(f"{API}/users/current")
                assert r.status_code == 401 and errors_of(r)[0]["code"] == "UNAUTHORIZED"
            # A wrong password falls back to anonymous: public projects still list
            # (docs/harbor.md#authentication).
            assert [p["name"] for p in (await wrong.get(f"{API}/projects")).json()] == ["stable", "community"]
            assert [p["name"] for p in (await admin.get(f"{API}/projects")).json()] == ["stable", "community", "internal"]
            # Private project: anonymous 401; a user sees it; a robot of another project gets 403.
            r = await anon.get(f"{API}/projects/internal/repositories")
            assert r.status_code == 401 and errors_of(r)[0]["code"] == "UNAUTHORIZED"
            assert [x["name"] for x in (await dev.get(f"{API}/projects/internal/repositories")).json()] == [PRIVATE_REPO]
            assert (await robot.get(f"{API}/projects/internal/repositories")).status_code == 403
            assert (await robot.get(f"{API}/projects/stable/repositories")).status_code == 200
            # Unknown project: 401 anonymous, 403 non-admin, 404 admin only (handler/base.go).
            assert (await anon.get(f"{API}/projects/ghost/repositories")).status_code == 401
            assert (await dev.get(f"{API}/projects/ghost/repositories")).status_code == 403
            r = await admin.get(f"{API}/projects/ghost/repositories")
            assert r.status_code == 404 and errors_of(r)[0]["code"] == "NOT_FOUND"
            r = await anon.post(f"{API}/projects")
            assert r.status_code == 405


async def test_v2_challenges(stack: Stack) -> None:
    realm = f'Bearer realm="{stack.harbor_url}/service/token",service="harbor-registry"'
    async with client(stack.harbor_url) as anon, client(stack.harbor_url, (USER, PASSWORD)) as admin, \
            client(stack.harbor_url, (USER, "wrong")) as wrong:
        r = await anon.get("/v2/")
        assert r.status_code == 401 and r.headers["www-authenticate"] == realm
        assert r.headers["docker-distribution-api-version"] == "registry/2.0"
        assert (await admin.get("/v2/")).status_code == 200
        r = await wrong.get("/v2/")
        assert r.status_code == 401 and r.headers["www-authenticate"] == 'Basic realm="harbor"'
        # HEAD of a repository path needs a token even when public; anonymous GET is allowed.
        r = await anon.head("/v2/stable/python/manifests/3.8-ubuntu20.04")
        assert r.status_code == 401 and 'scope="repository:stable/python:pull"' in r.headers["www-authenticate"]
        assert (await anon.get("/v2/stable/python/tags/list")).status_code == 200
        assert (await admin.head("/v2/stable/python/manifests/3.8-ubuntu20.04")).status_code == 200
        # _catalog needs an admin.
        assert (await anon.get("/v2/_catalog")).status_code == 401
        cat = (await admin.get("/v2/_catalog", params={"n": 3})).json()["repositories"]
        assert len(cat) == 3 and all(n.split("/")[0] in ("stable", "community") for n in cat)
    async with standin(stack, token_only=True) as url, client(url, (USER, PASSWORD)) as c:
        r = await c.get("/v2/")
        assert r.status_code == 401 and r.headers["www-authenticate"].startswith("Bearer realm=")
    async with standin(stack, v2_auth="none") as url, client(url) as c:
        assert (await c.get("/v2/")).status_code == 200
    async with standin(stack, v2_auth="basic") as url, client(url) as c:
        assert (await c.get("/v2/")).headers["www-authenticate"] == 'Basic realm="harbor"'


async def test_token_flow(stack: Stack) -> None:
    projects = {"stable": {"public": True}, "community": {"public": True}, "internal": {"public": False}}
    async with standin(stack, projects=projects) as url, client(url) as anon, \
            client(url, (USER, PASSWORD)) as admin, client(url, (USER, "wrong")) as wrong:
        params = {"service": "harbor-registry", "scope": "repository:stable/python:pull",
                  "offline_token": "true", "client_id": "docker"}
        r = await anon.get("/service/token", params=params)
        body = r.json()
        assert r.status_code == 200 and body["token"] == body["access_token"] and body["expires_in"] == 1800
        assert body["issued_at"].endswith("Z")
        bearer = {"Authorization": f"Bearer {body['token']}"}
        r = await anon.get("/v2/stable/python/manifests/3.8-ubuntu20.04", headers={**bearer, "Accept": SCHEMA2})
        assert r.status_code == 200
        # The token only covers its scope.
        r = await anon.get("/v2/stable/r-base/tags/list", headers=bearer)
        assert r.status_code == 401 and 'error="insufficient_scope"' in r.headers["www-authenticate"]
        assert (await anon.get("/v2/stable/python/tags/list", headers={"Authorization": "Bearer nope"})).status_code == 401
        # Private project: an anonymous token carries no access; a user's does.
        priv = {**params, "scope": f"repository:{PRIVATE_REPO}:pull"}
        tok = (await anon.get("/service/token", params=priv)).json()["token"]
        assert (await anon.get(f"/v2/{PRIVATE_REPO}/tags/list", headers={"Authorization": f"Bearer {tok}"})).status_code == 401
        tok = (await admin.get("/service/token", params=priv)).json()["token"]
        r = await anon.get(f"/v2/{PRIVATE_REPO}/tags/list", headers={"Authorization": f"Bearer {tok}"})
        assert r.json() == {"name": PRIVATE_REPO, "tags": ["1.0"]}
        r = await wrong.get("/service/token", params=params)
        assert r.status_code == 401 and errors_of(r)[0]["code"] == "UNAUTHORIZED"
        assert (await anon.post("/service/token", params=params)).status_code == 405
    async with standin(stack, token_field="token") as url, client(url) as c:
        assert set((await c.get("/service/token")).json()) == {"token", "expires_in", "issued_at"}


async def test_tags_list_paging_and_never_null(stack: Stack) -> None:
    async with client(stack.harbor_url) as c:
        r = await c.get("/v2/stable/python/tags/list", params={"n": 2})
        assert r.json() == {"name": "stable/python", "tags": ["3.6-ubuntu18.04", "3.8-ubuntu20.04"]}
        assert r.headers["link"] == '</v2/stable/python/tags/list?last=3.8-ubuntu20.04&n=2>; rel="next"'
        r = await c.get(r.links["next"]["url"])
        assert r.json()["tags"] == ["3.9-ubuntu20.04"] and "link" not in r.headers
        assert (await c.get("/v2/stable/python/tags/list", params={"n": 0})).json()["tags"] == []
        r = await c.get("/v2/stable/ghost/tags/list")
        assert r.status_code == 404 and errors_of(r)[0]["code"] == "NAME_UNKNOWN"
    async with standin(stack, extra_repos=["stable/empty"]) as url, client(url) as c:
        listed = (await c.get(f"{API}/projects/stable/repositories", params={"page_size": 100})).json()
        assert "stable/empty" in [x["name"] for x in listed]
        assert (await c.get("/v2/stable/empty/tags/list")).json() == {"name": "stable/empty", "tags": []}


async def test_manifests_resolve_by_digest(stack: Stack) -> None:
    rec = stack.record.find(si.UPSTREAM, "stable/python", "3.9-ubuntu20.04")
    async with client(stack.harbor_url, (USER, PASSWORD)) as c:
        # Harbor-faithful: a schema2-only client gets the LIST for a multi-arch tag (docs/harbor.md#manifests).
        r = await c.get("/v2/stable/python/manifests/3.9-ubuntu20.04", headers={"Accept": SCHEMA2})
        assert r.status_code == 200 and r.headers["content-type"] == si.MT_LIST
        assert r.headers["docker-content-digest"] == rec.digest and "config" not in r.json()
        h = await c.head("/v2/stable/python/manifests/3.9-ubuntu20.04", headers={"Accept": SCHEMA2})
        assert h.headers["content-length"] == str(len(r.content)) and h.content == b""
        r = await c.get(f"/v2/stable/python/manifests/{rec.amd64.digest}", headers={"Accept": SCHEMA2})
        assert r.json()["config"]["digest"] == rec.config_digest
        r = await c.get("/v2/stable/python/manifests/no-such-tag", headers={"Accept": SCHEMA2})
        assert r.status_code == 404 and errors_of(r)[0]["code"] == "MANIFEST_UNKNOWN"
    async with standin(stack, resolve_digest=False) as url, client(url, (USER, PASSWORD)) as c:
        # Proxied by tag, distribution down-converts to the amd64 child: what Harbor does NOT do.
        r = await c.get("/v2/stable/python/manifests/3.9-ubuntu20.04", headers={"Accept": SCHEMA2})
        assert r.headers["docker-content-digest"] == rec.amd64.digest


async def test_blobs_are_streamed_and_not_negotiated(stack: Stack) -> None:
    rec = stack.record.find(si.UPSTREAM, "stable/ngc-pytorch", "20.11-py3")
    async with client(stack.harbor_url, (USER, PASSWORD)) as c:
        r = await c.get(f"/v2/stable/ngc-pytorch/blobs/{rec.config_digest}", headers={"Accept": SCHEMA2})
        assert r.status_code == 200 and json.loads(r.content)["config"]["Labels"] == rec.labels
        layer = rec.amd64.layers[-1]
        got = bytearray()
        async with c.stream("GET", f"/v2/stable/ngc-pytorch/blobs/{layer}") as s:
            assert s.headers["docker-content-digest"] == layer
            async for chunk in s.aiter_raw():
                got += chunk
        import hashlib
        assert "sha256:" + hashlib.sha256(got).hexdigest() == layer and len(got) > 384 * 1024
        h = await c.head(f"/v2/stable/ngc-pytorch/blobs/{layer}")
        assert h.status_code == 200 and h.headers["content-length"] == str(len(got))
        assert (await c.get("/v2/stable/ngc-pytorch/blobs/sha256:" + "0" * 64)).status_code == 404
    async with standin(stack, redirect_blobs=True) as url, client(url, (USER, PASSWORD)) as c:
        r = await c.get(f"/v2/stable/ngc-pytorch/blobs/{rec.config_digest}")
        assert r.status_code == 307 and r.headers["location"].startswith(stack.upstream_url)


async def test_fault_switches(stack: Stack) -> None:
    async with standin(stack, api_faults=[429, 503], relative_realm=True, tags_null=True,
                       api_content_type="text/plain") as url, client(url) as c:
        r = await c.get(f"{API}/ping")
        assert r.status_code == 429 and r.headers["retry-after"] == "0"
        r = await c.get(f"{API}/ping")
        assert r.status_code == 503 and errors_of(r)[0]["message"] == "internal server error"
        assert (await c.get(f"{API}/projects")).headers["content-type"].startswith("text/plain")
        assert (await c.get("/v2/")).headers["www-authenticate"].startswith('Bearer realm="/service/token"')
        assert (await c.get("/v2/stable/python/tags/list")).json()["tags"] is None
    async with standin(stack, redirect_api="http://127.0.0.1:9") as url, client(url) as c:
        r = await c.get(f"{API}/projects?page_size=30")
        assert r.status_code == 301 and r.headers["location"] == f"http://127.0.0.1:9{API}/projects?page_size=30"


async def test_request_log_lines(stack: Stack) -> None:
    cfg = stack.harbor_config()
    async with running(cfg) as url, client(url) as c:
        await c.get(f"{API}/projects", params={"page_size": 5})
        await c.get("/v2/")
        await c.get("/service/token", params={"scope": "repository:stable/python:pull"})
    lines = read_log(Path(cfg.request_log or ""))
    assert [x["kind"] for x in lines] == ["api", "ping", "token"]
    first = lines[0]
    assert set(first) >= {"method", "path", "query", "auth", "accept", "status", "ms"}
    assert (first["method"], first["path"], first["query"], first["auth"], first["status"]) == \
        ("GET", f"{API}/projects", "page_size=5", "none", 200)
    assert lines[1]["status"] == 401


def test_cli_rejects_non_loopback(tmp_path: Path) -> None:
    cfg = tmp_path / "bad.json"
    cfg.write_text(json.dumps({"listen": {"host": "0.0.0.0", "port": free_port()}, "upstream": "http://127.0.0.1:1"}))
    r = subprocess.run([sys.executable, "-m", "backends.sandbox.harbor", "--config", str(cfg)],
                       capture_output=True, text=True, timeout=30, cwd=Path(__file__).resolve().parents[1])
    assert r.returncode == 2 and "127.0.0.1" in r.stderr


@pytest.fixture
def dockerd(stack: Stack, tmp_path: Path) -> Iterator[Path]:
    """A throwaway daemon (short exec-root: docs/sandbox.md#docker-daemons-as-agents); yields its socket."""
    short = Path(f"/tmp/bhs-{secrets.token_hex(3)}")
    short.mkdir()
    proc = Proc("dockerd", tmp_path / "run", tmp_path / "logs")
    agent_dir, exec_root, sock = tmp_path / "agent", short / "x", short / "d.sock"
    try:
        start_dockerd(proc, agent_dir, exec_root, sock, int(stack.hub_url.rsplit(":", 1)[1]), 1)
        yield sock
    finally:
        stop_dockerd(proc, agent_dir, exec_root)
        assert not proc.alive()
        shutil.rmtree(short)


@pytest.mark.docker
async def test_real_dockerd_pulls_through_the_standin(stack: Stack, dockerd: Path) -> None:
    harbor = stack.harbor_url.removeprefix("http://")
    log_start = len(read_log(stack.request_log))
    docker = aiodocker.Docker(url=f"unix://{dockerd}")
    try:
        for tag in ("3.6-ubuntu18.04", "3.9-ubuntu20.04"):      # runnable; multi-arch list
            rec = stack.record.find(si.UPSTREAM, "stable/python", tag)
            events = await docker.images.pull(f"{harbor}/stable/python", tag=tag)
            assert not [e for e in events if "error" in e], events
            info = await docker.images.inspect(f"{harbor}/stable/python:{tag}")
            assert info["Id"] == rec.config_digest
            assert info["Config"]["Labels"] == rec.labels
            assert f"{harbor}/stable/python@{rec.digest}" in info["RepoDigests"]
    finally:
        await docker.close()
    kinds = Counter(x["kind"] for x in read_log(stack.request_log, log_start))
    # Anonymous token flow: 401 ping, a token, manifests, blobs, all through the stand-in.
    assert kinds["ping"] >= 1 and kinds["token"] >= 1 and kinds["manifest"] >= 3 and kinds["blob"] >= 6


@pytest.mark.docker
async def test_the_sandbox_standin_serves_its_seed(sandbox: SandboxInfo) -> None:
    """The session sandbox (tests/conftest.py) runs this stand-in over the seeded upstream."""
    record = si.SeedRecord.load(sandbox.path / "seed.json")
    assert record.to_dict()["tags"] == si.expected_record().to_dict()["tags"]
    creds = (sandbox.creds.harbor_user, sandbox.creds.harbor_password)
    async with client(sandbox.harbor_url, creds) as c:
        assert (await c.get(f"{API}/users/current")).json()["username"] == sandbox.creds.harbor_user
        for project in sandbox.projects:
            listed = (await c.get(f"{API}/projects/{project}/repositories", params={"page_size": 100})).json()
            # other tests push uniquely named `bairm-*` repositories into the shared sandbox
            seeded = [x["name"] for x in listed if not x["name"].split("/", 1)[1].startswith("bairm-")]
            assert seeded == record.repos(si.UPSTREAM, project)
    # An agent of the sandbox pulls a Harbor image through the anonymous token flow.
    rec = record.find(si.UPSTREAM, "stable/r-base", "4.0")
    docker = aiodocker.Docker(url=sandbox.agents[-1].docker_url)
    ref = f"{sandbox.harbor_host}/stable/r-base:4.0"
    try:
        events = await docker.images.pull(f"{sandbox.harbor_host}/stable/r-base", tag="4.0")
        assert not [e for e in events if "error" in e], events
        assert (await docker.images.inspect(ref))["Id"] == rec.config_digest
    finally:
        try:
            await docker.images.delete(ref)
        finally:
            await docker.close()
