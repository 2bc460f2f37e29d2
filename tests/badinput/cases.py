"""The malformed inputs: what an operator can get wrong, and what the refusal must say.

Each case names the field the message must point at, the rule it must state and the fix it
must give (substrings of the one-line error). Inputs are built from the sandbox's own plan and
manager.toml, changed in one place each.
"""

from __future__ import annotations

import base64
import json
import os
import tomllib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import tomli_w

from backends.sandbox.layout import SandboxInfo


@dataclass(frozen=True)
class Inputs:
    config: Path
    plan: Path


Build = Callable[[SandboxInfo, Path], Inputs]


@dataclass(frozen=True)
class Bad:
    id: str
    build: Build
    field: str
    rule: str
    fix: str
    code: int = 2           # 2: refused as bad configuration; 3: stopped at preflight's gate


def _write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def _plan_dict(info: SandboxInfo) -> dict[str, Any]:
    return tomllib.loads(info.plan_toml.read_text())


def plan(mutate: Callable[[dict[str, Any]], None]) -> Build:
    def build(info: SandboxInfo, d: Path) -> Inputs:
        raw = _plan_dict(info)
        mutate(raw)
        return Inputs(info.manager_toml, _write(d / "plan.toml", tomli_w.dumps(raw)))
    return build


def plan_text(text: str) -> Build:
    def build(info: SandboxInfo, d: Path) -> Inputs:
        return Inputs(info.manager_toml, _write(d / "plan.toml", text))
    return build


def no_plan_file(info: SandboxInfo, d: Path) -> Inputs:
    return Inputs(info.manager_toml, d / "no-such-plan.toml")


def deep(path: str, value: Any) -> Build:
    """Sets a dotted path in the plan, creating tables (e.g. "allowlists.domains.research")."""
    def m(raw: dict[str, Any]) -> None:
        *tables, last = path.split(".")
        t = raw
        for name in tables:
            t = t.setdefault(name, {})
        t[last] = value
    return plan(m)


def registry_text(text: str | Callable[[SandboxInfo], str]) -> Build:
    def m_factory(info: SandboxInfo) -> Callable[[dict[str, Any]], None]:
        def m(raw: dict[str, Any]) -> None:
            raw["registry"]["json"] = text(info) if callable(text) else text
        return m

    def build(info: SandboxInfo, d: Path) -> Inputs:
        return plan(m_factory(info))(info, d)
    return build


def entry(**changes: Any) -> Callable[[SandboxInfo], str]:
    """The sandbox's registry document with its one entry changed (`...` deletes a key)."""
    def text(info: SandboxInfo) -> str:
        e: dict[str, Any] = {"": info.harbor_url, "type": "harbor2", "project": "stable,community",
                             "username": info.creds.harbor_user, "password": info.creds.harbor_password}
        for k, v in changes.items():
            k = {"url": "", "ssl_verify": "ssl-verify"}.get(k, k)
            if v is ...:
                e.pop(k, None)
            else:
                e[k] = v
        return json.dumps({"config": {"docker": {"registry": {"cr.backend.ai": e}}}}, indent=2)
    return text


def registries(doc: Callable[[SandboxInfo], dict[str, Any]]) -> Callable[[SandboxInfo], str]:
    return lambda info: json.dumps(doc(info), indent=2)


def _entry_dict(info: SandboxInfo) -> dict[str, Any]:
    return {"": info.harbor_url, "type": "harbor2", "project": "stable,community",
            "username": info.creds.harbor_user, "password": info.creds.harbor_password}


def named(name: str) -> Callable[[SandboxInfo], str]:
    """The document with the target plus one more registry called `name`."""
    return registries(lambda info: {"config": {"docker": {"registry": {
        "cr.backend.ai": _entry_dict(info), name: {"": "https://example.invalid", "type": "docker"}}}}})


def manager_toml(mutate: Callable[[dict[str, Any]], None]) -> Build:
    def build(info: SandboxInfo, d: Path) -> Inputs:
        raw = tomllib.loads(info.manager_toml.read_text())
        mutate(raw)
        return Inputs(_write(d / "manager.toml", tomli_w.dumps(raw)), info.plan_toml)
    return build


def manager_toml_text(text: str) -> Build:
    def build(info: SandboxInfo, d: Path) -> Inputs:
        return Inputs(_write(d / "manager.toml", text), info.plan_toml)
    return build


