"""What reaches the App (Textual messages) and what the App relays to screens (typed updates).

Engine events arrive on the event loop through the engine's sink; they are posted as
messages (never handled inside the engine's call stack) and the App relays them to every
mounted screen through one Signal (Textual's `textual.signal.Signal`, the App-to-screen
pub-sub harlequin and posting use), so a screen pushed or popped mid-run never misses or
blocks the engine. Each update is its own type: a screen matches on the class, never on a
string `kind`, so an update nobody handles is a type nobody imports, not a silent typo.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from textual.message import Message

from backends.events import Event
from backends.statuses import Operation
from backends.steps.views import Cell

# -- messages posted to the App by the controller's workers and the engine's sink ---------------


class EngineEvent(Message):
    """One engine event other than pull progress (those are coalesced into CellsChanged)."""

    def __init__(self, event: Event) -> None:
        super().__init__()
        self.event = event


class OpDone(Message):
    """An engine call run in a worker finished (ok, failed with a one-line error, or cancelled)."""

    def __init__(self, step: str, op: Operation, *, error: str | None = None, fix: str | None = None,
                 cancelled: bool = False) -> None:
        super().__init__()
        self.step = step
        self.op = op
        self.error = error
        self.fix = fix
        self.cancelled = cancelled


class ProbeDone(Message):
    """The start screen's connection checks finished."""


class EngineOpened(Message):
    """The engine is open (lock held, state loaded or started); `error` when it could not open."""

    def __init__(self, *, error: str | None = None, fix: str | None = None) -> None:
        super().__init__()
        self.error = error
        self.fix = fix


# -- updates the App relays to screens through Controller.updates --------------------------------


@dataclass(frozen=True)
class EventHeard:
    """An engine event (status, finding, plan, progress, log...)."""

    event: Event

    @property
    def step(self) -> str | None:
        return getattr(self.event, "step", None)


@dataclass(frozen=True)
class CellsChanged:
    """A batch of grid cells of one step (the latest state of each, ten times a second)."""

    step: str
    cells: list[Cell] = field(default_factory=list)


@dataclass(frozen=True)
class OpStarted:
    step: str
    op: Operation


@dataclass(frozen=True)
class OpFinished:
    step: str
    op: Operation
    error: str | None = None
    fix: str | None = None
    cancelled: bool = False

    @property
    def succeeded(self) -> bool:
        return not self.error and not self.cancelled


@dataclass(frozen=True)
class ProbeFinished:
    """The connection checks of the start screen are done (the result is on the controller)."""


@dataclass(frozen=True)
class RunOpened:
    error: str | None = None
    fix: str | None = None


Update = EventHeard | CellsChanged | OpStarted | OpFinished | ProbeFinished | RunOpened
