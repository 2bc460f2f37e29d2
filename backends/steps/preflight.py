"""`preflight`: is this cluster one the migration can safely run on? Then back it all up.

Runbook step 1 (docs/runbook.md) and the traps in docs/backendai-etcd.md and docs/harbor.md: manager version gate
(20.03.11+ / 20.09.0b2+ / 21.x), storage era (images in PostgreSQL from 22.03 are refused),
target registry reachable without redirect, credentials proven with `users/current` (a
wrong password still lists public projects), every project visible, agents reachable, live
sessions on old images listed. Applying takes a backup of the whole namespace and of every
domain's allowlist before any other step writes.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from ..docker import AgentDocker, endpoints_from_template
from ..errors import ConfigError, ConnectError, MigrateError
from ..etcd import REGISTRY_PREFIX, Snapshot, nest_pairs
from ..events import ChangeApplied, PlannedChange
from ..image_ref import DOCKER_HUB
from ..manager_control import Version, gate_version
from ..registry_api import RegistryAuthError, RegistryClient, RegistryError, RegistryRedirectError
from .base import Finding, Step, StepMeta, StepPlan, Verification


class PreflightStep(Step):
    meta = StepMeta("preflight", "Preflight checks and backup", "Preflight",
                    "1: a manager with Harbor v2 support; back up first", checklist=True)

    def confirm_lines(self, plan: StepPlan) -> list[str]:
        return ["Reads the whole etcd namespace and every domain's allowlist into the state directory "
                "(secrets sealed). Nothing on the cluster changes."]

    async def manager_version(self) -> tuple[Version | None, Finding]:
        override = self.cluster.plan.manager.version
        if override:
            try:
                return Version.parse(override), Finding("info", "manager-version",
                                                        f"manager version {override} (from the plan/--manager-version)")
            except ValueError as e:
                return None, Finding("blocking", "manager-version", str(e), "fix [manager] version in the plan")
        try:
            info = await self.cluster.manager.hello()
        except ConnectError as e:
            return None, Finding("blocking", "manager-unreachable", e.message,
                                 (e.fix or "") + "; or give the version with --manager-version")
        try:
            return Version.parse(info.version), Finding("info", "manager-version",
                                                        f"manager {info.version} (API {info.api_version}) "
                                                        f"at {self.cluster.manager.url}")
        except ValueError as e:
            return None, Finding("blocking", "manager-version", str(e), "give the version with --manager-version")

    async def inspect(self) -> list[Finding]:
        f: list[Finding] = []
        version, vf = await self.manager_version()
        f.append(vf)
        if version is not None:
            gate = gate_version(version)
            f.append(Finding("info" if gate.ok else "blocking", "version-gate", gate.message, gate.fix))
        era = await self.cluster.db.schema_era()
        if era.images_in_db:
            f.append(Finding("blocking", "storage-era",
                             f"images live in PostgreSQL on this cluster ({era.label}); this tool migrates the "
                             "etcd era (20.03.11-21.09)", "use the manager's `mgr image` commands on 22.03 and later"))
        else:
            f.append(Finding("info", "storage-era", f"storage era: {era.label}"))
        regs = await self.cluster.registries()
        if not regs:
            f.append(Finding("blocking", "no-registries", f"no registry under {REGISTRY_PREFIX} in namespace "
                             f"{self.cluster.settings.etcd.namespace!r}",
                             "check [etcd] namespace in manager.toml: this does not look like the cluster"))
        else:
            f.append(Finding("info", "registries", "configured: " + ", ".join(sorted(regs))))
        f.extend(await self._target_checks())
        f.extend(await self._agent_checks())
        names = {d.name for d in await self.cluster.domains()}
        for name in sorted(set(self.cluster.plan.allowlists.domains) - names):
            # Caught here, before maintenance writes anything, not only in the allowlists step.
            f.append(Finding("blocking", "unknown-domain",
                             f"[allowlists.domains.{name}] the plan sets domain {name!r}, which does not exist "
                             "(rule: only existing domains can be listed)",
                             "remove it from [allowlists.domains] or correct its spelling"))
        f.extend(await self._unusable_inputs())
        live = await self.cluster.db.live_kernels(DOCKER_HUB)
        if live:
            f.append(Finding("info", "live-sessions",
                             f"{len(live)} live session(s) on {DOCKER_HUB} images; they keep running, but old "
                             "metadata and images are removed only after they end",
                             details=[f"{k.session_name} ({k.status}) {k.image} on {k.agent}" for k in live]))
        for x in f:
            self.finding(x)
        return f

    async def _unusable_inputs(self) -> list[Finding]:
        """What would otherwise be planned and then fail or be ignored later (issue 14, finding 8):
        plan entries naming aliases that do not exist, allowlists the allowlists step cannot
        update. Blocking here, before any step writes."""
        f: list[Finding] = []
        aliases = set(await self.cluster.aliases())
        a = self.cluster.plan.aliases
        for key, names in (("aliases.overrides", list(a.overrides)), ("aliases.skip", a.skip),
                           ("aliases.remove", a.remove)):
            for name in names:
                if name not in aliases:
                    gone = " (if an earlier run removed it, drop it from the list)" if key == "aliases.remove" else ""
                    f.append(Finding("blocking", "unknown-alias",
                                     f"[{key}] names alias {name!r}, which does not exist (rule: the name of an "
                                     "existing alias under images/_aliases)",
                                     f"correct its spelling or remove it from [{key}]{gone}"))
        for domain, what, repair in await self.cluster.db.allowlist_problems():
            f.append(Finding("blocking", "unusable-allowlist",
                             f"domain {domain!r}: allowed_docker_registries {what} (rule: a list of registry names "
                             "the allowlists step can compare and update)",
                             f"repair the row first, e.g. {repair}"))
        return f

    async def _target_checks(self) -> list[Finding]:
        f: list[Finding] = []
        v = self.cluster.target_validation()
        target = self.cluster.plan.target
        if not v.ok:
            first = v.errors[0]
            f.append(Finding("warning", "registry-json", f"the registry JSON has {len(v.errors)} error(s), "
                             f"first at line {first.line}:{first.column}: {first.message}",
                             "it is edited and checked in the registry step"))
            return f
        entry = v.entries[target]
        try:
            async with RegistryClient.from_entry(entry, attempts=2, timeout=15.0) as rc:
                if entry.type == "harbor2":
                    await rc.ping()
                mode = await rc.ping_v2()
                f.append(Finding("info", "target-reachable", f"{target} answers at {entry.url} (/v2/: {mode})"))
                if entry.type in ("harbor", "harbor2"):
                    who = await rc.current_user()
                    f.append(Finding("info", "credentials",
                                     "anonymous access (no credentials in the registry JSON)" if who.kind == "anonymous"
                                     else f"credentials accepted: {who.kind} {who.username or ''}".strip()))
                    multi = []
                    for p in entry.projects:
                        try:
                            await rc.project(p)
                        except RegistryError as e:
                            f.append(Finding("blocking", "project", f"project {p!r} is not visible on {target}: "
                                             f"{e.message}", "check the project name, and that the credentials may "
                                             "read it (20.09 fails the whole rescan on one bad project)"))
                            continue
                        for repo in await rc.repositories(p):
                            for art in await rc.artifacts(p, repo.repo):
                                if art.is_index:
                                    multi.extend(f"{repo.name}:{t}" for t in art.tags)
                    if multi:
                        f.append(Finding("warning", "multiarch",
                                         f"{len(multi)} multi-arch tag(s) on {target}: the manager's own "
                                         f"`rescan-images {target}` would fail on this registry (KeyError 'config', "
                                         "nothing written); this tool's rescan resolves each for the agents' "
                                         "architecture", "do not run `backend.ai mgr etcd rescan-images` on this "
                                         "registry with a 20.x manager", details=sorted(multi)[:50]))
        except RegistryRedirectError as e:
            f.append(Finding("blocking", "redirect", e.message, e.fix or f"use {e.suggested} as the URL"))
        except RegistryAuthError as e:
            f.append(Finding("blocking", "credentials", e.message, e.fix or "correct username/password"))
        except (RegistryError, ConnectError) as e:
            f.append(Finding("blocking", "target-unreachable", f"{target} at {entry.url}: {e.message}",
                             e.fix or "check the URL and that this node can reach it"))
        return f

    async def _agent_checks(self) -> list[Finding]:
        f: list[Finding] = []
        agents = await self.cluster.db.alive_agents()
        if not agents:
            f.append(Finding("warning", "no-agents", "no ALIVE agent in the agents table: nothing to pre-pull"))
            return f
        try:
            eps = endpoints_from_template(self.cluster.plan.agents.docker_url, agents)
        except ConfigError as e:
            f.append(Finding("blocking", "agent-url", e.message, e.fix or ""))
            return f

        async def probe(ep: Any) -> tuple[str, str | None, str | None]:
            try:
                async with AgentDocker(ep) as d:
                    info = await d.info()
                    return ep.agent_id, info.architecture, None
            except MigrateError as e:
                return ep.agent_id, None, e.message

        results = await asyncio.gather(*(probe(ep) for ep in eps))
        archs = {a for _, a, _ in results if a}
        for agent, arch, err in results:
            if err:
                f.append(Finding("warning", "agent-unreachable", f"agent {agent}: {err}",
                                 "pre-pull and image cleanup will fail on this agent until it is reachable"))
            else:
                f.append(Finding("info", "agent", f"agent {agent}: Docker reachable ({arch})"))
        if len(archs) > 1 and not self.cluster.plan.agents.architecture:
            f.append(Finding("warning", "mixed-arch", f"agents report several architectures: {', '.join(sorted(archs))}",
                             "set [agents] architecture in the plan; the rescan writes one per image"))
        return f

    def _arch_from_findings(self) -> str:
        if self.cluster.plan.agents.architecture:
            return self.cluster.plan.agents.architecture
        for x in (self.state.result or {}).get("findings", []):
            if x.get("code") == "agent" and "(" in x.get("message", ""):
                return x["message"].rsplit("(", 1)[1].rstrip(")")
        return "x86_64"

    async def plan(self) -> StepPlan:
        flat = await self.cluster.kv_flat("")
        domains = await self.cluster.domains()
        c = PlannedChange("backup", "backup", None, f"{len(flat)} etcd keys, {len(domains)} domains",
                          "backend.ai mgr etcd get --prefix '' > etcd-backup.json; "
                          "psql -c 'SELECT name, allowed_docker_registries FROM domains'",
                          note="kept in the state directory; secrets sealed")
        return StepPlan(f"back up {len(flat)} etcd keys and {len(domains)} domain allowlists", [c],
                        data={"keys": len(flat), "domains": len(domains)})

    async def apply(self, plan: StepPlan) -> dict[str, Any]:
        snap = await self.cluster.etcd.snapshot("")
        doms = await self.cluster.db.snapshot_domains()
        self.state.backup = {"etcd": snap.to_json(), "domains": doms.to_json()}
        self.journal("backup")
        self._write_backup_files(snap, doms.to_json())
        for c in plan.changes:
            self.emit(ChangeApplied(self.id, c.target, c.action, c.before, c.after, c.command))
        return {"keys": len(snap.items), "revision": snap.revision, "architecture": self._arch_from_findings()}

    def _write_backup_files(self, snap: Snapshot, domains: dict[str, Any]) -> None:
        """Human-usable copies next to the state: `etcd get --prefix ''` shape, secrets sealed."""
        store_dir = self.backup_dir
        if store_dir is None or self.cluster.dry_run:
            return
        import os

        store_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        for d in (store_dir, store_dir.parent):
            os.chmod(d, 0o700)
        sealed = self.cluster.vault.seal_tree(snap.items, scope=(snap.namespace, self.run.run_id if self.run else ""))
        for name, obj in (("etcd-namespace.json", nest_pairs("", sealed.items())), ("domains.json", domains)):
            path = store_dir / name
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as fh:
                json.dump(obj, fh, indent=2, ensure_ascii=False)

    async def verify(self, plan: StepPlan) -> Verification:
        v = Verification()
        b = self.state.backup or {}
        snap = Snapshot.from_json(b["etcd"]) if "etcd" in b else None
        v.add("etcd namespace backed up", snap is not None and len(snap.items) > 0,
              f"{len(snap.items) if snap else 0} keys")
        v.add("domain allowlists backed up", "domains" in b, f"{len(b.get('domains', {}).get('domains', {}))} domains")
        return v
