"""Messages the controller posts to the App, and the update the App relays to step screens.

Engine events arrive on the event loop through the engine's sink; they are posted as
messages (never handled inside the engine's call stack) and the App relays them to every
mounted screen through one Signal, so a screen pushed or popped mid-run never misses or
blocks the engine (reference/textual.md s.2 "App-to-screen pub-sub").
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from textual.message import Message

from backends.events import Event


class EngineEvent(Message):
    """One engine event other than pull progress (those are coalesced, see PullBatch)."""

    def __init__(self, event: Event) -> None:
        super().__init__()
        self.event = event


class OpDone(Message):
    """An engine call run in a worker finished (ok, failed with a one-line error, or cancelled)."""

    def __init__(self, step: str, op: str, *, error: str | None = None, fix: str | None = None,
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


@dataclass
class Update:
    """What a screen hears through `Controller.updates`.

    kind: "event" (an engine event), "pulls" (a batch of grid cells), "op" (an engine call
    finished), "probe", "opened", "finished".
    """

    kind: str
    step: str | None = None
    event: Event | None = None
    op: str | None = None
    error: str | None = None
    fix: str | None = None
    cancelled: bool = False
    cells: list[Any] = field(default_factory=list)
