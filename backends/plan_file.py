"""The plan file: every decision of a migration, as data the UI edits and the runner executes.

Every operator decision in the wizard maps onto a field here, so a run can be reproduced
headless (`run --yes --plan F`) and resumed after a dropped SSH link. Validation errors name
the field, the rule and the fix, and nothing is written when a plan is invalid.
"""

from __future__ import annotations

import math
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from .errors import ConfigError
from .image_ref import DOCKER_HUB
from .registry_document import valid_registry_name

DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$")
# One value written to etcd: etcd refuses a request over --max-request-bytes, 1.5 MiB by default
# (https://etcd.io/docs/v3.4/op-guide/configuration/); issue 14: a 3 MB announcement.
MAX_ETCD_VALUE = 1 << 20
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, None: 1.0}
DEFAULT_ANNOUNCEMENT = "The image registry is being migrated: new sessions are paused for a few minutes."
DEFAULT_TARGET = "cr.backend.ai"
DEFAULT_REGISTRY_JSON = """{
  "config": {
    "docker": {
      "registry": {
        "cr.backend.ai": {
          "": "https://cr.backend.ai",
          "type": "harbor2",
          "project": "stable,community"
        }
      }
    }
  }
}
"""


MAX_DURATION = 30 * 86400.0


def parse_duration(value: Any, *, file: str | None, key: str, positive: bool = False) -> float:
    """Seconds from `"10m"`, `"90s"` or a number. Refused: negative, not finite (TOML's `inf`,
    `nan` and `1e400` are floats; issue 14 finding 7: `nan` made every wait end at once, so a
    stopped manager was reported as "still answers"), over 30 days, and zero where
    `positive` (a timeout or a poll interval of 0 cannot be honoured)."""
    if isinstance(value, bool):
        raise ConfigError("must be a duration like \"30s\" or \"10m\"", file=file, key=key,
                          fix='write e.g. "90s", "10m" or "0s"')
    seconds: float | None = None
    if isinstance(value, (int, float)):
        try:
            seconds = float(value)
        except OverflowError:   # an integer beyond a float (TOML integers are not bounded here)
            seconds = math.inf
    elif isinstance(value, str):
        m = DURATION.match(value)
        if m:
            seconds = float(m.group(1)) * _UNITS[m.group(2)]
    if seconds is None:
        raise ConfigError(f"{_shown(str(value))} is not a duration", file=file, key=key,
                          fix='write a number with a unit: ms, s, m, h or d, e.g. "10m"')
    rule = "a finite duration from 1ms to 30d" if positive else "a finite duration from 0s to 30d"
    example = '"60s"' if positive else '"0s" or "10m"'
    if not math.isfinite(seconds):
        raise ConfigError(f"{value!r} is not a finite duration (rule: {rule})", file=file, key=key,
                          fix=f"write e.g. {example}")
    if seconds < 0 or (positive and seconds <= 0):
        raise ConfigError(f"{value!r} is {'not positive' if positive else 'negative'} (rule: {rule})", file=file,
                          key=key, fix=f"write e.g. {example}")
    if seconds > MAX_DURATION:
        raise ConfigError(f"{value!r} is longer than 30 days (rule: {rule})", file=file, key=key,
                          fix=f"write e.g. {example}")
    return seconds


@dataclass
class ManagerPlan:
    url: str | None = None              # GET / for the version; default from manager.toml
    version: str | None = None          # --manager-version override
    stop: list[str] = field(default_factory=lambda: ["systemctl", "stop", "backendai-manager"])
    start: list[str] = field(default_factory=lambda: ["systemctl", "start", "backendai-manager"])
    timeout: float = 60.0               # how long stop/start may take to show in GET /


@dataclass
class AgentsPlan:
    docker_url: str = "unix:///var/run/docker.sock"
    architecture: str | None = None     # default: what the agents' Docker daemons report
    tls_ca: str | None = None
    tls_cert: str | None = None
    tls_key: str | None = None


@dataclass
class MaintenancePlan:
    enabled: bool = True
    announcement: str = DEFAULT_ANNOUNCEMENT


