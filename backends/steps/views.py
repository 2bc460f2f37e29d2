"""Typed views of a step's plan and progress: what the wizard draws, without the step's storage.

A step keeps its plan data and journal in whatever shape suits it (and that shape is saved
in the state file, so it stays stable across versions). The wizard must not decode it: it
asks the step for these views instead, so a step can change its storage without the UI
noticing, and the UI cannot drift from the step's own reading (journal keys spelled twice
were how a resumed grid once showed finished pulls as queued).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..statuses import CellState


@dataclass(frozen=True)
class Cell:
    """One agent x image cell of a pull or removal grid."""

    agent: str
    image: str
    state: CellState
    done: int = 0            # bytes so far (pull) or reclaimed (removal)
    total: int = 0
    message: str = ""

    @property
    def key(self) -> tuple[str, str]:
        return (self.agent, self.image)

    def paused(self) -> Cell:
        """A cell still in flight when a pause cancelled the apply: queued again."""
        return Cell(self.agent, self.image, CellState.QUEUED, self.done, self.total, "paused")


@dataclass(frozen=True)
class Grid:
    """The agents x images matrix of a grid step's plan, with every planned cell."""

    agents: list[str]
    images: list[str]
    cells: list[Cell]
    # Cells of the matrix that are not in the plan (an image that is not on that agent).
    absent: list[tuple[str, str]] = field(default_factory=list)
    summary: str = ""        # e.g. "reclaimed 1.2 GB on 3 agents", once known


@dataclass(frozen=True)
class Phase:
    """One phase of a multi-phase apply (the registry step: stop, write, write, start)."""

    label: str
    done: bool


@dataclass(frozen=True)
class Skipped:
    """Something a scan left out, and why."""

    name: str
    reason: str


@dataclass(frozen=True)
class AliasView:
    """One alias as the aliases step sees it: now, proposed, and what happens to it."""

    alias: str
    current: str
    resolved: str | None
    proposed: str | None
    status: str              # remap | migrated | chain | other-registry | unresolvable | remove | skip | override
    note: str = ""
    risky: bool = False
    risk: str = ""

    @property
    def unresolved(self) -> bool:
        return self.status == "unresolvable"

    @property
    def removed(self) -> bool:
        return self.status == "remove"


@dataclass(frozen=True)
class DomainView:
    """One domain's allowed registries now and after the plan."""

    domain: str
    before: list[str]
    after: list[str]

    @property
    def added(self) -> list[str]:
        return [r for r in self.after if r not in self.before]

    @property
    def dropped(self) -> list[str]:
        return [r for r in self.before if r not in self.after]


@dataclass(frozen=True)
class RegistryProgress:
    """The registry step's apply as the operator follows it."""

    phases: list[Phase]
    counters: dict[str, int]
    skipped: list[Skipped]
