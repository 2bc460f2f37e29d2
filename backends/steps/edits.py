"""The operator's edits, as commands: a screen posts one, the step checks it and records it.

Screens never touch the plan file or the cluster. An edit names what the operator wants
(this alias to that image, this domain's list); the step that owns the field checks it with
the same rules the plan file and the engine apply and answers with an `EditResult`: taken
(the plan file changed, the step must be planned again) or refused (the message names what
is wrong and the fix; nothing changed). The wizard shows a refusal where the operator typed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar


@dataclass(frozen=True)
class Edit:
    step: ClassVar[str] = ""


@dataclass(frozen=True)
class SetAnnouncement(Edit):
    step: ClassVar[str] = "maintenance"
    text: str


@dataclass(frozen=True)
class SetRegistryDocument(Edit):
    """The registry JSON with its real password (the editor unmasks before posting)."""

    step: ClassVar[str] = "registry"
    text: str


@dataclass(frozen=True)
class SetAliasTarget(Edit):
    step: ClassVar[str] = "aliases"
    alias: str
    target: str


@dataclass(frozen=True)
class ToggleAliasRemoval(Edit):
    step: ClassVar[str] = "aliases"
    alias: str


@dataclass(frozen=True)
class SetDomainRegistries(Edit):
    """A domain's whole list, as typed (comma- or space-separated; "(none)" for empty)."""

    step: ClassVar[str] = "allowlists"
    domain: str
    text: str


@dataclass(frozen=True)
class ToggleDomainRegistry(Edit):
    """Allow or disallow one registry for a domain: the target (`hub=False`) or Docker Hub."""

    step: ClassVar[str] = "allowlists"
    domain: str
    hub: bool = False


@dataclass(frozen=True)
class EditResult:
    taken: bool
    message: str = ""        # why not (refused), or what changed (taken)
    fix: str = ""
    changed: bool = False    # the plan file changed: the plan is out of date until planned again

    @classmethod
    def refused(cls, message: str, fix: str = "") -> EditResult:
        return cls(False, message, fix)

    @classmethod
    def ok(cls, message: str = "", *, changed: bool = True) -> EditResult:
        return cls(True, message, changed=changed)

    @property
    def reason(self) -> str:
        """The refusal as one line for the place the operator typed."""
        return f"{self.message}; {self.fix}" if self.fix else self.message
