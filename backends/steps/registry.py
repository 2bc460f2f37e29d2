"""`registry`: write the registry JSON, rescan the target, with the manager stopped meanwhile.

Runbook steps 2-3: `systemctl stop backendai-manager`, `backend.ai mgr etcd put-json ''
registry-config.json`, `backend.ai mgr etcd rescan-images cr.backend.ai`, `systemctl start
backendai-manager`. Here the scan runs while planning (read-only), so the operator sees every
key it will write before anything is stopped. Applying is journaled phase by phase
(backup, manager stopped, config written, images written, manager started); a crash resumes
at the first phase not journaled, and a failure after the stop restores the backup and starts
the manager again, so the cluster is left in the old state, not half of the new one.
"""

from __future__ import annotations

import asyncio
import json
import shlex
import time
from typing import Any

from ..errors import ConnectError, MigrateError
from ..etcd import REGISTRY_PREFIX, Snapshot, nest_pairs, quote
from ..events import ChangeApplied, PlannedChange
from ..images import metadata_images
from ..plan_file import PlanFile
from ..registry_api import RegistryError
from ..registry_document import Validation, registry_key, validate
from ..scanner import scan_registry
from ..secrets import MASK, is_sealed, is_secret_key
from .base import Finding, Step, StepMeta, StepPlan, Verification
from .edits import Edit, EditResult, SetRegistryDocument
from .views import Phase, RegistryProgress, Skipped

# How long a failed apply keeps trying to restore the backup while etcd does not answer.
RESTORE_WAIT = 60.0


def _shown(key: str, value: str | None) -> str | None:
    """Before/after as the operator sees them: secret values masked."""
    if value is None:
        return None
    last = key.rsplit("/", 1)[-1]
    return MASK if is_secret_key(last) else value


def validation_findings(v: Validation) -> list[Finding]:
    out = []
    for i in v.issues:
        out.append(Finding("blocking" if i.severity == "error" else "warning", "registry-json",
                           f"line {i.line}:{i.column}: {i.message}", f"{i.fix} (rule: {i.rule})"))
    return out


# The apply's phases, as journaled: a resume starts at the first one not done.
PHASES = (("manager-stopped", "stop the manager"), ("config-written", "write the registry keys (one transaction)"),
          ("images-written", "write the rescanned image keys"), ("manager-started", "start the manager"))
SHOWN_COUNTERS = ("repositories", "tags", "images", "skipped", "multiarch", "keys")


