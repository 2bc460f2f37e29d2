"""`rescan`: our scanner vs the real Backend.AI 20.09 `etcd rescan-images`, both as whole processes.

Setup (all on 127.0.0.1, all stopped afterwards):
- a dedicated docker-registry holding 500 single-arch kernel images (100 repositories x 5
  tags in project `stable`), pushed once with `seed_images.push_many` (idempotent);
- a dedicated Harbor stand-in in front of it (Harbor-faithful defaults: bearer challenge,
  tag -> digest resolution, paginated tags), logging every request as JSON lines;
- `bench.latency_proxy` in front of the stand-in adding 20 ms to every request; both sides
  are configured with the proxy's URL (it is the stand-in's external URL too);
- the bench sandbox's etcd; each run writes into a fresh namespace holding only the
  registry entry, deleted afterwards.

The baseline is `backend.ai mgr etcd rescan-images cr.backend.ai` of 20.9.29 (tests/oracle.py
finds it: $BAIRM_ORACLE or .venv-oracle). Ours is `python -m bench.rescan_ours`: the engine's
`scan_registry` + `EtcdStore.write_concurrently` in a fresh interpreter. Requests are counted
from the stand-in's request log per run; both runs' `images/` keys and values are compared.
`*_cpu` are the CPU seconds of each side's process, `server_cpu_*` those of the stand-in and its
registry while serving that side: on the sandbox they run on the same CPUs as the scanners.

If the oracle's grpcio cannot authenticate to etcd (python-etcd3 issue #1876, see
tests/oracle.py), both sides use a private etcd without auth instead; the line says so.
"""

from __future__ import annotations

import asyncio
import json
import os
import resource
import secrets
import sys
from collections import Counter
from pathlib import Path
from typing import Any

from backends.config import HostPort
from backends.etcd import EtcdStore
from backends.registry_document import entry_from_etcd, registry_key
from backends.sandbox import seed_images, services
from backends.sandbox.procs import Proc
from backends.scanner import scan_registry
from backends.secrets import Secret

from .env import REPO_ROOT, BenchEnv, free_port, python_run
from .latency_proxy import LatencyProxy
from .timing import Samples, Stopwatch, compare, runs

sys.path.insert(0, str(REPO_ROOT))   # tests/ is not installed; the oracle helper is tests/oracle.py
from tests.oracle import (
    Oracle,
    OracleError,
    find_oracle,
    manager_toml,
    unique_namespace,
)

NAME = "rescan"
REGISTRY = "cr.backend.ai"
PROJECT = "stable"
REPOS = 100
TAGS = 5
DELAY_MS = 20.0
LABELS = {
    "ai.backend.kernelspec": "1",
    "ai.backend.features": "batch query uid-match user-input",
    "ai.backend.base-distro": "ubuntu20.04",
    "ai.backend.runtime-type": "python",
    "ai.backend.runtime-path": "/usr/bin/python3",
    "ai.backend.resource.min.cpu": "1",
    "ai.backend.resource.min.mem": "256m",
}
HARBOR_USER = "admin"
CLK_TCK = os.sysconf("SC_CLK_TCK")


def children_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def items() -> list[tuple[str, str, dict[str, str]]]:
    return [(f"{PROJECT}/bench-kernel-{r:03d}", f"3.{t}-ubuntu20.04", dict(LABELS))
            for r in range(REPOS) for t in range(TAGS)]


