"""Folds the daemon's pull stream into one progress state per agent and image.

The Engine API answers `POST /images/create` with HTTP 200 and a stream of JSON lines, one
status per layer (`Pulling fs layer`, `Downloading` with `progressDetail`, `Extracting`,
`Pull complete`, `Already exists`, ...), then `Digest: ...` and a final
`Status: Downloaded newer image for ...` or `Status: Image is up to date for ...`
(moby `distribution/pull.go` `writeStatus`). A failure mid-stream is an object with `error` and
`errorDetail` while the status stays 200 (moby `pkg/streamformatter` `FormatError`). So success
is that final status line and nothing else; the client also confirms it with `images.inspect`.

The daemon sends a `Downloading` line for every chunk of every layer; the grid needs a change
of state or layer count, or one update per 100 ms, not each line.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

PULL_STATES = ("queued", "pulling", "extracting", "verifying", "done", "failed")


@dataclass(frozen=True)
class PullSnapshot:
    """Where one pull stands, handed to `pull(on_progress=...)`; the prepull step turns it into an
    `events.PullProgress` for the grid."""

    agent: str
    image: str
    layers_done: int
    layers_total: int
    bytes_current: int
    bytes_total: int
    state: str       # one of PULL_STATES
    message: str = ""


ProgressCallback = Callable[[PullSnapshot], Awaitable[None] | None]


_LAYER_STATUSES = ("Pulling fs layer", "Waiting", "Downloading", "Verifying Checksum", "Download complete",
                   "Extracting", "Pull complete", "Already exists", "Retrying in")


@dataclass
class _Layer:
    status: str = ""
    current: int = 0
    total: int = 0
    done: bool = False
    skipped: bool = False  # already present locally


class PullTracker:
    """Folds the Engine's per-layer JSON lines into one agent-level progress state."""

    def __init__(self, agent: str, image: str, min_interval: float = 0.1) -> None:
        self.agent = agent
        self.image = image
        self.layers: dict[str, _Layer] = {}
        self.state = "pulling"
        self.success = False
        self.up_to_date = False
        self.digest: str | None = None
        self.error: str | None = None
        self.last_message = ""
        self._min_interval = min_interval
        self._last_emit = 0.0
        self._last_key: tuple[Any, ...] = ()

    def feed(self, item: Mapping[str, Any]) -> bool:
        """Returns True when the change is worth an event (state, layer count, or 100 ms passed)."""
        if item.get("error") or item.get("errorDetail"):
            detail = item.get("errorDetail")
            msg = (detail.get("message") if isinstance(detail, Mapping) else None) or item.get("error")
            self.error = str(msg or "the daemon reported an error")
            return True
        status = str(item.get("status") or "")
        lid = item.get("id")
        if status.startswith("Digest:"):
            self.digest = status.split(":", 1)[1].strip()
        elif status.startswith("Status: Downloaded newer image") or status.startswith("Status: Image is up to date"):
            self.success = True
            self.up_to_date = "up to date" in status
        elif lid and status.startswith(_LAYER_STATUSES):
            layer = self.layers.setdefault(str(lid), _Layer())
            layer.status = status
            detail = item.get("progressDetail") or {}
            if status == "Downloading" and isinstance(detail, Mapping):
                layer.current = int(detail.get("current") or 0)
                layer.total = int(detail.get("total") or layer.total or 0)
            elif status in ("Download complete", "Verifying Checksum", "Extracting", "Pull complete"):
                layer.current = layer.total
            if status == "Already exists":
                layer.done = layer.skipped = True
            elif status == "Pull complete":
                layer.done = True
        if status:
            self.last_message = status
        self.state = self._overall()
        key = (self.state, self.layers_done, self.layers_total, self.success)
        now = time.monotonic()
        if key != self._last_key or now - self._last_emit >= self._min_interval:
            self._last_key = key
            self._last_emit = now
            return True
        return False

    def _overall(self) -> str:
        if self.layers and all(lay.done for lay in self.layers.values()):
            return "verifying"  # every layer is in; what is left is confirming the image
        active = [lay.status for lay in self.layers.values() if not lay.done]
        if "Extracting" in active:
            return "extracting"
        if "Verifying Checksum" in active:
            return "verifying"
        if active and all(st == "Download complete" for st in active):
            return "extracting"  # downloaded, queued for the (sequential) extraction
        return "pulling"

    @property
    def layers_done(self) -> int:
        return sum(1 for lay in self.layers.values() if lay.done)

    @property
    def layers_total(self) -> int:
        return len(self.layers)

    def event(self, state: str | None = None, message: str | None = None) -> PullSnapshot:
        cur = sum(lay.current for lay in self.layers.values() if not lay.skipped)
        tot = sum(lay.total for lay in self.layers.values() if not lay.skipped)
        state = state or self.state
        done, total = self.layers_done, self.layers_total
        if state == "done":
            done, cur = total, tot
        return PullSnapshot(self.agent, self.image, done, total, cur, max(tot, cur), state,
                            self.last_message if message is None else message)
