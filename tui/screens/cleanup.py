"""`cleanup`: delete Docker Hub's image metadata and registry entry, gated on live sessions.

While a kernel on an old image is live the step is blocked: the findings list who (session,
status, image, agent, domain, access key) and the fix; `p` checks again once they ended.
The plan is destructive, so Apply asks for the step's name to be typed.
"""

from __future__ import annotations

from textual.app import ComposeResult
from textual.content import Content
from textual.widgets import Static

from .step import StepScreen


class CleanupScreen(StepScreen):
    STEP = "cleanup"

    def compose_body(self) -> ComposeResult:
        yield Static(id="gate", markup=False)
        yield from super().compose_body()

    def refresh_step(self) -> None:
        gate = self.query_one("#gate", Static)
        live = next((f for f in self.ctl.blocking(self.STEP) if f.code == "live-sessions"), None)
        gate.display = live is not None
        if live is not None:
            lines = [Content.assemble(("⊘ sessions still on old images: ", "$text-error bold"), live.message),
                     *[Content.assemble(("  ", ""), d) for d in live.details],
                     Content.assemble(("fix: ", "$text-success bold"), live.fix,
                                      ("   p checks again", "$foreground-muted"))]
            gate.update(Content("\n").join(lines))

    def confirm_lines(self) -> list[str]:
        return ["Deletes exactly the trees images/index.docker.io and config/docker/registry/index.docker.io "
                "(the key and everything below it), in one transaction, after a backup. x restores them."]