class Rig:
    """Registry + stand-in + latency proxy (+ a private etcd when the oracle needs one)."""

    def __init__(self, env: BenchEnv) -> None:
        self.env = env
        self.root = env.path / "bench-rescan"
        self.password = "bench-" + secrets.token_urlsafe(12)
        self.procs: list[Proc] = []
        self.proxy: LatencyProxy | None = None
        self.etcd_port = 0
        self.etcd_user: str | None = None
        self.etcd_password: str | None = None
        self.etcd_kind = "sandbox"

    # -- processes ---------------------------------------------------------------------
    def start(self, private_etcd: bool) -> None:
        env = self.env
        self.registry_port = free_port()
        reg = env.proc("rescan-registry")
        reg.stop(timeout=5)
        services.start_registry(reg, self.root / "registry", self.registry_port)
        self.procs.append(reg)
        self.standin_port, self.proxy_port = free_port(), free_port()
        self.log_path = self.root / "harbor-requests.jsonl"
        self.log_path.unlink(missing_ok=True)    # counts are per run; do not grow it forever
        cfg = {
            "listen": {"host": "127.0.0.1", "port": self.standin_port},
            "external_url": f"http://127.0.0.1:{self.proxy_port}",
            "upstream": {"url": f"http://127.0.0.1:{self.registry_port}",
                         "storage": str(self.root / "registry" / "data")},
            "users": {HARBOR_USER: self.password},
            "projects": {PROJECT: {"public": True}},
            "request_log": str(self.log_path),
        }
        cfg_path = self.root / "harbor.json"
        cfg_path.write_text(json.dumps(cfg, indent=2))
        cfg_path.chmod(0o600)
        self.procs.append(env.start_python("rescan-harbor", ["-m", "backends.sandbox.harbor", "--config",
                                                             str(cfg_path)],
                                           port=self.standin_port, marker=str(cfg_path)))
        if private_etcd:
            etcd = env.proc("rescan-etcd")
            etcd.stop(timeout=5)
            self.etcd_port = free_port()
            services.start_etcd(etcd, self.root / "etcd", self.etcd_port, free_port())
            self.procs.append(etcd)
            self.etcd_kind = "private-noauth"
        else:
            info = env.info
            self.etcd_port = info.ports.etcd
            self.etcd_user, self.etcd_password = info.creds.etcd_user, info.creds.etcd_password

    async def start_proxy(self) -> None:
        self.proxy = await LatencyProxy(self.standin_port, delay_ms=DELAY_MS, listen_port=self.proxy_port).start()

    async def stop_proxy(self) -> None:
        if self.proxy is not None:
            await self.proxy.close()
            self.proxy = None

    def stop(self) -> None:
        for p in reversed(self.procs):
            p.stop(timeout=10)
        self.procs.clear()

    # -- helpers -----------------------------------------------------------------------
    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.proxy_port}"

    def entry_doc(self) -> dict[str, str]:
        return {"": self.url, "type": "harbor2", "project": PROJECT, "username": HARBOR_USER,
                "password": self.password}

    def store(self, namespace: str) -> EtcdStore:
        return EtcdStore(HostPort("127.0.0.1", self.etcd_port), namespace, user=self.etcd_user,
                         password=Secret(self.etcd_password) if self.etcd_password else None)

    def server_cpu(self) -> float:
        """CPU seconds used so far by the stand-in and its registry (both share this machine's CPUs)."""
        total = 0
        for p in self.procs:
            pid = p.pid()
            if pid is None or p.name.endswith("etcd"):
                continue
            try:
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            total += int(fields[11]) + int(fields[12])
        return total / CLK_TCK

    def log_offset(self) -> int:
        return self.log_path.stat().st_size if self.log_path.exists() else 0

    def requests_since(self, offset: int) -> Counter[str]:
        with open(self.log_path, "rb") as f:
            f.seek(offset)
            kinds: Counter[str] = Counter(json.loads(line)["kind"] for line in f if line.strip())
        return kinds


async def _prepare_namespace(rig: Rig, namespace: str) -> None:
    async with rig.store(namespace) as s:
        await s.put_json(registry_key(REGISTRY), rig.entry_doc())


async def _images(rig: Rig, namespace: str) -> dict[str, str]:
    async with rig.store(namespace) as s:
        return await s.get_flat("images/")


async def _drop(rig: Rig, namespace: str) -> None:
    async with rig.store(namespace) as s:
        await s._run(lambda c: c.delete_prefix(f"/sorna/{namespace}/"))


def _kinds(c: Counter[str]) -> str:
    return ",".join(f"{k}:{c[k]}" for k in sorted(c))


