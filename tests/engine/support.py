"""Helpers for the engine tests: the headless CLI as a real process, its transcript, and the
cluster's state read back independently of the engine (etcdctl, pg_dump, asyncpg, aiodocker).

Nothing here reads the cluster through the engine's own code: etcd goes through `etcdctl`
(tests/oracle.py), PostgreSQL through asyncpg/pg_dump, agents through aiodocker. So a bug in
the engine's readers cannot hide a bug in its writers.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiodocker
import asyncpg
import httpx
from oracle import etcdctl, raw_namespace

from backends.sandbox.catalog import CATALOG
from backends.sandbox.cluster import Sandbox
from backends.sandbox.layout import SandboxInfo

REPO = Path(__file__).resolve().parents[2]
PG_BIN = Path("/usr/lib/postgresql/15/bin")
LOCK_KEY_ROOT = "/bai-registry-migrate/lock/"
# 20.09's repository-name filter (`non_kernel_words`, src/ai/backend/manager/container_registry/base.py
# in backend.ai-manager 20.09.29; docs/backendai-etcd.md#rescan), written out here so the
# expectation does not come from the code under test.
FILTERED = ("common-", "commons-", "base-", "krunner", "builder", "backendai", "geofront")
INFRA_TAGS = ("lablup/importer:manylinux2010", "backendai-socket-relay:latest",
              "backendai-krunner-extractor:latest")
IN_USE_IMAGE = "lablup/python:3.6-ubuntu18.04"     # the running container's image on i-agent1
RUNNING_CONTAINER = "bairm-kernel-notebook-1"


def cli_path() -> Path:
    here = Path(sys.executable).parent / "bai-registry-migrate"
    return here if here.exists() else REPO / ".venv" / "bin" / "bai-registry-migrate"


# -- the CLI as a real process ---------------------------------------------------------------

@dataclass
class Cli:
    """`bai-registry-migrate` against one sandbox, with private XDG dirs (seal key, state)."""

    info: SandboxInfo
    home: Path                      # per-test directory: xdg dirs, outputs, plan copies
    state_dir: Path
    transcript_dir: Path
    plan: Path
    env: dict[str, str] = field(default_factory=dict)
    runners: list[Runner] = field(default_factory=list)

    @classmethod
    def create(cls, info: SandboxInfo, home: Path, *, plan: Path | None = None) -> Cli:
        home.mkdir(parents=True, exist_ok=True)
        env = {k: v for k, v in os.environ.items() if not k.startswith("BACKEND_")}
        env.update({"XDG_CONFIG_HOME": str(home / "xdg-config"), "XDG_STATE_HOME": str(home / "xdg-state"),
                    "PYTHONUNBUFFERED": "1"})
        return cls(info, home, home / "state", home / "transcript", plan or info.plan_toml, env)

    def with_plan(self, plan: Path) -> Cli:
        return Cli(self.info, self.home, self.state_dir, self.transcript_dir, plan, self.env, self.runners)

    def argv(self, command: str, *extra: str, state_dir: Path | None = None) -> list[str]:
        args = [str(cli_path()), command, "--config", str(self.info.manager_toml), "--plan", str(self.plan)]
        if command in ("run", "plan", "rollback"):
            args += ["--state-dir", str(state_dir or self.state_dir), "--transcript", str(self.transcript_dir)]
        return args + list(extra)

    def run(self, command: str, *extra: str, timeout: float = 180.0,
            state_dir: Path | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run(self.argv(command, *extra, state_dir=state_dir), env=self.env, capture_output=True,
                              text=True, timeout=timeout, cwd=self.home)

    def start(self, command: str, *extra: str, log: str = "out.log") -> Runner:
        out = open(self.home / log, "w")  # closed by Runner.finish/kill/ensure_dead
        proc = subprocess.Popen(self.argv(command, *extra), env=self.env, stdout=out, stderr=subprocess.STDOUT,
                                text=True, cwd=self.home)
        runner = Runner(proc, self.home / log, out)
        self.runners.append(runner)
        return runner

    def sandbox_cmd(self, action: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([str(cli_path()), "sandbox", action, "--dir", str(self.info.path)], env=self.env,
                              capture_output=True, text=True, timeout=120, cwd=self.home)

    def plan_copy(self, name: str, replace: Sequence[tuple[str, str]]) -> Path:
        """The sandbox's plan with textual edits (each must apply exactly once), mode 0600."""
        text = self.info.plan_toml.read_text()
        for old, new in replace:
            assert text.count(old) == 1, f"{old!r} is not exactly once in the sandbox plan"
            text = text.replace(old, new)
        path = self.home / name
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(text)
        return path

    @property
    def transcript(self) -> Path:
        return self.transcript_dir / "transcript.jsonl"

    def state(self) -> dict[str, Any]:
        return json.loads((self.state_dir / "state.json").read_text())


