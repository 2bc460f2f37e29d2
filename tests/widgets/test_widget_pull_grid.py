"""PullGrid: O(1) updates that never render by themselves, coalesced redraws, cursor, counts."""

from __future__ import annotations

import random
from collections import Counter

from widget_harness import MARKUP_BAIT, Harness, screen_lines, screen_text

from widgets.pull_grid import HEADER_LINES, PullGrid, human_rate
from widgets.throughput import Throughput


class FakeClock:
    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


AGENTS = [f"agent-{i:02d}" for i in range(30)]
IMAGES = ["cr.backend.ai/stable/python:3.9", "cr.backend.ai/stable/pytorch:1.8", "cr.backend.ai/x/[etcd]:1"]


def grid_app(clock: FakeClock | None = None, *, agents: list[str] = AGENTS) -> Harness:
    def setup(app: Harness) -> None:
        grid = app.query_one(PullGrid)
        grid.set_matrix(agents, IMAGES, labels={IMAGES[0]: "python", IMAGES[1]: "torch"})
        grid.focus()

    # refresh_rate tiny: the tests drive flush() themselves, so redraws happen exactly when asked
    return Harness(lambda: [PullGrid(id="grid", clock=clock or FakeClock(), refresh_rate=0.001)], setup)


async def test_update_cell_records_state_and_counts_without_rendering() -> None:
    app = grid_app()
    async with app.run_test(size=(100, 20)) as pilot:
        grid = app.query_one(PullGrid)
        await pilot.pause()
        before = screen_text(app)
        grid.update_cell("agent-00", IMAGES[0], "failed", message="manifest unknown")
        grid.update_cell("agent-01", IMAGES[1], "pulling", done=42, total=100)
        grid.update_cell("agent-02", IMAGES[2], "done")
        await pilot.pause()
        assert screen_text(app) == before, "update_cell must not render by itself"
        assert grid.cell("agent-01", IMAGES[1]) == ("pulling", 42, 100, "")
        assert grid.counts() == {"queued": len(AGENTS) * 3 - 3, "failed": 1, "pulling": 1, "done": 1}
        assert grid.failed_cells() == [("agent-00", IMAGES[0])]
        grid.flush()
        await pilot.pause()
        lines = screen_lines(app)
        row0 = next(line for line in lines if line.startswith("agent-00"))
        row1 = next(line for line in lines if line.startswith("agent-01"))
        assert "✗" in row0 and "42%" in row1
        assert "✗ 1 failed" in screen_text(app)


async def test_states_show_their_glyphs_and_labels_are_not_markup() -> None:
    app = grid_app()
    async with app.run_test(size=(100, 20)) as pilot:
        grid = app.query_one(PullGrid)
        for state, image in zip(("queued", "done", "skipped"), IMAGES, strict=True):
            grid.update_cell("agent-03", image, state)
        grid.update_cell("agent-04", IMAGES[0], "extracting", done=1, total=2)
        grid.update_cell("agent-04", IMAGES[1], "removed")
        grid.update_cell("agent-04", IMAGES[2], "kept")
        grid.flush()
        await pilot.pause()
        lines = screen_lines(app)
        assert "[etcd]:1" in lines[0], "column label rendered literally"
        row3 = next(line for line in lines if line.startswith("agent-03"))
        row4 = next(line for line in lines if line.startswith("agent-04"))
        assert ["·", "✓", "–"] == [ch for ch in row3 if ch in "·✓–"]
        assert "⋯ 50%" in row4 and "✓" in row4 and "●" in row4


async def test_agent_names_and_messages_are_not_markup() -> None:
    agents = [MARKUP_BAIT, "plain"]
    app = grid_app(agents=agents)
    async with app.run_test(size=(120, 12)) as pilot:
        grid = app.query_one(PullGrid)
        grid.update_cell(MARKUP_BAIT, IMAGES[0], "failed", message="denied: [red]no[/]")
        grid.flush()
        await pilot.pause()
        text = screen_text(app)
        assert "[bold]db1[/] [etcd]" in text
        assert "failed — denied: [red]no[/]" in text  # detail line of the cursor cell (0, 0)


