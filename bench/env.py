"""What the benchmarks run on: one dedicated sandbox, plus helper processes each benchmark owns.

The sandbox lives in `$BAIRM_BENCH_DIR` (default /tmp/bairm-bench), apart from the demo's and
the tests' sandboxes, so a benchmark never disturbs them (nor they it). It is brought up on
first use and stopped at the end if this run started it; its data is kept, so a second
`make bench` starts in seconds and pushes nothing again. Benchmark-specific processes (a
dedicated Harbor stand-in, registries) are `Proc`s under the same directory, stopped by pid
when the benchmark ends; the latency proxy runs in the benchmark's own event loop.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import backends  # noqa: F401  (pure-python protobuf runtime before etcd3)
from backends.config import HostPort
from backends.etcd import EtcdStore
from backends.sandbox.cluster import Sandbox
from backends.sandbox.layout import SandboxInfo, free_port
from backends.sandbox.procs import Proc, ServiceError, port_open, wait_until
from backends.secrets import Secret

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DIR = Path("/tmp/bairm-bench")


def bench_dir() -> Path:
    return Path(os.environ.get("BAIRM_BENCH_DIR") or DEFAULT_DIR)


def venv_bin(name: str) -> Path:
    """The executable next to the running interpreter (the project's venv)."""
    return Path(sys.executable).parent / name


class BenchEnv:
    def __init__(self, path: Path | None = None, log: bool = True) -> None:
        self.path = (path or bench_dir()).resolve()
        self._sandbox: Sandbox | None = None
        self._started_sandbox = False
        self._log = log

    def say(self, text: str) -> None:
        if self._log:
            print(f"# {text}", file=sys.stderr, flush=True)

    # -- the sandbox --------------------------------------------------------------------
    def sandbox(self) -> Sandbox:
        if self._sandbox is None:
            sb = Sandbox(self.path)
            running = SandboxInfo.exists(self.path) and all(
                s["running"] for s in sb.status()["services"].values())
            if not running:
                self.say(f"bringing up the bench sandbox in {self.path}")
                self._started_sandbox = True
                try:
                    sb.up(log=lambda *_a: None)
                except ServiceError as e:
                    # On a loaded machine a just-started etcd can miss etcdctl's deadline in
                    # `enable_etcd_auth`; `up` is idempotent, so one more try starts what is left.
                    self.say(f"sandbox up failed ({str(e).splitlines()[0][:120]}); trying once more")
                    sb.up(log=lambda *_a: None)
            self._sandbox = sb
        return self._sandbox

    @property
    def info(self) -> SandboxInfo:
        return self.sandbox().info

    def etcd(self, namespace: str) -> EtcdStore:
        info = self.info
        return EtcdStore(HostPort("127.0.0.1", info.ports.etcd), namespace, user=info.creds.etcd_user,
                         password=Secret(info.creds.etcd_password))

    def close(self) -> None:
        if self._started_sandbox:    # also after a failed `up`: stop whatever it started
            self.say("stopping the bench sandbox (data kept)")
            (self._sandbox or Sandbox(self.path)).down(log=lambda *_a: None)
            self._started_sandbox = False
        self._sandbox = None

    # -- helper processes ---------------------------------------------------------------
    def proc(self, name: str) -> Proc:
        return Proc(f"bench-{name}", self.path / "run", self.path / "logs")

    def start_python(self, name: str, module_args: list[str], *, port: int, marker: str) -> Proc:
        proc = self.proc(name)
        proc.stop(timeout=5)
        proc.start([sys.executable, *module_args], marker=marker, cwd=REPO_ROOT)
        wait_until(lambda: port_open(port), timeout=20, what=name, proc=proc)
        return proc


def python_run(args: list[str], *, env: dict[str, str] | None = None, timeout: float = 300,
               cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, capture_output=True, text=True, timeout=timeout, cwd=cwd or REPO_ROOT,
                          env={**os.environ, **(env or {})})


__all__ = ["REPO_ROOT", "BenchEnv", "bench_dir", "free_port", "python_run", "venv_bin"]