@dataclass
class PrepullPlan:
    images: list[str] = field(default_factory=list)   # empty: the essential set
    recent_days: int = 7
    concurrency_per_agent: int = 2
    concurrency: int = 8
    retries: int = 3
    timeout: float = 7200.0            # per pull, Backend.AI's own default (docs/docker.md#pull-stream)


@dataclass
class AliasesPlan:
    overrides: dict[str, str] = field(default_factory=dict)   # alias -> target chosen by the operator
    skip: list[str] = field(default_factory=list)             # aliases left as they are
    remove: list[str] = field(default_factory=list)           # aliases to delete (dealias)


@dataclass
class AllowlistsPlan:
    add: list[str] = field(default_factory=list)              # default: the target registry
    remove: list[str] = field(default_factory=lambda: [DOCKER_HUB])
    domains: dict[str, list[str]] = field(default_factory=dict)  # explicit final list per domain


@dataclass
class CleanupPlan:
    wait_for_sessions: float = 0.0      # how long the gate waits for live sessions to end
    poll_interval: float = 5.0


@dataclass
class AgentCleanupPlan:
    enabled: bool = True
    keep: list[str] = field(default_factory=list)             # image refs never to remove


@dataclass
class PlanFile:
    target: str = DEFAULT_TARGET
    registry_json: str = DEFAULT_REGISTRY_JSON
    manager: ManagerPlan = field(default_factory=ManagerPlan)
    agents: AgentsPlan = field(default_factory=AgentsPlan)
    maintenance: MaintenancePlan = field(default_factory=MaintenancePlan)
    prepull: PrepullPlan = field(default_factory=PrepullPlan)
    aliases: AliasesPlan = field(default_factory=AliasesPlan)
    allowlists: AllowlistsPlan = field(default_factory=AllowlistsPlan)
    cleanup: CleanupPlan = field(default_factory=CleanupPlan)
    agent_cleanup: AgentCleanupPlan = field(default_factory=AgentCleanupPlan)
    source: str | None = None

    def with_(self, **kw: Any) -> PlanFile:
        return replace(self, **kw)

    def allowlist_add(self) -> list[str]:
        return self.allowlists.add or [self.target]


_KNOWN_TOP = {"version", "manager", "target", "registry", "agents", "maintenance", "prepull", "aliases",
              "allowlists", "cleanup", "agent_cleanup"}


class _Reader:
    """Typed access to one TOML table with errors that name `section.key`."""

    def __init__(self, data: Mapping[str, Any], section: str, file: str | None) -> None:
        self.data = data
        self.section = section
        self.file = file

    def key(self, k: str) -> str:
        return f"{self.section}.{k}" if self.section else k

    def fail(self, k: str, msg: str, fix: str) -> ConfigError:
        return ConfigError(msg, file=self.file, key=self.key(k), fix=fix)

    def str_(self, k: str, default: str | None) -> str | None:
        v = self.data.get(k, default)
        if v is None:
            return None
        if not isinstance(v, str):
            raise self.fail(k, f"must be a string, not {type(v).__name__}", f'quote it: {k} = "..."')
        return v

    def bool_(self, k: str, default: bool) -> bool:
        v = self.data.get(k, default)
        if not isinstance(v, bool):
            raise self.fail(k, f"must be true or false, not {v!r}", f"write {k} = true or {k} = false")
        return v

    def int_(self, k: str, default: int, lo: int, hi: int) -> int:
        v = self.data.get(k, default)
        if isinstance(v, bool) or not isinstance(v, int):
            raise self.fail(k, f"must be a whole number, not {v!r}", f"write e.g. {k} = {default}")
        if not lo <= v <= hi:
            raise self.fail(k, f"{v} is out of range", f"use a value from {lo} to {hi}")
        return v

    def str_list(self, k: str, default: list[str], *, allow_empty_items: bool = False) -> list[str]:
        v = self.data.get(k, default)
        if not isinstance(v, list) or not all(isinstance(x, str) for x in v):
            raise self.fail(k, "must be a list of strings", f'write e.g. {k} = ["a", "b"]')
        if not allow_empty_items and any(not x.strip() for x in v):
            raise self.fail(k, "has an empty entry", "remove the empty string from the list")
        return list(v)

    def argv(self, k: str, default: list[str]) -> list[str]:
        v = self.data.get(k, default)
        if isinstance(v, str):
            raise self.fail(k, "must be a list of arguments, not one string (it is never run through a shell)",
                            f'write e.g. {k} = ["systemctl", "{k}", "backendai-manager"]')
        argv = self.str_list(k, default)
        if not argv:
            raise self.fail(k, "is empty", f'give the command as a list, e.g. ["systemctl", "{k}", "..."]')
        return argv

    def table(self, k: str) -> Mapping[str, Any]:
        v = self.data.get(k, {})
        if not isinstance(v, dict):
            raise self.fail(k, "must be a table", f"write it as a [{self.key(k)}] section")
        return v


