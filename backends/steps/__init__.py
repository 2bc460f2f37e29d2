"""The migration steps, in runbook order. Ids are stable: CLI, state file and transcript use them."""

from __future__ import annotations

from .agent_cleanup import AgentCleanupStep
from .aliases import AliasesStep
from .allowlists import AllowlistsStep
from .base import Step
from .cleanup import CleanupStep
from .maintenance import MaintenanceStep
from .preflight import PreflightStep
from .prepull import PrepullStep
from .registry import RegistryStep
from .verify import VerifyStep

STEP_ORDER: tuple[str, ...] = ("preflight", "maintenance", "registry", "prepull", "aliases", "allowlists",
                               "verify", "cleanup", "agent-cleanup")

STEP_CLASSES: dict[str, type[Step]] = {cls.id: cls for cls in (
    PreflightStep, MaintenanceStep, RegistryStep, PrepullStep, AliasesStep, AllowlistsStep, VerifyStep,
    CleanupStep, AgentCleanupStep)}

__all__ = ["STEP_CLASSES", "STEP_ORDER", "Step"]