class RegistryStep(Step):
    meta = StepMeta("registry", "Registry configuration and rescan", "Registry",
                    "2-3: put-json the registry config, rescan, restart the manager", reversible=True)

    # -- the wizard's view and edits ---------------------------------------------------------
    @classmethod
    def input_key(cls, plan_file: PlanFile) -> Any:
        # The document is not in inputs() (saved with the plan): it carries a password. Its
        # edits survive as the saved plan's `config_puts`, sealed in the state.
        return plan_file.registry_json

    def restore_edits(self) -> bool:
        """The registry entry of the last plan (written or not) comes back as the document."""
        puts = ((self.state.plan or {}).get("data") or {}).get("config_puts") or {}
        if any(is_sealed(v) for v in puts.values()):
            # The seal key is lost or another: the password cannot be put back, and a sealed
            # blob must never become the document's password. The plan file's document stays.
            return False
        now = self.cluster.target_validation()
        if puts and (not now.ok or now.flat() != puts):
            self.cluster.set_registry_json(json.dumps(nest_pairs("", sorted(puts.items())), indent=2) + "\n")
            return True
        return False

    def document(self) -> str:
        """The registry JSON as it stands (the plan file's, with the operator's edits)."""
        return self.plan_file.registry_json

    def check_document(self, text: str) -> Validation:
        """Every issue of `text` (line:column, rule, fix), as the editor shows them while typing."""
        return validate(text, target=self.plan_file.target)

    def check_edit(self, edit: Edit) -> EditResult:
        if not isinstance(edit, SetRegistryDocument):
            return super().check_edit(edit)
        v = validate(edit.text, target=self.cluster.plan.target)
        if not v.ok:
            first = v.errors[0]
            return EditResult.refused(f"line {first.line}:{first.column}: {first.message}", first.fix)
        return EditResult.ok(changed=edit.text != self.cluster.plan.registry_json)

    def take_edit(self, edit: Edit) -> EditResult:
        result = self.check_edit(edit)
        if result.taken and result.changed and isinstance(edit, SetRegistryDocument):
            self.cluster.set_registry_json(edit.text)
        return result

    def progress_view(self, plan: StepPlan | None, live: dict[str, int] | None = None) -> RegistryProgress:
        """Phases as journaled, the rescan's counters (live while it runs), what it skipped."""
        counters = live or (plan.data.get("counters") if plan else None) or {}
        raw = sorted(plan.data.get("skipped", []) if plan else [],  # the scan is concurrent: its order varies
                     key=lambda s: (s.get("repo", ""), s.get("tag") or ""))
        skipped = [Skipped(s.get("repo", "?") + (f":{s['tag']}" if s.get("tag") else ""), str(s.get("reason", "")))
                   for s in raw]
        return RegistryProgress([Phase(label, self.done(key)) for key, label in PHASES],
                                {k: counters[k] for k in SHOWN_COUNTERS if k in counters}, skipped)

    def confirm_lines(self, plan: StepPlan) -> list[str]:
        n_img = len(plan.data.get("image_puts", {}))
        return ["The manager is stopped, the registry keys are written in one transaction, "
                f"{n_img} rescanned image keys are written, and the manager is started again.",
                "Sessions keep running; service ports disconnect briefly while the manager restarts."]

    async def inspect(self) -> list[Finding]:
        v = self.cluster.target_validation()
        out = [self.finding(f) for f in validation_findings(v)]
        regs = await self.cluster.registries()
        out.append(self.finding(Finding("info", "registries", "configured now: " + (", ".join(sorted(regs)) or "none"))))
        target = self.cluster.plan.target
        existing = await self.cluster.kv_tree_flat(registry_key(target))
        if existing:
            out.append(self.finding(Finding("info", "target-exists",
                                            f"{target} is already configured ({len(existing)} keys); "
                                            "the plan shows what changes")))
        if not await self.cluster.manager.is_up() and not self.done("manager-stopped"):
            out.append(self.finding(Finding("warning", "manager-down",
                                            f"the manager does not answer at {self.cluster.manager.url}; "
                                            "the stop cannot be confirmed",
                                            "start it first, or correct [manager] url in the plan")))
        return out

    async def _arch(self) -> str:
        if self.cluster.plan.agents.architecture:
            return self.cluster.plan.agents.architecture
        pre = self.run.steps.get("preflight") if self.run else None
        arch = ((pre.result or {}).get("apply") or {}).get("architecture") if pre else None
        return arch or "x86_64"

    async def plan(self) -> StepPlan:
        v = self.cluster.target_validation()
        if not v.ok:
            first = v.errors[0]
            raise MigrateError(f"the registry JSON is invalid at line {first.line}:{first.column}: {first.message}",
                               fix=first.fix)
        target = self.cluster.plan.target
        entry = self.cluster.target_entry()
        flat = v.flat()
        current_cfg = await self.cluster.kv_flat(REGISTRY_PREFIX + "/")
        # put-json never deletes; keys under the target's own entry that the document no longer
        # has (e.g. an old password) would linger, so the plan deletes them explicitly.
        tkey = registry_key(target)
        stale = [k for k in current_cfg if (k == tkey or k.startswith(tkey + "/")) and k not in flat]
        changes: list[PlannedChange] = []
        m = self.cluster.plan.manager
        changes.append(PlannedChange("manager", "command", "running", "stopped", shlex.join(m.stop),
                                     note="confirmed when GET / stops answering"))
        for k, val in flat.items():
            before = current_cfg.get(k)
            if before != val:
                changes.append(PlannedChange(f"etcd {k}", "put", _shown(k, before), _shown(k, val),
                                             "backend.ai mgr etcd put-json '' registry-config.json"))
        for k in stale:
            changes.append(PlannedChange(f"etcd {k}", "delete", _shown(k, current_cfg[k]), None,
                                         f"backend.ai mgr etcd delete {k}", note="not in the new document"))
        arch = await self._arch()
        self.progress("phase", f"scanning {target} ({entry.url}) for {arch} images")
        try:
            result = await scan_registry(entry, architecture=arch,
                                         on_progress=lambda msg, c: self.progress("scan", msg, **c))
        except RegistryError as e:
            # The client's message names one request; say which operation failed and that the
            # scan happens before anything is written (tests/faults/test_registry_faults.py).
            raise MigrateError(f"the rescan of {target} at {entry.url} failed, nothing was written: {e.message}",
                               fix=e.fix or "check the registry, then run the same command again") from e
        img_prefix = f"images/{quote(target)}/"
        current_imgs = await self.cluster.kv_flat(img_prefix)
        new_keys = {k: val for k, val in result.keys.items() if current_imgs.get(k) != val}
        stale_imgs = sorted(set(metadata_images(current_imgs)) - set(result.images))
        changes.append(PlannedChange(f"etcd {img_prefix}*", "put", f"{len(metadata_images(current_imgs))} images",
                                     f"{len(result.images)} images ({len(new_keys)} keys to write)",
                                     f"backend.ai mgr etcd rescan-images {shlex.quote(target)}",
                                     note="rescan; like 20.09 it never deletes images gone from the registry"))
        changes.append(PlannedChange("manager", "command", "stopped", "running", shlex.join(m.start),
                                     note="confirmed when GET / answers again"))
        summary = (f"write {len(flat)} registry keys for {target}, rescan: {len(result.images)} kernel images "
                   f"in {result.repositories} repositories ({len(result.skipped)} skipped)")
        data = {
            "config_puts": flat, "config_deletes": stale, "image_puts": result.keys,
            "images": result.images, "skipped": [s.__dict__ for s in result.skipped],
            "multiarch": result.multiarch, "counters": result.counters(), "requests": result.requests,
            "architecture": arch, "stale_images": stale_imgs,
        }
        return StepPlan(summary, changes, data=data)

    # -- apply ------------------------------------------------------------------------------
    async def _backup(self) -> None:
        target = self.cluster.plan.target
        items = await self.cluster.kv_flat(REGISTRY_PREFIX + "/")
        items.update(await self.cluster.kv_tree_flat(f"images/{quote(target)}"))
        snap = Snapshot(self.cluster.etcd.namespace, "", await self.cluster.etcd.revision(), items)
        self.state.backup = {"etcd": snap.to_json(), "trees": [REGISTRY_PREFIX, f"images/{quote(target)}"]}
        self.journal("backup")

    async def apply(self, plan: StepPlan) -> dict[str, Any]:
        d = plan.data
        dry = self.cluster.dry_run
        if not self.done("backup"):
            await self._backup()
        if (not dry and self.done("manager-stopped") and not self.done("manager-started")
                and await self.cluster.manager.is_up()):
            # Someone started it after an earlier attempt (as a failure message may have told
            # them to): never write the registry configuration under a running manager.
            self.progress("phase", "the manager answers although this step had stopped it: stopping it again")
            self._forget("manager-stopped")
        stopped_here = False
        try:
            if not self.done("manager-stopped"):
                if not dry:
                    self.progress("phase", "stopping the manager")
                    await self.cluster.manager.stop()
                    stopped_here = True
                self.journal("manager-stopped")
                self._applied(plan, lambda c: c.target == "manager" and c.after == "stopped")
            if not self.done("config-written"):
                self.progress("phase", f"writing {len(d['config_puts'])} registry keys in one transaction")
                await self.cluster.kv_write(d["config_puts"], deletes=d["config_deletes"])
                self.journal("config-written")
                self._applied(plan, lambda c: c.target.startswith(f"etcd {REGISTRY_PREFIX}"))
            if not self.done("images-written"):
                keys: dict[str, str] = d["image_puts"]
                self.progress("phase", f"writing {len(keys)} image keys", 0, len(keys))
                if dry:
                    await self.cluster.kv_write(keys)
                else:
                    await self.cluster.etcd.write_concurrently(keys)
                self.journal("images-written")
                self._applied(plan, lambda c: c.target.startswith("etcd images/"))
            if not self.done("manager-started"):
                if not dry:
                    self.progress("phase", "starting the manager")
                    await self.cluster.manager.start()
                self.journal("manager-started")
                self._applied(plan, lambda c: c.target == "manager" and c.after == "running")
        except BaseException as e:
            # Any failure while the manager is down -- etcd dying between the config and the
            # image writes, a manager that does not come back with the new configuration --
            # puts the old configuration back before the manager is started again, so users
            # never meet half of the new one (tests/faults/test_etcd_outage.py).
            if not dry and (stopped_here or (self.done("manager-stopped") and not self.done("manager-started"))):
                outcome, fix = await self._recover(e)
                what = e.message if isinstance(e, MigrateError) else \
                    f"{type(e).__name__}: {self.cluster.redactor(str(e))}"
                if isinstance(e, Exception):
                    raise MigrateError(f"while applying the registry step: {what}; {outcome}", fix=fix) from e
            raise
        return {"images": len(d["images"]), "keys": len(d["image_puts"]) + len(d["config_puts"]),
                "counters": d["counters"]}

    def _applied(self, plan: StepPlan, which: Any) -> None:
        for c in plan.changes:
            if which(c):
                self.emit(ChangeApplied(self.id, c.target, c.action, c.before, c.after, c.command))

    async def _recover(self, cause: BaseException) -> tuple[str, str]:
        """A failure with the manager stopped: put the old state back, then start the manager.

        Returns what was done and what the operator should do, for the error message. etcd
        may be the thing that failed, so the restore is retried for up to `RESTORE_WAIT`
        seconds; if etcd stays away the manager is left stopped on purpose: starting it on a
        half-written configuration is what this step exists to prevent.
        """
        self.progress("phase", f"recovering after failure ({type(cause).__name__}): restoring the backup")
        again = "then run the same command again"
        cause_fix = (cause.fix if isinstance(cause, MigrateError) and cause.fix else "fix the cause")
        cause_fix = cause_fix.removesuffix("; nothing was written")
        restored, why = await self._restore_with_retry()
        if not restored:
            return (f"the previous registry configuration could not be restored ({why}), so the manager is left "
                    "stopped rather than started on a half-written configuration",
                    f"{cause_fix}; {again}: it finishes the registry step and starts the manager")
        # Whatever happens next, a later attempt must stop the manager again before writing.
        self._forget("config-written", "images-written", "manager-stopped")
        try:
            await self.cluster.manager.start()
        except MigrateError as e:
            self.progress("phase", f"could not start the manager: {e.message}")
            return ("the previous registry configuration was restored, but the manager did not come back "
                    f"after a second start either ({e.message})",
                    "start the manager by hand (the plan's [manager] start command) and read its log; "
                    f"{again}")
        self.progress("phase", "manager started again")
        return ("the previous registry configuration was restored and the manager runs again",
                f"{cause_fix}; {again}")

    async def _restore_with_retry(self) -> tuple[bool, str]:
        deadline = time.monotonic() + RESTORE_WAIT
        told = False
        while True:
            try:
                await self._restore_backup()
                return True, ""
            except ConnectError as e:
                left = deadline - time.monotonic()
                if left <= 0:
                    self.progress("phase", f"could not restore the backup: {e.message}")
                    return False, e.message
                if not told:
                    self.progress("phase", f"{e.message}: waiting up to {int(left)}s for it to come back "
                                           "to restore the backup")
                    told = True
                await asyncio.sleep(min(0.5, left))
            except Exception as e:  # noqa: BLE001 - reported; the resume finishes the job instead
                msg = self.cluster.redactor(f"{type(e).__name__}: {e}")
                self.progress("phase", f"could not restore the backup: {msg}")
                return False, msg

    def _forget(self, *keys: str) -> None:
        self.state.journal = [j for j in self.state.journal if j.get("key") not in keys]
        self.save()

    async def _restore_backup(self) -> list[PlannedChange]:
        assert self.state.backup is not None
        snap = Snapshot.from_json(self.state.backup["etcd"])
        current: dict[str, str] = {}
        for t in self.state.backup["trees"]:
            current.update(await self.cluster.kv_tree_flat(t))
        # A secret whose sealed value cannot be opened is left as it is and named by the rollback.
        puts = self.cluster.restorable({k: v for k, v in snap.items.items() if current.get(k) != v})
        deletes = [k for k in current if k not in snap.items]
        if deletes:
            await self.cluster.kv_write({}, deletes=deletes)
        if puts:
            await self.cluster.kv_write(puts)
        return [PlannedChange(f"etcd {k}", "delete", _shown(k, current[k]), None, f"backend.ai mgr etcd delete {k}")
                for k in deletes] + \
               [PlannedChange(f"etcd {k}", "put", _shown(k, current.get(k)), _shown(k, v), "put-json of the backup")
                for k, v in puts.items()]

    async def verify(self, plan: StepPlan) -> Verification:
        d = plan.data
        v = Verification()
        cfg = await self.cluster.kv_flat(REGISTRY_PREFIX + "/")
        wrong = [k for k, val in d["config_puts"].items() if cfg.get(k) != val]
        v.add("registry configuration reads back", not wrong, ", ".join(wrong) or f"{len(d['config_puts'])} keys")
        lingering = [k for k in d["config_deletes"] if k in cfg]
        v.add("obsolete keys of the target entry are gone", not lingering, ", ".join(lingering) or "none left")
        target = self.cluster.plan.target
        imgs = await self.cluster.kv_flat(f"images/{quote(target)}/")
        missing = [k for k, val in d["image_puts"].items() if imgs.get(k) != val]
        v.add(f"image metadata of {target} reads back", not missing,
              f"{len(missing)} keys differ, e.g. {missing[0]}" if missing else f"{len(d['images'])} images")
        if not self.cluster.dry_run:
            v.add("the manager answers again", await self.cluster.manager.is_up(), self.cluster.manager.url or "")
        return v

    async def rollback(self) -> list[PlannedChange]:
        if not self.state.backup:
            return []
        m = self.cluster.manager
        was_up = await m.is_up()
        if was_up and not self.cluster.dry_run:
            await m.stop()
        try:
            changes = await self._restore_backup()
        finally:
            if was_up and not self.cluster.dry_run:
                await m.start()
        for c in changes:
            self.emit(ChangeApplied(self.id, c.target, c.action, c.before, c.after, c.command))
        return changes