def plan_from_mapping(raw: Mapping[str, Any], *, file: str | None = None) -> PlanFile:
    unknown = sorted(set(raw) - _KNOWN_TOP)
    if unknown:
        raise ConfigError(f"unknown section or key {unknown[0]!r}", file=file, key=unknown[0],
                          fix=f"remove it or use one of: {', '.join(sorted(_KNOWN_TOP))}")
    top = _Reader(raw, "", file)
    version = raw.get("version", 1)
    if version != 1:
        raise top.fail("version", f"plan version {version!r} is not supported", "use version = 1")

    target = _Reader(top.table("target"), "target", file)
    target_name = target.str_("registry", DEFAULT_TARGET) or DEFAULT_TARGET
    _check_target(target_name, file)
    registry = _Reader(top.table("registry"), "registry", file)
    registry_json = registry.str_("json", None)
    if registry_json is None:
        registry_json = DEFAULT_REGISTRY_JSON.replace("cr.backend.ai", target_name) \
            if target_name != DEFAULT_TARGET else DEFAULT_REGISTRY_JSON

    m = _Reader(top.table("manager"), "manager", file)
    d = ManagerPlan()
    manager = ManagerPlan(
        url=m.str_("url", None), version=m.str_("version", None),
        stop=m.argv("stop", d.stop), start=m.argv("start", d.start),
        timeout=parse_duration(m.data.get("timeout", d.timeout), file=file, key="manager.timeout",
                               positive=True),
    )
    if manager.url is not None and not re.match(r"^https?://[^/\s]+", manager.url):
        raise m.fail("url", f"{manager.url!r} is not an http(s) URL", 'write e.g. url = "http://127.0.0.1:8081"')

    a = _Reader(top.table("agents"), "agents", file)
    agents = AgentsPlan(docker_url=a.str_("docker_url", AgentsPlan.docker_url) or "",
                        architecture=a.str_("architecture", None), tls_ca=a.str_("tls_ca", None),
                        tls_cert=a.str_("tls_cert", None), tls_key=a.str_("tls_key", None))
    _check_docker_url(agents.docker_url, file)
    if agents.architecture is not None and agents.architecture not in ("x86_64", "aarch64"):
        raise a.fail("architecture", f"{agents.architecture!r} is not an architecture Backend.AI knows",
                     'use "x86_64" or "aarch64", or leave it out to ask the agents')

    mt = _Reader(top.table("maintenance"), "maintenance", file)
    maintenance = MaintenancePlan(enabled=mt.bool_("enabled", True),
                                  announcement=mt.str_("announcement", DEFAULT_ANNOUNCEMENT) or "")
    size = len(maintenance.announcement.encode("utf-8", "surrogatepass"))
    if size > MAX_ETCD_VALUE:
        raise mt.fail("announcement", f"has {size} bytes (rule: at most {MAX_ETCD_VALUE} bytes, one etcd value)",
                      "shorten it: it is the banner every client shows")

    p = _Reader(top.table("prepull"), "prepull", file)
    pd = PrepullPlan()
    prepull = PrepullPlan(
        images=p.str_list("images", []), recent_days=p.int_("recent_days", pd.recent_days, 0, 3650),
        concurrency_per_agent=p.int_("concurrency_per_agent", pd.concurrency_per_agent, 1, 32),
        concurrency=p.int_("concurrency", pd.concurrency, 1, 1024), retries=p.int_("retries", pd.retries, 0, 20),
        timeout=parse_duration(p.data.get("timeout", pd.timeout), file=file, key="prepull.timeout",
                               positive=True),
    )

    example = f"{target_name}/stable/python:3.9-ubuntu20.04"
    for i, ref in enumerate(prepull.images):
        why = reference_problem(ref, [target_name])
        if why:
            raise ConfigError(f"entry {i + 1} {_shown(ref)} {why} (rule: a full image reference "
                              "registry/project/name:tag)", file=file, key="prepull.images",
                              fix=f'write e.g. images = ["{example}"]')

    al = _Reader(top.table("aliases"), "aliases", file)
    overrides_raw = al.table("overrides")
    overrides: dict[str, str] = {}
    for k, v in overrides_raw.items():
        if not isinstance(v, str) or not v.strip():
            raise ConfigError(f"target of alias {k!r} must be a non-empty string", file=file,
                              key=f"aliases.overrides.{k}", fix='write e.g. python = "cr.backend.ai/stable/python:3.9"')
        if not k.strip() or any(not c.isprintable() for c in k):
            raise ConfigError(f"alias name {k!r} is empty or has control characters (rule: the name of an "
                              "existing alias)", file=file, key="aliases.overrides",
                              fix=f'write the alias as Backend.AI lists it, e.g. python = "{example}"')
        why = reference_problem(v, [target_name])
        if why:
            raise ConfigError(f"target {_shown(v)} of alias {k!r} {why} (rule: an override target is a full "
                              "image reference registry/project/name:tag)", file=file,
                              key=f"aliases.overrides.{k}", fix=f'write e.g. "{k}" = "{example}"')
        overrides[k] = v
    aliases = AliasesPlan(overrides=overrides, skip=al.str_list("skip", []), remove=al.str_list("remove", []))
    for name in aliases.remove:
        if name in aliases.overrides or name in aliases.skip:
            raise ConfigError(f"alias {name!r} is both removed and overridden/skipped", file=file,
                              key="aliases.remove", fix="keep it in only one of overrides, skip and remove")

    w = _Reader(top.table("allowlists"), "allowlists", file)
    domains_raw = w.table("domains")
    domains: dict[str, list[str]] = {}
    for k, v in domains_raw.items():
        if not isinstance(v, list) or not all(isinstance(x, str) and x.strip() for x in v):
            raise ConfigError("must be a list of registry names", file=file, key=f"allowlists.domains.{k}",
                              fix='write e.g. research = ["cr.backend.ai"]')
        domains[k] = list(v)
    allowlists = AllowlistsPlan(add=w.str_list("add", []), remove=w.str_list("remove", [DOCKER_HUB]),
                                domains=domains)
    for key, entries in [("allowlists.add", allowlists.add), ("allowlists.remove", allowlists.remove),
                         *((f"allowlists.domains.{k}", v) for k, v in domains.items())]:
        for x in entries:
            why = valid_registry_name(x)
            if why:
                # The domains table stores what session creation compares `image_ref.registry`
                # with: a quoted, comma-joined or URL-shaped entry silently matches nothing.
                raise ConfigError(f"entry {_shown(x)} {why} (rule: an allowlist entry is a registry name, "
                                  "host[:port], as in the registry JSON)", file=file, key=key,
                                  fix=f'write one registry per string, e.g. ["{target_name}"]')

    c = _Reader(top.table("cleanup"), "cleanup", file)
    cleanup = CleanupPlan(
        wait_for_sessions=parse_duration(c.data.get("wait_for_sessions", 0), file=file, key="cleanup.wait_for_sessions"),
        poll_interval=parse_duration(c.data.get("poll_interval", 5), file=file, key="cleanup.poll_interval",
                                     positive=True),
    )
    ac = _Reader(top.table("agent_cleanup"), "agent_cleanup", file)
    agent_cleanup = AgentCleanupPlan(enabled=ac.bool_("enabled", True), keep=ac.str_list("keep", []))

    return PlanFile(target=target_name, registry_json=registry_json, manager=manager, agents=agents,
                maintenance=maintenance, prepull=prepull, aliases=aliases, allowlists=allowlists,
                cleanup=cleanup, agent_cleanup=agent_cleanup, source=file)


