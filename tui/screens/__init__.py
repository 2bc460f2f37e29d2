"""Which screen shows a step: its own screen where it has widgets of its own, else one by kind.

A step's own screen declares the step in `STEP` (aliases, allowlists, registry, maintenance:
an editable table or an editor); the rest are shown by kind, from the step's metadata: a
grid step by the grid screen, a step that writes nothing by the read-only screen (its `a`
runs checks), every other one by the plain step screen. There is no table of step ids here.
"""

from __future__ import annotations

from textual.binding import Binding

from backends.steps.base import StepMeta

from .step import StepScreen


class ReadOnlyStepScreen(StepScreen):
    """A step that writes nothing (verify): Apply runs its checks, with no confirmation."""

    BINDINGS = [Binding("a", "apply", "Run checks", id="apply", tooltip="Run the read-only checks")]


def _own_screens() -> dict[str, type[StepScreen]]:
    from . import aliases, allowlists, maintenance, registry

    classes = (aliases.AliasesScreen, allowlists.AllowlistsScreen, maintenance.MaintenanceScreen,
               registry.RegistryScreen)
    return {cls.STEP: cls for cls in classes}


def screen_for(step: str, meta: StepMeta) -> StepScreen:
    own = _own_screens().get(step)
    if own is not None:
        return own()
    if meta.grid:
        from .grid import GridStepScreen

        return GridStepScreen(step)
    if not meta.writes:
        return ReadOnlyStepScreen(step)
    return StepScreen(step)


__all__ = ["StepScreen", "screen_for"]