@dataclass
class Runner:
    proc: subprocess.Popen[str]
    log: Path
    _out: Any

    @property
    def pid(self) -> int:
        return self.proc.pid

    def output(self) -> str:
        if not self._out.closed:
            self._out.flush()
        return self.log.read_text()

    def kill(self) -> None:
        """SIGKILL, as a dropped link or an OOM killer would: nothing of ours runs afterwards."""
        os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=30)
        self._out.close()
        assert self.proc.returncode == -signal.SIGKILL

    def finish(self, timeout: float = 180.0) -> int:
        try:
            rc = self.proc.wait(timeout=timeout)
        finally:
            self._out.close()
        return rc

    def ensure_dead(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=30)
        if not self._out.closed:
            self._out.close()


# -- the transcript, followed as it is written -------------------------------------------------

class Tail:
    """Reads the JSON Lines transcript while the runner writes it (only complete lines)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.events: list[dict[str, Any]] = []
        self._pos = 0
        self._partial = b""

    def poll(self) -> list[dict[str, Any]]:
        if not self.path.exists():
            return []
        with open(self.path, "rb") as f:
            f.seek(self._pos)
            data = f.read()
        self._pos += len(data)
        data = self._partial + data
        lines = data.split(b"\n")
        self._partial = lines.pop()
        new = [json.loads(line) for line in lines if line.strip()]
        self.events.extend(new)
        return new

    def wait_for(self, pred: Callable[[dict[str, Any]], bool], runner: Runner, *, timeout: float = 120.0,
                 what: str = "event") -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for e in self.poll():
                if pred(e):
                    return e
            if runner.proc.poll() is not None:
                for e in self.poll():
                    if pred(e):
                        return e
                raise AssertionError(f"the runner exited ({runner.proc.returncode}) before {what}:\n"
                                     f"{runner.output()[-3000:]}")
            time.sleep(0.005)
        raise AssertionError(f"no {what} within {timeout}s:\n{runner.output()[-3000:]}")


def read_events(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def runs_of(events: list[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    """The transcript split at each `run-started` (a resumed run appends to the same file)."""
    out: list[list[dict[str, Any]]] = []
    for e in events:
        if e["kind"] == "run-started":
            out.append([])
        if out:
            out[-1].append(e)
    return out


def is_(kind: str, **fields: Any) -> Callable[[dict[str, Any]], bool]:
    def pred(e: dict[str, Any]) -> bool:
        return e.get("kind") == kind and all(e.get(k) == v for k, v in fields.items())
    return pred


# -- etcd, read raw ----------------------------------------------------------------------------

def etcd_ns(info: SandboxInfo) -> dict[bytes, bytes]:
    return raw_namespace(info.ports.etcd, info.namespace, user=info.creds.etcd_user,
                         password=info.creds.etcd_password)


def etcd_sorna(info: SandboxInfo) -> tuple[int, dict[bytes, bytes]]:
    """Every key and value under `/sorna/` (all namespaces) and etcd's current revision."""
    r = etcdctl(info.ports.etcd, "get", "--prefix", "/sorna/", "-w", "json", user=info.creds.etcd_user,
                password=info.creds.etcd_password)
    data = json.loads(r.stdout)
    kvs = {base64.b64decode(kv["key"]): base64.b64decode(kv.get("value", "")) for kv in data.get("kvs", [])}
    return int(data["header"]["revision"]), dict(sorted(kvs.items()))


def lock_entry(info: SandboxInfo) -> tuple[dict[str, Any], int] | None:
    """The cluster lock's holder record and lease id, or None when nobody holds it."""
    r = etcdctl(info.ports.etcd, "get", LOCK_KEY_ROOT + info.namespace, "-w", "json",
                user=info.creds.etcd_user, password=info.creds.etcd_password)
    kvs = json.loads(r.stdout).get("kvs") or []
    if not kvs:
        return None
    return json.loads(base64.b64decode(kvs[0]["value"])), int(kvs[0].get("lease", 0))


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def revoke_dead_holders_lease(info: SandboxInfo, pid: int) -> None:
    """Frees the lock of a SIGKILLed run at once instead of waiting out its 15 s lease.

    What an operator may do with `etcdctl lease revoke` once the holder is provably gone;
    test_lock.py shows the lease expiring by itself. Refuses unless the holder is `pid` and dead.
    """
    entry = lock_entry(info)
    assert entry is not None, "the killed run left no lock (it should, until the lease expires)"
    holder, lease = entry
    assert holder.get("pid") == pid and not pid_alive(pid), holder
    etcdctl(info.ports.etcd, "lease", "revoke", format(lease, "x"), user=info.creds.etcd_user,
            password=info.creds.etcd_password)
    assert lock_entry(info) is None