async def run(env: BenchEnv) -> dict[str, Any]:
    exe = find_oracle()
    info = env.info
    try:
        Oracle.create(etcd_port=info.ports.etcd, namespace="probe", etcd_user=info.creds.etcd_user,
                      etcd_password=info.creds.etcd_password, exe=exe).close()
        private = False
    except OracleError:
        private = True
    rig = Rig(env)
    try:
        rig.start(private)
        await rig.start_proxy()
        with Stopwatch() as sw:
            pushed = await seed_images.push_many(f"http://127.0.0.1:{rig.registry_port}", items(),
                                                 concurrency=8, layers=1, layer_kib=4)
        env.say(f"rescan: {len(pushed)} images in the dedicated registry ({sw.seconds:.1f}s)")
        # Warm the stand-in's digest caches once, so neither side pays for it in its first run.
        warm = entry_from_etcd(REGISTRY, rig.entry_doc())
        assert warm is not None
        await scan_registry(warm)
        return await _measure(env, rig, exe)
    finally:
        await rig.stop_proxy()
        rig.stop()


async def _measure(env: BenchEnv, rig: Rig, exe: Path) -> dict[str, Any]:
    ours, base = Samples(), Samples()
    cpu_ours, cpu_base, srv_ours, srv_base = Samples(), Samples(), Samples(), Samples()
    req_ours: Counter[str] = Counter()
    req_base: Counter[str] = Counter()
    same = True
    written = 0
    n = runs()
    for i in range(n):
        # baseline: the 20.09 CLI
        ns = unique_namespace("bench-o")
        oracle = Oracle.create(etcd_port=rig.etcd_port, namespace=ns, etcd_user=rig.etcd_user,
                               etcd_password=rig.etcd_password, exe=exe)
        try:
            await _prepare_namespace(rig, ns)
            off, c0, s0 = rig.log_offset(), children_cpu(), rig.server_cpu()
            with Stopwatch() as sw:
                await asyncio.to_thread(oracle.rescan_images, REGISTRY)
            base.add(sw.seconds)
            cpu_base.add(children_cpu() - c0)
            srv_base.add(rig.server_cpu() - s0)
            req_base = rig.requests_since(off)
            keys_base = await _images(rig, ns)
        finally:
            oracle.close()
            await _drop(rig, ns)
        # ours: the engine in a fresh interpreter
        ns = unique_namespace("bench-u")
        toml = rig.root / "ours-manager.toml"
        toml.write_text(manager_toml(etcd_port=rig.etcd_port, namespace=ns, etcd_user=rig.etcd_user,
                                     etcd_password=rig.etcd_password))
        toml.chmod(0o600)
        try:
            await _prepare_namespace(rig, ns)
            off, c0, s0 = rig.log_offset(), children_cpu(), rig.server_cpu()
            with Stopwatch() as sw:
                r = await asyncio.to_thread(python_run, [sys.executable, "-m", "bench.rescan_ours",
                                                         "--config", str(toml), REGISTRY])
            if r.returncode != 0:
                raise RuntimeError(f"bench.rescan_ours failed ({r.returncode}): {r.stderr.strip()[-600:]}")
            ours.add(sw.seconds)
            cpu_ours.add(children_cpu() - c0)
            srv_ours.add(rig.server_cpu() - s0)
            req_ours = rig.requests_since(off)
            keys_ours = await _images(rig, ns)
        finally:
            toml.unlink(missing_ok=True)
            await _drop(rig, ns)
        written = len(keys_ours)
        same = same and keys_ours == keys_base and len(keys_ours) > 0
        env.say(f"rescan run {i + 1}/{n}: baseline {base.values[-1]:.2f}s ours {ours.values[-1]:.2f}s "
                f"keys {len(keys_base)}/{len(keys_ours)}")
    figures: dict[str, Any] = compare(ours, base)
    figures.update({
        "images": REPOS * TAGS, "keys": written, "same_keys": same, "latency_ms": int(DELAY_MS),
        "requests_ours": sum(req_ours.values()), "requests_baseline": sum(req_base.values()),
        "ours_by_kind": _kinds(req_ours), "baseline_by_kind": _kinds(req_base),
        # CPU seconds (medians): the client process, and the stand-in + registry serving it.
        "ours_cpu": cpu_ours.median, "baseline_cpu": cpu_base.median,
        "server_cpu_ours": srv_ours.median, "server_cpu_baseline": srv_base.median,
        "ours_via": "python_-m_bench.rescan_ours(scan_registry+write_concurrently)",
        "etcd": rig.etcd_kind, "target": "10x",
    })
    return figures


def main(env: BenchEnv) -> dict[str, Any]:
    env.sandbox()    # before the loop: Sandbox.up() runs its own asyncio.run()
    return asyncio.run(run(env))
