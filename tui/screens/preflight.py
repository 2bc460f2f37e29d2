"""`preflight`: can this cluster be migrated (version gate, storage era, target registry,
credentials, agents, live sessions)? Applying backs up the whole namespace and every domain's
allowlist before any other step writes."""

from __future__ import annotations

from .step import StepScreen


class PreflightScreen(StepScreen):
    STEP = "preflight"

    def confirm_lines(self) -> list[str]:
        return ["Reads the whole etcd namespace and every domain's allowlist into the state directory "
                "(secrets sealed). Nothing on the cluster changes."]