def _set(section: str, key: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def m(raw: dict[str, Any]) -> None:
        raw[section][key] = value
    return m


def _drop(section: str, key: str | None = None) -> Callable[[dict[str, Any]], None]:
    def m(raw: dict[str, Any]) -> None:
        if key is None:
            del raw[section]
        else:
            del raw[section][key]
    return m


def seal_key(data: bytes, mode: int = 0o600) -> Build:
    """The default inputs, with this content at the seal key path of the run (its XDG_CONFIG_HOME)."""
    def build(info: SandboxInfo, d: Path) -> Inputs:
        key = d / "xdg-config" / "bai-registry-migrate" / "seal.key"
        key.parent.mkdir(parents=True, exist_ok=True)
        key.write_bytes(data)
        os.chmod(key, mode)
        return Inputs(info.manager_toml, info.plan_toml)
    return build


LONG = "x" * 300
REG = "registry.json"


# -- the cases ---------------------------------------------------------------------------------
# (field, rule, fix) are substrings of the one error line. The registry JSON's field is its
# path inside the document; the rule is printed as "(rule: ...)".

CASES: list[Bad] = [
    # registry JSON: syntax
    Bad("json-empty", registry_text(""), REG, "rule: JSON syntax", "fix: correct the JSON at that position"),
    Bad("json-open-brace", registry_text('{"config": {"docker": {"registry": {'), REG, "rule: JSON syntax",
        "fix: correct the JSON"),
    Bad("json-trailing-comma", registry_text(lambda i: entry()(i).rstrip().rstrip("}") + ",}"), REG,
        "rule: JSON syntax", "fix: correct the JSON"),
    Bad("json-single-quotes", registry_text("{'config': {}}"), REG, "rule: JSON syntax", "fix: correct the JSON"),
    Bad("json-missing-comma", registry_text(lambda i: entry()(i).replace('"harbor2",', '"harbor2"')), REG,
        "rule: JSON syntax", "fix: correct the JSON"),
    Bad("json-unbalanced-brace", registry_text(lambda i: entry()(i) + "}"), REG, "rule: JSON syntax",
        "fix: correct the JSON"),
    Bad("json-duplicate-key", registry_text(lambda i: entry()(i).replace('"type": "harbor2",',
                                                                         '"type": "harbor2", "type": "docker",')),
        "config/docker/registry/cr.backend.ai/type", "rule: unique keys", "fix: keep one of them"),
    # registry JSON: shape
    Bad("json-top-list", registry_text("[]"), REG, "rule: registry-config.json shape", 'fix: write {"config"'),
    Bad("json-null", registry_text("null"), REG, "rule: registry-config.json shape", 'fix: write {"config"'),
    Bad("json-true", registry_text("true"), REG, "rule: registry-config.json shape", 'fix: write {"config"'),
    Bad("json-extra-top-key", registry_text(lambda i: json.dumps({**json.loads(entry()(i)), "x": 1})),
        ": x: unexpected top-level key", "rule: registry-config.json shape", "fix: nest the entries"),
    Bad("json-empty-registry", registry_text('{"config": {"docker": {"registry": {}}}}'),
        "config/docker/registry", "rule: at least one registry", 'fix: add e.g. "cr.backend.ai"'),
    Bad("json-target-missing", registry_text(registries(lambda i: {"config": {"docker": {"registry": {
        "harbor.example.com": _entry_dict(i)}}}})),
        "config/docker/registry", "rule: the document configures the target", 'fix: add an entry named "cr.backend.ai"'),
    Bad("json-entry-is-list", registry_text('{"config": {"docker": {"registry": {"cr.backend.ai": []}}}}'),
        "config/docker/registry/cr.backend.ai", "rule: registry entry shape", 'fix: write {"": "https://'),
    # registry JSON: values
    Bad("project-list", registry_text(entry(project=["stable", "community"])),
        "config/docker/registry/cr.backend.ai/project", "rule: project = one comma-separated string",
        'fix: write "project": "stable,community"'),
    Bad("project-null", registry_text(entry(project=None)), "config/docker/registry/cr.backend.ai/project",
        "rule: leaves are strings", "fix: write a JSON string, or leave the key out"),
    Bad("project-spaces", registry_text(entry(project="stable, community")),
        "config/docker/registry/cr.backend.ai/project", "rule: comma-separated, no spaces",
        'fix: write "stable,community"'),
    Bad("project-empty", registry_text(entry(project="")), "config/docker/registry/cr.backend.ai/project",
        "rule: project names a Harbor project", 'fix: write e.g. "stable,community"'),
    Bad("project-double-comma", registry_text(entry(project="stable,,community")),
        "config/docker/registry/cr.backend.ai/project", "rule: comma-separated names", "fix: remove the extra comma"),
    Bad("project-missing", registry_text(entry(project=...)), "config/docker/registry/cr.backend.ai/project",
        "rule: project required for Harbor", 'fix: add "project": "stable,community"'),
    Bad("project-unicode", registry_text(entry(project="stäble")), "config/docker/registry/cr.backend.ai/project",
        "rule: lowercase letters, digits, . _ -", "fix: check the project's name in Harbor"),
    Bad("url-no-scheme", registry_text(entry(url="cr.backend.ai")), "config/docker/registry/cr.backend.ai",
        "rule: URL with scheme", 'fix: write "https://cr.backend.ai"'),
    Bad("url-ftp", registry_text(entry(url="ftp://cr.backend.ai")), "config/docker/registry/cr.backend.ai",
        "rule: http(s) registry URL", "fix: use https://"),
    Bad("url-credentials", registry_text(entry(url="https://admin:pw@cr.backend.ai")),
        "config/docker/registry/cr.backend.ai", "rule: no credentials in URLs", 'fix: remove them from the URL'),
    Bad("url-query", registry_text(entry(url="https://cr.backend.ai?x=1")), "config/docker/registry/cr.backend.ai",
        "rule: plain base URL", "fix: remove everything after ? or #"),
    Bad("url-number", registry_text(entry(url=42)), "config/docker/registry/cr.backend.ai",
        "rule: leaves are strings", "fix: write a JSON string"),
    Bad("url-missing", registry_text(entry(url=...)), "config/docker/registry/cr.backend.ai",
        'rule: "" = URL with scheme', 'fix: add "": "https://cr.backend.ai"'),
    Bad("type-unknown", registry_text(entry(type="quay")), "config/docker/registry/cr.backend.ai/type",
        "rule: type ∈ {docker, harbor, harbor2}", 'fix: use "harbor2"'),
    Bad("type-boolean", registry_text(entry(type=True)), "config/docker/registry/cr.backend.ai/type",
        "rule: leaves are strings", "fix: write a JSON string"),
    Bad("username-without-password", registry_text(entry(password=...)),
        "config/docker/registry/cr.backend.ai/password", "rule: username and password together",
        "fix: add password, or remove username"),
    Bad("password-empty", registry_text(entry(password="")), "config/docker/registry/cr.backend.ai/password",
        "rule: credentials non-empty", "fix: remove the password key"),
    Bad("ssl-verify-maybe", registry_text(entry(ssl_verify="maybe")),
        "config/docker/registry/cr.backend.ai/ssl-verify", "rule: ssl-verify ∈ {true, false}",
        "fix: write true or false"),
    Bad("ssl-verify-null", registry_text(entry(ssl_verify=None)), "config/docker/registry/cr.backend.ai/ssl-verify",
        "rule: leaves are strings", "fix: write a JSON string, or leave the key out"),
    Bad("name-with-scheme", registry_text(named("https://harbor.example.com")),
        "config/docker/registry/https://harbor.example.com", "rule: registry key = host[:port]",
        'fix: use the registry\'s host name'),
    Bad("name-with-path", registry_text(named("harbor.example.com/stable")),
        "config/docker/registry/harbor.example.com/stable", "rule: registry key = host[:port]",
        "fix: use the registry's host name"),
    Bad("name-bad-port", registry_text(named("harbor.example.com:99999")), "harbor.example.com:99999",
        "rule: registry key = host[:port]", "fix: use the registry's host name"),
    Bad("name-unicode", registry_text(named("hárbor.example.com")), "hárbor.example.com",
        "rule: registry key = host[:port]", "fix: use the registry's host name"),
    Bad("name-very-long", registry_text(named(LONG + ".example.com")), "config/docker/registry/xxxxx",
        "rule: registry key = host[:port]", "fix: use the registry's host name"),
    Bad("name-quotes", registry_text(named('"harbor.example.com"')), "harbor.example.com",
        "rule: registry key = host[:port]", "fix: use the registry's host name"),
    # issue 14: the target, durations, values too large for etcd or a URL, nesting
    Bad("target-docker-hub", deep("target.registry", "index.docker.io"), "[target.registry]",
        "rule: the target is the new registry, not the source", 'fix: name the Harbor registry, e.g. registry = '),
    Bad("target-docker-io", deep("target.registry", "docker.io"), "[target.registry]",
        "rule: the target is the new registry, not the source", "fix: name the Harbor registry"),
    Bad("target-url", deep("target.registry", "https://cr.backend.ai"), "[target.registry]",
        "rule: the target is a registry name, host[:port]", 'fix: write e.g. registry = "cr.backend.ai"'),
    Bad("duration-timeout-nan", deep("manager.timeout", float("nan")), "[manager.timeout]",
        "is not a finite duration (rule: a finite duration from 1ms to 30d)", 'fix: write e.g. "60s"'),
    Bad("duration-timeout-zero", deep("manager.timeout", "0s"), "[manager.timeout]",
        "is not positive (rule: a finite duration from 1ms to 30d)", 'fix: write e.g. "60s"'),
    Bad("duration-prepull-timeout-zero", deep("prepull.timeout", 0), "[prepull.timeout]",
        "is not positive (rule: a finite duration from 1ms to 30d)", 'fix: write e.g. "60s"'),
    Bad("duration-poll-zero", deep("cleanup.poll_interval", "0ms"), "[cleanup.poll_interval]",
        "is not positive", 'fix: write e.g. "60s"'),
    Bad("duration-wait-inf", deep("cleanup.wait_for_sessions", float("inf")), "[cleanup.wait_for_sessions]",
        "is not a finite duration (rule: a finite duration from 0s to 30d)", 'fix: write e.g. "0s" or "10m"'),
    Bad("duration-wait-years", deep("cleanup.wait_for_sessions", 2 ** 40), "[cleanup.wait_for_sessions]",
        "is longer than 30 days (rule: a finite duration from 0s to 30d)", 'fix: write e.g. "0s" or "10m"'),
    Bad("project-very-long", registry_text(entry(project="a" * 300_000)),
        "config/docker/registry/cr.backend.ai/project", "rule: at most 255 characters per project name",
        "fix: check the project's name in Harbor"),
    Bad("json-too-large", registry_text(entry(project="a" * 2_000_000)), REG,
        "rule: at most 1048576 bytes: its keys are written in one etcd transaction",
        "fix: remove what is not registry configuration"),
    Bad("url-very-long", registry_text(entry(url="https://cr.backend.ai/" + "p" * 5000)),
        "config/docker/registry/cr.backend.ai", "rule: a base URL of at most 2048 characters",
        'fix: write "https://cr.backend.ai"'),
    Bad("announcement-3mb", deep("maintenance.announcement", "x" * 3_000_000), "[maintenance.announcement]",
        "rule: at most 1048576 bytes, one etcd value", "fix: shorten it"),
    Bad("json-deeply-nested", registry_text('{"config": {"docker": {"registry": {"cr.backend.ai": '
                                            + "[" * 100_000 + "]" * 100_000 + "}}}}"), REG,
        "nests more than 32 levels deep", "fix: correct the JSON at that position"),
    Bad("plan-deeply-nested", plan_text("x = " + "[" * 100_000 + "]" * 100_000 + "\n"), "plan.toml",
        "rule: a plan nests a few levels", "fix: flatten the nested arrays or tables"),
    # the plan file
    Bad("plan-missing", no_plan_file, "no-such-plan.toml", "no such file", "fix: give the path of the plan file"),
    Bad("plan-not-toml", plan_text("version = \n"), "plan.toml", "is not valid TOML", "fix: correct the syntax"),
    Bad("plan-version-2", plan(lambda r: r.update(version=2)), "[version]",
        "is not supported", "fix: use version = 1"),
    Bad("plan-unknown-section", plan(lambda r: r.update(registries={"x": 1})), "[registries]",
        "unknown section or key", "fix: remove it or use one of"),
    Bad("plan-target-number", deep("target.registry", 5), "[target.registry]", "must be a string",
        'fix: quote it'),
    Bad("manager-stop-shell-string", deep("manager.stop", "systemctl stop backendai-manager; touch /tmp/pwned"),
        "[manager.stop]", "not one string (it is never run through a shell)", 'fix: write e.g. stop = ["systemctl"'),
    Bad("manager-start-subshell", deep("manager.start", "$(touch /tmp/pwned) systemctl start x"),
        "[manager.start]", "not one string", 'fix: write e.g. start = ['),
    Bad("manager-stop-backticks", deep("manager.stop", "`touch /tmp/pwned`"), "[manager.stop]", "not one string",
        "fix: write e.g. stop = ["),
    Bad("manager-stop-empty", deep("manager.stop", []), "[manager.stop]", "is empty", "fix: give the command as a list"),
    Bad("manager-url-ftp", deep("manager.url", "ftp://127.0.0.1:8081"), "[manager.url]", "is not an http(s) URL",
        'fix: write e.g. url = "http://'),
    Bad("manager-timeout-words", deep("manager.timeout", "soon"), "[manager.timeout]", "is not a duration",
        "fix: write a number with a unit"),
    Bad("prepull-concurrency-zero", deep("prepull.concurrency", 0), "[prepull.concurrency]", "is out of range",
        "fix: use a value from 1 to 1024"),
    Bad("prepull-retries-string", deep("prepull.retries", "3"), "[prepull.retries]", "must be a whole number",
        "fix: write e.g. retries = 3"),
    Bad("prepull-image-spaces", deep("prepull.images", ["cr.backend.ai/stable/python 3.9"]), "[prepull.images]",
        "rule: a full image reference", 'fix: write e.g. images = ["cr.backend.ai/stable/'),
    Bad("maintenance-enabled-yes", deep("maintenance.enabled", "yes"), "[maintenance.enabled]",
        "must be true or false", "fix: write enabled = true"),
    Bad("architecture-sparc", deep("agents.architecture", "sparc"), "[agents.architecture]",
        "is not an architecture Backend.AI knows", 'fix: use "x86_64" or "aarch64"'),
    # alias names and targets (plan overrides)
    Bad("override-empty-target", deep("aliases.overrides.python", ""), "[aliases.overrides.python]",
        "must be a non-empty string", 'fix: write e.g. python = "'),
    Bad("override-no-tag", deep("aliases.overrides.python", "cr.backend.ai/stable/python:"),
        "[aliases.overrides.python]", "rule: an override target is a full image reference", 'fix: write e.g. "python"'),
    Bad("override-spaces", deep("aliases.overrides.python", "cr.backend.ai/stable/python 3.9"),
        "[aliases.overrides.python]", "rule: an override target is a full image reference", "fix: write e.g."),
    Bad("override-shell", deep("aliases.overrides.python", "cr.backend.ai/stable/python:3.9;rm -rf /"),
        "[aliases.overrides.python]", "rule: an override target is a full image reference", "fix: write e.g."),
    Bad("override-uppercase", deep("aliases.overrides.python", "cr.backend.ai/Stable/Python:3.9"),
        "[aliases.overrides.python]", "rule: an override target is a full image reference", "fix: write e.g."),
    Bad("override-unicode", deep("aliases.overrides.python", "cr.backend.ai/stable/pythön:3.9"),
        "[aliases.overrides.python]", "rule: an override target is a full image reference", "fix: write e.g."),
    Bad("override-very-long", deep("aliases.overrides.python", "cr.backend.ai/stable/" + LONG + ":1"),
        "[aliases.overrides.python]", "rule: an override target is a full image reference", "fix: write e.g."),
    Bad("override-url", deep("aliases.overrides.python", "https://cr.backend.ai/stable/python:3.9"),
        "[aliases.overrides.python]", "rule: an override target is a full image reference", "fix: write e.g."),
    Bad("override-list", deep("aliases.overrides.python", ["cr.backend.ai/stable/python:3.9"]),
        "[aliases.overrides.python]", "must be a non-empty string", "fix: write e.g."),
    Bad("alias-name-empty",
        plan(lambda r: r["aliases"].setdefault("overrides", {}).update({"": "cr.backend.ai/stable/python:3.9"})),
        "[aliases.overrides]", "rule: the name of an existing alias", "fix: write the alias as Backend.AI lists it"),
    Bad("alias-remove-and-override", plan(lambda r: r["aliases"].setdefault("overrides", {}).update(
        {"lua": "cr.backend.ai/stable/python:3.9"})), "[aliases.remove]", "is both removed and overridden",
        "fix: keep it in only one of"),
    Bad("alias-remove-empty-name", deep("aliases.remove", ["lua", ""]), "[aliases.remove]", "has an empty entry",
        "fix: remove the empty string"),
    # domain allowlist entries
    Bad("domain-entry-quotes", deep("allowlists.domains.research", ["'cr.backend.ai'"]),
        "[allowlists.domains.research]", "rule: an allowlist entry is a registry name",
        'fix: write one registry per string, e.g. ["cr.backend.ai"]'),
    Bad("domain-entry-comma", deep("allowlists.domains.research", ["cr.backend.ai,index.docker.io"]),
        "[allowlists.domains.research]", "rule: an allowlist entry is a registry name", "fix: write one registry"),
    Bad("domain-entry-braces", deep("allowlists.domains.research", ["{cr.backend.ai}"]),
        "[allowlists.domains.research]", "rule: an allowlist entry is a registry name", "fix: write one registry"),
    Bad("domain-entry-empty", deep("allowlists.domains.research", ["cr.backend.ai", ""]),
        "[allowlists.domains.research]", "must be a list of registry names", 'fix: write e.g. research = ['),
    Bad("domain-entry-very-long", deep("allowlists.domains.research", [LONG]), "[allowlists.domains.research]",
        "rule: an allowlist entry is a registry name", "fix: write one registry"),
    Bad("domain-entry-too-many-labels", deep("allowlists.domains.research", ["a." * 130 + "example.com"]),
        "[allowlists.domains.research]", "(a host name has at most 253)", "fix: write one registry"),
    Bad("domain-entry-unicode", deep("allowlists.domains.research", ["cr.bäckend.ai"]),
        "[allowlists.domains.research]", "rule: an allowlist entry is a registry name", "fix: write one registry"),
    Bad("domain-entry-url", deep("allowlists.domains.research", ["https://cr.backend.ai"]),
        "[allowlists.domains.research]", "rule: an allowlist entry is a registry name", "fix: write one registry"),
    Bad("domain-not-a-list", deep("allowlists.domains.research", "cr.backend.ai"), "[allowlists.domains.research]",
        "must be a list of registry names", "fix: write e.g. research = ["),
    Bad("domain-unknown", deep("allowlists.domains.reseach", ["cr.backend.ai"]), "[allowlists.domains.reseach]",
        "rule: only existing domains can be listed", "fix: remove it from [allowlists.domains]", code=3),
    Bad("domain-name-hostile", deep("allowlists.domains.x'); DROP TABLE domains; --", ["cr.backend.ai"]),
        "[allowlists.domains.x'); DROP TABLE domains; --]", "rule: only existing domains", "fix: remove it", code=3),
    Bad("allowlist-add-trailing-slash", deep("allowlists.add", ["cr.backend.ai/"]), "[allowlists.add]",
        "rule: an allowlist entry is a registry name", "fix: write one registry"),
    Bad("allowlist-remove-spaces", deep("allowlists.remove", ["index.docker.io "]), "[allowlists.remove]",
        "rule: an allowlist entry is a registry name", "fix: write one registry"),
    # agent URL templates
    Bad("agent-url-empty", deep("agents.docker_url", ""), "[agents.docker_url]", "is empty",
        "fix: set it, e.g. unix:///var/run/docker.sock"),
    Bad("agent-url-unbalanced", deep("agents.docker_url", "tcp://{host:2375"), "[agents.docker_url]",
        "unbalanced braces", "fix: use only {id}, {host}, {port}"),
    Bad("agent-url-unknown-placeholder", deep("agents.docker_url", "tcp://{hostname}:2375"), "[agents.docker_url]",
        "unknown placeholder {hostname}", "fix: use only {id}, {host}, {port}"),
    Bad("agent-url-format-spec", deep("agents.docker_url", "tcp://{host:>20}:2375"), "[agents.docker_url]",
        "must not carry a format spec", "fix: write plain {host}"),
    Bad("agent-url-scheme", deep("agents.docker_url", "ftp://{host}:2375"), "[agents.docker_url]",
        "is not supported", "fix: use unix:///path/to/docker.sock"),
    Bad("agent-url-relative-socket", deep("agents.docker_url", "unix://run/{id}.sock"), "[agents.docker_url]",
        "the socket path must be absolute", "fix: write three slashes"),
    Bad("agent-url-path", deep("agents.docker_url", "tcp://{host}:2375/v1.41"), "[agents.docker_url]",
        "must not have a path, query or fragment", "fix: write only SCHEME://HOST:PORT"),
    Bad("agent-url-ssh-password", deep("agents.docker_url", "ssh://root:hunter2@{host}"), "[agents.docker_url]",
        "ssh URL must not carry a password", "fix: use key authentication"),
    Bad("agent-url-port", deep("agents.docker_url", "tcp://{host}:99999"), "[agents.docker_url]",
        "port 99999 is out of range", "fix: use a port between 1 and 65535"),
    # manager.toml (tests/test_config.py covers discovery, broken TOML, a missing key, bad addr forms)
    Bad("toml-no-etcd-section", manager_toml(_drop("etcd")), "[etcd]", "the [etcd] section is missing",
        "fix: add the [etcd] section"),
    Bad("toml-namespace-slash", manager_toml(_set("etcd", "namespace", "local/x")), "[etcd.namespace]",
        "contains '/' or spaces", 'fix: use the namespace the manager uses'),
    Bad("toml-db-mysql", manager_toml(_set("db", "type", "mysql")), "[db.type]", "is not supported",
        'fix: Backend.AI only supports type = "postgresql"'),
    Bad("toml-etcd-port-range", manager_toml(_set("etcd", "addr", {"host": "127.0.0.1", "port": 99999})),
        "[etcd.addr]", "is out of range", "fix: use a port number between 1 and 65535"),
    Bad("toml-db-user-number", manager_toml(_set("db", "user", 5)), "[db.user]", "must be a string",
        "fix: quote it"),
    Bad("toml-db-addr-no-port", manager_toml(_set("db", "addr", "127.0.0.1")), "[db.addr]", "has no port",
        'fix: write it as "host:port"'),
    # names that match nothing: only the cluster can tell, so preflight's gate (exit 3) stops them
    Bad("alias-override-unknown", deep("aliases.overrides.pyhton", "cr.backend.ai/stable/python:3.9-ubuntu20.04"),
        "[aliases.overrides] names alias 'pyhton'", "rule: the name of an existing alias",
        "fix: correct its spelling or remove it from [aliases.overrides]", code=3),
    Bad("alias-skip-unknown", deep("aliases.skip", ["no-such-alias"]), "[aliases.skip] names alias 'no-such-alias'",
        "rule: the name of an existing alias", "fix: correct its spelling or remove it from [aliases.skip]", code=3),
    Bad("alias-remove-unknown", deep("aliases.remove", ["lua", "no-such-alias"]),
        "[aliases.remove] names alias 'no-such-alias'", "rule: the name of an existing alias",
        "fix: correct its spelling or remove it from [aliases.remove]", code=3),
    # the seal key (outside the state directory; tests/test_vault.py has every rule)
    Bad("seal-key-empty", seal_key(b""), "[seal key] seal key ", "is empty (a key of zero bytes protects nothing) "
        "(rule: 32 random bytes in base64)", "fix: if no unfinished run needs it, move it aside"),
    Bad("seal-key-not-base64", seal_key(b"not base64 at all!\n"), "[seal key] seal key ",
        "is not base64 text (rule: 32 random bytes in base64)", "fix: if no unfinished run needs it, move it aside"),
    Bad("seal-key-readable", seal_key(base64.b64encode(b"k" * 32) + b"\n", 0o644), "[seal key] seal key ",
        "has mode 0644: other users can use it (rule: mode 0600)", "fix: chmod 600 "),
    Bad("toml-deeply-nested", manager_toml_text("x = " + "[" * 100_000 + "]" * 100_000 + "\n"), "manager.toml",
        "rule: manager.toml nests a few levels", "fix: flatten the nested arrays or tables"),
    Bad("toml-not-utf8", lambda info, d: Inputs(_write_bytes(d / "manager.toml", b"[etcd]\nnamespace = \"\xff\"\n"),
                                                info.plan_toml), "manager.toml", "is not UTF-8 text",
        "fix: save it as UTF-8"),
]


def _write_bytes(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path
