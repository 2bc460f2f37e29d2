"""`verify`: prove new sessions can start from the new registry (runbook step 5). Read-only:
Apply runs the checks (registry config, aliases, domains, pre-pulled images, the manager)."""

from __future__ import annotations

from textual.binding import Binding

from .step import StepScreen


class VerifyScreen(StepScreen):
    STEP = "verify"
    BINDINGS = [Binding("a", "apply", "Run checks", id="apply", tooltip="Run the read-only checks")]
