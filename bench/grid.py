"""PullGrid under load: 300 agents x 8 images, 5,000 progress events/s, arrow keys every 50 ms.

    python -m bench.grid [--seconds 10] [--rate 5000] [--modes messages,thread]

Prints one line, `grid key=value ...`, and `main()` returns the same figures as a dict. Nothing
is asserted: this is a measurement, not a timed test (README.md, "Performance").

What is measured, and why it is the right signal (Textual 8.2.8 source):

- A frame is complete when `Screen._compositor_refresh` hands the compositor's update to
  `App._display(screen, update)`; that is the one place a frame goes to the terminal. Headless
  (`run_test`), `_display` returns before turning the update into terminal bytes, so the hook
  below does that part itself (`update.render_segments(console)`) to charge the frame its real
  cost. Frames suppressed by `batch_update` (`app._batch_count`) are not counted.
- A key is sent the way a terminal driver sends it: `driver.send_message(events.Key(...))`
  (what `Pilot.press` does, minus Pilot's waiting for idle). The clock starts just before.
- The key counts as shown at the end of the first frame in which the grid *rendered the line
  holding the cursor after that key's move* (`BenchGrid.render_line` records the move sequence
  number it painted). Seeing the cursor attribute change is not enough: a frame already being
  composed for earlier dirty rows may not contain the cursor line yet.
- Latency therefore covers: queueing behind progress messages, the binding and action, the
  refresh, Textual's 60 fps update timer, compositing, rendering our cached strips, and building
  the terminal output.

Producers: `messages` posts one Textual message per event to the App, whose handler calls
`update_cell` (the pessimistic version of what tui/controller.py does on the event loop);
`thread` runs the producer in a thread that hands batches to the loop with
`App.call_from_thread(grid.update_many, batch)` (one blocking round trip per ~5 ms batch).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import sys
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from textual import events, on
from textual._compositor import CompositorUpdate
from textual.app import App, ComposeResult
from textual.message import Message
from textual.screen import Screen
from textual.strip import Strip

from widgets.pull_grid import HEADER_LINES, PullGrid

KEY_INTERVAL = 0.05
BATCH_INTERVAL = 0.005


class BenchGrid(PullGrid):
    """PullGrid that remembers which cursor move it last painted (see the module docstring)."""

    moves = 0
    painted_move = 0

    def move_cursor(self, row: int, col: int) -> None:
        before = (self.cursor_row, self.cursor_col)
        super().move_cursor(row, col)
        if (self.cursor_row, self.cursor_col) != before:
            self.moves += 1

    def render_line(self, y: int) -> Strip:
        strip = super().render_line(y)
        if int(self.scroll_offset.y) + y - HEADER_LINES == self.cursor_row:
            self.painted_move = self.moves
        return strip


class Progress(Message):
    """One synthetic engine event (a PullProgress turned into a message)."""

    def __init__(self, agent: str, image: str, state: str, done: int, total: int) -> None:
        super().__init__()
        self.agent, self.image, self.state, self.done, self.total = agent, image, state, done, total


class GridBenchApp(App[None]):
    CSS = "BenchGrid { height: 1fr; }"

    def __init__(self, agents: list[str], images: list[str]) -> None:
        super().__init__()
        self.agents = agents
        self.images = images

    def compose(self) -> ComposeResult:
        yield BenchGrid(id="grid")

    def on_mount(self) -> None:
        self.grid = self.query_one(BenchGrid)  # held, as tui/controller.py holds its grid
        self.grid.set_matrix(self.agents, self.images)
        self.grid.focus()

    @on(Progress)
    def _progress(self, event: Progress) -> None:
        self.grid.update_cell(event.agent, event.image, event.state, done=event.done, total=event.total)


class Lifecycle:
    """Deterministic synthetic progress: each event advances one random cell one step through
    queued -> pulling (10 steps) -> extracting (2 steps) -> done (2% failed) -> queued again."""

    def __init__(self, agents: list[str], images: list[str], seed: int = 4) -> None:
        self.rng = random.Random(seed)
        self.cells = [(a, i) for a in agents for i in images]
        self.phase = [0] * len(self.cells)
        self.total = [self.rng.randint(50, 1500) * 1_000_000 for _ in self.cells]
        self.expected: dict[tuple[str, str], str] = {}

    def next(self) -> tuple[str, str, str, int, int]:
        k = self.rng.randrange(len(self.cells))
        phase = self.phase[k]
        total = self.total[k]
        if phase == 0:
            state, done = "queued", 0
        elif phase <= 10:
            state, done = "pulling", total * phase // 10
        elif phase <= 12:
            state, done = "extracting", total * (phase - 10) // 2
        else:
            state, done = ("failed" if self.rng.random() < 0.02 else "done"), total
        self.phase[k] = 0 if phase >= 13 else phase + 1
        agent, image = self.cells[k]
        self.expected[(agent, image)] = state
        return agent, image, state, done, total


@dataclass
class Run:
    sent: list[tuple[int, float]] = field(default_factory=list)   # (move number, t0)
    latencies: list[float] = field(default_factory=list)
    frame_ms: list[float] = field(default_factory=list)
    lags: list[float] = field(default_factory=list)
    events: int = 0
    produce_s: float = 0.0


def _pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


def _key_plan(rows: int, cols: int, count: int) -> list[str]:
    """Keys that each move the cursor (so each must show up in a frame): down 60 rows (which
    scrolls a 43-row viewport), right, up 60, right..., bouncing between the edges."""
    keys: list[str] = []
    row = col = 0
    down, right = True, True
    span = min(60, rows - 1)
    while len(keys) < count:
        for _ in range(span):
            keys.append("down" if down else "up")
            row += 1 if down else -1
        down = not down
        if right and col == cols - 1:
            right = False
        elif not right and col == 0:
            right = True
        keys.append("right" if right else "left")
        col += 1 if right else -1
    return keys[:count]


def _hook_frames(app: App[Any], grid: BenchGrid, run: Run) -> None:
    original: Callable[[Screen[Any], Any], None] = app._display

    def display(screen: Screen[Any], renderable: Any) -> None:
        original(screen, renderable)
        if renderable is None or app._batch_count:
            return
        start = time.perf_counter()
        if isinstance(renderable, CompositorUpdate):
            renderable.render_segments(app.console)  # what a real terminal driver would write
        end = time.perf_counter()
        run.frame_ms.append((end - start) * 1000)
        painted = grid.painted_move
        while run.sent and run.sent[0][0] <= painted:
            _, t0 = run.sent.pop(0)
            run.latencies.append((end - t0) * 1000)

    app._display = display  # type: ignore[method-assign]


async def _measure_lag(stop: asyncio.Event, run: Run) -> None:
    """Event-loop lag: how late a 10 ms sleep wakes up (how long anything else had to wait)."""
    while not stop.is_set():
        t = time.perf_counter()
        await asyncio.sleep(0.01)
        run.lags.append((time.perf_counter() - t - 0.01) * 1000)


async def _produce_in_loop(app: App[Any], life: Lifecycle, rate: float, seconds: float, run: Run) -> None:
    start = time.perf_counter()
    post = app.post_message
    while (elapsed := time.perf_counter() - start) < seconds:
        due = int(rate * elapsed) - run.events
        for _ in range(due):
            post(Progress(*life.next()))
        run.events += max(due, 0)
        await asyncio.sleep(BATCH_INTERVAL)
    run.produce_s = time.perf_counter() - start


def _produce_in_thread(app: App[Any], grid: PullGrid, life: Lifecycle, rate: float, seconds: float,
                       run: Run) -> None:
    start = time.perf_counter()
    while (elapsed := time.perf_counter() - start) < seconds:
        due = int(rate * elapsed) - run.events
        if due > 0:
            batch = [(a, i, s, d, t, "") for a, i, s, d, t in (life.next() for _ in range(due))]
            app.call_from_thread(grid.update_many, batch)
            run.events += due
        time.sleep(BATCH_INTERVAL)
    run.produce_s = time.perf_counter() - start


async def _press_keys(app: App[Any], grid: BenchGrid, keys: list[str], stop: asyncio.Event, run: Run) -> int:
    driver = app._driver
    assert driver is not None
    pressed = 0
    for key in keys:
        if stop.is_set():
            break
        run.sent.append((pressed + 1, time.perf_counter()))  # every planned key moves once
        driver.send_message(events.Key(key, None))
        pressed += 1
        await asyncio.sleep(KEY_INTERVAL)
    return pressed


def _cache_coherent(grid: PullGrid) -> bool:
    """Every cached visible row equals a fresh render of the same row (cells part only; the
    rate text moves with the clock)."""
    grid.flush()
    tail = grid._tail_x
    for r in grid._visible_rows():
        cached = grid._row_cache.get(r)
        if cached is not None and cached.crop(0, tail).text != grid._row_strip(r).crop(0, tail).text:
            return False
    return True


async def run_mode(mode: str, *, agents: int, images: int, rate: float, seconds: float,
                   size: tuple[int, int]) -> dict[str, Any]:
    agent_names = [f"agent-{i:03d}.cluster.local" for i in range(agents)]
    image_names = [f"cr.backend.ai/stable/image-{j}:1.{j}-py38" for j in range(images)]
    app = GridBenchApp(agent_names, image_names)
    run = Run()
    cpu_start = time.process_time()
    life = Lifecycle(agent_names, image_names)
    async with app.run_test(size=size) as pilot:
        await pilot.pause()
        grid = app.query_one(BenchGrid)
        _hook_frames(app, grid, run)
        stop = asyncio.Event()
        lag_task = asyncio.create_task(_measure_lag(stop, run))
        keys = _key_plan(agents, images, int(seconds / KEY_INTERVAL) + 10)
        press_task = asyncio.create_task(_press_keys(app, grid, keys, stop, run))
        if mode == "thread":
            await asyncio.to_thread(_produce_in_thread, app, grid, life, rate, seconds, run)
        else:
            await _produce_in_loop(app, life, rate, seconds, run)
        stop.set()
        pressed = await press_task
        await asyncio.sleep(0.3)  # let the last key and the last flush reach a frame
        await pilot.pause()
        await lag_task
        snapshot = grid.snapshot()
        final_equal = (
            snapshot == {**{k: "queued" for k in snapshot}, **life.expected}
            and grid.counts() == {k: v for k, v in Counter(snapshot.values()).items() if v}
            and sorted(grid.failed_cells()) == sorted(k for k, v in life.expected.items() if v == "failed")
            and _cache_coherent(grid)
            and not run.sent
        )
        frames = len(run.frame_ms)
        cpu = time.process_time() - cpu_start
    return {
        "p95_ms": _pct(run.latencies, 0.95),
        "p50_ms": _pct(run.latencies, 0.50),
        "max_ms": max(run.latencies, default=float("nan")),
        "keys": pressed,
        "keys_shown": len(run.latencies),
        "events": run.events,
        "events_per_s": run.events / run.produce_s if run.produce_s else 0.0,
        "final_equal": final_equal,
        "frames": frames,
        "fps": frames / run.produce_s if run.produce_s else 0.0,
        "frame_write_p95_ms": _pct(run.frame_ms, 0.95),
        "lag_p95_ms": _pct(run.lags, 0.95),
        "lag_max_ms": max(run.lags, default=float("nan")),
        # CPU this process used (all threads) per wall second of producing: a low figure with
        # a high lag means the machine, not the grid, was the bottleneck.
        "cpu_pct": 100 * cpu / run.produce_s if run.produce_s else 0.0,
    }


def update_cost_us(agents: int, images: int, calls: int = 200_000) -> float:
    """Mean cost of one `update_cell` (unmounted grid: the call itself, no frame)."""
    grid = PullGrid()
    agent_names = [f"a{i}" for i in range(agents)]
    image_names = [f"i{j}" for j in range(images)]
    grid.set_matrix(agent_names, image_names)
    life = Lifecycle(agent_names, image_names, seed=7)
    updates = [life.next() for _ in range(calls)]
    update = grid.update_cell
    start = time.perf_counter()
    for a, i, s, d, t in updates:
        update(a, i, s, done=d, total=t)
    return (time.perf_counter() - start) / calls * 1e6


def _fmt(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return f"{value:.1f}" if value >= 10 or value != value else f"{value:.2f}"
    return str(value)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Run with defaults (how `python -m bench` calls it) or with command-line style `argv`."""
    parser = argparse.ArgumentParser(prog="python -m bench.grid", description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--rate", type=float, default=5000.0, help="progress events per second")
    parser.add_argument("--agents", type=int, default=300)
    parser.add_argument("--images", type=int, default=8)
    parser.add_argument("--size", default="160x48", help="terminal size WxH")
    parser.add_argument("--modes", default="messages,thread",
                        help="comma-separated: messages (event loop, one message per event), thread")
    args = parser.parse_args(argv or [])
    width, height = (int(v) for v in args.size.lower().split("x"))
    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    figures: dict[str, Any] = {"mode": modes[0], "agents": args.agents, "images": args.images,
                               "rate": int(args.rate), "seconds": args.seconds, "size": args.size,
                               "load1": os.getloadavg()[0], "cpus": os.cpu_count() or 0}
    for index, mode in enumerate(modes):
        result = asyncio.run(run_mode(mode, agents=args.agents, images=args.images, rate=args.rate,
                                      seconds=args.seconds, size=(width, height)))
        prefix = "" if index == 0 else f"{mode}_"
        figures.update({f"{prefix}{key}": value for key, value in result.items()})
    figures["update_us"] = update_cost_us(args.agents, args.images)
    print("grid " + " ".join(f"{key}={_fmt(value)}" for key, value in figures.items()), flush=True)
    return figures


if __name__ == "__main__":
    main(sys.argv[1:])