async def test_cursor_moves_with_keys_scrolls_and_posts_cell_highlighted() -> None:
    app = grid_app()
    async with app.run_test(size=(100, 12), message_hook=lambda m: app.record(m)) as pilot:
        grid = app.query_one(PullGrid)
        grid.update_cell("agent-01", IMAGES[1], "failed", message="boom")
        await pilot.press("down", "right")
        assert (grid.cursor_row, grid.cursor_col) == (1, 1)
        highlighted = app.of_type(PullGrid.CellHighlighted)
        assert highlighted[-1].agent == "agent-01" and highlighted[-1].image == IMAGES[1]
        assert highlighted[-1].state == "failed" and highlighted[-1].message == "boom"
        await pilot.press("end")
        assert grid.cursor_cell == (AGENTS[-1], IMAGES[1])
        await pilot.pause()
        assert grid.scroll_offset.y > 0, "cursor at the last agent is scrolled into view"
        assert any(line.startswith(AGENTS[-1]) for line in screen_lines(app))
        await pilot.press("home", "left", "left", "up")
        assert (grid.cursor_row, grid.cursor_col) == (0, 0), "cursor is clamped at the edges"
        await pilot.press("pagedown")
        assert grid.cursor_row == grid._rows_height - 1
        await pilot.press("enter")
        assert app.of_type(PullGrid.CellSelected)[-1].agent == AGENTS[grid.cursor_row]


async def test_next_failed_jumps_between_failures_and_wraps() -> None:
    app = grid_app()
    async with app.run_test(size=(100, 12)) as pilot:
        grid = app.query_one(PullGrid)
        grid.update_cell("agent-05", IMAGES[2], "failed")
        grid.update_cell("agent-20", IMAGES[0], "failed")
        await pilot.press("f")
        assert grid.cursor_cell == ("agent-05", IMAGES[2])
        await pilot.press("f")
        assert grid.cursor_cell == ("agent-20", IMAGES[0])
        await pilot.press("f")
        assert grid.cursor_cell == ("agent-05", IMAGES[2]), "wraps around"
        await pilot.press("F")
        assert grid.cursor_cell == ("agent-20", IMAGES[0])
        grid.update_cell("agent-05", IMAGES[2], "pulling", done=1, total=10)
        assert grid.failed_cells() == [("agent-20", IMAGES[0])], "a retried cell is no longer failed"


async def test_burst_ends_equal_to_final_state_on_model_and_screen() -> None:
    """Thousands of updates between two ticks: the model equals the last update per cell,
    counts equal the model, and what is on screen equals a fresh render of the final state."""
    agents = [f"a{i:03d}" for i in range(300)]
    images = [f"img{j}" for j in range(8)]
    states = ["queued", "pulling", "extracting", "done", "failed", "skipped"]
    rng = random.Random(3)
    clock = FakeClock()

    def setup(app: Harness) -> None:
        app.query_one(PullGrid).set_matrix(agents, images)

    app = Harness(lambda: [PullGrid(clock=clock, refresh_rate=0.001)], setup)
    async with app.run_test(size=(160, 48)) as pilot:
        grid = app.query_one(PullGrid)
        expected = {(a, i): "queued" for a in agents for i in images}
        for n in range(20_000):
            a, i = rng.choice(agents), rng.choice(images)
            state = rng.choice(states)
            grid.update_cell(a, i, state, done=n, total=20_000)
            expected[(a, i)] = state
            if n % 5000 == 0:
                clock.now += 0.1
                grid.flush()
                await pilot.pause()
        clock.now += 0.1
        grid.flush()
        await pilot.pause()
        assert grid.snapshot() == expected
        assert grid.counts() == dict(Counter(expected.values()))
        assert grid.failed_cells() == sorted((a, i) for (a, i), s in expected.items() if s == "failed")
        shown = screen_lines(app)
        grid._row_cache.clear()  # drop every cached strip: a fresh render must look the same
        grid.refresh()
        await pilot.pause()
        assert screen_lines(app) == shown


async def test_only_visible_dirty_rows_are_rendered() -> None:
    app = grid_app()
    async with app.run_test(size=(100, 12)) as pilot:
        grid = app.query_one(PullGrid)
        await pilot.pause()
        rendered: list[int] = []
        original = grid._row_strip

        def spy(r: int):  # type: ignore[no-untyped-def]
            rendered.append(r)
            return original(r)

        grid._row_strip = spy  # type: ignore[method-assign]
        grid.update_cell("agent-02", IMAGES[0], "done")
        grid.update_cell("agent-29", IMAGES[0], "done")  # off screen at 12 lines
        grid.flush()
        await pilot.pause()
        assert rendered == [2]
        assert 29 not in grid._row_cache


