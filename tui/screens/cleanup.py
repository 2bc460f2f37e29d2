"""`cleanup`: delete Docker Hub's image metadata and registry entry, gated on live sessions.

While a kernel on an old image is live the step is blocked: the status line says so with the
fix, and the blocking finding lists who is still on old images (session, status, image,
agent, domain, access key); `p` checks again once they have ended. The plan is destructive,
so Apply asks for the step's name to be typed.
"""

from __future__ import annotations

from .step import StepScreen


class CleanupScreen(StepScreen):
    STEP = "cleanup"

    def confirm_lines(self) -> list[str]:
        return ["Deletes exactly the trees images/index.docker.io and config/docker/registry/index.docker.io "
                "(the key and everything below it), in one transaction, after a backup. x restores them."]
