"""The wizard's side list of steps: where the operator is and how every step stands.

A hand-rendered widget rather than an OptionList: it is a dozen lines, each line needs a glyph,
a title and a right-aligned status word fitted to a narrow sidebar (80x24 leaves ~22 columns),
and the "current" step marker is separate from the keyboard highlight (you can look at another
step's line without leaving the one you are on).
"""

from __future__ import annotations

from rich.cells import cell_len
from textual import events
from textual.binding import Binding
from textual.content import Content
from textual.geometry import Size
from textual.message import Message
from textual.reactive import reactive
from textual.widget import Widget

from widgets._style import ACTIVE, ERROR, MUTED, OK, WARNING, ellipsize
from widgets.items import StepItem

STATUS_LOOK: dict[str, tuple[str, str]] = {
    "pending": ("◦", MUTED),
    "current": ("▸", f"{ACTIVE} bold"),
    "inspecting": ("⋯", ACTIVE),
    "inspected": ("◌", ACTIVE),
    "planned": ("⋄", ACTIVE),
    "applying": ("⟳", f"{WARNING} bold"),
    "applied": ("✓", OK),
    "verified": ("✔", f"{OK} bold"),
    "skipped": ("-", MUTED),
    "failed": ("✗", f"{ERROR} bold"),
    "blocked": ("⊘", f"{ERROR} bold"),
    "rolled-back": ("↺", WARNING),
}
"""Glyph and style per status; a glyph per status so NO_COLOR still tells them apart."""

_UNKNOWN = ("?", MUTED)


class StepList(Widget, can_focus=True):
    """Steps with a status glyph each; Enter on the highlighted step posts `Selected`.

    `current` is the step being worked on (bold, marked with ▸); the keyboard highlight moves
    independently with up/down, so the screen decides whether selecting another step is allowed.
    """

    DEFAULT_CSS = """
    StepList {
        height: auto;
        width: 1fr;
        padding: 0 1 0 0;
    }
    """

    BINDINGS = [
        Binding("up,k", "cursor_up", "Previous step", show=False),
        Binding("down,j", "cursor_down", "Next step", show=False),
        Binding("home", "cursor_first", "First step", show=False),
        Binding("end", "cursor_last", "Last step", show=False),
        Binding("enter", "select", "Open step", tooltip="Go to the highlighted step"),
    ]

    current: reactive[str] = reactive("")
    """Id of the step the wizard is on."""

    highlighted: reactive[int] = reactive(0)
    """Index of the keyboard highlight."""

    class Selected(Message):
        """Enter (or a click) on a step: the screen decides whether to go there."""

        def __init__(self, step_list: StepList, step_id: str) -> None:
            super().__init__()
            self.step_list = step_list
            self.step_id = step_id

        @property
        def control(self) -> StepList:
            return self.step_list

    def __init__(
        self,
        items: list[StepItem] | None = None,
        *,
        name: str | None = None,
        id: str | None = None,
        classes: str | None = None,
    ) -> None:
        super().__init__(name=name, id=id, classes=classes)
        self._steps: list[StepItem] = list(items or [])

    @property
    def steps(self) -> list[StepItem]:
        return list(self._steps)

    def set_steps(self, items: list[StepItem]) -> None:
        """Replace all steps; the highlight stays on the same step id when it still exists."""
        old_id = self._steps[self.highlighted].id if 0 <= self.highlighted < len(self._steps) else None
        self._steps = list(items)
        index = next((i for i, s in enumerate(self._steps) if s.id == old_id), None)
        if index is None:
            index = next((i for i, s in enumerate(self._steps) if s.id == self.current), 0)
        self.set_reactive(StepList.highlighted, max(0, min(index, len(self._steps) - 1)))
        self.refresh(layout=True)

    def status_of(self, step_id: str) -> str | None:
        return next((s.status for s in self._steps if s.id == step_id), None)

    def watch_current(self, old: str, new: str) -> None:
        # Follow the wizard: the highlight jumps to the new current step.
        index = next((i for i, s in enumerate(self._steps) if s.id == new), None)
        if index is not None:
            self.highlighted = index
        self.refresh()

    def watch_highlighted(self) -> None:
        self.refresh()

    def _on_focus(self, event: events.Focus) -> None:
        self.refresh()

    def _on_blur(self, event: events.Blur) -> None:
        self.refresh()

    def get_content_height(self, container: Size, viewport: Size, width: int) -> int:
        return max(1, len(self._steps))

    def get_content_width(self, container: Size, viewport: Size) -> int:
        longest = max((cell_len(s.title) + cell_len(s.status) for s in self._steps), default=10)
        return longest + 6

    def render(self) -> Content:
        width = max(self.content_region.width, 8)
        if not self._steps:
            return Content.styled("no steps", MUTED)
        lines = [self._render_step(i, step, width) for i, step in enumerate(self._steps)]
        return Content("\n").join(lines)

    def _render_step(self, index: int, step: StepItem, width: int) -> Content:
        is_current = step.id == self.current or step.status == "current"
        glyph, style = STATUS_LOOK.get(step.status, _UNKNOWN)
        # The ▸ marker says "you are here"; a step whose status is literally "current" already
        # shows ▸ as its glyph, so it gets no second one.
        marker = ("▸ ", f"{ACTIVE} bold") if is_current and step.status != "current" else ("  ", "")
        title_style = "bold" if is_current else ""
        status = "" if step.status == "current" else step.status
        room = width - 4  # marker (2) + glyph and a space (2)
        show_status = bool(status) and room - cell_len(step.title) >= len(status) + 1
        title = ellipsize(step.title, room)
        parts: list[tuple[str, str] | str] = [marker, (glyph, style), " ", (title, title_style)]
        if show_status:
            gap = room - cell_len(title) - len(status)
            parts += [" " * gap, (status, style if step.status != "pending" else MUTED)]
        line = Content.assemble(*parts)
        if index == self.highlighted and self.has_focus:
            line = line.pad_right(width - line.cell_length)
            # On top of the status colours: coloured words on the cursor bar are unreadable.
            line = line.stylize("$block-cursor-foreground on $block-cursor-background bold")
        return line

    def _move(self, index: int) -> None:
        if self._steps:
            self.highlighted = max(0, min(index, len(self._steps) - 1))

    def action_cursor_up(self) -> None:
        self._move(self.highlighted - 1)

    def action_cursor_down(self) -> None:
        self._move(self.highlighted + 1)

    def action_cursor_first(self) -> None:
        self._move(0)

    def action_cursor_last(self) -> None:
        self._move(len(self._steps) - 1)

    def action_select(self) -> None:
        if 0 <= self.highlighted < len(self._steps):
            self.post_message(self.Selected(self, self._steps[self.highlighted].id))

    def _on_click(self, event: events.Click) -> None:
        y = event.y - self.gutter.top
        if 0 <= y < len(self._steps):
            self.highlighted = y
            self.action_select()