async def test_throughput_per_agent_and_total_from_done_deltas() -> None:
    clock = FakeClock()
    app = grid_app(clock)
    async with app.run_test(size=(100, 12)) as pilot:
        grid = app.query_one(PullGrid)
        grid.update_cell("agent-00", IMAGES[0], "pulling", done=0, total=10_000_000)
        grid.flush()
        for step in range(1, 11):  # 1 MB per 0.1 s on agent-00: 10 MB/s
            clock.now += 0.1
            grid.update_cell("agent-00", IMAGES[0], "pulling", done=step * 1_000_000, total=10_000_000)
            grid.update_cell("agent-01", IMAGES[0], "pulling", done=step * 500_000, total=10_000_000)
            grid.flush()
        assert abs(grid.agent_rate("agent-00") - 10_000_000) < 1_000_000
        assert abs(grid.agent_rate("agent-01") - 5_000_000) < 600_000
        assert abs(grid.total_rate() - 15_000_000) < 1_500_000
        await pilot.pause()
        text = screen_text(app)
        assert "10.0 MB/s" in text and "total 15.0 MB/s" in text
        clock.now += 5  # idle longer than the window: rates fall to zero
        grid.flush()
        assert grid.total_rate() == 0 and grid.agent_rate("agent-00") == 0


async def test_unknown_cells_are_ignored_and_counted() -> None:
    app = grid_app()
    async with app.run_test(size=(100, 12)):
        grid = app.query_one(PullGrid)
        grid.update_cell("nobody", IMAGES[0], "done")
        grid.update_cell("agent-00", "no-such-image", "done")
        assert grid.unknown_updates == 2
        assert "done" not in grid.counts()


async def test_set_matrix_again_keeps_known_cells() -> None:
    app = grid_app()
    async with app.run_test(size=(100, 12)):
        grid = app.query_one(PullGrid)
        grid.update_cell("agent-00", IMAGES[0], "done")
        grid.set_matrix(["agent-00", "new-agent"], IMAGES)
        assert grid.cell("agent-00", IMAGES[0])[0] == "done"
        assert grid.cell("new-agent", IMAGES[0])[0] == "queued"
        assert grid.counts() == {"done": 1, "queued": 5}


async def test_header_and_agent_column_stay_while_scrolling_sideways() -> None:
    images = [f"registry.example/team/image-{j}:tag" for j in range(8)]

    def setup(app: Harness) -> None:
        app.query_one(PullGrid).set_matrix(AGENTS, images)
        app.query_one(PullGrid).focus()

    app = Harness(lambda: [PullGrid(clock=FakeClock(), refresh_rate=0.001)], setup)
    async with app.run_test(size=(60, 14)) as pilot:
        grid = app.query_one(PullGrid)
        for _ in range(7):
            await pilot.press("right")
        await pilot.pause()
        assert grid.scroll_offset.x > 0
        lines = screen_lines(app)
        assert lines[0].startswith("agent")
        assert lines[HEADER_LINES].startswith("agent-00")
        assert "image-7" in lines[0]


def test_human_rate_and_throughput_window() -> None:
    assert human_rate(0) == "0 B/s"
    assert human_rate(1_500) == "1.5 kB/s"
    assert human_rate(12_340_000) == "12.3 MB/s"
    tp = Throughput(window=1.0)
    tp.tick(0.0)
    tp.add(1, 100)
    tp.tick(0.5)
    assert tp.rate(1, 0.5) == 200.0  # active for 0.5 s so far
    tp.tick(2.0)
    assert tp.rate(1, 2.0) == 0.0 and tp.total_rate(2.0) == 0.0


async def test_theme_change_recolours_cells_from_theme_variables() -> None:
    app = grid_app()
    async with app.run_test(size=(100, 12)) as pilot:
        grid = app.query_one(PullGrid)
        grid.update_cell("agent-01", IMAGES[0], "failed")
        grid.flush()
        await pilot.pause()

        def failed_colour() -> str:
            strip = grid.render_line(HEADER_LINES + 1)
            segment = next(s for s in strip if "✗" in s.text)
            assert segment.style is not None and segment.style.color is not None
            return segment.style.color.get_truecolor().hex.upper()

        assert failed_colour() == app.theme_variables["text-error"].upper()
        app.theme = "textual-light"
        await pilot.pause()
        assert failed_colour() == app.theme_variables["text-error"].upper()
        assert app.theme_variables["text-error"].upper() != "#D17E92"  # it did change with the theme


async def test_empty_matrix_renders_and_ignores_keys() -> None:
    app = Harness(lambda: [PullGrid(clock=FakeClock(), refresh_rate=0.001)])
    async with app.run_test(size=(60, 8)) as pilot:
        grid = app.query_one(PullGrid)
        grid.set_matrix([], [])
        grid.focus()
        await pilot.press("down", "right", "f", "enter")
        grid.flush()
        await pilot.pause()
        assert grid.cursor_cell is None and grid.counts() == {} and grid.snapshot() == {}
        assert "no agents" in screen_text(app)
