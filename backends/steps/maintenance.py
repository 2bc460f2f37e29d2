"""`maintenance`: freeze new sessions and show an announcement while the migration runs.

20.09 refuses session creation when the etcd key `manager/status` holds `frozen`
(`server_status_required`, api/manager.py @20.09.29) and shows `manager/announcement` in the
clients. Setting the key is preferred over the REST call, which is broken on 20.09
(docs/backendai-etcd.md#maintenance-freeze). Both keys are restored at the end or on abort.
"""

from __future__ import annotations

import shlex
from collections.abc import Mapping
from typing import Any

from ..events import ChangeApplied, PlannedChange
from ..plan_file import PlanFile
from .base import Finding, Step, StepMeta, StepPlan, Verification
from .edits import Edit, EditResult, SetAnnouncement

STATUS_KEY = "manager/status"
ANNOUNCEMENT_KEY = "manager/announcement"


def _put_cmd(key: str, value: str | None) -> str:
    if value is None:
        return f"backend.ai mgr etcd delete {key}"
    return f"backend.ai mgr etcd put {key} {shlex.quote(value)}"


class MaintenanceStep(Step):
    meta = StepMeta("maintenance", "Maintenance mode", "Maintenance", "intro: prefer a maintenance period",
                    skippable=True, reversible=True)

    @classmethod
    def inputs(cls, plan_file: PlanFile) -> dict[str, Any]:
        return {"announcement": plan_file.maintenance.announcement}

    @classmethod
    def input_key(cls, plan_file: PlanFile) -> Any:
        return (plan_file.maintenance.enabled, plan_file.maintenance.announcement)

    @classmethod
    def restore_inputs(cls, plan_file: PlanFile, saved: Mapping[str, Any]) -> bool:
        if cls.inputs(plan_file) == dict(saved):
            return False
        plan_file.maintenance.announcement = str(saved.get("announcement", plan_file.maintenance.announcement))
        return True

    @classmethod
    def disabled_reason(cls, plan_file: PlanFile) -> str | None:
        return None if plan_file.maintenance.enabled else "maintenance mode is off in the plan"

    def announcement(self) -> str | None:
        """The announcement being edited, or None when maintenance mode is off (nothing to edit)."""
        m = self.plan_file.maintenance
        return m.announcement if m.enabled else None

    def check_edit(self, edit: Edit) -> EditResult:
        if not isinstance(edit, SetAnnouncement):
            return super().check_edit(edit)
        if not self.plan_file.maintenance.enabled:
            return EditResult.refused("maintenance mode is off in the plan", "turn it on in [maintenance]")
        return EditResult.ok(changed=edit.text != self.plan_file.maintenance.announcement)

    def take_edit(self, edit: Edit) -> EditResult:
        result = self.check_edit(edit)
        if result.taken and isinstance(edit, SetAnnouncement):
            self.plan_file.maintenance.announcement = edit.text
        return result

    def confirm_lines(self, plan: StepPlan) -> list[str]:
        return ["Users cannot start new sessions until the end of the run (running sessions are not affected)."]

    async def inspect(self) -> list[Finding]:
        status = await self.cluster.kv_get(STATUS_KEY)
        ann = await self.cluster.kv_get(ANNOUNCEMENT_KEY)
        out = [self.finding(Finding("info", "manager-status",
                                    f"manager/status is {status or '(unset: running)'}; "
                                    f"announcement {'is ' + repr(ann) if ann else 'is not set'}"))]
        if status == "frozen" and not self.done("applied"):
            out.append(self.finding(Finding("warning", "already-frozen",
                                            "new sessions are already frozen by someone else",
                                            "the freeze will be left as found at the end")))
        if not self.plan_file.maintenance.enabled:
            out.append(self.finding(Finding("info", "disabled", "maintenance mode is off in the plan; "
                                            "users can start sessions during the migration")))
        return out

    async def plan(self) -> StepPlan:
        m = self.plan_file.maintenance
        if not m.enabled:
            return StepPlan("maintenance mode is off: nothing to change", data={"enabled": False})
        before = {STATUS_KEY: await self.cluster.kv_get(STATUS_KEY),
                  ANNOUNCEMENT_KEY: await self.cluster.kv_get(ANNOUNCEMENT_KEY)}
        after = {STATUS_KEY: "frozen", ANNOUNCEMENT_KEY: m.announcement or None}
        changes = [PlannedChange(f"etcd {k}", "put" if after[k] is not None else "delete", before[k], after[k],
                                 _put_cmd(k, after[k]), note="restored at the end of the run")
                   for k in (STATUS_KEY, ANNOUNCEMENT_KEY) if before[k] != after[k]]
        return StepPlan(f"freeze new sessions and announce: {m.announcement!r}" if changes
                        else "already frozen with this announcement", changes,
                        data={"enabled": True, "before": before, "after": after})

    async def apply(self, plan: StepPlan) -> dict[str, Any]:
        if not plan.data.get("enabled"):
            return {"changed": 0}
        if self.state.backup is None:
            self.state.backup = {"keys": plan.data["before"]}
            self.journal("backup")
        after: dict[str, str | None] = plan.data["after"]
        puts = {k: v for k, v in after.items() if v is not None}
        deletes = [k for k, v in after.items() if v is None]
        await self.cluster.kv_write(puts, deletes=deletes)
        for c in plan.changes:
            self.emit(ChangeApplied(self.id, c.target, c.action, c.before, c.after, c.command))
        self.journal("applied")
        return {"changed": len(plan.changes)}

    async def verify(self, plan: StepPlan) -> Verification:
        v = Verification()
        if not plan.data.get("enabled"):
            v.add("maintenance mode off", True, "nothing was changed")
            return v
        for k, want in plan.data["after"].items():
            got = await self.cluster.kv_get(k)
            v.add(f"{k} reads back", got == want, f"{got!r}" if got == want else f"expected {want!r}, found {got!r}")
        return v

    async def rollback(self) -> list[PlannedChange]:
        if not self.state.backup:
            return []
        before: dict[str, str | None] = self.state.backup["keys"]
        current = {k: await self.cluster.kv_get(k) for k in before}
        puts = {k: v for k, v in before.items() if v is not None and current[k] != v}
        deletes = [k for k, v in before.items() if v is None and current[k] is not None]
        await self.cluster.kv_write(puts, deletes=deletes)
        changes = [PlannedChange(f"etcd {k}", "put" if before[k] is not None else "delete", current[k], before[k],
                                 _put_cmd(k, before[k])) for k in before if current[k] != before[k]]
        for c in changes:
            self.emit(ChangeApplied(self.id, c.target, c.action, c.before, c.after, c.command))
        return changes
