"""Find and read `manager.toml` the way the Backend.AI 20.09 manager does.

Search order (`find_config_file` in src/ai/backend/common/config.py, backend.ai-common 20.09.11;
docs/backendai-db.md#managertoml): an explicit `--config PATH`; else `$BACKEND_CONFIG_FILE` (and
only that file); else `./manager.toml`, `~/.config/backend.ai/manager.toml`,
`/etc/backend.ai/manager.toml`. Environment overrides are applied after reading, with the
manager's own variable names (`load()` in src/ai/backend/manager/config.py, backend.ai-manager
20.09.29). Every error names the file, the key and the fix, because the operator is usually
reading it over SSH with nothing else to go on.
"""

from __future__ import annotations

import ipaddress
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import ConfigError
from .secrets import Secret

DAEMON = "manager"

# (section, key) -> environment variable, as in load() of src/ai/backend/manager/config.py @20.09.29
ENV_OVERRIDES: tuple[tuple[tuple[str, str], str], ...] = (
    (("etcd", "namespace"), "BACKEND_NAMESPACE"),
    (("etcd", "addr"), "BACKEND_ETCD_ADDR"),
    (("etcd", "user"), "BACKEND_ETCD_USER"),
    (("etcd", "password"), "BACKEND_ETCD_PASSWORD"),
    (("db", "addr"), "BACKEND_DB_ADDR"),
    (("db", "name"), "BACKEND_DB_NAME"),
    (("db", "user"), "BACKEND_DB_USER"),
    (("db", "password"), "BACKEND_DB_PASSWORD"),
)


@dataclass(frozen=True)
class HostPort:
    host: str
    port: int

    def __str__(self) -> str:
        if ":" in self.host:  # IPv6 literal
            return f"[{self.host}]:{self.port}"
        return f"{self.host}:{self.port}"


@dataclass(frozen=True)
class EtcdSettings:
    namespace: str
    addr: HostPort
    user: str | None
    password: Secret | None


@dataclass(frozen=True)
class DBSettings:
    addr: HostPort
    name: str
    user: str
    password: Secret | None


@dataclass(frozen=True)
class Settings:
    """What the tool needs from manager.toml; secrets stay wrapped in `Secret`."""

    config_path: Path
    etcd: EtcdSettings
    db: DBSettings
    manager_service_addr: HostPort | None
    # Which variables overrode the file, for the start screen ("etcd.addr from BACKEND_ETCD_ADDR").
    overridden: tuple[str, ...] = ()

    def secrets(self) -> list[Secret]:
        return [s for s in (self.etcd.password, self.db.password) if s]

    def manager_url(self) -> str | None:
        """The manager's REST root; `0.0.0.0`/`::` listen addresses are reached on loopback."""
        if self.manager_service_addr is None:
            return None
        host = self.manager_service_addr.host
        if host in ("0.0.0.0", ""):
            host = "127.0.0.1"
        elif host == "::":
            host = "::1"
        hp = HostPort(host, self.manager_service_addr.port)
        return f"http://{hp}"


def search_paths(env: Mapping[str, str] | None = None, cwd: Path | None = None,
                 home: Path | None = None) -> list[Path]:
    env = os.environ if env is None else env
    from_env = env.get("BACKEND_CONFIG_FILE")
    if from_env:
        return [Path(from_env)]
    cwd = Path.cwd() if cwd is None else cwd
    home = Path.home() if home is None else home
    return [
        cwd / f"{DAEMON}.toml",
        home / ".config" / "backend.ai" / f"{DAEMON}.toml",
        Path(f"/etc/backend.ai/{DAEMON}.toml"),
    ]


def find_config_file(explicit: str | os.PathLike[str] | None = None,
                     env: Mapping[str, str] | None = None, cwd: Path | None = None,
                     home: Path | None = None) -> Path:
    if explicit is not None:
        path = Path(explicit)
        if not path.is_file():
            raise ConfigError(f"--config {path}: no such file",
                              fix="give the path of the manager's manager.toml")
        return path
    candidates = search_paths(env, cwd, home)
    for path in candidates:
        if path.is_file():
            return path
    env = os.environ if env is None else env
    if env.get("BACKEND_CONFIG_FILE"):
        raise ConfigError(f"BACKEND_CONFIG_FILE={candidates[0]}: no such file",
                          fix="point BACKEND_CONFIG_FILE at the manager's manager.toml, or unset it")
    looked = ", ".join(str(p) for p in candidates)
    raise ConfigError(f"no manager.toml found (looked in {looked})",
                      fix="run on a manager node, pass --config PATH, or set BACKEND_CONFIG_FILE")


def parse_host_port(value: Any, *, file: str, key: str) -> HostPort:
    """HostPortPair as in ai.backend.common.validators @20.09.0: table, "host:port" or [host, port]."""
    fix = 'write it as "host:port", [host, port] or { host = "...", port = N }'
    host: Any
    port: Any
    if isinstance(value, str):
        if ":" not in value:
            raise ConfigError(f"{value!r} has no port", file=file, key=key, fix=fix)
        host, port = value.rsplit(":", 1)
    elif isinstance(value, list):
        if len(value) != 2:
            raise ConfigError(f"{value!r} must hold exactly a host and a port", file=file, key=key, fix=fix)
        host, port = value
    elif isinstance(value, dict):
        if "host" not in value or "port" not in value:
            raise ConfigError("the table needs both `host` and `port`", file=file, key=key, fix=fix)
        host, port = value["host"], value["port"]
    else:
        raise ConfigError(f"unrecognised value {value!r}", file=file, key=key, fix=fix)
    if not isinstance(host, str) or not host.strip("[]"):
        raise ConfigError("the host is empty", file=file, key=key, fix=fix)
    host = host.strip("[]")
    try:
        host = str(ipaddress.ip_address(host))
    except ValueError:
        pass  # a host name, kept as written
    try:
        port_num = int(port)
    except (TypeError, ValueError):
        raise ConfigError(f"port {port!r} is not a number", file=file, key=key,
                          fix="use a port number between 1 and 65535") from None
    if isinstance(port, bool) or not 1 <= port_num <= 65535:
        raise ConfigError(f"port {port!r} is out of range", file=file, key=key,
                          fix="use a port number between 1 and 65535")
    return HostPort(host, port_num)


