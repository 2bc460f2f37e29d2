"""One screen per step (ids as in backends.steps.STEP_ORDER), plus start, summary, transcript."""

from __future__ import annotations

from .step import StepScreen


def screen_for(step: str) -> StepScreen:
    from .agent_cleanup import AgentCleanupScreen
    from .aliases import AliasesScreen
    from .allowlists import AllowlistsScreen
    from .cleanup import CleanupScreen
    from .maintenance import MaintenanceScreen
    from .preflight import PreflightScreen
    from .prepull import PrepullScreen
    from .registry import RegistryScreen
    from .verify import VerifyScreen

    screens: dict[str, type[StepScreen]] = {
        "preflight": PreflightScreen, "maintenance": MaintenanceScreen, "registry": RegistryScreen,
        "prepull": PrepullScreen, "aliases": AliasesScreen, "allowlists": AllowlistsScreen,
        "verify": VerifyScreen, "cleanup": CleanupScreen, "agent-cleanup": AgentCleanupScreen,
    }
    return screens[step]()


__all__ = ["StepScreen", "screen_for"]
