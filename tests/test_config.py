"""manager.toml discovery and bad configuration, as an operator meets them on the command line.

Every failure is one line naming the cause and the fix, exits 2, and writes nothing (the
sandbox's etcd namespace and database are compared before and after).
"""

from __future__ import annotations

import os
import subprocess
import sys
import tomllib
from pathlib import Path

import asyncpg
import pytest
import tomli_w
from conftest import etcd_store_for

from backends.config import HostPort, load_settings, parse_host_port, search_paths
from backends.errors import ConfigError
from backends.sandbox.layout import SandboxInfo, free_port

CLI = [sys.executable, "-m", "tui.cli"]
ROOT = Path(__file__).resolve().parents[1]


def run_cli(args: list[str], *, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    e = {k: v for k, v in os.environ.items() if not k.startswith("BACKEND_")}
    e["HOME"] = str(cwd)               # no ~/.config/backend.ai/manager.toml of the real user
    e["PYTHONPATH"] = str(ROOT)
    e.update(env or {})
    return subprocess.run([*CLI, *args], capture_output=True, text=True, cwd=cwd, env=e, timeout=120)


def one_line_error(r: subprocess.CompletedProcess[str]) -> str:
    assert r.returncode == 2, (r.returncode, r.stdout, r.stderr)
    lines = [ln for ln in (r.stderr + r.stdout).splitlines() if ln.strip()]
    assert len(lines) == 1, lines
    assert "fix:" in lines[0]
    assert "Traceback" not in r.stderr
    return lines[0]


def sandbox_toml(sandbox: SandboxInfo) -> dict:
    return tomllib.loads(sandbox.manager_toml.read_text())


async def cluster_fingerprint(sandbox: SandboxInfo) -> tuple[dict[str, str], list[tuple]]:
    store = etcd_store_for(sandbox, sandbox.namespace)
    await store.connect()
    try:
        raw = await store._run(lambda c: {m.key.decode(): v.decode() for v, m in c.get_prefix("/")})
    finally:
        await store.close()
    conn = await asyncpg.connect(sandbox.pg_dsn())
    try:
        rows = [tuple(r) for r in await conn.fetch("SELECT name, allowed_docker_registries FROM domains ORDER BY name")]
    finally:
        await conn.close()
    return raw, rows


def test_search_order(tmp_path: Path) -> None:
    env = {"BACKEND_CONFIG_FILE": str(tmp_path / "x.toml")}
    assert search_paths(env) == [tmp_path / "x.toml"]
    paths = search_paths({}, cwd=tmp_path, home=tmp_path / "home")
    assert paths == [tmp_path / "manager.toml", tmp_path / "home/.config/backend.ai/manager.toml",
                     Path("/etc/backend.ai/manager.toml")]


@pytest.mark.parametrize(("value", "expected"), [
    ("127.0.0.1:2379", HostPort("127.0.0.1", 2379)),
    (["etcd.local", 2379], HostPort("etcd.local", 2379)),
    ({"host": "::1", "port": "2379"}, HostPort("::1", 2379)),
    ("[::1]:2379", HostPort("::1", 2379)),
])
def test_host_port_forms(value: object, expected: HostPort) -> None:
    assert parse_host_port(value, file="f", key="etcd.addr") == expected


@pytest.mark.parametrize("value", ["127.0.0.1", "h:0", "h:70000", "h:x", [1], {"host": "h"}, 5, ":2379"])
def test_host_port_rejects(value: object) -> None:
    with pytest.raises(ConfigError) as e:
        parse_host_port(value, file="m.toml", key="etcd.addr")
    assert "m.toml: [etcd.addr]" in str(e.value) and "fix:" in str(e.value)


def test_env_overrides(tmp_path: Path, sandbox: SandboxInfo) -> None:
    p = tmp_path / "manager.toml"
    p.write_text(sandbox.manager_toml.read_text())
    s = load_settings(p, env={"BACKEND_ETCD_ADDR": "10.9.9.9:1234", "BACKEND_NAMESPACE": "other",
                              "BACKEND_DB_NAME": "x", "BACKEND_DB_PASSWORD": "pw-from-env"})
    assert s.etcd.addr == HostPort("10.9.9.9", 1234) and s.etcd.namespace == "other" and s.db.name == "x"
    assert s.db.password is not None and s.db.password.reveal() == "pw-from-env"
    assert "pw-from-env" not in repr(s)
    assert "etcd.addr from BACKEND_ETCD_ADDR" in s.overridden


def test_no_manager_toml(tmp_path: Path) -> None:
    line = one_line_error(run_cli(["inspect"], cwd=tmp_path))
    assert "no manager.toml found" in line and "--config" in line


def test_backend_config_file_missing(tmp_path: Path) -> None:
    line = one_line_error(run_cli(["inspect"], cwd=tmp_path, env={"BACKEND_CONFIG_FILE": str(tmp_path / "nope.toml")}))
    assert "BACKEND_CONFIG_FILE" in line and "nope.toml" in line


def test_malformed_toml(tmp_path: Path) -> None:
    (tmp_path / "manager.toml").write_text('[etcd]\nnamespace = "local"\naddr = { host = "127.0.0.1", port = 2379\n')
    line = one_line_error(run_cli(["inspect"], cwd=tmp_path))
    assert "manager.toml" in line and "not valid TOML" in line and "line" in line


def test_missing_key(tmp_path: Path, sandbox: SandboxInfo) -> None:
    cfg = sandbox_toml(sandbox)
    del cfg["db"]["name"]
    (tmp_path / "manager.toml").write_text(tomli_w.dumps(cfg))
    line = one_line_error(run_cli(["inspect"], cwd=tmp_path))
    assert "[db.name]" in line


async def test_unreachable_etcd_writes_nothing(tmp_path: Path, sandbox: SandboxInfo) -> None:
    before = await cluster_fingerprint(sandbox)
    cfg = sandbox_toml(sandbox)
    cfg["etcd"]["addr"] = {"host": "127.0.0.1", "port": free_port()}
    (tmp_path / "manager.toml").write_text(tomli_w.dumps(cfg))
    line = one_line_error(run_cli(["run", "--yes", "--plan", str(sandbox.plan_toml),
                                   "--state-dir", str(tmp_path / "state")], cwd=tmp_path))
    assert "etcd at 127.0.0.1:" in line and "unreachable" in line
    assert await cluster_fingerprint(sandbox) == before
    assert not (tmp_path / "state").exists()


async def test_wrong_db_password_writes_nothing(tmp_path: Path, sandbox: SandboxInfo) -> None:
    before = await cluster_fingerprint(sandbox)
    cfg = sandbox_toml(sandbox)
    cfg["db"]["password"] = "not-the-password"
    (tmp_path / "manager.toml").write_text(tomli_w.dumps(cfg))
    r = run_cli(["run", "--yes", "--plan", str(sandbox.plan_toml), "--state-dir", str(tmp_path / "state")],
                cwd=tmp_path)
    line = one_line_error(r)
    assert "password" in line and "not-the-password" not in r.stdout + r.stderr
    assert sandbox.creds.db_password not in r.stdout + r.stderr
    assert await cluster_fingerprint(sandbox) == before


async def test_wrong_etcd_password(tmp_path: Path, sandbox: SandboxInfo) -> None:
    cfg = sandbox_toml(sandbox)
    cfg["etcd"]["password"] = "wrong-etcd-pw"
    (tmp_path / "manager.toml").write_text(tomli_w.dumps(cfg))
    r = run_cli(["inspect"], cwd=tmp_path)
    line = one_line_error(r)
    assert "credentials" in line and "wrong-etcd-pw" not in r.stdout + r.stderr


def test_inspect_reads_the_sandbox(fresh_sandbox: SandboxInfo, tmp_path: Path) -> None:
    sandbox = fresh_sandbox
    import json

    r = run_cli(["inspect", "--json", "--config", str(sandbox.manager_toml), "--plan", str(sandbox.plan_toml)],
                cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    d = json.loads(r.stdout)
    assert d["namespace"] == "local" and d["era"].startswith("20.03.11")
    assert d["manager"]["version"] == "20.09.29" and d["manager"]["supported"] is True
    assert set(d["registries"]) >= {"index.docker.io"}
    assert d["images"]["index.docker.io"] >= 12
    assert {x["name"] for x in d["domains"]} >= {"default", "research", "education", "partner"}
    assert [a["id"] for a in d["agents"] if a["status"] == "ALIVE"] == [a.id for a in sandbox.agents]
    assert any(k["image"].startswith("index.docker.io/lablup/") for k in d["live_kernels_on_docker_hub"])
    assert sandbox.creds.db_password not in r.stdout and sandbox.creds.etcd_password not in r.stdout
