"""The words the engine, the state file, the transcript and the wizard share, as enums.

They are `StrEnum`s so the state file and the JSON Lines transcript keep the same strings
they always had (a run saved by an older version resumes), while code compares members,
not spellings: a typo is an AttributeError at import, not a status that silently never
matches.
"""

from __future__ import annotations

from enum import StrEnum


class Status(StrEnum):
    """A step's place in its life cycle (inspect -> plan -> apply -> verify)."""

    PENDING = "pending"
    INSPECTING = "inspecting"
    INSPECTED = "inspected"
    PLANNED = "planned"
    APPLYING = "applying"
    APPLIED = "applied"
    VERIFIED = "verified"
    SKIPPED = "skipped"
    FAILED = "failed"
    BLOCKED = "blocked"
    ROLLED_BACK = "rolled-back"

    @property
    def finished(self) -> bool:
        """Nothing more to do for this step: the run may go on past it."""
        return self in FINISHED

    @property
    def plannable(self) -> bool:
        """Inspecting and planning again is allowed (nothing is half-written)."""
        return self in PLANNABLE

    @property
    def applyable(self) -> bool:
        """An apply may start (or an interrupted one resume)."""
        return self in APPLYABLE


FINISHED = frozenset({Status.VERIFIED, Status.SKIPPED})
PLANNABLE = frozenset({Status.PENDING, Status.INSPECTING, Status.INSPECTED, Status.PLANNED, Status.BLOCKED,
                       Status.FAILED, Status.ROLLED_BACK})
APPLYABLE = frozenset({Status.PLANNED, Status.FAILED, Status.APPLYING})
# An end state of one operation: the step's finished_at is stamped.
TERMINAL = frozenset({Status.VERIFIED, Status.FAILED, Status.SKIPPED, Status.BLOCKED, Status.ROLLED_BACK})


class Operation(StrEnum):
    """What the operator (or the runner) asks of a step."""

    REFRESH = "refresh"      # inspect, then plan (read-only)
    APPLY = "apply"
    VERIFY = "verify"
    ROLLBACK = "rollback"
    SKIP = "skip"


class Severity(StrEnum):
    """A finding's weight: blocking stops the step, a warning is shown, info is context."""

    BLOCKING = "blocking"
    WARNING = "warning"
    INFO = "info"


class CellState(StrEnum):
    """One agent x image cell of the pre-pull or the agent cleanup."""

    QUEUED = "queued"
    PULLING = "pulling"
    EXTRACTING = "extracting"
    VERIFYING = "verifying"
    REMOVING = "removing"
    DONE = "done"
    REMOVED = "removed"
    KEPT = "kept"
    FAILED = "failed"
    SKIPPED = "skipped"

    @property
    def final(self) -> bool:
        return self in FINAL_CELL_STATES


FINAL_CELL_STATES = frozenset({CellState.DONE, CellState.FAILED, CellState.SKIPPED, CellState.REMOVED,
                               CellState.KEPT})


class Outcome(StrEnum):
    """How a run ended, as the last line, the exit status and the transcript say it."""

    VERIFIED = "verified"        # every step verified or skipped (exit 0)
    FAILED = "failed"            # a step failed; the state is kept for a resume (exit 1)
    GATE = "gate"                # stopped at a gate, e.g. live sessions on old images (exit 3)
    ABORTED = "aborted"          # stopped by the operator or a signal before the end (exit 128 + signal)
    LOCK_LOST = "lock-lost"      # the cluster lock's lease was lost; the run stopped writing (exit 3)
    DRY_RUN = "dry-run"          # nothing was written
    ROLLED_BACK = "rolled-back"  # a rollback run