_PATH_COMPONENT = re.compile(r"^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$")   # distribution/reference
_TAG = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")


def _shown(value: str, limit: int = 60) -> str:
    """A value as an error message shows it: repr'd, and cut short when it is very long."""
    return repr(value) if len(value) <= limit else f"{value[:limit]!r}... ({len(value)} characters)"


def reference_problem(ref: str, known_registries: list[str]) -> str | None:
    """None if `ref` is an image reference Docker and Backend.AI 20.09 both accept; else why not.

    20.09's own parser (image_ref.parse_backendai_ref) is lenient: it takes spaces, upper case and shell
    characters as part of a name and fails only when a session starts. Docker's grammar
    (distribution/reference) is the stricter half of the check.
    """
    from .image_ref import parse_backendai_ref

    if not ref or ref != ref.strip() or any(c.isspace() or not c.isprintable() for c in ref):
        return "is empty or contains spaces or control characters"
    if not ref.isascii():
        return "contains non-ASCII characters"
    if "@" in ref:
        return "carries a digest; aliases and pre-pulls name a tag"
    try:
        parse_backendai_ref(ref, known_registries)
    except ValueError as e:
        return f"does not parse as Backend.AI 20.09 parses it ({e})"
    name, _, tag = ref.rpartition(":") if ":" in ref.rsplit("/", 1)[-1] else (ref, "", "latest")
    if not _TAG.match(tag):
        return f"has an invalid tag {tag!r}"
    parts = name.split("/")
    if len(parts) > 1 and ("." in parts[0] or ":" in parts[0] or parts[0] == "localhost"):
        why = valid_registry_name(parts[0])
        if why:
            return f"has a registry part {parts[0]!r} that {why}"
        parts = parts[1:]
    bad = next((p for p in parts if not _PATH_COMPONENT.match(p)), None)
    if bad is not None:
        return f"has an invalid repository component {bad!r} (lowercase letters, digits and . _ - only)"
    if len(name) > 255:
        return "has a repository name longer than 255 characters"
    return None


