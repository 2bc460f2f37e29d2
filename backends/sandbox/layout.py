"""Where a sandbox keeps everything, and the record (`sandbox.json`) that ties it together.

The record is written once by the first `sandbox up` (ports, generated passwords) and
re-read by every later `up`, `down`, `status`, by the tests and by the benchmarks, so that
all of them agree on one cluster. Paths that end in unix sockets live under a short root in
/tmp, because containerd caps socket paths at 104 bytes (docs/sandbox.md#docker-daemons-as-agents).
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import socket
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

RECORD = "sandbox.json"
NAMESPACE = "local"
TARGET_REGISTRY = "cr.backend.ai"
HARBOR_PROJECTS = ("stable", "community")
MANAGER_VERSION = "20.09.29"
MANAGER_API_VERSION = "v6.20210815"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def short_root(sandbox_dir: Path) -> Path:
    digest = hashlib.sha256(str(sandbox_dir.resolve()).encode()).hexdigest()[:8]
    return Path("/tmp") / f"bairm-{digest}"


@dataclass
class Ports:
    etcd: int
    etcd_peer: int
    postgres: int
    hub_registry: int      # Docker Hub stand-in (plain docker-registry, the agents' mirror)
    harbor_upstream: int   # the real registry behind the Harbor stand-in
    harbor: int            # Harbor /api/v2.0 + /v2/ + /service/token stand-in
    manager: int           # manager GET / stand-in

    @classmethod
    def allocate(cls) -> Ports:
        seen: set[int] = set()
        vals = []
        for _ in range(7):
            p = free_port()
            while p in seen:
                p = free_port()
            seen.add(p)
            vals.append(p)
        return cls(*vals)


@dataclass
class Credentials:
    # repr=False: pytest prints fixture values in failure reports; passwords must not appear there.
    etcd_user: str
    etcd_password: str = field(repr=False)
    db_user: str = "postgres"
    db_password: str = field(default="", repr=False)
    db_name: str = "backend"
    harbor_user: str = "admin"
    harbor_password: str = field(default="", repr=False)

    @classmethod
    def generate(cls) -> Credentials:
        def pw() -> str:
            return "sbx-" + secrets.token_urlsafe(18)
        return cls("root", pw(), "postgres", pw(), "backend", "admin", pw())

    def all_secrets(self) -> list[str]:
        return [self.etcd_password, self.db_password, self.harbor_password]


@dataclass
class Agent:
    id: str            # agents.id, e.g. "i-agent1"
    index: int         # 1-based
    docker_url: str    # unix:///tmp/bairm-xxxx/i-agent1.sock
    rpc_addr: str      # agents.addr as the agent reports it (nothing listens there)


@dataclass
class SandboxInfo:
    dir: str
    short: str
    namespace: str
    ports: Ports
    creds: Credentials
    agents: list[Agent] = field(default_factory=list)
    docker: bool = True
    target_registry: str = TARGET_REGISTRY
    projects: tuple[str, ...] = HARBOR_PROJECTS
    manager_version: str = MANAGER_VERSION

    # -- derived ------------------------------------------------------------------------
    @property
    def path(self) -> Path:
        return Path(self.dir)

    @property
    def etcd_addr(self) -> str:
        return f"127.0.0.1:{self.ports.etcd}"

    @property
    def hub_url(self) -> str:
        return f"http://127.0.0.1:{self.ports.hub_registry}"

    @property
    def harbor_url(self) -> str:
        return f"http://127.0.0.1:{self.ports.harbor}"

    @property
    def harbor_host(self) -> str:
        return f"127.0.0.1:{self.ports.harbor}"

    @property
    def upstream_url(self) -> str:
        return f"http://127.0.0.1:{self.ports.harbor_upstream}"

    @property
    def manager_url(self) -> str:
        return f"http://127.0.0.1:{self.ports.manager}"

    @property
    def manager_toml(self) -> Path:
        return self.path / "manager.toml"

    @property
    def plan_toml(self) -> Path:
        return self.path / "plan.toml"

    @property
    def docker_url_template(self) -> str:
        return f"unix://{self.short}/{{id}}.sock"

    def pg_dsn(self, dbname: str | None = None) -> str:
        c = self.creds
        return f"postgresql://{c.db_user}:{c.db_password}@127.0.0.1:{self.ports.postgres}/{dbname or c.db_name}"

    # -- persistence --------------------------------------------------------------------
    def save(self) -> None:
        data = asdict(self)
        p = self.path / RECORD
        tmp = p.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            json.dump(data, f, indent=2)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, p)

    @classmethod
    def load(cls, sandbox_dir: Path) -> SandboxInfo:
        data: dict[str, Any] = json.loads((sandbox_dir / RECORD).read_text())
        data["ports"] = Ports(**data["ports"])
        data["creds"] = Credentials(**data["creds"])
        data["agents"] = [Agent(**a) for a in data.get("agents", [])]
        data["projects"] = tuple(data.get("projects", HARBOR_PROJECTS))
        return cls(**data)

    @classmethod
    def exists(cls, sandbox_dir: Path) -> bool:
        return (sandbox_dir / RECORD).is_file()
