"""Everything a step needs about one cluster, opened once per run.

Reads of etcd and of the domain allowlists go through an overlay holding what earlier steps
*would* have written in a dry run, so `--dry-run` can walk every step with realistic plans
(the aliases step sees the images the registry step would have scanned) while writing nothing.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote

from .config import Settings
from .db import Database, DomainRow
from .errors import ConfigError, SafetyError
from .etcd import ALIASES_PREFIX, REGISTRY_PREFIX, EtcdStore, WriteFence, nest_pairs, prefix_range
from .manager_control import ManagerControl
from .plan_file import PlanFile
from .registry_document import RegistryEntry, Validation, entry_from_etcd, validate
from .secrets import Redactor, Secret, is_sealed
from .vault import Vault


@dataclass
class Overlay:
    """Writes a dry run would have made: etcd puts/deleted trees and domain allowlists."""

    puts: dict[str, str] = field(default_factory=dict)
    deleted: set[str] = field(default_factory=set)          # exact keys
    deleted_trees: set[str] = field(default_factory=set)    # key + key/...
    domains: dict[str, list[str]] = field(default_factory=dict)

    def hides(self, key: str) -> bool:
        if key in self.deleted:
            return True
        return any(key == t or key.startswith(t + "/") for t in self.deleted_trees)

    def apply(self, base: Mapping[str, str], prefix: str) -> dict[str, str]:
        out = {k: v for k, v in base.items() if not self.hides(k)}
        for k, v in self.puts.items():
            if k.startswith(prefix):
                out[k] = v
        return dict(sorted(out.items()))

    def record(self, puts: Mapping[str, str], deletes: Iterable[str] = (), trees: Iterable[str] = ()) -> None:
        for k in deletes:
            self.deleted.add(k)
            self.puts.pop(k, None)
        for t in trees:
            self.deleted_trees.add(t)
            for k in [k for k in self.puts if k == t or k.startswith(t + "/")]:
                del self.puts[k]
        for k, v in puts.items():
            self.puts[k] = v
            self.deleted.discard(k)


class Cluster:
    def __init__(self, settings: Settings, plan: PlanFile, *, dry_run: bool = False, vault: Vault | None = None) -> None:
        self.settings = settings
        self.plan = plan
        self.dry_run = dry_run
        self.overlay = Overlay()
        self.vault = vault or Vault()
        self.redactor = Redactor(settings.secrets())
        self.etcd = EtcdStore.from_settings(settings.etcd)
        self.db = Database(settings.db)
        self.manager = ManagerControl(plan.manager.url or settings.manager_url(), plan.manager.stop,
                                      plan.manager.start, timeout=plan.manager.timeout, redactor=self.redactor)
        self._target_validation: Validation | None = None
        # Secret keys a restore left out because their sealed value cannot be opened (the seal
        # key is missing or another): the rollback says so and names them (issue 14, finding 5).
        self.unrestored: list[str] = []
        self._register_plan_secrets()

    def _register_plan_secrets(self) -> None:
        v = self.target_validation()
        for e in v.entries.values():
            if e.password:
                self.redactor.add(e.password, user=e.username)

    async def open(self) -> Cluster:
        await self.etcd.connect()
        try:
            await self.db.open()
        except BaseException:
            await self.etcd.close()
            raise
        # Passwords already in etcd (e.g. Docker Hub's) are secrets of this run too.
        for tree in (await self.etcd.get_prefix(REGISTRY_PREFIX)).values():
            if isinstance(tree, dict) and tree.get("password"):
                self.redactor.add(tree["password"], user=tree.get("username"))
        return self

    def fence_writes(self, fence: WriteFence | None) -> None:
        """Every write of this run from now on (etcd transactions, PostgreSQL commits, the
        manager's stop and start) needs `fence` (the cluster lock) to still hold."""
        self.etcd.fence = fence
        self.db.fence = fence.ensure if fence is not None else None
        self.manager.fence = fence.ensure if fence is not None else None

    async def close(self) -> None:
        await self.db.close()
        await self.etcd.close()

    async def __aenter__(self) -> Cluster:
        return await self.open()

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # -- etcd through the dry-run overlay -------------------------------------------------
    async def kv_flat(self, prefix: str) -> dict[str, str]:
        base = await self.etcd.get_flat(prefix)
        return self.overlay.apply(base, prefix) if self.dry_run else base

    async def kv_tree_flat(self, key: str) -> dict[str, str]:
        """`key` and `key/...` only (not siblings sharing the string prefix)."""
        start, _ = prefix_range(key)
        own = await self.kv_flat(key)
        return {k: v for k, v in own.items() if k == key or k.startswith(start)}

    async def kv_tree(self, prefix: str) -> dict[str, Any]:
        return nest_pairs(prefix, (await self.kv_flat(prefix)).items())

    async def kv_get(self, key: str) -> str | None:
        if self.dry_run:
            if key in self.overlay.puts:
                return self.overlay.puts[key]
            if self.overlay.hides(key):
                return None
        return await self.etcd.get(key)

    async def kv_write(self, puts: Mapping[str, str], *, deletes: Iterable[str] = (),
                       delete_trees: Iterable[str] = ()) -> None:
        """The only way steps write etcd: recorded in the overlay on a dry run, else written."""
        deletes, delete_trees = list(deletes), list(delete_trees)
        sealed = sorted(k for k, v in puts.items() if is_sealed(v))
        if sealed:
            raise SafetyError(f"refusing to write {sealed[0]}: its value is still sealed, because the seal key "
                              f"{self.vault.key_path} is missing or is not the one it was sealed with",
                              fix="restore that key file and run again, or plan the step again so the value "
                                  "comes from the plan file")
        if self.dry_run:
            self.overlay.record(puts, deletes, delete_trees)
            return
        for t in delete_trees:
            await self.etcd.check_delete_prefix(t)
        await self.etcd.write(puts, deletes=deletes, delete_trees=delete_trees)

    def restorable(self, puts: Mapping[str, str]) -> dict[str, str]:
        """`puts` of a restore without the values that are still sealed (recorded in `unrestored`)."""
        out = {}
        for k, v in puts.items():
            if is_sealed(v):
                if k not in self.unrestored:
                    self.unrestored.append(k)
            else:
                out[k] = v
        return out

    async def registries(self) -> dict[str, RegistryEntry | None]:
        tree = await self.kv_tree(REGISTRY_PREFIX)
        return {name: entry_from_etcd(name, v if isinstance(v, dict) else {"": v}) for name, v in tree.items()}

    async def aliases(self) -> dict[str, str]:
        """Alias name *as the manager looks it up* (the stored key segment, unquoted by get_prefix
        only where quoting is reversible) -> target. See images.resolve_alias."""
        flat = await self.kv_flat(ALIASES_PREFIX + "/")
        out = {}
        for k, v in flat.items():
            seg = k[len(ALIASES_PREFIX) + 1:]
            out[unquote(seg)] = v
        return out

    async def aliases_raw(self) -> dict[str, str]:
        """Stored key segment (still quoted) -> target: what a 20.09 lookup by name really hits."""
        flat = await self.kv_flat(ALIASES_PREFIX + "/")
        return {k[len(ALIASES_PREFIX) + 1:]: v for k, v in flat.items()}

    # -- domains through the overlay ------------------------------------------------------
    async def domains(self) -> list[DomainRow]:
        rows = await self.db.domains()
        if self.dry_run and self.overlay.domains:
            rows = [DomainRow(r.name, r.is_active, list(self.overlay.domains.get(r.name, r.allowed_docker_registries)))
                    for r in rows]
        return rows

    # -- the target registry --------------------------------------------------------------
    def target_validation(self) -> Validation:
        if self._target_validation is None:
            self._target_validation = validate(self.plan.registry_json, target=self.plan.target)
        return self._target_validation

    def set_registry_json(self, text: str) -> Validation:
        """The operator edited the registry JSON: revalidate and adopt it."""
        self.plan = self.plan.with_(registry_json=text)
        self._target_validation = None
        v = self.target_validation()
        for e in v.entries.values():
            if e.password:
                self.redactor.add(e.password, user=e.username)
        return v

    def target_entry(self) -> RegistryEntry:
        v = self.target_validation()
        entry = v.entries.get(self.plan.target)
        if not v.ok or entry is None:
            first = v.errors[0].render() if v.errors else f"no entry for {self.plan.target}"
            raise ConfigError(f"the registry JSON is not valid: {first}", key="registry.json",
                              fix="correct the registry JSON in the plan (or in the wizard's editor)")
        return entry

    def target_password(self) -> Secret | None:
        e = self.target_entry()
        return Secret(e.password) if e.password else None
