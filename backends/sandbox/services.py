"""The real programs behind the sandbox: etcd, PostgreSQL, docker-registry, dockerd.

Commands and flags are explained in docs/sandbox.md; each was tested on the Debian 12 machines
CI uses. Everything binds to 127.0.0.1 or a unix socket only; dockerd runs with
`--bridge=none --iptables=false` so no interface or rule is created.
"""

from __future__ import annotations

import contextlib
import glob
import json
import os
import shutil
import subprocess
import time
from pathlib import Path

from .procs import Proc, ServiceError, port_open, wait_until

PG_BIN_GLOB = "/usr/lib/postgresql/*/bin"


def which(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise ServiceError(f"`{name}` is not installed; run `make deps` (or see README: system packages)")
    return path


def pg_bin() -> Path:
    found = sorted(glob.glob(PG_BIN_GLOB), key=lambda p: int(Path(p).parent.name) if Path(p).parent.name.isdigit() else 0)
    for d in reversed(found):
        if (Path(d) / "pg_ctl").exists():
            return Path(d)
    raise ServiceError("PostgreSQL server binaries are not installed; run `make deps`")


# -- etcd ---------------------------------------------------------------------------------

def etcdctl(port: int, *args: str, user: str | None = None, password: str | None = None,
            check: bool = True) -> subprocess.CompletedProcess[str]:
    argv = [which("etcdctl"), "--endpoints", f"127.0.0.1:{port}"]
    if user:
        argv += ["--user", f"{user}:{password or ''}"]
    return subprocess.run([*argv, *args], capture_output=True, text=True, check=check,
                          env={**os.environ, "ETCDCTL_API": "3"}, timeout=30)


def start_etcd(proc: Proc, data_dir: Path, port: int, peer_port: int) -> None:
    if proc.alive():
        return
    data_dir.mkdir(parents=True, exist_ok=True)
    name = "bairm"
    proc.start([
        which("etcd"), "--name", name, "--data-dir", str(data_dir),
        "--listen-client-urls", f"http://127.0.0.1:{port}",
        "--advertise-client-urls", f"http://127.0.0.1:{port}",
        "--listen-peer-urls", f"http://127.0.0.1:{peer_port}",
        "--initial-advertise-peer-urls", f"http://127.0.0.1:{peer_port}",
        "--initial-cluster", f"{name}=http://127.0.0.1:{peer_port}",
    ], marker=str(data_dir))
    wait_until(lambda: port_open(port), timeout=15, what="etcd", proc=proc)

    def answers() -> bool:
        # A listening port is not a serving etcd: right after start (or on a loaded machine)
        # the first requests time out. "user name is empty" means auth is on: it answers.
        r = etcdctl(port, "get", "/bairm-ready-probe", check=False)
        return r.returncode == 0 or "user name is empty" in r.stderr

    wait_until(answers, timeout=30, what="etcd (first request)", proc=proc, interval=0.1)


def enable_etcd_auth(port: int, user: str, password: str) -> None:
    """Creates the root user and turns auth on, once; later calls see auth already on."""
    # etcdctl 3.4 has no `auth status`: an anonymous read tells whether auth is on.
    anon = etcdctl(port, "get", "/bairm-auth-probe", check=False)
    if anon.returncode != 0:
        if "user name is empty" not in anon.stderr:
            raise ServiceError(f"etcd on :{port} is not usable: {anon.stderr.strip()[-300:]}")
        mine = etcdctl(port, "get", "/bairm-auth-probe", user=user, password=password, check=False)
        if mine.returncode != 0:
            raise ServiceError(f"etcd on :{port} has auth on but refuses the sandbox's root password; "
                               "run `sandbox down --purge` and `up` again")
        return
    etcdctl(port, "user", "add", f"{user}:{password}", check=False)
    etcdctl(port, "user", "grant-role", user, "root", check=False)
    r = etcdctl(port, "auth", "enable", check=False)
    if r.returncode != 0 and "already" not in (r.stderr + r.stdout):
        raise ServiceError(f"could not enable etcd auth: {r.stderr.strip() or r.stdout.strip()}")


# -- PostgreSQL ---------------------------------------------------------------------------

def _traversable(path: Path) -> None:
    """initdb/postgres run as `postgres`, which must be able to reach the data dir."""
    p = path.resolve()
    while p != p.parent:
        with contextlib.suppress(OSError):
            mode = p.stat().st_mode
            if not mode & 0o001:
                os.chmod(p, mode | 0o001)
        p = p.parent


def start_postgres(proc: Proc, pg_root: Path, port: int, superuser: str, password: str) -> None:
    """initdb (once, as `postgres`, scram auth) and start on 127.0.0.1:port."""
    data = pg_root / "data"
    sock_dir = pg_root / "sock"
    if proc.alive():
        return
    pg_root.mkdir(parents=True, exist_ok=True)
    sock_dir.mkdir(parents=True, exist_ok=True)
    _traversable(pg_root)
    shutil.chown(pg_root, "postgres", "postgres")
    shutil.chown(sock_dir, "postgres", "postgres")
    binp = pg_bin()
    if not (data / "PG_VERSION").exists():
        pwfile = pg_root / "pwfile"
        pwfile.write_text(password + "\n")
        shutil.chown(pwfile, "postgres", "postgres")
        os.chmod(pwfile, 0o600)
        try:
            r = subprocess.run(["runuser", "-u", "postgres", "--", str(binp / "initdb"), "-D", str(data),
                                "-U", superuser, "--pwfile", str(pwfile), "-A", "scram-sha-256",
                                "--no-sync", "-E", "UTF8"], capture_output=True, text=True, timeout=120)
        finally:
            pwfile.unlink(missing_ok=True)
        if r.returncode != 0:
            raise ServiceError(f"initdb failed: {r.stderr.strip()[-800:]}")
    stale = data / "postmaster.pid"
    if stale.exists():
        stale.unlink()
    proc.start([str(binp / "postgres"), "-D", str(data), "-p", str(port), "-k", str(sock_dir),
                "-c", "listen_addresses=127.0.0.1", "-c", "fsync=off", "-c", "synchronous_commit=off",
                "-c", "full_page_writes=off", "-c", "max_connections=200"],
               user="postgres", marker=str(data))
    wait_until(lambda: subprocess.run([str(binp / "pg_isready"), "-h", "127.0.0.1", "-p", str(port)],
                                      capture_output=True).returncode == 0,
               timeout=30, what="PostgreSQL", proc=proc)


def stop_postgres(proc: Proc, pg_root: Path) -> bool:
    """Fast shutdown via pg_ctl (clean for the data dir), then the pidfile as a fallback."""
    data = pg_root / "data"
    if not proc.alive():
        proc.stop()
        return False
    subprocess.run(["runuser", "-u", "postgres", "--", str(pg_bin() / "pg_ctl"), "-D", str(data),
                    "-m", "fast", "-w", "-t", "20", "stop"], capture_output=True, timeout=40)
    proc.stop(timeout=10)
    return True


# -- docker-registry ----------------------------------------------------------------------

def start_registry(proc: Proc, root: Path, port: int) -> None:
    if proc.alive():
        return
    root.mkdir(parents=True, exist_ok=True)
    cfg = root / "registry.yml"
    cfg.write_text(
        "version: 0.1\n"
        "log: {level: warn, accesslog: {disabled: true}}\n"
        f"storage: {{filesystem: {{rootdirectory: {root / 'data'}}}, delete: {{enabled: true}}}}\n"
        f"http: {{addr: 127.0.0.1:{port}}}\n"
    )
    proc.start([which("docker-registry"), "serve", str(cfg)], marker=str(cfg))
    wait_until(lambda: port_open(port), timeout=15, what=f"registry :{port}", proc=proc)


# -- dockerd (one per agent) --------------------------------------------------------------

def start_dockerd(proc: Proc, agent_dir: Path, exec_root: Path, sock: Path, mirror_port: int,
                  index: int) -> None:
    """One agent's daemon: own data/exec roots, cgroup parent, socket; Docker Hub via the mirror."""
    if proc.alive():
        return
    if len(str(exec_root)) > 71:
        raise ServiceError(f"exec-root {exec_root} is longer than 71 characters "
                           "(containerd caps socket paths at 104 bytes)")
    agent_dir.mkdir(parents=True, exist_ok=True)
    exec_root.mkdir(parents=True, exist_ok=True)
    # Stale pidfiles from a crash make the new daemon wait for a dead containerd (moby's
    # libcontainerd/supervisor/remote_daemon.go; docs/sandbox.md#docker-daemons-as-agents).
    for stale in (agent_dir / "dockerd.pid", exec_root / "containerd" / "containerd.pid"):
        stale.unlink(missing_ok=True)
    sock.unlink(missing_ok=True)
    cfg = agent_dir / "daemon.json"
    cfg.write_text(json.dumps({"cgroup-parent": f"/bairm-{exec_root.parent.name}-a{index}"}))
    proc.start([
        which("dockerd"), "--config-file", str(cfg),
        "--data-root", str(agent_dir / "data"), "--exec-root", str(exec_root),
        "--pidfile", str(agent_dir / "dockerd.pid"), "--host", f"unix://{sock}",
        "--iptables=false", "--ip6tables=false", "--bridge=none", "--ip", "127.0.0.1",
        "--registry-mirror", f"http://127.0.0.1:{mirror_port}",
    ], marker=str(exec_root))

    def ping() -> bool:
        r = subprocess.run(["curl", "-sf", "--unix-socket", str(sock), "http://d/_ping"],
                           capture_output=True, timeout=5)
        return r.returncode == 0

    wait_until(ping, timeout=40, what=f"dockerd for agent {index}", proc=proc)


def _umount_under(*roots: Path) -> None:
    prefixes = [str(r.resolve()) for r in roots if r.exists()]
    if not prefixes:
        return
    for _ in range(3):
        mounts = []
        with open("/proc/mounts") as f:
            for line in f:
                mp = line.split()[1].replace("\\040", " ")
                if any(mp == p or mp.startswith(p + "/") for p in prefixes):
                    mounts.append(mp)
        if not mounts:
            return
        for mp in sorted(mounts, key=len, reverse=True):
            if subprocess.run(["umount", mp], capture_output=True).returncode != 0:
                subprocess.run(["umount", "-l", mp], capture_output=True)


def stop_dockerd(proc: Proc, agent_dir: Path, exec_root: Path) -> None:
    """TERM the daemon (its containers get their stop timeout), then clean what a crash leaves."""
    proc.stop(timeout=25)
    # Orphaned containerd / shims bound to this exec-root (docs/sandbox.md#docker-daemons-as-agents).
    sock_marker = str(exec_root / "containerd")
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                with open(f"/proc/{d}/cmdline", "rb") as f:
                    cmd = f.read().replace(b"\0", b" ").decode(errors="replace")
            except OSError:
                continue
            if sock_marker in cmd and ("containerd" in cmd):
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(int(d), 9)
    time.sleep(0.05)
    _umount_under(agent_dir / "data", exec_root)
    cg = f"bairm-{exec_root.parent.name}-a"
    for path in glob.glob(f"/sys/fs/cgroup/*/{cg}*"):
        for sub in sorted(glob.glob(path + "/*/"), reverse=True):
            with contextlib.suppress(OSError):
                os.rmdir(sub)
        with contextlib.suppress(OSError):
            os.rmdir(path)
    for stale in (agent_dir / "dockerd.pid", exec_root / "containerd" / "containerd.pid"):
        stale.unlink(missing_ok=True)
