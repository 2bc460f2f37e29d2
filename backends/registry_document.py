"""Validation of the registry JSON, as Backend.AI 20.09 validates it and stricter.

The document is the `registry-config.json` of Backend.AI's migration guide
(`docs/migration/docker-hub-to-backendai-cr.rst` in lablup/backend.ai), written with
`backend.ai mgr etcd put-json ''`. 20.09 checks each entry with `container_registry_iv`
(`src/ai/backend/manager/config.py` of lablup/backend.ai-manager @20.09.29) only when the
manager or a CLI command next reloads the config, i.e. after the damage is done, and
`put-json` stores `str()` of every leaf. So this module rejects up front what would be stored
wrongly (a JSON list becomes the text "['stable', 'community']", null becomes "None") and
what 20.09 would fail on later (username without password, a missing project for harbor2,
a URL without scheme), and says where (line:column) and how to fix it.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from . import jsonpos
from .etcd import REGISTRY_PREFIX, flatten_json, quote

REGISTRY_TYPES = ("docker", "harbor", "harbor2")
TRUE_WORDS = {"t", "true", "y", "yes", "on", "1"}     # trafaret ToBool @20.09
FALSE_WORDS = {"f", "false", "n", "no", "off", "0"}
ENTRY_KEYS = {"", "type", "project", "username", "password", "ssl-verify"}
_HOST_LABEL = r"(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)"
_HOSTNAME = re.compile(rf"^{_HOST_LABEL}(?:\.{_HOST_LABEL})*$")
_PROJECT = re.compile(r"^[a-z0-9]+(?:[._-][a-z0-9]+)*$")    # Harbor project names
_SCHEME = re.compile(r"^([-a-z0-9]+)://", re.I)
MAX_NAME = 255
MAX_URL = 2048    # a base URL: scheme, a host of at most 253 characters, a port (a path is warned about)
# The registry keys are written in one etcd transaction, and etcd refuses a request over
# --max-request-bytes, 1.5 MiB by default (https://etcd.io/docs/v3.4/op-guide/configuration/).
MAX_DOCUMENT = 1 << 20


@dataclass(frozen=True)
class Issue:
    severity: str              # "error" blocks; "warning" is shown
    path: tuple[str, ...]      # JSON path of the offending value
    line: int
    column: int
    message: str
    rule: str
    fix: str

    def render(self) -> str:
        field_ = "/".join(p for p in self.path[3:] if isinstance(p, str)) or "/".join(map(str, self.path)) or "document"
        return f"line {self.line}:{self.column}: {field_}: {self.message} (rule: {self.rule}; fix: {self.fix})"


@dataclass
class RegistryEntry:
    name: str
    url: str
    type: str
    projects: list[str]
    username: str | None
    password: str | None
    ssl_verify: bool
    raw: dict[str, Any]


@dataclass
class Validation:
    issues: list[Issue] = field(default_factory=list)
    entries: dict[str, RegistryEntry] = field(default_factory=dict)
    document: dict[str, Any] | None = None

    @property
    def ok(self) -> bool:
        return not any(i.severity == "error" for i in self.issues)

    @property
    def errors(self) -> list[Issue]:
        return [i for i in self.issues if i.severity == "error"]

    @property
    def warnings(self) -> list[Issue]:
        return [i for i in self.issues if i.severity == "warning"]

    def flat(self) -> dict[str, str]:
        """The etcd pairs put-json '' would write for this document (keys without leading /)."""
        if self.document is None:
            return {}
        return {k.lstrip("/"): v for k, v in flatten_json("", self.document).items()}


def valid_registry_name(name: str) -> str | None:
    """None if `name` is a valid host[:port]; else why not."""
    if not name:
        return "is empty"
    if name != name.strip() or any(c.isspace() for c in name):
        return "contains spaces"
    if "://" in name or "/" in name:
        return "must be a host name with an optional port, not a URL or path"
    if len(name) > 253 + len(":65535"):   # a DNS name has at most 253 characters, then the port
        return f"is {len(name)} characters long (a host name has at most 253)"
    host, port = name, None
    if name.startswith("["):
        end = name.find("]")
        if end == -1:
            return "has an unbalanced [ in an IPv6 address"
        host, rest = name[1:end], name[end + 1:]
        if rest:
            if not rest.startswith(":"):
                return "has text after the IPv6 address"
            port = rest[1:]
        try:
            ipaddress.IPv6Address(host)
        except ValueError:
            return "is not a valid IPv6 address"
    else:
        if name.count(":") > 1:
            return "has more than one ':' (write IPv6 addresses in brackets)"
        if ":" in name:
            host, port = name.split(":")
        if not _HOSTNAME.match(host):
            return "is not a valid host name (letters, digits, '-' and '.')"
    if port is not None:
        if not port.isdigit() or not 1 <= int(port) <= 65535:
            return f"has an invalid port {port!r}"
    return None


def _type_name(v: Any) -> str:
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "a boolean"
    if isinstance(v, (int, float)):
        return "a number"
    if isinstance(v, list):
        return "a list"
    if isinstance(v, dict):
        return "an object"
    return "a string"


def validate(text: str, *, target: str | None = None) -> Validation:
    out = Validation()
    size = len(text.encode("utf-8", "surrogatepass"))
    if size > MAX_DOCUMENT:
        out.issues.append(Issue("error", (), 1, 1, f"the document has {size} bytes",
                                f"at most {MAX_DOCUMENT} bytes: its keys are written in one etcd transaction",
                                "remove what is not registry configuration"))
        return out
    try:
        parsed = jsonpos.parse(text)
    except jsonpos.JSONPosError as e:
        out.issues.append(Issue("error", (), e.line, e.column, e.message, "JSON syntax",
                                "correct the JSON at that position"))
        return out

    def add(sev: str, path: tuple[Any, ...], msg: str, rule: str, fix: str) -> None:
        line, col = parsed.where(path)
        out.issues.append(Issue(sev, tuple(str(p) for p in path), line, col, msg, rule, fix))

    for path, line, col in parsed.duplicates:
        out.issues.append(Issue("error", tuple(str(p) for p in path), line, col,
                                f"key {path[-1]!r} appears twice", "unique keys",
                                "keep one of them; put-json would silently keep only the last"))
    doc = parsed.value
    if not isinstance(doc, dict):
        add("error", (), f"the document is {_type_name(doc)}, not an object", "registry-config.json shape",
            'write {"config": {"docker": {"registry": {"<host>": {...}}}}}')
        return out
    out.document = doc
    shape_fix = 'nest the entries as {"config": {"docker": {"registry": {"<host>": {...}}}}}'
    if set(doc) != {"config"}:
        for k in doc:
            if k != "config":
                add("error", (k,), f"unexpected top-level key {k!r}", "registry-config.json shape", shape_fix)
        if "config" not in doc:
            return out
    config = doc["config"]
    if not isinstance(config, dict) or not isinstance(config.get("docker"), dict):
        add("error", ("config",), "config.docker must be an object", "registry-config.json shape", shape_fix)
        return out
    for k in config:
        if k != "docker":
            add("error", ("config", k), f"config.{k} is not registry configuration", "this step writes registries only",
                f"remove it; set other keys with `backend.ai mgr etcd put config/{k}/...`")
    docker = config["docker"]
    for k in docker:
        if k not in ("registry", "image"):
            add("error", ("config", "docker", k), f"config.docker.{k} is not registry configuration",
                "this step writes registries only", "remove it")
    if "image" in docker:
        _check_image(docker["image"], add)
    registries = docker.get("registry")
    if not isinstance(registries, dict) or not registries:
        add("error", ("config", "docker", "registry"), "config.docker.registry must be a non-empty object",
            "at least one registry", 'add e.g. "cr.backend.ai": {"": "https://cr.backend.ai", ...}')
        return out
    for name, entry in registries.items():
        base = ("config", "docker", "registry", name)
        why = valid_registry_name(name)
        if why:
            add("error", base, f"registry name {name!r} {why}", "registry key = host[:port]",
                'use the registry\'s host name, e.g. "cr.backend.ai" or "registry.local:5000"')
        if not isinstance(entry, dict):
            add("error", base, f"the entry is {_type_name(entry)}, not an object", "registry entry shape",
                'write {"": "https://...", "type": "harbor2", "project": "stable,community"}')
            continue
        e = _check_entry(name, entry, base, add)
        if e is not None:
            out.entries[name] = e
    if target is not None and target not in registries:
        add("error", ("config", "docker", "registry"), f"the target registry {target!r} is not in the document",
            "the document configures the target", f'add an entry named "{target}" or change the plan\'s target')
    return out


def _check_image(image: Any, add: Any) -> None:
    if not isinstance(image, dict):
        add("error", ("config", "docker", "image"), "config.docker.image must be an object",
            "registry-config.json shape", 'write {"auto_pull": "digest"}')
        return
    for k, v in image.items():
        if k != "auto_pull":
            add("error", ("config", "docker", "image", k), f"config.docker.image.{k} is not supported here",
                "this step writes registries and auto_pull only", "remove it")
        elif v not in ("digest", "tag", "none"):
            add("error", ("config", "docker", "image", k), f"auto_pull is {v!r}", "auto_pull ∈ {digest, tag, none}",
                'use "digest" (the default), "tag" or "none"')


def _check_entry(name: str, entry: Mapping[str, Any], base: tuple[Any, ...], add: Any) -> RegistryEntry | None:
    ok = True

    def bad(key: str, msg: str, rule: str, fix: str, sev: str = "error") -> None:
        nonlocal ok
        if sev == "error":
            ok = False
        add(sev, (*base, key), msg, rule, fix)

    for key, v in entry.items():
        if not isinstance(v, str):
            if key == "project" and isinstance(v, list):
                continue  # explained below with the project rule
            if key == "ssl-verify" and isinstance(v, bool):
                continue  # stored as "True"/"False", which ToBool reads correctly
            stored = "None" if v is None else (str(v) if not isinstance(v, dict) else "(nested keys)")
            bad(key, f"{key or 'the URL'} is {_type_name(v)}; put-json stores str() of it, i.e. {stored!r}",
                "leaves are strings", "write a JSON string" + ("" if v is not None else ", or leave the key out"))
        if key not in ENTRY_KEYS:
            bad(key, f"unknown key {key!r} (20.09 keeps it but never reads it)", "known registry keys",
                f"remove it, or use one of: \"\", {', '.join(sorted(ENTRY_KEYS - {''}))}", sev="warning")

    url = entry.get("")
    if "" not in entry:
        bad("", "the registry URL (the \"\" key) is missing", "\"\" = URL with scheme",
            f'add "": "https://{name}"')
    elif isinstance(url, str):
        m = _SCHEME.match(url)
        if len(url) > MAX_URL:
            bad("", f"the URL has {len(url)} characters", f"a base URL of at most {MAX_URL} characters",
                f'write "https://{name}"')
        elif not m:
            bad("", f"URL {url!r} has no scheme", "URL with scheme (tx.URL)", f'write "https://{url.lstrip("/")}"')
        elif m.group(1).lower() not in ("http", "https"):
            bad("", f"URL scheme {m.group(1)!r} is not http or https", "http(s) registry URL", "use https://")
        else:
            rest = url[m.end():]
            hostport = rest.split("/", 1)[0]
            if "@" in hostport:
                bad("", "the URL carries credentials", "no credentials in URLs",
                    'remove them from the URL and set "username" and "password"')
            elif not hostport:
                bad("", "the URL has no host", "URL with host", f'write "https://{name}"')
            if "?" in rest or "#" in rest:
                bad("", "the URL has a query or fragment", "plain base URL", "remove everything after ? or #")
            path = rest[len(hostport):]
            if path not in ("", "/"):
                bad("", f"the URL has a path {path!r}: Harbor's Link headers are re-applied to the host root",
                    "base URL without path (20.09 re-applies Link paths to the URL's root)", "use the bare https://host[:port]",
                    sev="warning")
            if url.endswith("/"):
                bad("", "the URL ends with '/'", "no trailing slash",
                    "drop it; some registries redirect and 20.09 does not follow API redirects", sev="warning")

    rtype = entry.get("type", "docker")
    if isinstance(rtype, str) and rtype not in REGISTRY_TYPES:
        bad("type", f"type {rtype!r} is not supported by Backend.AI 20.09", "type ∈ {docker, harbor, harbor2}",
            'use "harbor2" for a Harbor v2 registry such as cr.backend.ai')
    if name.endswith(".docker.io"):
        bad("type", f"{name} is always scanned as Docker Hub, whatever `type` says", "*.docker.io is Docker Hub",
            "nothing to do if this is Docker Hub", sev="warning")

    projects: list[str] = []
    proj = entry.get("project")
    if isinstance(proj, list):
        bad("project", f"project is a JSON list; put-json stores str() of it, i.e. {str(proj)!r}, which 20.09 "
            "splits on ',' into garbage project names", "project = one comma-separated string",
            f'write "project": "{",".join(str(p) for p in proj)}"')
    elif isinstance(proj, str):
        if proj == "":
            bad("project", "project is empty", "project names a Harbor project",
                'write e.g. "stable,community"')
        else:
            for p in proj.split(","):
                if p != p.strip():
                    bad("project", f"project {proj!r} has spaces around a name; 20.09 does not strip them and "
                        f"would ask Harbor for {p!r}", "comma-separated, no spaces",
                        f'write "{",".join(x.strip() for x in proj.split(","))}"')
                    break
                if not p:
                    bad("project", f"project {proj!r} has an empty name (two commas or a trailing comma)",
                        "comma-separated names", "remove the extra comma")
                    break
                if len(p) > MAX_NAME:
                    # Every repository path starts with its project, and a whole reference name
                    # has at most 255 characters (NameTotalLengthMax in github.com/distribution/
                    # reference); the name also goes into Harbor API URLs (issue 14: 2 MB failed
                    # with httpx.InvalidURL after the run had started).
                    bad("project", f"project name {p[:20]!r}... has {len(p)} characters",
                        f"at most {MAX_NAME} characters per project name", "check the project's name in Harbor")
                    break
                if not _PROJECT.match(p):
                    bad("project", f"{p!r} is not a valid Harbor project name", "lowercase letters, digits, . _ -",
                        "check the project's name in Harbor")
                    break
            projects = [p for p in proj.split(",")]
    if rtype in ("harbor", "harbor2") and "project" not in entry:
        bad("project", f"a {rtype} registry needs `project`; 20.09 fails the whole rescan without it",
            "project required for Harbor", 'add "project": "stable,community"')

    user, pw = entry.get("username"), entry.get("password")
    for key, v in (("username", user), ("password", pw)):
        if isinstance(v, str) and v == "":
            bad(key, f"{key} is an empty string (20.09 sends `Basic Og==` to the API)", "credentials non-empty",
                f"remove the {key} key for anonymous access")
    if (user is None) != (pw is None):
        have, missing = ("username", "password") if user is not None else ("password", "username")
        bad(missing, f"{have} is set but {missing} is not; 20.09's Harbor scanner then fails with KeyError",
            "username and password together", f"add {missing}, or remove {have}")

    ssl = entry.get("ssl-verify", True)
    ssl_verify = True
    if isinstance(ssl, bool):
        ssl_verify = ssl
    elif isinstance(ssl, str):
        low = ssl.lower()
        if low in TRUE_WORDS:
            ssl_verify = True
        elif low in FALSE_WORDS:
            ssl_verify = False
        else:
            bad("ssl-verify", f"ssl-verify {ssl!r} is not a boolean", "ssl-verify ∈ {true, false}",
                "write true or false")
    if ssl_verify is False and isinstance(url, str) and url.lower().startswith("https://"):
        bad("ssl-verify", "TLS verification is off for this registry", "prefer verified TLS",
            "set ssl-verify to true once the registry has a trusted certificate", sev="warning")

    if not ok or not isinstance(url, str) or not isinstance(rtype, str):
        return None
    return RegistryEntry(name=name, url=url.rstrip("/") if url.endswith("/") and url.count("/") > 2 else url,
                         type=rtype, projects=projects, username=user if isinstance(user, str) else None,
                         password=pw if isinstance(pw, str) else None, ssl_verify=ssl_verify, raw=dict(entry))


def entry_from_etcd(name: str, tree: Mapping[str, Any]) -> RegistryEntry | None:
    """A registry as etcd holds it (get_prefix of its key), read the way 20.09 reads it."""
    if isinstance(tree, str):
        tree = {"": tree}
    url = tree.get("")
    if not isinstance(url, str):
        return None
    proj = tree.get("project")
    ssl = str(tree.get("ssl-verify", "true")).lower()
    return RegistryEntry(name=name, url=url, type=str(tree.get("type", "docker")),
                         projects=str(proj).split(",") if proj is not None else [],
                         username=tree.get("username"), password=tree.get("password"),
                         ssl_verify=ssl not in FALSE_WORDS, raw=dict(tree))


def registry_key(name: str) -> str:
    return f"{REGISTRY_PREFIX}/{quote(name)}"