# -- PostgreSQL ----------------------------------------------------------------------------------

def pg_dump(info: SandboxInfo) -> bytes:
    env = {**os.environ, "PGPASSWORD": info.creds.db_password}
    # A fixed \restrict key: pg_dump >= 15.14 otherwise writes a random one into every dump.
    r = subprocess.run([str(PG_BIN / "pg_dump"), "--data-only", "--no-owner", "--restrict-key=bairmtest",
                        "-h", "127.0.0.1",
                        "-p", str(info.ports.postgres), "-U", info.creds.db_user, info.creds.db_name],
                       env=env, capture_output=True, timeout=60)
    assert r.returncode == 0, r.stderr.decode()[-500:]
    return r.stdout


async def _fetch(info: SandboxInfo, sql: str, *args: Any) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(info.pg_dsn())
    try:
        return list(await conn.fetch(sql, *args))
    finally:
        await conn.close()


def domain_rows(info: SandboxInfo) -> list[tuple[Any, ...]]:
    """Every column of every domain except the timestamps the seed sets to now()."""
    rows = asyncio.run(_fetch(info, "SELECT (to_jsonb(d) - 'created_at' - 'modified_at')::text AS j "
                                    "FROM domains d ORDER BY name"))
    return [tuple(sorted(json.loads(r["j"]).items())) for r in rows]


def allowlists(info: SandboxInfo) -> dict[str, tuple[bool, list[str]]]:
    rows = asyncio.run(_fetch(info, "SELECT name, is_active, allowed_docker_registries FROM domains"))
    return {r["name"]: (r["is_active"], list(r["allowed_docker_registries"])) for r in rows}


def live_kernels(info: SandboxInfo) -> list[str]:
    rows = asyncio.run(_fetch(info, "SELECT session_name FROM kernels "
                                    "WHERE status NOT IN ('TERMINATED', 'CANCELLED') ORDER BY session_name"))
    return [r["session_name"] for r in rows]


# -- agents --------------------------------------------------------------------------------------

@dataclass
class AgentView:
    images: dict[str, str]                  # tag -> image id
    kernel_tags: set[str]                   # tags of images with the kernelspec label
    containers: dict[str, tuple[str, str]]  # name -> (state, image id)


async def _agent(url: str) -> AgentView:
    d = aiodocker.Docker(url=url)
    try:
        images: dict[str, str] = {}
        kernel: set[str] = set()
        for img in await d.images.list():
            tags = [t for t in img.get("RepoTags") or [] if t != "<none>:<none>"]
            for t in tags:
                images[t] = img["Id"]
                if "ai.backend.kernelspec" in (img.get("Labels") or {}):
                    kernel.add(t)
        containers = {}
        for c in await d.containers.list(all=True):
            name = (c._container.get("Names") or [""])[0].lstrip("/")
            containers[name] = (c._container.get("State", ""), c._container.get("ImageID", ""))
        return AgentView(images, kernel, containers)
    finally:
        await d.close()


def agents(info: SandboxInfo) -> dict[str, AgentView]:
    async def go() -> dict[str, AgentView]:
        views = await asyncio.gather(*(_agent(a.docker_url) for a in info.agents))
        return {a.id: v for a, v in zip(info.agents, views, strict=True)}
    return asyncio.run(go())


def manager_up(info: SandboxInfo) -> bool:
    try:
        return httpx.get(info.manager_url, timeout=2.0, trust_env=False).status_code == 200
    except httpx.HTTPError:
        return False


def end_sessions(info: SandboxInfo) -> int:
    return Sandbox(info.path).end_sessions()


# -- the end state a migration leaves ---------------------------------------------------------------

