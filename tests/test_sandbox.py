"""The sandbox as an operator sees it with standard tools, and `down` leaving nothing behind."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from backends.sandbox.catalog import CATALOG
from backends.sandbox.layout import SandboxInfo, short_root
from backends.sandbox.services import pg_bin

ROOT = Path(__file__).resolve().parents[1]


def sh(argv: list[str], env: dict[str, str] | None = None, **kw: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, timeout=120, env={**os.environ, **(env or {})},
                          **kw)  # type: ignore[call-overload]


def test_etcdctl_sees_the_legacy_registry(fresh_sandbox: SandboxInfo) -> None:
    sandbox = fresh_sandbox
    c = sandbox.creds
    r = sh(["etcdctl", "--endpoints", sandbox.etcd_addr, "--user", f"{c.etcd_user}:{c.etcd_password}",
            "get", "--prefix", f"/sorna/{sandbox.namespace}/config/docker/registry/"], env={"ETCDCTL_API": "3"})
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    pairs = dict(zip(lines[::2], lines[1::2], strict=True))
    assert pairs[f"/sorna/{sandbox.namespace}/config/docker/registry/index.docker.io"] == "https://registry-1.docker.io"
    assert pairs[f"/sorna/{sandbox.namespace}/config/docker/registry/index.docker.io/username"] == "lablup"
    # and without credentials, etcd refuses: auth is really on
    r = sh(["etcdctl", "--endpoints", sandbox.etcd_addr, "get", "--prefix", "/sorna/"], env={"ETCDCTL_API": "3"})
    assert r.returncode != 0 and "user name is empty" in r.stderr


def test_psql_sees_domains(fresh_sandbox: SandboxInfo) -> None:
    sandbox = fresh_sandbox
    r = sh([str(pg_bin() / "psql"), "-h", "127.0.0.1", "-p", str(sandbox.ports.postgres), "-U",
            sandbox.creds.db_user, "-d", sandbox.creds.db_name, "-At", "-c",
            "SELECT name, allowed_docker_registries FROM domains ORDER BY name"],
           env={"PGPASSWORD": sandbox.creds.db_password})
    assert r.returncode == 0, r.stderr
    rows = dict(line.split("|") for line in r.stdout.splitlines())
    assert rows["default"] == "{index.docker.io}"
    assert len({v for v in rows.values()}) >= 4          # different allowlists
    r = sh([str(pg_bin() / "psql"), "-h", "127.0.0.1", "-p", str(sandbox.ports.postgres), "-U",
            sandbox.creds.db_user, "-d", sandbox.creds.db_name, "-At", "-c",
            "SELECT status, count(*) FROM kernels GROUP BY status ORDER BY status"],
           env={"PGPASSWORD": sandbox.creds.db_password})
    counts = dict(line.split("|") for line in r.stdout.splitlines())
    assert int(counts.get("RUNNING", 0)) >= 1 and int(counts.get("TERMINATED", 0)) >= 1


def test_curl_sees_harbor_repositories(fresh_sandbox: SandboxInfo) -> None:
    sandbox = fresh_sandbox
    r = sh(["curl", "-s", "-D", "-", f"{sandbox.harbor_url}/api/v2.0/projects/stable/repositories?page_size=100"])
    head, _, body = r.stdout.partition("\n\n")   # text mode turned \r\n into \n
    assert " 200 " in head.splitlines()[0]
    assert "x-total-count" in head.lower()
    # other tests push uniquely named `bairm-*` repositories into the shared sandbox
    names = {x["name"] for x in json.loads(body) if not x["name"].startswith("stable/bairm-")}
    expected = {f"stable/{s.name}" for s in CATALOG if "stable" in s.harbor_projects}
    assert names == expected
    # the Docker Hub stand-in holds the lablup images the agents pull through their mirror
    r = sh(["curl", "-s", f"{sandbox.hub_url}/v2/_catalog?n=1000"])
    assert r.stdout.startswith("{"), (r.returncode, r.stdout, r.stderr)
    hub = set(json.loads(r.stdout)["repositories"])
    assert {f"lablup/{s.name}" for s in CATALOG if s.hub_namespace == "lablup"} <= hub


def test_docker_cli_sees_old_images_on_every_agent(fresh_sandbox: SandboxInfo) -> None:
    sandbox = fresh_sandbox
    assert len(sandbox.agents) == 3
    for agent in sandbox.agents:
        r = sh(["docker", "-H", agent.docker_url, "images", "--format", "{{.Repository}}:{{.Tag}}"])
        assert r.returncode == 0, r.stderr
        tags = set(r.stdout.split())
        assert "lablup/python:3.6-ubuntu18.04" in tags and "backendai-socket-relay:latest" in tags
    r = sh(["docker", "-H", sandbox.agents[0].docker_url, "ps", "--format", "{{.Image}} {{.Status}}"])
    assert r.stdout.startswith("lablup/python:3.6-ubuntu18.04 Up")


def _ours(needles: list[str]) -> list[str]:
    found = []
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                cmd = Path(f"/proc/{d}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
                state = next(ln for ln in Path(f"/proc/{d}/status").read_text().splitlines() if ln.startswith("State"))
            except (OSError, StopIteration):
                continue
            if "Z" not in state and any(n in cmd for n in needles):
                found.append(f"{d}: {cmd[:120]}")
    return found


def test_up_is_idempotent_and_down_leaves_nothing() -> None:
    d = Path(tempfile.mkdtemp(prefix="bairm-updown-"))
    os.chmod(d, 0o755)
    short = short_root(d)
    cli = [sys.executable, "-m", "tui.cli", "sandbox"]
    try:
        t0 = time.monotonic()
        r = sh([*cli, "up", "--dir", str(d), "--agents", "1"], cwd=ROOT)
        first = time.monotonic() - t0
        assert r.returncode == 0, r.stdout + r.stderr
        pids = json.loads(sh([*cli, "status", "--dir", str(d), "--json"], cwd=ROOT).stdout)["services"]
        assert all(s["running"] for s in pids.values()), pids
        r = sh([*cli, "up", "--dir", str(d), "--agents", "1"], cwd=ROOT)
        assert r.returncode == 0
        again = json.loads(sh([*cli, "status", "--dir", str(d), "--json"], cwd=ROOT).stdout)["services"]
        assert {k: v["pid"] for k, v in again.items()} == {k: v["pid"] for k, v in pids.items()}
        assert (d / "manager.toml").stat().st_mode & 0o777 == 0o600
        assert (d / "plan.toml").stat().st_mode & 0o777 == 0o600
        assert _ours([str(d), str(short)])
        r = sh([*cli, "down", "--dir", str(d)], cwd=ROOT)
        assert r.returncode == 0, r.stdout + r.stderr
        time.sleep(0.2)
        assert _ours([str(d), str(short)]) == []
        mounts = Path("/proc/mounts").read_text()
        assert str(d) not in mounts and str(short) not in mounts
        r = sh([*cli, "status", "--dir", str(d)], cwd=ROOT)
        assert r.returncode == 1 and "stopped" in r.stdout
        print(f"first up {first:.1f}s")
    finally:
        sh([*cli, "down", "--dir", str(d), "--purge"], cwd=ROOT)
        shutil.rmtree(d, ignore_errors=True)
    assert not d.exists() and not short.exists()
