"""The step protocol: inspect, plan, apply, verify, rollback — the same for UI, runner and tests.

A step never talks to the operator. It reads (`inspect`), proposes concrete changes
(`plan`), performs them with a backup taken first (`apply`), proves them by reading back
(`verify`) and, where possible, undoes them (`rollback`). `apply` must be resumable: it may
be called again after a crash with the same plan and the step's journal, and must finish the
job without repeating or losing a write.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from ..cluster import Cluster
from ..events import Emit, FindingEvent, PlannedChange, Progress, PullProgress, StepStatus
from ..plan_file import PlanFile
from ..state import RunState, StepState
from ..statuses import CellState, Severity
from .edits import Edit, EditResult
from .views import Cell, Grid


@dataclass(frozen=True)
class StepMeta:
    """What a step is, said once: the wizard, the runner, the transcript and the state read it here.

    `skippable`: the operator may skip it (the runbook calls it optional). `writes`: apply
    changes the cluster, so the wizard asks first; `destructive`: it deletes what a rollback
    cannot bring back from the cluster itself, so the confirmation is typed. `grid`: its
    apply is an agents x images grid of cells (pull or removal) with pause and retry.
    """

    id: str
    title: str                # as the confirmation and the summary say it
    short_title: str          # as the step list says it
    runbook: str              # "N: what the runbook says" (N a runbook step) or "intro: ..."
    skippable: bool = False
    reversible: bool = False
    writes: bool = True
    destructive: bool = False
    grid: bool = False
    grid_title: str = ""      # what the grid of a grid step is called on its screen
    checklist: bool = False   # its findings are what the operator reads (shown taller)

    @property
    def runbook_ref(self) -> str:
        """"runbook step 3" or "runbook: intro", for the step's title line."""
        head = self.runbook.split(":", 1)[0]
        return f"runbook step {head}" if head[:1].isdigit() else f"runbook: {head}"


@dataclass
class Finding:
    severity: Severity
    code: str
    message: str
    fix: str = ""
    details: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.severity = Severity(self.severity)

    @property
    def blocking(self) -> bool:
        return self.severity is Severity.BLOCKING

    def to_json(self) -> dict[str, Any]:
        return {"severity": str(self.severity), "code": self.code, "message": self.message, "fix": self.fix,
                "details": self.details}

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> Finding:
        return cls(Severity(d["severity"]), d["code"], d["message"], d.get("fix", ""), list(d.get("details", [])))


@dataclass
class StepPlan:
    summary: str
    changes: list[PlannedChange] = field(default_factory=list)
    data: dict[str, Any] = field(default_factory=dict)   # step-specific, JSON-able, saved for resume
    destructive: bool = False                             # needs a typed confirmation in the UI

    def to_json(self) -> dict[str, Any]:
        return {"summary": self.summary, "changes": [c.to_json() for c in self.changes], "data": self.data,
                "destructive": self.destructive}

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> StepPlan:
        return cls(d["summary"], [PlannedChange.from_json(c) for c in d.get("changes", [])],
                   dict(d.get("data", {})), bool(d.get("destructive", False)))

    @property
    def empty(self) -> bool:
        return not self.changes


@dataclass
class Check:
    name: str
    ok: bool
    detail: str = ""

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "ok": self.ok, "detail": self.detail}


@dataclass
class Verification:
    checks: list[Check] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(c.ok for c in self.checks)

    def add(self, name: str, ok: bool, detail: str = "") -> None:
        self.checks.append(Check(name, ok, detail))


    @classmethod
    def from_json(cls, raw: list[Mapping[str, Any]]) -> Verification:
        return cls([Check(c["name"], bool(c["ok"]), c.get("detail", "")) for c in raw])


