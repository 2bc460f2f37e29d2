"""`sandbox up|down|status`: a legacy Backend.AI 20.09 cluster on 127.0.0.1, from real programs.

`up` is idempotent: the first run allocates ports and passwords (kept in `sandbox.json`),
creates data and seeds it; later runs only start what is not running. `down` stops every
process by its pidfile, cleans the mounts and cgroups a Docker daemon leaves, and with
`purge` removes the data. Everything the wizard needs to find the cluster is written to
`DIR/manager.toml` and `DIR/plan.toml`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import sys
import time
from pathlib import Path
from typing import Any

import tomli_w

from ..config import HostPort
from ..etcd import EtcdStore
from ..secrets import Secret
from . import services
from .catalog import CATALOG, ImageSpec
from .layout import (
    MANAGER_API_VERSION,
    NAMESPACE,
    Agent,
    Credentials,
    Ports,
    SandboxInfo,
    short_root,
)
from .procs import Proc, ServiceError, port_open, wait_until

SEEDED_MARK = "seeded.json"


class Sandbox:
    def __init__(self, path: Path) -> None:
        self.path = path.resolve()
        self._info: SandboxInfo | None = None

    # -- layout -------------------------------------------------------------------------
    @property
    def info(self) -> SandboxInfo:
        if self._info is None:
            self._info = SandboxInfo.load(self.path)
        return self._info

    def proc(self, name: str) -> Proc:
        return Proc(name, self.path / "run", self.path / "logs")

    def agent_proc(self, agent: Agent) -> Proc:
        return self.proc(f"dockerd-{agent.id}")

    def agent_dirs(self, agent: Agent) -> tuple[Path, Path, Path]:
        short = Path(self.info.short)
        return self.path / "agents" / agent.id, short / f"x{agent.index}", short / f"{agent.id}.sock"

    def _create(self, agents: int, docker: bool) -> SandboxInfo:
        self.path.mkdir(parents=True, exist_ok=True)
        os.chmod(self.path, 0o755)
        short = short_root(self.path)
        info = SandboxInfo(dir=str(self.path), short=str(short), namespace=NAMESPACE,
                           ports=Ports.allocate(), creds=Credentials.generate(), docker=docker)
        if docker:
            info.agents = [Agent(id=f"i-agent{i}", index=i, docker_url=f"unix://{short}/i-agent{i}.sock",
                                 rpc_addr=f"tcp://127.0.0.1:{6000 + i}") for i in range(1, agents + 1)]
        info.save()
        return info

    # -- up -----------------------------------------------------------------------------
    def up(self, *, agents: int = 3, docker: bool = True, log: Any = print) -> SandboxInfo:
        t0 = time.monotonic()
        if docker and os.geteuid() != 0:
            log("not root: starting without Docker agents (--no-docker)")
            docker = False
        if not SandboxInfo.exists(self.path):
            self._info = self._create(agents, docker)
        info = self.info
        Path(info.short).mkdir(parents=True, exist_ok=True)
        p = info.ports
        c = info.creds

        services.start_etcd(self.proc("etcd"), self.path / "etcd", p.etcd, p.etcd_peer)
        services.enable_etcd_auth(p.etcd, c.etcd_user, c.etcd_password)
        services.start_postgres(self.proc("postgres"), self.path / "pg", p.postgres, c.db_user, c.db_password)
        services.start_registry(self.proc("hub-registry"), self.path / "hub-registry", p.hub_registry)
        services.start_registry(self.proc("harbor-upstream"), self.path / "harbor-upstream", p.harbor_upstream)
        self._start_harbor()
        self.start_manager()
        record = self._seed_images()
        if not (self.path / SEEDED_MARK).exists():
            asyncio.run(self._seed_state(record))
        if info.docker:
            self._start_agents()
        self._write_configs()
        if not (self.path / SEEDED_MARK).exists():
            (self.path / SEEDED_MARK).write_text(json.dumps({"at": time.time()}))
        log(f"sandbox up in {time.monotonic() - t0:.1f}s: {self.path}")
        return info

    def _start_harbor(self) -> None:
        info = self.info
        cfg = self.path / "harbor.json"
        cfg.write_text(json.dumps({
            "host": "127.0.0.1",
            "port": info.ports.harbor,
            "external_url": info.harbor_url,
            "upstream": {"url": info.upstream_url, "storage": str(self.path / "harbor-upstream" / "data")},
            "users": {info.creds.harbor_user: info.creds.harbor_password},
            "projects": {name: {"public": True} for name in info.projects},
            "request_log": str(self.path / "logs" / "harbor-requests.jsonl"),
        }, indent=2))
        os.chmod(cfg, 0o600)
        proc = self.proc("harbor")
        if proc.alive():
            return
        proc.start([sys.executable, "-m", "backends.sandbox.harbor", "--config", str(cfg)],
                   marker=str(cfg), cwd=_project_root())
        wait_until(lambda: port_open(info.ports.harbor), timeout=20, what="Harbor stand-in", proc=proc)

    def start_manager(self) -> None:
        info = self.info
        proc = self.proc("manager")
        if proc.alive():
            return
        proc.start([sys.executable, "-m", "backends.sandbox.manager", "serve", "--port", str(info.ports.manager),
                    "--version", info.manager_version, "--api", MANAGER_API_VERSION],
                   marker=f"--port {info.ports.manager}", cwd=_project_root())
        wait_until(lambda: port_open(info.ports.manager), timeout=20, what="manager stand-in", proc=proc)

    def stop_manager(self) -> None:
        self.proc("manager").stop(timeout=10)

    def _seed_images(self) -> Any:
        from . import seed_images

        info = self.info
        return seed_images.seed_all(info.hub_url, info.upstream_url, self.path / "seed.json")

    async def _seed_state(self, record: Any) -> None:
        from . import seed_cluster, seed_images

        info = self.info
        store = EtcdStore(HostPort("127.0.0.1", info.ports.etcd), info.namespace, user=info.creds.etcd_user,
                          password=Secret(info.creds.etcd_password))
        async with store:
            await seed_cluster.seed_etcd(store, seed_images.hub_lookup(record))
        await seed_cluster.seed_postgres(info)

    # -- agents -------------------------------------------------------------------------
    def _start_agents(self) -> None:
        info = self.info
        for agent in info.agents:
            agent_dir, exec_root, sock = self.agent_dirs(agent)
            services.start_dockerd(self.agent_proc(agent), agent_dir, exec_root, sock, info.ports.hub_registry,
                                   agent.index)
        asyncio.run(self._populate_agents())

    async def _populate_agents(self) -> None:
        import aiodocker

        info = self.info
        old = [s for s in CATALOG if s.on_agents and s.hub_ref]

        async def one(agent: Agent) -> None:
            docker = aiodocker.Docker(url=agent.docker_url)
            try:
                have = {t for img in await docker.images.list() for t in (img.get("RepoTags") or [])}
                for spec in old:
                    ref = _local_name(spec)
                    if ref not in have:
                        repo, tag = ref.rsplit(":", 1)
                        await docker.images.pull(repo, tag=tag)
                if agent.index == 1:
                    await _ensure_container(docker)
            finally:
                await docker.close()

        await asyncio.gather(*(one(a) for a in info.agents))

    # -- config files -------------------------------------------------------------------
    def _write_configs(self) -> None:
        info = self.info
        c = info.creds
        manager_toml = {
            "etcd": {"namespace": info.namespace, "addr": {"host": "127.0.0.1", "port": info.ports.etcd},
                     "user": c.etcd_user, "password": c.etcd_password},
            "db": {"type": "postgresql", "addr": {"host": "127.0.0.1", "port": info.ports.postgres},
                   "name": c.db_name, "user": c.db_user, "password": c.db_password},
            "manager": {"num-proc": 1, "service-addr": {"host": "127.0.0.1", "port": info.ports.manager}},
            "docker-registry": {"ssl-verify": False},
            "logging": {"level": "INFO", "drivers": ["console"], "pkg-ns": {"": "WARNING", "ai.backend": "INFO"},
                        "console": {"colored": False, "format": "simple"}},
            "debug": {"enabled": False},
        }
        _write_private(info.manager_toml, "# Written by `bai-registry-migrate sandbox up`: the sandbox's manager.toml.\n"
                       + tomli_w.dumps(manager_toml))
        _write_private(info.plan_toml, render_plan(info, self.path))

    def reset(self, *, log: Any = print) -> None:
        """Back to the freshly seeded legacy cluster, in about a second: what tests call a fresh sandbox.

        etcd's namespace and the tool's lock keys are rewritten from the seed, the database is
        recreated, agents lose every image the migration added and get the old ones back, the
        manager is running and no fault switch is left.
        """
        from . import seed_cluster, seed_images

        info = self.info
        t0 = time.monotonic()
        for f in ("manager.fail-stop", "manager.fail-start"):
            (self.path / f).unlink(missing_ok=True)
        self.start_manager()
        record = seed_images.SeedRecord.load(self.path / "seed.json")

        async def state() -> None:
            import asyncpg

            store = EtcdStore(HostPort("127.0.0.1", info.ports.etcd), info.namespace, user=info.creds.etcd_user,
                              password=Secret(info.creds.etcd_password))
            async with store:
                await store._run(lambda c: c.delete_prefix(f"/sorna/{info.namespace}/"))
                await store._run(lambda c: c.delete_prefix("/bai-registry-migrate/"))
                await seed_cluster.seed_etcd(store, seed_images.hub_lookup(record))
            admin = await asyncpg.connect(info.pg_dsn("postgres"))
            try:
                await admin.execute(f'DROP DATABASE IF EXISTS "{info.creds.db_name}" WITH (FORCE)')
            finally:
                await admin.close()
            await seed_cluster.seed_postgres(info)

        asyncio.run(state())
        self._reset_harbor_storage(record)
        if info.docker:
            for agent in info.agents:
                if not self.agent_proc(agent).alive():
                    agent_dir, exec_root, sock = self.agent_dirs(agent)
                    services.start_dockerd(self.agent_proc(agent), agent_dir, exec_root, sock,
                                           info.ports.hub_registry, agent.index)
            asyncio.run(self._reset_agents())
        log(f"sandbox reset in {time.monotonic() - t0:.1f}s")

    def _reset_harbor_storage(self, record: Any) -> None:
        """Repositories and tags pushed to the Harbor stand-in's registry after seeding are
        removed from its storage (the registry and the stand-in read tags from there on every
        request), so a rescan of a reset sandbox finds exactly the seeded images. Blobs stay:
        unreferenced, they are invisible."""
        root = self.path / "harbor-upstream" / "data" / "docker" / "registry" / "v2" / "repositories"
        if not root.is_dir():
            return
        from .seed_images import UPSTREAM

        seeded: dict[str, set[str]] = {}
        for t in record.in_registry(UPSTREAM):
            seeded.setdefault(t.repo, set()).add(t.tag)
        for manifests in sorted(root.rglob("_manifests"), reverse=True):
            repo_dir = manifests.parent
            repo = repo_dir.relative_to(root).as_posix()
            if repo not in seeded:
                for part in ("_manifests", "_layers", "_uploads"):
                    shutil.rmtree(repo_dir / part, ignore_errors=True)
                continue
            tags = manifests / "tags"
            for tag_dir in tags.iterdir() if tags.is_dir() else ():
                if tag_dir.name not in seeded[repo]:
                    shutil.rmtree(tag_dir, ignore_errors=True)
        for d in sorted((p for p in root.rglob("*") if p.is_dir()), key=lambda p: len(p.parts), reverse=True):
            if not any(d.iterdir()):
                d.rmdir()

    async def _reset_agents(self) -> None:
        import aiodocker

        keep = {_local_name(s) for s in CATALOG if s.on_agents and s.hub_ref}

        async def one(agent: Agent) -> None:
            docker = aiodocker.Docker(url=agent.docker_url)
            try:
                for c in await docker.containers.list(all=True):
                    name = (c._container.get("Names") or [""])[0].lstrip("/")
                    if name != RUNNING_CONTAINER:
                        await c.delete(force=True)
                for img in await docker.images.list():
                    for tag in img.get("RepoTags") or []:
                        if tag not in keep and tag != "<none>:<none>":
                            with contextlib.suppress(aiodocker.DockerError):
                                await docker.images.delete(tag, force=False)
                    if not [t for t in (img.get("RepoTags") or []) if t != "<none>:<none>"]:
                        with contextlib.suppress(aiodocker.DockerError):
                            await docker.images.delete(img["Id"], force=False)
            finally:
                await docker.close()

        await asyncio.gather(*(one(a) for a in self.info.agents))
        await self._populate_agents()

    def end_sessions(self) -> int:
        """Marks every live kernel TERMINATED: what the cluster looks like once users have finished.

        The container on agent 1 keeps running (a leftover nobody told Backend.AI about, or a
        kernel whose row was terminated while its container lingered), so agent cleanup still
        has an in-use image to spare and report.
        """
        import asyncpg

        async def go() -> int:
            conn = await asyncpg.connect(self.info.pg_dsn())
            try:
                status = await conn.execute(
                    "UPDATE kernels SET status = 'TERMINATED', status_changed = now(), terminated_at = now() "
                    "WHERE status NOT IN ('TERMINATED', 'CANCELLED')")
                return int(status.split()[-1])
            finally:
                await conn.close()

        return asyncio.run(go())

    # -- down / status ------------------------------------------------------------------
    def down(self, *, purge: bool = False, log: Any = print) -> None:
        if not SandboxInfo.exists(self.path):
            log(f"no sandbox at {self.path}")
            return
        info = self.info
        stopped = []
        for agent in info.agents:
            agent_dir, exec_root, _sock = self.agent_dirs(agent)
            services.stop_dockerd(self.agent_proc(agent), agent_dir, exec_root)
            stopped.append(agent.id)
        for name in ("manager", "harbor", "hub-registry", "harbor-upstream", "etcd"):
            if self.proc(name).stop(timeout=15):
                stopped.append(name)
        if services.stop_postgres(self.proc("postgres"), self.path / "pg"):
            stopped.append("postgres")
        short = Path(info.short)
        if short.exists():
            services._umount_under(short)
            shutil.rmtree(short, ignore_errors=True)
        if purge:
            for agent in info.agents:
                services._umount_under(self.path / "agents" / agent.id)
            shutil.rmtree(self.path, ignore_errors=True)
        log(f"sandbox down: stopped {', '.join(stopped) or 'nothing'}" + (" (data purged)" if purge else ""))

    def status(self) -> dict[str, Any]:
        if not SandboxInfo.exists(self.path):
            return {"dir": str(self.path), "exists": False, "services": {}}
        info = self.info
        names = ["etcd", "postgres", "hub-registry", "harbor-upstream", "harbor", "manager"]
        svc = {n: self._proc_status(self.proc(n)) for n in names}
        for agent in info.agents:
            svc[f"dockerd-{agent.id}"] = self._proc_status(self.agent_proc(agent))
        return {
            "dir": str(self.path), "exists": True, "namespace": info.namespace,
            "etcd": info.etcd_addr, "postgres": f"127.0.0.1:{info.ports.postgres}",
            "docker_hub_standin": info.hub_url, "harbor_standin": info.harbor_url,
            "manager": info.manager_url, "manager_toml": str(info.manager_toml), "plan": str(info.plan_toml),
            "agents": [{"id": a.id, "docker": a.docker_url} for a in info.agents],
            "services": svc,
        }

    @staticmethod
    def _proc_status(proc: Proc) -> dict[str, Any]:
        return {"running": proc.alive(), "pid": proc.pid() if proc.alive() else None, "log": str(proc.logfile)}


def _local_name(spec: ImageSpec) -> str:
    """How Docker names an image pulled through the mirror (`library/` and `docker.io/` dropped)."""
    assert spec.hub_repo is not None
    repo = spec.hub_repo.removeprefix("library/")
    return f"{repo}:{spec.tag}"


RUNNING_CONTAINER = "bairm-kernel-notebook-1"


async def _ensure_container(docker: Any) -> None:
    """A container on an old image: agent cleanup must spare and report it (docs/docker.md#removing-images)."""
    import aiodocker

    runnable = next(s for s in CATALOG if s.runnable)
    with contextlib.suppress(aiodocker.DockerError):
        c = await docker.containers.get(RUNNING_CONTAINER)
        if (c._container.get("State") or {}).get("Running"):
            return
        await c.delete(force=True)
    await docker.containers.run(
        config={"Image": _local_name(runnable), "Cmd": ["/bin/busybox", "sleep", "360000"],
                "HostConfig": {"NetworkMode": "none"},
                "Labels": {"ai.backend.kernel-id": "notebook-1", "ai.backend.owner": "sandbox"}},
        name=RUNNING_CONTAINER)


def _write_private(path: Path, text: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.chmod(path, 0o600)


def _project_root() -> Path:
    return Path(__file__).resolve().parents[2]


def manager_command(action: str, sandbox_dir: Path) -> list[str]:
    return [sys.executable, "-m", "backends.sandbox.manager", action, "--dir", str(sandbox_dir)]


def registry_document(info: SandboxInfo) -> dict[str, Any]:
    """The registry JSON of the runbook (step 2), pointing the target name at the Harbor stand-in."""
    return {"config": {"docker": {"registry": {info.target_registry: {
        "": info.harbor_url,
        "type": "harbor2",
        "project": ",".join(info.projects),
        "username": info.creds.harbor_user,
        "password": info.creds.harbor_password,
    }}}}}


def _toml_str(v: str) -> str:
    return json.dumps(v, ensure_ascii=False)   # a TOML basic string is a JSON string


def _toml_list(vs: list[str]) -> str:
    return "[" + ", ".join(_toml_str(v) for v in vs) + "]"


def render_plan(info: SandboxInfo, sandbox_dir: Path) -> str:
    """The sandbox's plan file, written by hand (not tomli_w) so that it reads like documentation."""
    doc = json.dumps(registry_document(info), indent=2)
    assert "'''" not in doc
    t = info.target_registry
    return f"""# bai-registry-migrate plan for the sandbox at {sandbox_dir}
# Every decision of the migration is here; the wizard edits the same fields.
version = 1

[manager]
# GET / tells the version; stop/start are argument lists, never run through a shell.
url = {_toml_str(info.manager_url)}
stop = {_toml_list(manager_command("stop", sandbox_dir))}
start = {_toml_list(manager_command("start", sandbox_dir))}

[target]
registry = {_toml_str(t)}

[registry]
# Exactly what `backend.ai mgr etcd put-json '' registry-config.json` takes (runbook step 2).
# The sandbox names its Harbor stand-in {t}; it is served at {info.harbor_url}.
json = '''
{doc}
'''

[agents]
# One Docker endpoint per row of the agents table: {{id}}, {{host}}, {{port}} (from agents.addr), {{index}}.
docker_url = {_toml_str(info.docker_url_template)}

[maintenance]
enabled = true
announcement = "Image registry migration in progress: new sessions are paused."

[prepull]
images = []          # empty: alias targets + images of live and recently ended sessions
recent_days = 7
concurrency_per_agent = 2
concurrency = 6
retries = 3

[aliases]
# `lua` points at an image that exists only on Docker Hub: nothing to remap it to, and while
# it points there Docker Hub cannot leave the domains' allowlists. The sandbox removes it.
remove = ["lua"]

[aliases.overrides]
# python = "{t}/stable/python:3.9-ubuntu20.04"

[allowlists]
add = [{_toml_str(t)}]
remove = ["index.docker.io"]

[cleanup]
# How long the cleanup gate waits for sessions on old images to end before it stops the run.
wait_for_sessions = "0s"

[agent_cleanup]
enabled = true
keep = []
"""


__all__ = ["RUNNING_CONTAINER", "Sandbox", "ServiceError", "manager_command", "registry_document", "render_plan"]