def _section(raw: Mapping[str, Any], name: str, file: str) -> Mapping[str, Any]:
    sec = raw.get(name)
    if sec is None:
        raise ConfigError(f"the [{name}] section is missing", file=file, key=name,
                          fix=f"add the [{name}] section the manager uses")
    if not isinstance(sec, dict):
        raise ConfigError(f"`{name}` must be a table", file=file, key=name,
                          fix=f"write it as a [{name}] section")
    return sec


def _opt_str(sec: Mapping[str, Any], key: str, file: str, dotted: str) -> str | None:
    v = sec.get(key)
    if v is None or v == "":
        return None
    if not isinstance(v, str):
        raise ConfigError(f"must be a string, not {type(v).__name__}", file=file, key=dotted,
                          fix=f'quote it: {key} = "..."')
    return v


def _req_str(sec: Mapping[str, Any], key: str, file: str, dotted: str) -> str:
    v = _opt_str(sec, key, file, dotted)
    if v is None:
        raise ConfigError("is missing or empty", file=file, key=dotted, fix=f'set {key} = "..."')
    return v


def apply_env(raw: dict[str, Any], env: Mapping[str, str]) -> list[str]:
    used = []
    for (section, key), var in ENV_OVERRIDES:
        if var in env:
            sec = raw.setdefault(section, {})
            if isinstance(sec, dict):
                sec[key] = env[var]
                used.append(f"{section}.{key} from {var}")
    return used


def read_toml(path: Path) -> dict[str, Any]:
    try:
        data = path.read_bytes()
    except PermissionError:
        raise ConfigError("cannot be read (permission denied)", file=str(path),
                          fix="run as a user that can read it, e.g. the manager's service user") from None
    except OSError as e:
        raise ConfigError(f"cannot be read ({e.strerror})", file=str(path),
                          fix="check the path") from None
    try:
        return tomllib.loads(data.decode("utf-8"))
    except UnicodeDecodeError:
        raise ConfigError("is not UTF-8 text", file=str(path), fix="save it as UTF-8") from None
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"is not valid TOML ({e})", file=str(path),
                          fix="correct the syntax at that line and column") from None
    except RecursionError:
        raise ConfigError("nests arrays or tables too deeply to be read (rule: manager.toml nests a few levels)",
                          file=str(path), fix="flatten the nested arrays or tables") from None


def load_settings(explicit: str | os.PathLike[str] | None = None,
                  env: Mapping[str, str] | None = None, cwd: Path | None = None,
                  home: Path | None = None) -> Settings:
    env = os.environ if env is None else env
    path = find_config_file(explicit, env, cwd, home)
    raw = read_toml(path)
    file = str(path)
    used = apply_env(raw, env)

    etcd = _section(raw, "etcd", file)
    namespace = _req_str(etcd, "namespace", file, "etcd.namespace")
    if "/" in namespace or namespace != namespace.strip():
        raise ConfigError(f"namespace {namespace!r} contains '/' or spaces", file=file,
                          key="etcd.namespace", fix="use the namespace the manager uses, e.g. \"local\"")
    if "addr" not in etcd:
        raise ConfigError("is missing", file=file, key="etcd.addr",
                          fix='set addr = { host = "127.0.0.1", port = 2379 }')
    etcd_addr = parse_host_port(etcd["addr"], file=file, key="etcd.addr")
    etcd_user = _opt_str(etcd, "user", file, "etcd.user")
    etcd_pw = _opt_str(etcd, "password", file, "etcd.password")

    db = _section(raw, "db", file)
    if "addr" not in db:
        raise ConfigError("is missing", file=file, key="db.addr",
                          fix='set addr = { host = "127.0.0.1", port = 5432 }')
    db_addr = parse_host_port(db["addr"], file=file, key="db.addr")
    db_type = db.get("type", "postgresql")
    if db_type != "postgresql":
        raise ConfigError(f"type {db_type!r} is not supported", file=file, key="db.type",
                          fix='Backend.AI only supports type = "postgresql"')
    db_name = _req_str(db, "name", file, "db.name")
    db_user = _req_str(db, "user", file, "db.user")
    db_pw = _opt_str(db, "password", file, "db.password")

    service_addr = None
    mgr = raw.get("manager")
    if isinstance(mgr, dict) and mgr.get("service-addr") is not None:
        service_addr = parse_host_port(mgr["service-addr"], file=file, key="manager.service-addr")

    return Settings(
        config_path=path,
        etcd=EtcdSettings(namespace, etcd_addr, etcd_user, Secret(etcd_pw) if etcd_pw else None),
        db=DBSettings(db_addr, db_name, db_user, Secret(db_pw) if db_pw else None),
        manager_service_addr=service_addr,
        overridden=tuple(used),
    )