class Step:
    """One migration step. Subclasses set `meta` and implement the protocol; the class methods
    below are the step's public contract with the wizard (its inputs, its grid, its edits), so
    that no caller needs to know how the step stores its plan data or its journal."""

    meta: ClassVar[StepMeta]
    id: ClassVar[str] = ""               # = meta.id, set once per subclass

    def __init_subclass__(cls, **kw: Any) -> None:
        super().__init_subclass__(**kw)
        if "meta" in cls.__dict__:
            cls.id = cls.meta.id

    @property
    def reversible(self) -> bool:
        return self.meta.reversible

    def __init__(self, cluster: Cluster, state: StepState, emit: Emit,
                 save: Callable[[], None] | None = None) -> None:
        self.cluster = cluster
        self.state = state
        self.emit = emit
        self._save = save or (lambda: None)
        self.run: RunState | None = None     # the whole run, for steps that look at others (verify)
        # What edits are checked against, as JSON data (see load_edit_context).
        self.edit_context: dict[str, Any] = {}
        self.backup_dir: Path | None = None  # where human-readable backup copies go (not on dry runs)

    # -- helpers for subclasses -----------------------------------------------------------
    @property
    def plan_file(self) -> Any:
        return self.cluster.plan

    def save(self) -> None:
        self._save()

    def journal(self, key: str, value: Any = True) -> None:
        """Records that a sub-action finished, and saves, before anything else happens."""
        self.state.journal.append({"key": key, "value": value})
        self.save()

    def done(self, key: str) -> bool:
        return self.state.journaled(key)

    def progress(self, phase: str, message: str, done: int = 0, total: int = 0, **counters: int) -> None:
        self.emit(Progress(self.id, phase, message, done, total, dict(counters)))

    def status(self, status: str, message: str = "") -> None:
        self.emit(StepStatus(self.id, status, message))

    def finding(self, f: Finding) -> Finding:
        self.emit(FindingEvent(self.id, f.severity, f.code, f.message, f.fix))
        return f

    # -- the protocol ---------------------------------------------------------------------
    async def inspect(self) -> list[Finding]:
        return []

    async def plan(self) -> StepPlan:
        return StepPlan("nothing to do")

    async def apply(self, plan: StepPlan) -> dict[str, Any]:
        return {}

    async def verify(self, plan: StepPlan) -> Verification:
        return Verification()

    async def rollback(self) -> list[PlannedChange]:
        raise NotImplementedError(f"step {self.id} cannot be rolled back")

    # -- the contract with the wizard: inputs, confirmation, grid, edits -------------------
    @classmethod
    def inputs(cls, plan_file: PlanFile) -> dict[str, Any]:
        """The plan-file fields the operator can edit for this step, as JSON data: saved with
        each plan (a resumed wizard puts them back) and compared to tell a stale plan."""
        return {}

    @classmethod
    def restore_inputs(cls, plan_file: PlanFile, saved: Mapping[str, Any]) -> bool:
        """Puts saved `inputs` back into the plan file; True when that changed it."""
        return False

    @classmethod
    def input_key(cls, plan_file: PlanFile) -> Any:
        """What the plan was made from, for staleness (may include what is not saved)."""
        return repr(sorted(cls.inputs(plan_file).items()))

    @classmethod
    def disabled_reason(cls, plan_file: PlanFile) -> str | None:
        """Why the plan file turns this step off (then it is skipped, headless or not)."""
        return None

    def restore_edits(self) -> bool:
        """On resume: what the interrupted session edited comes back (inputs saved with the last
        plan, and anything the step keeps elsewhere). True when the plan file changed."""
        return bool(self.state.inputs) and self.restore_inputs(self.plan_file, self.state.inputs)

    def confirm_lines(self, plan: StepPlan) -> list[str]:
        """What the confirmation says besides the summary and the change count."""
        return []

    def grid(self, plan: StepPlan) -> Grid | None:
        """The agents x images cells of the plan (journal included), for grid steps."""
        return None

    def cell_of(self, event: PullProgress) -> Cell:
        """A progress event as a cell of this step's grid."""
        return Cell(event.agent, event.image, CellState(event.state), event.bytes_done, event.bytes_total,
                    event.message)

    def result_cells(self, plan: StepPlan) -> list[Cell]:
        """After an apply: each cell as the step's saved result says (the truth)."""
        return []

    async def load_edit_context(self) -> dict[str, Any]:
        """Read-only facts edits are checked against (e.g. the rescanned images), read when the
        step is planned so that checking an edit as the operator types needs no I/O. Kept as
        JSON data in `edit_context`, so a recorded run can be replayed with it."""
        return {}

    def check_edit(self, edit: Edit) -> EditResult:
        """Whether `edit` would be taken, and why not (field, rule, fix). Writes nothing."""
        return EditResult.refused(f"step {self.id} has no editable {type(edit).__name__}")

    def take_edit(self, edit: Edit) -> EditResult:
        """Checks `edit` and, when it is taken, records it in the plan file (never the cluster)."""
        return self.check_edit(edit)
