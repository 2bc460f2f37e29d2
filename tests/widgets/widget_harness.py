"""Tiny harness Apps for widget tests: mount some widgets, capture their messages, read the
screen back as text. No backends, no sandbox (docs/tui-contract.md "Tests for widgets")."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from textual.app import App, ComposeResult
from textual.message import Message
from textual.widget import Widget
from textual.widgets import Footer

MARKUP_BAIT = "[bold]db1[/] [etcd]"
"""A value that Rich/Textual markup would mangle: `[bold]...[/]` would vanish into bold,
`[etcd]` would vanish entirely (docs/textual-notes.md#markup-in-data)."""


class Harness(App[None]):
    """Mounts the widgets returned by `build`, then runs `setup(app)`; records messages."""

    CSS = "Screen { layout: vertical; }"

    def __init__(
        self,
        build: Callable[[], Iterable[Widget]],
        setup: Callable[[Harness], Any] | None = None,
        *,
        footer: bool = True,
    ) -> None:
        super().__init__()
        self._build = build
        self._setup = setup
        self._footer = footer
        self.messages: list[Message] = []

    def compose(self) -> ComposeResult:
        yield from self._build()
        if self._footer:
            yield Footer()

    async def on_mount(self) -> None:
        if self._setup is not None:
            result = self._setup(self)
            if hasattr(result, "__await__"):
                await result

    def record(self, message: Message) -> None:
        self.messages.append(message)

    def of_type(self, kind: type[Message]) -> list[Any]:
        """Messages of `kind`, each once (the hook sees a bubbling message at every level)."""
        unique = {id(m): m for m in self.messages if isinstance(m, kind)}
        return list(unique.values())


def screen_lines(app: App[Any]) -> list[str]:
    """What the terminal would show, one string per row."""
    return [strip.text for strip in app.screen._compositor.render_strips()]


def screen_text(app: App[Any]) -> str:
    return "\n".join(screen_lines(app))