@dataclass
class EndState:
    etcd: dict[bytes, bytes]
    domains: list[tuple[Any, ...]]
    agent_images: dict[str, dict[str, str]]
    lock: Any
    manager_up: bool

    @classmethod
    def read(cls, info: SandboxInfo) -> EndState:
        return cls(etcd_ns(info), domain_rows(info), {a: v.images for a, v in agents(info).items()},
                   lock_entry(info), manager_up(info))

    def differences(self, other: EndState) -> list[str]:
        out = []
        for k in sorted(set(self.etcd) | set(other.etcd)):
            if self.etcd.get(k) != other.etcd.get(k):
                out.append(f"etcd {k!r}: {self.etcd.get(k)!r} != {other.etcd.get(k)!r}")
        if self.domains != other.domains:
            out.append(f"domains: {self.domains} != {other.domains}")
        for a in sorted(set(self.agent_images) | set(other.agent_images)):
            mine, theirs = self.agent_images.get(a, {}), other.agent_images.get(a, {})
            if mine != theirs:
                out.append(f"agent {a}: only here {sorted(set(mine.items()) - set(theirs.items()))}, "
                           f"only there {sorted(set(theirs.items()) - set(mine.items()))}")
        if self.lock != other.lock:
            out.append(f"lock: {self.lock} != {other.lock}")
        if self.manager_up != other.manager_up:
            out.append(f"manager up: {self.manager_up} != {other.manager_up}")
        return out


def target_kernel_images(target: str = "cr.backend.ai") -> set[str]:
    """What a rescan of the Harbor stand-in must find, from the catalogue and 20.09's rules."""
    out = set()
    for spec in CATALOG:
        if spec.labels.get("ai.backend.kernelspec") != "1":
            continue
        for p in spec.harbor_projects:
            repo = f"{p}/{spec.name}"
            if not any(s in repo for s in FILTERED):
                out.add(f"{target}/{repo}:{spec.tag}")
    return out


# -- secrets ---------------------------------------------------------------------------------------

def secret_forms(secret: str, user: str | None = None) -> set[str]:
    """The secret and every base64 form it can take inside a larger encoded blob.

    A base64 encoding depends on the secret's offset modulo 3 inside what was encoded, so for
    each of the three alignments the characters that only the secret determines are searched
    (standard and URL-safe alphabets). "user:secret" (HTTP Basic) is one such blob.
    """
    raw = secret.encode()
    forms = {secret}
    for k in range(3):
        enc = base64.b64encode(b"\0" * k + raw).decode()
        start = 4 if k else 0
        end = 4 * ((k + len(raw)) // 3)
        core = enc[start:end]
        if len(core) >= 8:
            forms.add(core)
            forms.add(core.replace("+", "-").replace("/", "_"))
    if user:
        basic = base64.b64encode(f"{user}:{secret}".encode()).decode()
        forms.add(basic.rstrip("="))
    return forms


def files_under(*dirs: Path) -> Iterator[Path]:
    for d in dirs:
        for root, _dirs, names in os.walk(d):
            for n in names:
                yield Path(root) / n


def dirs_under(*dirs: Path) -> Iterator[Path]:
    for d in dirs:
        yield d
        for root, subdirs, _names in os.walk(d):
            for n in subdirs:
                yield Path(root) / n


@contextmanager
def cli_on(info: SandboxInfo, home: Path, *, sessions_ended: bool = False) -> Iterator[Cli]:
    """A Cli on a (freshly reset) sandbox; every runner it started is dead afterwards.
    `sessions_ended`: the users have finished first (the two live sessions end), so a run can
    pass the cleanup gate."""
    if sessions_ended:
        assert end_sessions(info) == 2
    c = Cli.create(info, home)
    try:
        yield c
    finally:
        for r in c.runners:
            r.ensure_dead()


@contextmanager
def domain_row_locked(info: SandboxInfo, domain: str, *, until_shutdown: bool = False) -> Iterator[None]:
    """Holds `SELECT ... FOR UPDATE` on one domain row in another session until the block ends,
    so a runner's allowlists transaction waits on it. `until_shutdown`: the test stops the
    server meanwhile, which ends this session too; that is not an error then."""
    locked, release = threading.Event(), threading.Event()
    errors: list[BaseException] = []

    async def hold() -> None:
        conn = await asyncpg.connect(info.pg_dsn())
        try:
            tr = conn.transaction()
            await tr.start()
            await conn.fetch("SELECT name FROM domains WHERE name = $1 FOR UPDATE", domain)
            locked.set()
            await asyncio.to_thread(release.wait)
            if not until_shutdown:
                await tr.rollback()
        finally:
            if until_shutdown:
                conn.terminate()      # the server may already have ended this session
            else:
                await conn.close()

    def run() -> None:
        try:
            asyncio.run(hold())
        except BaseException as e:  # noqa: BLE001 - reported in the test thread
            errors.append(e)
            locked.set()

    t = threading.Thread(target=run, daemon=True)
    t.start()
    assert locked.wait(10) and not errors, errors
    try:
        yield
    finally:
        release.set()
        t.join(10)
        if not until_shutdown:
            assert not errors, errors
