"""backends.docker against real Docker daemons pulling from real docker-registry instances.

Images are pushed per test session under unique names (so a kept sandbox is never disturbed),
with the sandbox's own pusher: schema2 manifests, config with labels, gzip layers, and one
runnable busybox image with `StopSignal SIGKILL` so its container stops at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import shutil
import signal
import subprocess
import traceback
import warnings
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import aiodocker
import pytest

from backends.docker import (
    AgentConnectError,
    AgentDocker,
    AgentEndpoint,
    DockerOpError,
    LocalImage,
    PullError,
    PullSnapshot,
    RegistryAuth,
    TLSFiles,
    check_template,
    endpoints_from_template,
    infrastructure_reason,
    is_infrastructure,
)
from backends.errors import ConfigError, ConnectError
from backends.image_ref import parse_docker_ref
from backends.sandbox import seed_images, services
from backends.sandbox.cluster import Sandbox
from backends.sandbox.layout import SandboxInfo, free_port
from backends.sandbox.procs import Proc, port_open, wait_until

KERNEL_LABELS = {"ai.backend.kernelspec": "1", "ai.backend.base-distro": "ubuntu20.04",
                 "ai.backend.runtime-type": "python", "ai.backend.runtime-path": "/bin/busybox"}
SFX = secrets.token_hex(3)


@dataclass
class Seeded:
    kernel: str        # lablup/... via the Docker Hub mirror, 2 layers, kernel labels
    kernel_tag: seed_images.SeedTag
    plain: str         # no kernelspec label
    runnable: str      # busybox, StopSignal SIGKILL, kernel labels
    canon_repo: str    # stable/... on Harbor's registry
    hub_host: str


def _run(coro: object) -> object:
    return asyncio.run(coro)  # type: ignore[arg-type]


# One worker runs this module from start to end (the images it pushes exist for its span only).
pytestmark = [pytest.mark.xdist_group("test_docker")]


@pytest.fixture(scope="module")
def seeded(sandbox: SandboxInfo) -> Iterator[Seeded]:
    """Test images pushed into the sandbox's registries for this module, removed after it: a
    scan elsewhere in the session must see the seeded catalogue only (`sandbox reset` drops
    what was pushed since seeding)."""
    yield _seed(sandbox)
    Sandbox(sandbox.path).reset(log=lambda *_: None)


def _seed(sandbox: SandboxInfo) -> Seeded:
    async def push() -> Seeded:
        hub = sandbox.hub_url
        k = await seed_images.push_image(hub, f"lablup/bairm-t-kernel-{SFX}", "1", KERNEL_LABELS,
                                         layers=2, layer_kib=64, salt=SFX, registry=seed_images.HUB)
        await seed_images.push_image(hub, f"lablup/bairm-t-plain-{SFX}", "1", {"maintainer": "t"},
                                     layers=1, layer_kib=16, salt=SFX, registry=seed_images.HUB)
        await seed_images.push_image(hub, f"lablup/bairm-t-run-{SFX}", "1", KERNEL_LABELS, runnable=True,
                                     layers=1, layer_kib=8, salt=SFX, registry=seed_images.HUB)
        await seed_images.push_image(hub, f"lablup/bairm-t-free-{SFX}", "1", KERNEL_LABELS,
                                     layers=1, layer_kib=512, salt=SFX + "free", registry=seed_images.HUB)
        await seed_images.push_image(sandbox.upstream_url, f"stable/bairm-t-canon-{SFX}", "1", KERNEL_LABELS,
                                     layers=1, layer_kib=32, salt=SFX + "canon")
        return Seeded(f"lablup/bairm-t-kernel-{SFX}:1", k, f"lablup/bairm-t-plain-{SFX}:1",
                      f"lablup/bairm-t-run-{SFX}:1", f"stable/bairm-t-canon-{SFX}", sandbox.hub_url[len("http://"):])
    return _run(push())  # type: ignore[return-value]


def endpoint(sb: SandboxInfo, i: int = 0) -> AgentEndpoint:
    a = sb.agents[i]
    return AgentEndpoint.from_template(sb.docker_url_template, {"id": a.id, "host": "127.0.0.1", "port": 6001},
                                       index=a.index)


@pytest.fixture
async def agent(sandbox: SandboxInfo) -> AsyncIterator[AgentDocker]:
    async with AgentDocker(endpoint(sandbox), secrets=[sandbox.creds.harbor_password]) as d:
        yield d


async def cleanup_images(d: AgentDocker, *refs: str) -> None:
    for ref in refs:
        with contextlib.suppress(aiodocker.DockerError):
            await d.docker.images.delete(ref, force=True)


# -- endpoint templates ---------------------------------------------------------------------

@pytest.mark.parametrize(("template", "rule"), [
    ("", "is empty"),
    ("   ", "is empty"),
    ("{host}:2375", "has no scheme"),
    ("ftp://{host}:21", "scheme 'ftp' is not supported"),
    ("npipe:////./pipe/docker_engine", "scheme 'npipe' is not supported"),
    ("tcp://{hostname}:2375", "unknown placeholder {hostname}"),
    ("tcp://{id.x}:2375", "unknown placeholder {id.x}"),
    ("tcp://{host[0]}:2375", "unknown placeholder {host[0]}"),
    ("tcp://{}:2375", "unknown placeholder {}"),
    ("tcp://{0}:2375", "unknown placeholder {0}"),
    ("tcp://{host:2375", "unbalanced braces"),
    ("tcp://{host}}:2375", "unbalanced braces"),
    ("tcp://host}:2375", "unbalanced braces"),
    ("unix:///run/{id/docker.sock", "unbalanced braces"),
    ("tcp://{host!r}:2375", "must not carry a format spec or conversion"),
    ("tcp://{host}:{port:05d}", "must not carry a format spec or conversion"),
    ("tcp://:2375", "has an empty host"),
    ("https://", "has an empty host"),
    ("tcp://{host}:70000", "out of range 1-65535"),
    ("tcp://{host}:0", "out of range 1-65535"),
    ("tcp://{host}:abc", "is not a number between 1 and 65535"),
    ("tcp://{host}:2375/v1.41", "must not have a path"),
    ("unix://", "has no socket path"),
    ("unix://run/docker.sock", "must be absolute"),
    ("unix:///" + "d" * 120 + "/{id}.sock", "longer than 107 bytes"),
    ("ssh://root:hunter2@{host}", "must not carry a password"),
    ("https://admin@{host}:2376", "cannot carry user credentials"),
    ("tcp://my host:2375", "contains spaces"),
])
def test_bad_templates(template: str, rule: str) -> None:
    with pytest.raises(ConfigError) as ei:
        check_template(template)
    err = ei.value
    assert rule in str(err), str(err)
    assert err.key == "agents.docker-url" and "[agents.docker-url]" in str(err)
    assert err.fix, f"no fix for {template!r}"
    assert "hunter2" not in str(err)


@pytest.mark.parametrize(("template", "used", "url"), [
    ("unix:///tmp/bairm/{id}.sock", ("id",), "unix:///tmp/bairm/i-agent7.sock"),
    ("unix:///var/run/docker.sock", (), "unix:///var/run/docker.sock"),
    ("tcp://{host}:2375", ("host",), "http://10.1.2.3:2375"),
    ("tcp://{host}", ("host",), "http://10.1.2.3:2375"),
    ("https://{host}", ("host",), "https://10.1.2.3:2376"),
    ("tcp://{id}.agents.internal:{port}", ("id", "port"), "http://i-agent7.agents.internal:6001"),
    ("tcp://docker-{index}.local:2375", ("index",), "http://docker-7.local:2375"),
    ("ssh://bai@{host}", ("host",), "ssh://bai@10.1.2.3:22"),
    ("ssh://{host}:2222", ("host",), "ssh://10.1.2.3:2222"),
    ("unix:///tmp/{{literal}}/{id}.sock", ("id",), "unix:///tmp/{literal}/i-agent7.sock"),
])
def test_good_templates(template: str, used: tuple[str, ...], url: str) -> None:
    assert check_template(template) == used
    ep = AgentEndpoint.from_template(template, {"id": "i-agent7", "host": "10.1.2.3", "port": 6001}, index=7)
    assert ep.docker_url() == url and str(ep) == url and ep.agent_id == "i-agent7"


def test_template_rendering_rules(tmp_path: Path) -> None:
    @dataclass
    class Row:
        id: str
        host: str | None
        port: int | None

    eps = endpoints_from_template("tcp://{host}:2376", [Row("i-a", "10.0.0.1", 6001), Row("i-b", "fd00::2", 6001)],
                                  tls=TLSFiles(ca=None))
    assert [e.docker_url() for e in eps] == ["http://10.0.0.1:2376", "http://[fd00::2]:2376"]
    with pytest.raises(ConfigError) as ei:
        endpoints_from_template("tcp://{host}:2376", [Row("i-a", "10.0.0.1", 6001), Row("i-odd", None, None)])
    assert "agent i-odd" in str(ei.value) and "{host}" in str(ei.value) and "agents.addr" in str(ei.value)
    idx = endpoints_from_template("unix:///tmp/a{index}.sock", [Row("x", None, None), Row("y", None, None)])
    assert [e.path for e in idx] == ["/tmp/a1.sock", "/tmp/a2.sock"]
    with pytest.raises(ConfigError) as ei:
        AgentEndpoint.from_url("i-a", "unix:///run/docker.sock", tls=TLSFiles(ca="/x/ca.pem"))
    assert "TLS files are set" in str(ei.value)
    # TLS: tcp:// + files means https to the daemon (dockerd --tlsverify), with a client certificate.
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                    "-nodes", "-keyout", str(tmp_path / "key.pem"), "-out", str(tmp_path / "cert.pem"),
                    "-subj", "/CN=bairm-test", "-days", "1"], check=True, capture_output=True)
    tls = TLSFiles(ca=str(tmp_path / "cert.pem"), cert=str(tmp_path / "cert.pem"), key=str(tmp_path / "key.pem"))
    ep = AgentEndpoint.from_url("i-a", "tcp://10.0.0.1", tls=tls)
    assert ep.uses_tls and ep.port == 2376 and ep.docker_url() == "https://10.0.0.1:2376"
    ctx = ep.ssl_context()
    assert ctx is not None and ctx.verify_mode.name == "CERT_REQUIRED"
    assert AgentEndpoint.from_url("i-a", "tcp://10.0.0.1:2375").ssl_context() is None
    with pytest.raises(ConfigError) as ei:
        AgentEndpoint.from_url("i-a", "tcp://10.0.0.1", tls=TLSFiles(ca=str(tmp_path / "missing.pem"))).ssl_context()
    assert "tls-ca" in str(ei.value) and "does not exist" in str(ei.value)
    with pytest.raises(ConfigError) as ei:
        AgentEndpoint.from_url("i-a", "tcp://10.0.0.1", tls=TLSFiles(cert=tls.cert)).ssl_context()
    assert "needs both tls-cert and tls-key" in str(ei.value)
    with pytest.raises(ConfigError) as ei:
        AgentEndpoint.from_url("i-a", "tcp://10.0.0.1", tls=TLSFiles(cert=tls.key, key=tls.key)).ssl_context()
    assert "cannot load the TLS files" in str(ei.value)


def test_parse_docker_ref() -> None:
    r = parse_docker_ref("index.docker.io/lablup/python:3.6-ubuntu18.04")
    assert (r.registry, r.name, r.tag, r.familiar) == ("docker.io", "lablup/python", "3.6-ubuntu18.04",
                                                       "lablup/python:3.6-ubuntu18.04")
    assert parse_docker_ref("ubuntu").familiar == "ubuntu:latest" and parse_docker_ref("ubuntu").name == "library/ubuntu"
    c = parse_docker_ref("cr.backend.ai/stable/python:3.9")
    assert (c.registry, c.name, c.familiar) == ("cr.backend.ai", "stable/python", "cr.backend.ai/stable/python:3.9")
    assert c.with_registry("127.0.0.1:5000").familiar == "127.0.0.1:5000/stable/python:3.9"
    d = parse_docker_ref("localhost/x@sha256:" + "a" * 64)
    assert d.digest and d.tag is None and d.tag_or_digest == d.digest and d.familiar.startswith("localhost/x@")
    for bad in ("", "a b", "UPPER/case:1", "x:", "r@nodigest"):
        with pytest.raises(ValueError):
            parse_docker_ref(bad)


# -- unreachable daemons ----------------------------------------------------------------------

async def test_unreachable_endpoints_name_agent_and_endpoint(sandbox: SandboxInfo) -> None:
    port = free_port()
    cases = [
        (AgentEndpoint.from_url("i-gone", f"unix:///tmp/bairm-none-{SFX}/docker.sock"), "no such socket"),
        (AgentEndpoint.from_url("i-closed", f"tcp://127.0.0.1:{port}"), "connection refused"),
        # TLS against a plain-HTTP listener (the registry): the handshake fails, cleanly.
        (AgentEndpoint.from_url("i-tls", f"https://127.0.0.1:{sandbox.ports.hub_registry}"), "TLS handshake failed"),
    ]
    for ep, reason in cases:
        async with AgentDocker(ep, connect_timeout=3, request_timeout=5) as d:
            with pytest.raises(AgentConnectError) as ei:
                await d.ping()
        err = ei.value
        assert isinstance(err, ConnectError)
        assert f"agent {ep.agent_id}" in str(err) and str(ep) in str(err) and reason in str(err), str(err)
        assert err.fix and err.__cause__ is None and err.__suppress_context__


async def test_ssh_endpoint_parses_and_fails_cleanly() -> None:
    port = free_port()
    ep = AgentEndpoint.from_url("i-ssh", f"ssh://bai@127.0.0.1:{port}")
    assert (ep.scheme, ep.user, ep.host, ep.port) == ("ssh", "bai", "127.0.0.1", port)
    assert ep.docker_url() == f"ssh://bai@127.0.0.1:{port}"
    with pytest.raises(AgentConnectError) as ei:
        async with AgentDocker(ep, connect_timeout=2, request_timeout=5) as d:
            await d.ping()
    msg = str(ei.value)
    assert "agent i-ssh" in msg and f"ssh://bai@127.0.0.1:{port}" in msg and ei.value.fix
    try:
        import asyncssh  # noqa: F401
    except ImportError:
        assert "needs the asyncssh package" in msg and "aiodocker[ssh]" in ei.value.fix


# -- daemon facts ---------------------------------------------------------------------------

async def test_ping_version_info(agent: AgentDocker, sandbox: SandboxInfo) -> None:
    assert await agent.ping()
    v = await agent.version()
    assert v["ApiVersion"]
    info = await agent.info()
    assert info.agent == sandbox.agents[0].id and info.architecture == os.uname().machine
    assert info.os == "linux" and info.ncpu >= 1 and info.storage_driver
    assert any(str(sandbox.ports.hub_registry) in m for m in info.registry_mirrors)


# -- pulls ------------------------------------------------------------------------------------

async def test_pull_with_progress_and_inspect(agent: AgentDocker, seeded: Seeded) -> None:
    events: list[PullSnapshot] = []
    await cleanup_images(agent, seeded.kernel)
    try:
        res = await agent.pull("index.docker.io/" + seeded.kernel, on_progress=events.append)
        assert res.image == seeded.kernel and res.agent == agent.agent
        assert res.image_id == seeded.kernel_tag.config_digest
        assert f"{seeded.kernel.split(':')[0]}@{seeded.kernel_tag.digest}" in res.repo_digests
        assert res.digest == seeded.kernel_tag.digest and not res.up_to_date
        assert res.labels["ai.backend.kernelspec"] == "1" and res.architecture == "amd64" and res.size > 0
        states = [e.state for e in events]
        assert states[0] == "queued" and states[-1] == "done" and "failed" not in states
        assert "pulling" in states and {"extracting", "verifying"} & set(states)
        last = events[-1]
        assert last.layers_total == 2 and last.layers_done == 2
        assert last.bytes_total > 64 * 1024 and last.bytes_current == last.bytes_total
        assert all(e.agent == agent.agent and e.image == seeded.kernel for e in events)
        assert all(a.layers_done <= a.layers_total for a in events)
        # Again: nothing to fetch, still confirmed by inspect.
        again_events: list[PullSnapshot] = []

        async def collect(e: PullSnapshot) -> None:  # async callbacks are awaited
            again_events.append(e)

        again = await agent.pull(seeded.kernel, on_progress=collect)
        assert again.up_to_date and again.image_id == res.image_id and again_events[-1].state == "done"
    finally:
        await cleanup_images(agent, seeded.kernel)


async def test_pull_missing_image_fails_cleanly(agent: AgentDocker, seeded: Seeded) -> None:
    events: list[PullSnapshot] = []
    ref = f"{seeded.hub_host}/lablup/bairm-t-missing-{SFX}:1"  # explicit host: no fallback to Docker Hub
    with pytest.raises(PullError) as ei:
        await agent.pull(ref, on_progress=events.append)
    err = ei.value
    assert err.agent == agent.agent and err.image == ref and "not found" in err.reason
    assert err.fix and "check the image name" in err.fix
    assert events[0].state == "queued" and events[-1].state == "failed" and events[-1].message == err.reason
    assert await agent.inspect(ref) is None


async def test_pull_canonical_name_via_other_host(agent: AgentDocker, seeded: Seeded,
                                                  sandbox: SandboxInfo) -> None:
    canonical = f"{sandbox.target_registry}/{seeded.canon_repo}:1"
    via_name = f"{sandbox.harbor_host}/{seeded.canon_repo}:1"
    await cleanup_images(agent, canonical, via_name)
    auth = RegistryAuth.of(sandbox.creds.harbor_user, sandbox.creds.harbor_password)
    events: list[PullSnapshot] = []
    try:
        res = await agent.pull(canonical, via=sandbox.harbor_url, auth=auth, on_progress=events.append)
        assert res.image == canonical and res.source == via_name
        assert canonical in res.repo_tags and via_name not in res.repo_tags
        assert (await agent.inspect(canonical) or {}).get("Id") == res.image_id
        assert await agent.inspect(via_name) is None   # the helper tag was dropped again
        assert events[-1].state == "done" and events[-1].image == canonical
        kept = await agent.pull(canonical, via=sandbox.harbor_host, auth=auth, keep_source_tag=True)
        assert via_name in kept.repo_tags and canonical in kept.repo_tags and kept.image_id == res.image_id
        with pytest.raises(ValueError):
            await agent.pull(f"{sandbox.target_registry}/{seeded.canon_repo}@sha256:{'0' * 64}", via=sandbox.harbor_host)
    finally:
        await cleanup_images(agent, canonical, via_name)


# -- a registry that wants credentials --------------------------------------------------------

@dataclass
class AuthRegistry:
    host: str
    user: str
    password: str
    ref: str


@pytest.fixture(scope="module")
def auth_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AuthRegistry]:
    root = tmp_path_factory.mktemp("auth-registry")
    port = free_port()
    user, password = "robot$bairm", "Pw-" + secrets.token_urlsafe(12)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        import crypt  # libxcrypt does bcrypt, the only hash distribution's htpasswd accepts

        hashed = crypt.crypt(password, crypt.mksalt(crypt.METHOD_BLOWFISH, rounds=16))
    (root / "htpasswd").write_text(f"{user}:{hashed}\n")
    cfg = root / "registry.yml"
    cfg.write_text("version: 0.1\nlog: {level: warn, accesslog: {disabled: true}}\n"
                   f"storage: {{filesystem: {{rootdirectory: {root / 'data'}}}}}\n"
                   f"http: {{addr: 127.0.0.1:{port}}}\n"
                   f"auth: {{htpasswd: {{realm: bairm-test, path: {root / 'htpasswd'}}}}}\n")
    proc = Proc("auth-registry", root / "run", root / "logs")
    proc.start([services.which("docker-registry"), "serve", str(cfg)], marker=str(cfg))
    try:
        wait_until(lambda: port_open(port), timeout=15, what="auth registry", proc=proc)

        async def push() -> None:
            async with seed_images.Pusher(f"http://127.0.0.1:{port}", auth=(user, password)) as p:
                await seed_images.push_image(f"http://127.0.0.1:{port}", f"private/bairm-t-{SFX}", "1",
                                             KERNEL_LABELS, layers=1, layer_kib=8, salt=SFX + "auth", pusher=p)
        _run(push())
        yield AuthRegistry(f"127.0.0.1:{port}", user, password, f"127.0.0.1:{port}/private/bairm-t-{SFX}:1")
    finally:
        proc.stop(timeout=10)


async def test_pull_with_credentials(agent: AgentDocker, auth_registry: AuthRegistry) -> None:
    ar = auth_registry
    await cleanup_images(agent, ar.ref)
    try:
        events: list[PullSnapshot] = []
        with pytest.raises(PullError) as ei:
            await agent.pull(ar.ref, auth=RegistryAuth.of(ar.user, "not-" + ar.password), on_progress=events.append)
        err = ei.value
        assert "credentials" in (err.fix or "")
        for text in ("".join(traceback.format_exception(err)), repr(err), *(e.message for e in events)):
            assert ar.password not in text
        with pytest.raises(PullError):
            await agent.pull(ar.ref)  # anonymous
        res = await agent.pull(ar.ref, auth={"username": ar.user, "password": ar.password})
        assert res.image == ar.ref and res.labels["ai.backend.kernelspec"] == "1"
    finally:
        await cleanup_images(agent, ar.ref)


# -- removal ----------------------------------------------------------------------------------

async def test_remove_in_use_free_and_gone(agent: AgentDocker, seeded: Seeded) -> None:
    run_ref, free_ref = seeded.runnable, f"lablup/bairm-t-free-{SFX}:1"
    second_tag = f"lablup/bairm-t-run-{SFX}:second"
    name = f"bairm-t-{SFX}"
    await agent.pull(run_ref)
    await agent.pull(free_ref)
    container = await agent.docker.containers.run(
        config={"Image": run_ref, "Cmd": ["/bin/busybox", "sleep", "3600"], "HostConfig": {"NetworkMode": "none"}},
        name=name)
    try:
        image_id = (await agent.inspect(run_ref) or {})["Id"]
        using = await agent.containers_using()
        assert [c.name for c in using[image_id]] == [name] and using[image_id][0].state == "running"
        assert run_ref in {t for im in await agent.kernel_images() for t in im.repo_tags}

        busy = await agent.remove(run_ref)
        assert busy.outcome == "in_use" and not busy.ok and busy.image_id == image_id
        assert busy.containers == [container.id] and "must force" in busy.message
        assert busy.reclaimed_bytes == 0
        assert (await agent.inspect(run_ref) or {}).get("Id") == image_id   # kept

        # A second tag on the same image: removing one name only untags, even while in use.
        await agent.tag(run_ref, second_tag)
        untag = await agent.remove(second_tag)
        assert untag.outcome == "untagged" and untag.ok and untag.reclaimed_bytes == 0
        assert await agent.inspect(run_ref) is not None

        # A stopped container still pins the image (docs/docker.md#removing-images): still in use.
        await container.kill()
        await container.wait()
        stopped = await agent.remove(run_ref)
        assert stopped.outcome == "in_use" and stopped.containers == [container.id]

        free_id = (await agent.inspect(free_ref) or {})["Id"]
        size = (await agent.inspect(free_ref) or {})["Size"]
        freed = await agent.remove(free_ref)
        assert freed.outcome == "removed" and freed.ok and freed.image_id == free_id
        assert freed.reclaimed_bytes == size and size >= 512 * 1024
        assert await agent.inspect(free_ref) is None
        gone = await agent.remove(free_ref)
        assert gone.outcome == "not_found" and gone.ok and gone.reclaimed_bytes is None
    finally:
        with contextlib.suppress(aiodocker.DockerError):
            await container.delete(force=True)
        await cleanup_images(agent, run_ref, second_tag, free_ref)
    assert await agent.inspect(run_ref) is None


async def test_list_and_infrastructure(agent: AgentDocker, seeded: Seeded) -> None:
    await agent.pull(seeded.plain)
    await agent.pull(seeded.kernel)
    try:
        images = {t: im for im in await agent.list_images() for t in im.repo_tags}
        kernels = {t for im in await agent.kernel_images() for t in im.repo_tags}
        assert seeded.kernel in kernels and seeded.plain not in kernels
        assert is_infrastructure(images[seeded.plain]) and not is_infrastructure(images[seeded.kernel])
        assert "no ai.backend.kernelspec label" in (infrastructure_reason(images[seeded.plain]) or "")
    finally:
        await cleanup_images(agent, seeded.plain, seeded.kernel)


@pytest.mark.parametrize(("tags", "labels", "why"), [
    (["lablup/backendai-socket-relay:latest"], {"ai.backend.kernelspec": "1"}, "backendai-socket-relay"),
    (["backendai-krunner-extractor:latest"], {}, "backendai-krunner-extractor"),
    (["cr.backend.ai/stable/backendai-krunner-extractor:1"], {"ai.backend.kernelspec": "1"}, "krunner-extractor"),
    (["lablup/importer:manylinux2010"], {"ai.backend.kernelspec": "1"}, "lablup/importer"),
    (["lablup/lua:5.3"], {}, "no ai.backend.kernelspec label"),
    ([], {}, "no ai.backend.kernelspec label"),
    (["lablup/python:3.9"], {"ai.backend.kernelspec": "1"}, None),
    (["lablup/importer-ng:1"], {"ai.backend.kernelspec": "1"}, None),
])
def test_infrastructure_rules(tags: list[str], labels: dict[str, str], why: str | None) -> None:
    reason = infrastructure_reason(LocalImage("sha256:x", tags, [], 1, 0, labels))
    assert (reason is None) == (why is None)
    if why:
        assert why in (reason or "")


# -- a daemon killed mid-pull -----------------------------------------------------------------

@dataclass
class PrivateDaemon:
    proc: Proc
    agent_dir: Path
    exec_root: Path
    sock: Path


@pytest.fixture
def private_daemon(sandbox: SandboxInfo, tmp_path: Path) -> Iterator[PrivateDaemon]:
    short = Path(f"/tmp/bairm-k-{SFX}")
    short.mkdir(mode=0o755, exist_ok=True)
    pd = PrivateDaemon(Proc("dockerd-kill", tmp_path / "run", tmp_path / "logs"), tmp_path / "agent",
                       short / "x9", short / "d.sock")
    try:
        services.start_dockerd(pd.proc, pd.agent_dir, pd.exec_root, pd.sock, sandbox.ports.hub_registry, 9)
        yield pd
    finally:
        pid = pd.proc.pid()
        services.stop_dockerd(pd.proc, pd.agent_dir, pd.exec_root)
        if pid:  # our child: reap it if the test killed it
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, os.WNOHANG)
        with open("/proc/mounts") as f:
            left = [ln.split()[1] for ln in f if str(tmp_path) in ln or str(short) in ln]
        shutil.rmtree(short, ignore_errors=True)
        shutil.rmtree(pd.agent_dir, ignore_errors=True)
        assert not left, f"mounts left behind: {left}"


async def test_daemon_killed_mid_pull_fails_cleanly(
        private_daemon: PrivateDaemon, sandbox: SandboxInfo) -> None:
    big = await seed_images.push_image(sandbox.hub_url, f"bairm-t/big-{SFX}", "1", {}, layers=2,
                                       layer_kib=24 * 1024, salt=SFX + "big", registry=seed_images.HUB)
    assert big.size_bytes > 40 * 1024 * 1024
    pid = private_daemon.proc.pid()
    assert pid
    events: list[PullSnapshot] = []

    def kill_when_started(e: PullSnapshot) -> None:
        events.append(e)
        if e.state != "queued" and e.layers_total and private_daemon.proc.alive():
            os.kill(pid, signal.SIGKILL)

    ep = AgentEndpoint.from_url("i-doomed", f"unix://{private_daemon.sock}")
    async with AgentDocker(ep) as d:
        async with asyncio.timeout(60):
            with pytest.raises(PullError) as ei:
                await d.pull(f"bairm-t/big-{SFX}:1", on_progress=kill_when_started, stall_timeout=30)
        assert not private_daemon.proc.alive()
        err = ei.value
        assert err.agent == "i-doomed" and str(ep) in str(err)
        assert "broke mid-pull" in err.reason or "ended without a success status" in err.reason, err.reason
        assert events[-1].state == "failed" and events[-1].layers_done < events[-1].layers_total
        with pytest.raises(AgentConnectError) as ci:
            await d.ping()
        assert "agent i-doomed" in str(ci.value)


# -- failures inside a 200 stream -----------------------------------------------------------

async def test_error_inside_the_stream(agent: AgentDocker, sandbox: SandboxInfo) -> None:
    """A manifest whose layer blob is gone: the daemon starts streaming, then reports an error."""
    import httpx

    repo = f"lablup/bairm-t-broken-{SFX}"
    tag = await seed_images.push_image(sandbox.hub_url, repo, "1", KERNEL_LABELS, layers=1, layer_kib=16,
                                       salt=SFX + "broken", registry=seed_images.HUB)
    async with httpx.AsyncClient(base_url=sandbox.hub_url, trust_env=False) as c:
        r = await c.delete(f"/v2/{repo}/blobs/{tag.amd64.layers[0]}")
        assert r.status_code == 202, r.text
    ref = f"{sandbox.hub_url[len('http://'):]}/{repo}:1"
    events: list[PullSnapshot] = []
    with pytest.raises(PullError) as ei:
        await agent.pull(ref, on_progress=events.append)
    states = [e.state for e in events]
    assert "pulling" in states and states[-1] == "failed"
    assert events[-1].layers_total == 1 and events[-1].layers_done == 0
    assert "unknown" in ei.value.reason.lower() or "not found" in ei.value.reason.lower(), ei.value.reason
    assert await agent.inspect(ref) is None
    with pytest.raises(DockerOpError) as oi:  # other refusals name the agent and the operation
        await agent.tag(ref, f"lablup/bairm-t-never-{SFX}:1")
    assert oi.value.status == 404 and f"agent {agent.agent}" in str(oi.value) and "tag" in str(oi.value)


@pytest.mark.parametrize(("tail", "error", "success"), [
    ([], None, False),                                                  # stream ended early
    ([{"errorDetail": {"message": "write /var/lib/docker/tmp: no space left on device"},
       "error": "write /var/lib/docker/tmp: no space left on device"}], "no space left on device", False),
    ([{"status": "Pull complete", "id": "aaa"}, {"status": "Digest: sha256:" + "1" * 64},
      {"status": "Status: Downloaded newer image for lablup/x:1"}], None, True),
])
def test_pull_stream_folding(tail: list[dict[str, object]], error: str | None, success: bool) -> None:
    """The Engine's JSON lines folded into one state: an in-band error object inside a 200
    stream, a stream without a `Status:` line, and a clean success (docs/docker.md#pull-stream). Real
    daemons produce the first two only by accident, so the parser itself is checked here;
    `pull()` turns a missing success into a failure (see the kill-mid-pull test)."""
    from backends.docker.pull_tracker import PullTracker

    t = PullTracker("i-x", "lablup/x:1", min_interval=0)
    for line in [{"status": "Pulling from x", "id": "1"}, {"status": "Pulling fs layer", "id": "aaa"},
                 {"status": "Downloading", "id": "aaa", "progressDetail": {"current": 5, "total": 10}}, *tail]:
        t.feed(line)
    assert t.success is success
    assert (t.error is None) if error is None else (error in (t.error or ""))
    ev = t.event()
    assert ev.bytes_total == 10 and ev.layers_total == 1
