"""Bytes per second over a sliding window, per key and in total, with O(1) updates.

Split from the pull grid because it is pure arithmetic on an injected clock: unit-testable
without a terminal, and reusable by anything that shows live transfer rates.
"""

from __future__ import annotations

from collections import deque


class Throughput:
    """Bytes per second per key (an agent's row) and in total, over a sliding window.

    `add` only bumps a pending counter (O(1)); `tick` (called by the grid's timer) closes the
    pending counters into a time bucket and drops buckets older than the window. While a key
    has been active for less than the window, its rate is divided by the time it has actually
    been active, so a fresh pull does not show a misleading ramp.
    """

    def __init__(self, window: float = 3.0) -> None:
        self.window = window
        self._pending: dict[int, int] = {}
        self._buckets: deque[tuple[float, dict[int, int]]] = deque()
        self._sums: dict[int, int] = {}
        self._since: dict[int, float] = {}
        self._total = 0
        self._total_since: float | None = None
        self._last_tick: float | None = None

    def add(self, key: int, nbytes: int) -> None:
        self._pending[key] = self._pending.get(key, 0) + nbytes

    def tick(self, now: float) -> None:
        start = self._last_tick if self._last_tick is not None else now - 0.1
        if self._pending:
            bucket, self._pending = self._pending, {}
            self._buckets.append((now, bucket))
            sums, since = self._sums, self._since
            for key, n in bucket.items():
                if key not in sums:
                    sums[key] = 0
                    since[key] = start
                sums[key] += n
                self._total += n
            if self._total_since is None:
                self._total_since = start
        cutoff = now - self.window
        while self._buckets and self._buckets[0][0] <= cutoff:
            _, old = self._buckets.popleft()
            for key, n in old.items():
                left = self._sums[key] - n
                if left <= 0:
                    del self._sums[key]
                    del self._since[key]
                else:
                    self._sums[key] = left
                self._total -= n
        if not self._buckets:
            self._total = 0
            self._total_since = None
        self._last_tick = now

    def _span(self, since: float, now: float) -> float:
        return max(min(self.window, now - since), 0.05)

    def rate(self, key: int, now: float) -> float:
        total = self._sums.get(key)
        if not total:
            return 0.0
        return total / self._span(self._since[key], now)

    def total_rate(self, now: float) -> float:
        if not self._total or self._total_since is None:
            return 0.0
        return self._total / self._span(self._total_since, now)

    def clear(self) -> None:
        self._pending.clear()
        self._buckets.clear()
        self._sums.clear()
        self._since.clear()
        self._total = 0
        self._total_since = None
        self._last_tick = None
