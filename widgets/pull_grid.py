"""Agents x images: the live state of every pull (pre-pull) or removal (agent cleanup).

Why it is built this way (300 agents x 8 images fed 5,000 updates/s must stay responsive):

- `update_cell` only writes into a preallocated cell and marks its row dirty: O(1), no
  refresh, no message. Thousands of calls per second cost microseconds each.
- A timer (10 Hz by default) turns dirty rows into screen refreshes, and only for rows that
  are visible. Off-screen dirty rows just drop their cached strip and are rebuilt if scrolled to.
- Rendering is the Line API (`ScrollView.render_line`): each agent row is one cached `Strip`
  (full virtual width); a scroll re-crops cached strips, a key press rebuilds at most two rows.
- The header (image labels), the agent column and the two summary lines stay put while the
  matrix scrolls, so the operator never loses which agent/image a cell belongs to.
- Throughput is download bytes/s from `done` deltas of `pulling` cells, kept in per-tick
  buckets over a sliding window (3 s): O(1) per update, O(buckets) per tick. The clock is
  injectable so snapshots are deterministic.

Colours are component classes resolved from theme variables (`$text-success`...), like
DataTable's: the Line API paints Rich segments, and CSS is what maps the theme onto them.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Iterable

from rich.cells import cell_len
from rich.segment import Segment
from rich.style import Style
from textual import events
from textual.binding import Binding
from textual.geometry import Region, Size
from textual.message import Message
from textual.scroll_view import ScrollView
from textual.strip import Strip

from widgets._style import ellipsize
from widgets.throughput import Throughput

ACTIVE_STATES = frozenset({"pulling", "extracting", "removing"})
FINISHED_STATES = frozenset({"done", "failed", "skipped", "removed", "kept"})
STATE_ORDER: tuple[str, ...] = (
    "failed", "pulling", "extracting", "removing", "queued", "done", "removed", "kept", "skipped",
)
"""Order of the per-state counts in the summary line: what needs attention first, because a
narrow terminal crops the end of the line."""

GLYPHS: dict[str, str] = {
    "queued": "·", "pulling": "", "extracting": "⋯", "removing": "⋯", "done": "✓",
    "failed": "✗", "skipped": "–", "removed": "✓", "kept": "●",
}
"""Cell glyph per state (docs/tui-contract.md). `·`, `–` and `●` are East-Asian "ambiguous"
width: one cell everywhere except CJK-locale terminals set to wide-ambiguous."""

HEADER_LINES = 1
FOOTER_LINES = 2
RATE_WIDTH = 10
MIN_CELL = 5
MAX_CELL = 11
MAX_AGENT = 24


def human_rate(bytes_per_s: float) -> str:
    """`12.3 MB/s`: decimal units, as `docker pull` prints them."""
    value = float(bytes_per_s)
    for unit in ("B/s", "kB/s", "MB/s", "GB/s"):
        if value < 999.5 or unit == "GB/s":
            return f"{value:.0f} {unit}" if unit == "B/s" else f"{value:.1f} {unit}"
        value /= 1000
    return f"{value:.1f} GB/s"  # pragma: no cover - loop always returns


def human_bytes(n: int) -> str:
    value = float(n)
    for unit in ("B", "kB", "MB", "GB"):
        if value < 999.5 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    return f"{value:.1f} TB"  # pragma: no cover


class _Cell:
    __slots__ = ("done", "message", "state", "total")

    def __init__(self, state: str = "queued") -> None:
        self.state = state
        self.done = 0
        self.total = 0
        self.message = ""


class PullGrid(ScrollView, can_focus=True, inherit_bindings=False):
    """The live matrix. Feed it with `update_cell`; it redraws itself on its own timer."""

    DEFAULT_CSS = """
    PullGrid {
        height: 1fr;
        overflow: auto auto;
        scrollbar-size: 1 1;
    }
    PullGrid > .pull-grid--header { text-style: bold; color: $text-muted; }
    PullGrid > .pull-grid--header-cursor { text-style: bold underline; color: $text-primary; }
    PullGrid > .pull-grid--agent { }
    PullGrid > .pull-grid--agent-cursor { text-style: bold; color: $text-primary; }
    PullGrid > .pull-grid--queued { color: $text-muted; }
    PullGrid > .pull-grid--pulling { color: $text-primary; }
    PullGrid > .pull-grid--extracting { color: $text-primary; }
    PullGrid > .pull-grid--removing { color: $text-primary; }
    PullGrid > .pull-grid--done { color: $text-success; }
    PullGrid > .pull-grid--removed { color: $text-success; }
    PullGrid > .pull-grid--kept { color: $text-warning; }
    PullGrid > .pull-grid--failed { color: $text-error; text-style: bold; }
    PullGrid > .pull-grid--skipped { color: $text-muted; }
    PullGrid > .pull-grid--unknown { color: $text-muted; text-style: italic; }
    PullGrid > .pull-grid--bar { background: $primary-muted; }
    PullGrid > .pull-grid--cursor { background: $block-cursor-background; color: $block-cursor-foreground; text-style: bold; }
    PullGrid > .pull-grid--cursor-blurred { background: $block-cursor-blurred-background; text-style: bold; }
    PullGrid > .pull-grid--rate { color: $text-muted; }
    PullGrid > .pull-grid--footer { background: $panel; }
    PullGrid > .pull-grid--label { color: $text-muted; }
    PullGrid > .pull-grid--error-text { color: $text-error; }
    """

    COMPONENT_CLASSES = {
        "pull-grid--header", "pull-grid--header-cursor", "pull-grid--agent", "pull-grid--agent-cursor",
        "pull-grid--queued", "pull-grid--pulling", "pull-grid--extracting", "pull-grid--removing",
        "pull-grid--done", "pull-grid--removed", "pull-grid--kept", "pull-grid--failed",
        "pull-grid--skipped", "pull-grid--unknown", "pull-grid--bar", "pull-grid--cursor",
        "pull-grid--cursor-blurred", "pull-grid--rate", "pull-grid--footer", "pull-grid--label",
        "pull-grid--error-text",
    }

    BINDINGS = [
        Binding("up", "cursor(-1, 0)", "Up", show=False),
        Binding("down", "cursor(1, 0)", "Down", show=False),
        Binding("left", "cursor(0, -1)", "Left", show=False),
        Binding("right", "cursor(0, 1)", "Right", show=False),
        Binding("pageup", "page(-1)", "Page up", show=False),
        Binding("pagedown", "page(1)", "Page down", show=False),
        Binding("home", "edge(-1)", "First agent", show=False),
        Binding("end", "edge(1)", "Last agent", show=False),
        Binding("f", "next_failed(1)", "Next failure", tooltip="Jump to the next failed cell"),
        Binding("F", "next_failed(-1)", "Previous failure", show=False),
        Binding("enter", "select", "Select cell", show=False),
    ]

    class CellHighlighted(Message):
        """The cursor moved to (agent, image); `message` is the cell's last message (its error)."""

        def __init__(self, grid: PullGrid, agent: str, image: str, state: str, message: str) -> None:
            super().__init__()
            self.grid = grid
            self.agent = agent
            self.image = image
            self.state = state
            self.message = message

        @property
        def control(self) -> PullGrid:
            return self.grid

    class CellSelected(CellHighlighted):
        """Enter on a cell (e.g. the screen offers to retry it)."""

    def __init__(
        self,
        *,
        refresh_rate: float = 10.0,
        window: float = 3.0,
        clock: Callable[[], float] = time.monotonic,
        name: str | None = None,
        id: str | None = None,
        classes: str | None = None,
    ) -> None:
        super().__init__(name=name, id=id, classes=classes)
        self.refresh_rate = refresh_rate
        self._clock = clock
        self._tp = Throughput(window)
        self._agents: list[str] = []
        self._images: list[str] = []
        self._labels: list[str] = []
        self._agent_index: dict[str, int] = {}
        self._image_index: dict[str, int] = {}
        self._cells: list[list[_Cell]] = []
        self._counts: Counter[str] = Counter()
        self._failed: set[tuple[int, int]] = set()
        self._finished: list[int] = []
        self._dirty_rows: set[int] = set()
        self._footer_dirty = True
        self._row_cache: dict[int, Strip] = {}
        self._row_rate: dict[int, str] = {}
        self._header_cache: Strip | None = None
        self._footer_cache: tuple[int, list[Strip]] | None = None
        self._footer_rate = ""
        self._palette: dict[str, Style] | None = None
        self._agent_w = 8
        self._cell_w: list[int] = []
        self._cell_x: list[int] = []
        self._tail_x = 0
        self._done_w = 3
        self.cursor_row = 0
        self.cursor_col = 0
        self.unknown_updates = 0
        """update_cell calls for an agent or image not in the matrix (ignored, counted)."""

    # -- data ----------------------------------------------------------------------------------

    def set_matrix(self, agents: list[str], images: list[str], *, labels: dict[str, str] | None = None) -> None:
        """(Re)define the matrix. States of (agent, image) pairs that were already there are
        kept, so a resumed run can re-declare the matrix without losing progress."""
        labels = labels or {}
        old = {
            (a, i): self._cells[r][c]
            for a, r in self._agent_index.items()
            for i, c in self._image_index.items()
        }
        cursor = self.cursor_cell
        self._agents = list(agents)
        self._images = list(images)
        self._labels = [labels.get(i) or self.short_label(i) for i in self._images]
        self._agent_index = {a: r for r, a in enumerate(self._agents)}
        self._image_index = {i: c for c, i in enumerate(self._images)}
        self._cells = [[old.get((a, i)) or _Cell() for i in self._images] for a in self._agents]
        self._counts = Counter(cell.state for row in self._cells for cell in row)
        self._failed = {(r, c) for r, row in enumerate(self._cells) for c, cell in enumerate(row)
                        if cell.state == "failed"}
        self._finished = [sum(1 for cell in row if cell.state in FINISHED_STATES) for row in self._cells]
        self._tp.clear()
        self._layout_columns()
        if cursor is not None and cursor[0] in self._agent_index and cursor[1] in self._image_index:
            self.cursor_row, self.cursor_col = self._agent_index[cursor[0]], self._image_index[cursor[1]]
        else:
            self.cursor_row = self.cursor_col = 0
        self._invalidate_all()

    @staticmethod
    def short_label(image: str) -> str:
        """`cr.backend.ai/stable/python:3.9-ubuntu` -> `python:3.9-ubuntu`: the repository's last
        path component and tag, which is what differs between columns."""
        return image.rsplit("/", 1)[-1] or image

    def update_cell(self, agent: str, image: str, state: str, *, done: int = 0, total: int = 0,
                    message: str = "") -> None:
        """Record one progress event. O(1), never renders: the timer redraws dirty rows.

        Call it on the event loop (from a thread: `app.call_from_thread(grid.update_many, batch)`).
        An agent or image that is not in the matrix is ignored and counted in `unknown_updates`,
        so a stray engine event cannot take the wizard down mid-pull.
        """
        r = self._agent_index.get(agent)
        c = self._image_index.get(image)
        if r is None or c is None:
            self.unknown_updates += 1
            return
        cell = self._cells[r][c]
        old = cell.state
        if old != state:
            counts = self._counts
            counts[old] -= 1
            counts[state] += 1
            if old == "failed":
                self._failed.discard((r, c))
            elif state == "failed":
                self._failed.add((r, c))
            finished_delta = (state in FINISHED_STATES) - (old in FINISHED_STATES)
            if finished_delta:
                self._finished[r] += finished_delta
        if state == "pulling":
            # Bytes downloaded since the previous event of this pull; a (re)start counts from 0.
            previous = cell.done if old == "pulling" else 0
            if done > previous:
                self._tp.add(r, done - previous)
        cell.state = state
        cell.done = done
        cell.total = total
        cell.message = message
        self._dirty_rows.add(r)
        self._footer_dirty = True

    def update_many(self, updates: Iterable[tuple[str, str, str, int, int, str]]) -> None:
        """Many `(agent, image, state, done, total, message)` at once: one call per batch is
        what a thread should hand to `App.call_from_thread` (which blocks per call)."""
        update = self.update_cell
        for agent, image, state, done, total, message in updates:
            update(agent, image, state, done=done, total=total, message=message)

    def cell(self, agent: str, image: str) -> tuple[str, int, int, str]:
        """(state, done, total, message) of one cell."""
        cell = self._cells[self._agent_index[agent]][self._image_index[image]]
        return cell.state, cell.done, cell.total, cell.message

    def failed_cells(self) -> list[tuple[str, str]]:
        """Failed (agent, image) pairs in grid order (what a "retry failed" button needs)."""
        return [(self._agents[r], self._images[c]) for r, c in sorted(self._failed)]

    def counts(self) -> dict[str, int]:
        """Cells per state (states with at least one cell)."""
        return {state: n for state, n in self._counts.items() if n > 0}

    def snapshot(self) -> dict[tuple[str, str], str]:
        return {
            (agent, image): self._cells[r][c].state
            for r, agent in enumerate(self._agents)
            for c, image in enumerate(self._images)
        }

    @property
    def agents(self) -> list[str]:
        return list(self._agents)

    @property
    def images(self) -> list[str]:
        return list(self._images)

    @property
    def cursor_cell(self) -> tuple[str, str] | None:
        if not self._agents or not self._images:
            return None
        return self._agents[self.cursor_row], self._images[self.cursor_col]

    def agent_rate(self, agent: str) -> float:
        return self._tp.rate(self._agent_index[agent], self._clock())

    def total_rate(self) -> float:
        return self._tp.total_rate(self._clock())

    # -- geometry ------------------------------------------------------------------------------

    def _layout_columns(self) -> None:
        self._agent_w = min(max([cell_len(a) for a in self._agents] + [5]), MAX_AGENT) + 1
        self._cell_w = [min(max(cell_len(label), MIN_CELL), MAX_CELL) for label in self._labels]
        x = self._agent_w
        self._cell_x = []
        for w in self._cell_w:
            self._cell_x.append(x)
            x += w + 1
        self._tail_x = x
        n = len(self._images)
        self._done_w = max(len(f"{n}/{n}"), 4)
        width = x + self._done_w + 1 + RATE_WIDTH
        self.virtual_size = Size(width, len(self._agents) + HEADER_LINES + FOOTER_LINES)

    @property
    def _view(self) -> Size:
        return self.scrollable_content_region.size

    @property
    def _rows_height(self) -> int:
        return max(0, self._view.height - HEADER_LINES - FOOTER_LINES)

    def _visible_rows(self) -> range:
        first = int(self.scroll_offset.y)
        return range(first, min(len(self._agents), first + self._rows_height))

    # -- styles and caches ---------------------------------------------------------------------

    def _styles(self) -> dict[str, Style]:
        if self._palette is None:
            # Full component styles: partial ones drop alpha ($text-muted would come out white).
            get = self.get_component_rich_style
            self._palette = {name.removeprefix("pull-grid--"): get(name) for name in self.COMPONENT_CLASSES}
            self._palette["bar"] = Style(bgcolor=self._palette["bar"].bgcolor)
            self._palette["base"] = self.rich_style
        return self._palette

    def _invalidate_all(self) -> None:
        self._row_cache.clear()
        self._row_rate.clear()
        self._header_cache = None
        self._footer_cache = None
        self._palette = None
        self._footer_dirty = True
        self._dirty_rows.clear()
        if self.is_mounted:
            self.refresh()

    def notify_style_update(self) -> None:
        super().notify_style_update()
        self._invalidate_all()

    def _on_focus(self, event: events.Focus) -> None:
        self._refresh_cursor_rows(self.cursor_row)

    def _on_blur(self, event: events.Blur) -> None:
        self._refresh_cursor_rows(self.cursor_row)

    def _on_resize(self, event: events.Resize) -> None:
        self._footer_cache = None
        self._scroll_cursor_into_view()

    def on_mount(self) -> None:
        self.set_interval(1 / self.refresh_rate, self.flush, name="pull-grid-flush")

    # -- the coalescing tick ---------------------------------------------------------------------

    def flush(self) -> None:
        """Redraw what changed since the last tick: dirty visible rows, rows whose rate text
        changed, the summary. Called by the timer; call it directly to force a redraw."""
        now = self._clock()
        self._tp.tick(now)
        dirty = self._dirty_rows
        cache = self._row_cache
        for r in dirty:
            cache.pop(r, None)
        visible = self._visible_rows()
        lo = hi = -1
        for r in visible:
            changed = r in dirty
            if not changed and r in cache and self._row_rate.get(r) != self._rate_text(r, now):
                del cache[r]
                changed = True
            if changed:
                if lo < 0:
                    lo = r
                hi = r
        dirty.clear()
        width = self._view.width
        if lo >= 0:
            top = visible.start
            self.refresh(Region(0, HEADER_LINES + lo - top, width, hi - lo + 1))
        total = self._total_rate_text(now)
        if self._footer_dirty or total != self._footer_rate:
            self._footer_dirty = False
            self._footer_cache = None
            self._refresh_footer()

    def _refresh_footer(self) -> None:
        view = self._view
        self.refresh(Region(0, max(0, view.height - FOOTER_LINES), view.width, FOOTER_LINES))

    def _rate_text(self, r: int, now: float) -> str:
        rate = self._tp.rate(r, now)
        return human_rate(rate) if rate > 0 else ""

    def _total_rate_text(self, now: float) -> str:
        rate = self._tp.total_rate(now)
        return human_rate(rate) if rate > 0 else "—"

    # -- rendering -------------------------------------------------------------------------------

    def render_line(self, y: int) -> Strip:
        view = self._view
        width = view.width
        base = self._styles()["base"]
        if y >= view.height:
            return Strip.blank(self.size.width, base)  # under the horizontal scrollbar
        if y < HEADER_LINES:
            return self._hcrop(self._header_strip(), width, base)
        if y >= view.height - FOOTER_LINES:
            return self._footer_strips(width)[y - (view.height - FOOTER_LINES)]
        r = int(self.scroll_offset.y) + y - HEADER_LINES
        if not 0 <= r < len(self._agents):
            return Strip.blank(width, base)
        strip = self._row_cache.get(r)
        if strip is None:
            strip = self._row_cache[r] = self._row_strip(r)
        return self._hcrop(strip, width, base)

    def _hcrop(self, strip: Strip, width: int, base: Style) -> Strip:
        """Crop to the viewport keeping the agent column fixed while the cells scroll."""
        sx = int(self.scroll_offset.x)
        if sx <= 0:
            return strip.crop_extend(0, width, base)
        aw = self._agent_w
        if width <= aw:
            return strip.crop_extend(0, width, base)
        return Strip.join([strip.crop(0, aw), strip.crop_extend(aw + sx, sx + width, base)])

    def _cell_text(self, cell: _Cell, width: int) -> tuple[str, int]:
        """Text of a cell, centred in `width`, and how many leading cells the progress bar fills."""
        state = cell.state
        fill = 0
        if state == "pulling" or (state in ACTIVE_STATES and cell.total):
            pct = min(100, cell.done * 100 // cell.total) if cell.total > 0 else 0
            text = f"{pct}%" if state == "pulling" else (f"⋯{pct:>3}%" if width >= 6 else "⋯")
            fill = (width * pct) // 100
        else:
            text = GLYPHS.get(state) or ellipsize(state, width)
        pad = width - cell_len(text)
        left = pad // 2
        return " " * left + text + " " * (pad - left), fill

    def _row_strip(self, r: int) -> Strip:
        styles = self._styles()
        base = styles["base"]
        is_cursor_row = r == self.cursor_row
        cursor_style = styles["cursor" if self.has_focus else "cursor-blurred"]
        agent = ellipsize(self._agents[r], self._agent_w - 1)
        segments = [
            Segment(agent.ljust(self._agent_w - 1), styles["agent-cursor" if is_cursor_row else "agent"]),
            Segment(" ", base),
        ]
        append = segments.append
        bar = styles["bar"]
        for c, (cell, width) in enumerate(zip(self._cells[r], self._cell_w, strict=True)):
            text, fill = self._cell_text(cell, width)
            style = styles.get(cell.state) or styles["unknown"]
            if is_cursor_row and c == self.cursor_col:
                append(Segment(text, cursor_style))
            elif fill:
                append(Segment(text[:fill], style + bar))
                append(Segment(text[fill:], style))
            else:
                append(Segment(text, style))
            append(Segment(" ", base))
        n = len(self._images)
        finished = f"{self._finished[r]}/{n}".rjust(self._done_w)
        rate = self._rate_text(r, self._clock())
        self._row_rate[r] = rate
        finished_style = styles["done"] if self._finished[r] == n else styles["rate"]
        segments += [Segment(finished, finished_style), Segment(" ", base),
                     Segment(rate.rjust(RATE_WIDTH), styles["rate"])]
        return Strip(segments, self.virtual_size.width)

    def _header_strip(self) -> Strip:
        if self._header_cache is None:
            styles = self._styles()
            base = styles["base"]
            segments = [Segment("agent".ljust(self._agent_w), styles["header"])]
            for c, (label, width) in enumerate(zip(self._labels, self._cell_w, strict=True)):
                text = ellipsize(label, width).center(width)
                segments.append(Segment(text, styles["header-cursor" if c == self.cursor_col else "header"]))
                segments.append(Segment(" ", base))
            segments += [Segment("done".rjust(self._done_w), styles["header"]), Segment(" ", base),
                         Segment("rate".rjust(RATE_WIDTH), styles["header"])]
            self._header_cache = Strip(segments, self.virtual_size.width)
        return self._header_cache

    def _footer_strips(self, width: int) -> list[Strip]:
        if self._footer_cache is not None and self._footer_cache[0] == width:
            return self._footer_cache[1]
        styles = self._styles()
        footer = styles["footer"]
        label = styles["label"] + footer.background_style
        now = self._clock()
        self._footer_rate = total = self._total_rate_text(now)
        right = Strip([Segment(" total ", label), Segment(total, footer + Style(bold=True))])
        room = width - right.cell_length
        parts: list[Segment] = []
        used = 0
        states = list(STATE_ORDER) + sorted(set(self._counts) - set(STATE_ORDER))
        for state in states:
            n = self._counts.get(state, 0)
            if n or state == "failed":
                glyph = GLYPHS.get(state) or "↓"
                text = f"{glyph} {n:,} {state}"
                if used + len(text) > room:
                    break  # whole items only: "✓ 64 do" would read as a different word
                style = (styles.get(state) or styles["unknown"]) if n else styles["label"]
                parts += [Segment(text, style + footer.background_style), Segment("  ", footer)]
                used += len(text) + 2
        summary = Strip(parts).crop_extend(0, max(0, room), footer)
        line1 = Strip.join([summary, right])
        line1 = line1.crop_extend(0, width, footer)
        line2 = self._detail_strip(width, styles)
        strips = [line1, line2]
        self._footer_cache = (width, strips)
        return strips

    def _detail_strip(self, width: int, styles: dict[str, Style]) -> Strip:
        """The highlighted cell in full: agent, image (not the short label), state, bytes and
        the last message, which for a failed pull is the error the operator needs."""
        footer = styles["footer"]
        label = styles["label"] + footer.background_style
        if not self._agents or not self._images:
            return Strip([Segment("no agents", label)]).crop_extend(0, width, footer)
        cell = self._cells[self.cursor_row][self.cursor_col]
        state_style = (styles.get(cell.state) or styles["unknown"]) + footer.background_style
        segments = [
            Segment(self._agents[self.cursor_row], footer + Style(bold=True)),
            Segment(" · ", label),
            Segment(cell.state, state_style),
        ]
        if cell.total and cell.state in ACTIVE_STATES:
            pct = min(100, cell.done * 100 // cell.total)
            segments.append(Segment(f" {pct}% ({human_bytes(cell.done)} of {human_bytes(cell.total)})", footer))
        elif cell.total and cell.state != "failed":
            segments.append(Segment(f" ({human_bytes(cell.total)})", footer))
        message = [Segment(" — ", label), Segment(" ".join(cell.message.split()),
                   styles["error-text"] + footer.background_style if cell.state == "failed" else footer)]
        image = [Segment(" · ", label), Segment(self._images[self.cursor_col], footer)]
        # A failure's error is what the operator came for; at 80 columns it must not be the
        # part that gets cropped, so it goes before the (long) image reference.
        if cell.message and cell.state == "failed":
            segments += message + image
        elif cell.message:
            segments += image + message
        else:
            segments += image
        return Strip(segments).crop_extend(0, width, footer)

    # -- cursor ----------------------------------------------------------------------------------

    def _refresh_cursor_rows(self, *rows: int) -> None:
        for r in rows:
            self._row_cache.pop(r, None)
        self._header_cache = None
        self._footer_cache = None
        if not self.is_mounted:
            return
        width = self._view.width
        top = int(self.scroll_offset.y)
        regions = [Region(0, 0, width, HEADER_LINES)]
        for r in rows:
            y = HEADER_LINES + r - top
            if HEADER_LINES <= y < HEADER_LINES + self._rows_height:
                regions.append(Region(0, y, width, 1))
        self.refresh(*regions)
        self._refresh_footer()

    def move_cursor(self, row: int, col: int) -> None:
        """Put the cursor on (row, col), scroll it into view, post CellHighlighted."""
        if not self._agents or not self._images:
            return
        row = max(0, min(row, len(self._agents) - 1))
        col = max(0, min(col, len(self._images) - 1))
        if (row, col) == (self.cursor_row, self.cursor_col):
            return
        old = self.cursor_row
        self.cursor_row, self.cursor_col = row, col
        self._refresh_cursor_rows(old, row)
        self._scroll_cursor_into_view()
        self._post_cell(self.CellHighlighted)

    def _post_cell(self, kind: type[PullGrid.CellHighlighted]) -> None:
        cell = self._cells[self.cursor_row][self.cursor_col]
        self.post_message(kind(self, self._agents[self.cursor_row], self._images[self.cursor_col],
                               cell.state, cell.message))

    def _scroll_cursor_into_view(self) -> None:
        rows_h = self._rows_height
        if not self._agents or rows_h <= 0:
            return
        top = int(self.scroll_offset.y)
        y = None
        if self.cursor_row < top:
            y = self.cursor_row
        elif self.cursor_row >= top + rows_h:
            y = self.cursor_row - rows_h + 1
        x = None
        if self._cell_x:
            sx = int(self.scroll_offset.x)
            visible_w = self._view.width - self._agent_w
            cell_left = self._cell_x[self.cursor_col] - self._agent_w
            cell_right = cell_left + self._cell_w[self.cursor_col]
            if cell_left < sx:
                x = cell_left
            elif cell_right > sx + visible_w:
                x = max(0, cell_right - visible_w)
        if x is not None or y is not None:
            self.scroll_to(x=x, y=y, animate=False, force=True)

    def action_cursor(self, drow: int, dcol: int) -> None:
        self.move_cursor(self.cursor_row + drow, self.cursor_col + dcol)

    def action_page(self, direction: int) -> None:
        self.move_cursor(self.cursor_row + direction * max(1, self._rows_height - 1), self.cursor_col)

    def action_edge(self, direction: int) -> None:
        self.move_cursor(0 if direction < 0 else len(self._agents) - 1, self.cursor_col)

    def action_next_failed(self, direction: int) -> None:
        """Jump to the next (or previous) failed cell in reading order, wrapping around."""
        if not self._failed:
            self.app.bell()
            return
        ordered = sorted(self._failed)
        here = (self.cursor_row, self.cursor_col)
        if direction > 0:
            target = next((p for p in ordered if p > here), ordered[0])
        else:
            target = next((p for p in reversed(ordered) if p < here), ordered[-1])
        self.move_cursor(*target)

    def action_select(self) -> None:
        if self._agents and self._images:
            self._post_cell(self.CellSelected)

    def _on_click(self, event: events.Click) -> None:
        y = event.y - HEADER_LINES
        if not 0 <= y < self._rows_height:
            return
        row = int(self.scroll_offset.y) + y
        x = event.x
        if x >= self._agent_w:
            x += int(self.scroll_offset.x)
        col = next((c for c, (cx, w) in enumerate(zip(self._cell_x, self._cell_w, strict=True))
                    if cx <= x < cx + w), self.cursor_col)
        if row < len(self._agents):
            self.move_cursor(row, col)
