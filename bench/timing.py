"""Shared timing and output: medians of repeated runs, one `name key=value ...` line per benchmark.

Every figure is a median of at least `MIN_RUNS` runs with min and max shown, because this
machine is shared (2 CPUs) and single runs wander. Ratios are computed from the medians.
"""

from __future__ import annotations

import os
import statistics
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

MIN_RUNS = 5


def runs(default: int = MIN_RUNS) -> int:
    """`BAIRM_BENCH_RUNS` overrides the run count (never below `MIN_RUNS`)."""
    raw = os.environ.get("BAIRM_BENCH_RUNS")
    try:
        n = int(raw) if raw else default
    except ValueError:
        n = default
    return max(MIN_RUNS, n)


@dataclass
class Samples:
    """Wall times (seconds) of one side of a benchmark."""

    values: list[float] = field(default_factory=list)

    def add(self, seconds: float) -> None:
        self.values.append(seconds)

    @property
    def median(self) -> float:
        return statistics.median(self.values) if self.values else float("nan")

    @property
    def min(self) -> float:
        return min(self.values) if self.values else float("nan")

    @property
    def max(self) -> float:
        return max(self.values) if self.values else float("nan")

    def figures(self, name: str) -> dict[str, float]:
        """`name=median name_min= name_max=`."""
        return {name: self.median, f"{name}_min": self.min, f"{name}_max": self.max}


class Stopwatch:
    """`with Stopwatch() as sw: ...; sw.seconds`."""

    def __enter__(self) -> Stopwatch:
        self.t0 = time.perf_counter()
        self.seconds = 0.0
        return self

    def __exit__(self, *exc: object) -> None:
        self.seconds = time.perf_counter() - self.t0


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    t0 = time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, out


async def atimed(fn: Callable[[], Awaitable[Any]]) -> tuple[float, Any]:
    t0 = time.perf_counter()
    out = await fn()
    return time.perf_counter() - t0, out


def ratio(num: float, den: float) -> float:
    return num / den if den else float("nan")


def compare(ours: Samples, baseline: Samples) -> dict[str, float]:
    """The standard figures: ours/baseline medians with min-max and speedup = baseline / ours."""
    out: dict[str, float] = {}
    out.update(ours.figures("ours"))
    out.update(baseline.figures("baseline"))
    out["speedup"] = ratio(baseline.median, ours.median)
    out["runs"] = len(ours.values)
    return out


def fmt(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        if value != value:   # NaN
            return "nan"
        if abs(value) >= 100:
            return f"{value:.1f}"
        if abs(value) >= 10:
            return f"{value:.2f}"
        return f"{value:.3f}"
    text = str(value)
    return text.replace(" ", "_") if text else "-"


def line(name: str, figures: Mapping[str, Any] | Iterable[tuple[str, Any]]) -> str:
    """`name k=v k=v ...` with values free of spaces, so the line splits on whitespace."""
    items = figures.items() if isinstance(figures, Mapping) else figures
    return " ".join([name, *(f"{k}={fmt(v)}" for k, v in items)])