DOCKER_HUB_NAMES = ("docker.io", "index.docker.io", "registry-1.docker.io", "registry.hub.docker.com")


def _check_target(name: str, file: str | None) -> None:
    """The target is the new registry: a valid host[:port], and not Docker Hub, the source.

    Issue 14 finding 6: `target = "index.docker.io"` overwrote Docker Hub's registry entry and
    wrote Harbor metadata beside Docker Hub's before a later check stopped the run."""
    why = valid_registry_name(name)
    if why:
        raise ConfigError(f"target registry {_shown(name)} {why} (rule: the target is a registry name, "
                          "host[:port], as the registry JSON names it)", file=file, key="target.registry",
                          fix=f'write e.g. registry = "{DEFAULT_TARGET}"')
    host = name.rsplit(":", 1)[0].lower() if not name.startswith("[") else name
    if host in DOCKER_HUB_NAMES or host.endswith(".docker.io"):
        raise ConfigError(f"target registry {name!r} is Docker Hub, the registry this migration moves away from "
                          "(rule: the target is the new registry, not the source)", file=file, key="target.registry",
                          fix=f'name the Harbor registry, e.g. registry = "{DEFAULT_TARGET}"')


def _check_docker_url(template: str, file: str | None) -> None:
    from .docker import check_template

    try:
        check_template(template, key="agents.docker_url")
    except ConfigError as e:
        raise ConfigError(e.message.removeprefix("[agents.docker_url] "), file=file, key="agents.docker_url",
                          fix=e.fix) from None


def load_plan(path: str | Path | None) -> PlanFile:
    """Reads a plan file; no path means the defaults (cr.backend.ai, stable,community)."""
    if path is None:
        return PlanFile()
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError("no such file", file=str(p), fix="give the path of the plan file (--plan)") from None
    except OSError as e:
        raise ConfigError(f"cannot be read ({e.strerror})", file=str(p), fix="check its permissions") from None
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"is not valid TOML ({e})", file=str(p), fix="correct the syntax at that line") from None
    except RecursionError:
        raise ConfigError("nests arrays or tables too deeply to be read (rule: a plan nests a few levels)",
                          file=str(p), fix="flatten the nested arrays or tables") from None
    return plan_from_mapping(raw, file=str(p))

