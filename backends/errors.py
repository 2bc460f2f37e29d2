"""Errors that reach the operator: each names the cause and the fix, and maps to an exit status.

Exit statuses are part of the CLI contract (README.md, "Using it on a real cluster"): 0 verified, 1 a step failed,
2 bad usage or configuration, 3 stopped at a gate. A class's exit status is the first `exit_code`
in its MRO, so where an error sits in this tree decides what the operator is told to do.
Every error carries `message` and `fix`; `str()` is the one line shown.

The whole tree (module in brackets when it is not this one; a class with two bases is listed
under both):

* MigrateError                          exit 1
  + ConfigError                         exit 2  bad or missing manager.toml, plan, flag, template
    - SealKeyError                      exit 2  [vault] the seal key file is unusable
    - RegistryRedirectError             exit 2  [registry_api.errors] also a RegistryError
  + ConnectError                        exit 2  a configured service cannot be reached or refuses us
    - AgentConnectError                 exit 2  [docker.errors] an agent's Docker daemon
    - RegistryAuthError                 exit 2  [registry_api.errors] also a RegistryError
    - RegistryUnavailable               exit 2  [registry_api.errors] also a RegistryError
  + GateError                           exit 3  waits for something outside the tool
    - StepBlocked                       exit 3  a step's blocking findings
    - LockHeld                          exit 3  [lock] another run holds the cluster lock
    - LockLost                          exit 3  [lock] this run's lease is gone: it stopped writing
  + SafetyError                         exit 1  a write refused because it could destroy more
    - AllowlistConflict                 exit 1  [db] domains changed between plan and apply
  + StepFailed                          exit 1  a step's apply or verification failed
  + DatabaseError                       exit 1  [db] a query failed, not the connection
  + StateSaveError                      exit 1  [state] the run state could not be written
  + TranscriptError                     exit 1  [transcript] the transcript could not be written
  + SealedValueError                    exit 1  [vault] a sealed secret cannot be opened
  + DockerOpError                       exit 1  [docker.errors] the daemon refused an operation
  + PullError                           exit 1  [docker.errors] a pull did not produce the image
  + RegistryError                       exit 1  [registry_api.errors] an answer we cannot use
    - RegistryNotFound                  exit 1  404
    - RegistryAuthError                 exit 2  401/403 (also a ConnectError)
    - RegistryUnavailable               exit 2  5xx, 429, timeouts after every retry (also a ConnectError)
    - RegistryRedirectError             exit 2  the URL redirects (also a ConfigError)

Library exceptions are translated in one place per client: `docker.errors.DaemonErrors` for
aiodocker's, aiohttp's and the OS's, `RegistryTransport._send` (registry_api.transport) for
httpx's. Two ValueErrors are not operator errors and never leave their callers:
images.AliasLoop (a step turns it into a finding) and jsonpos.JSONPosError (a validation
issue with line and column).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .steps.base import Finding

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_GATE = 3


class MigrateError(Exception):
    """Base class: `str()` is the one-line message shown to the operator."""

    exit_code: int = EXIT_FAILED

    def __init__(self, message: str, *, fix: str | None = None) -> None:
        self.message = message
        self.fix = fix
        super().__init__(self.one_line())

    def one_line(self) -> str:
        if self.fix:
            return f"{self.message}; fix: {self.fix}"
        return self.message


class ConfigError(MigrateError):
    """Bad or missing configuration (manager.toml, plan file, flags): exit 2, nothing written."""

    exit_code = EXIT_USAGE

    def __init__(self, message: str, *, file: str | None = None, key: str | None = None,
                 fix: str | None = None) -> None:
        self.file = file
        self.key = key
        where = ""
        if file and key:
            where = f"{file}: [{key}] "
        elif file:
            where = f"{file}: "
        elif key:
            where = f"[{key}] "
        super().__init__(f"{where}{message}", fix=fix)


class ConnectError(MigrateError):
    """A service named in the configuration cannot be reached or refuses us: exit 2."""

    exit_code = EXIT_USAGE


class GateError(MigrateError):
    """A step refuses to go on until something outside the tool changes (exit 3)."""

    exit_code = EXIT_GATE


class SafetyError(MigrateError):
    """A write was refused because it could destroy data beyond what was asked."""

    exit_code = EXIT_FAILED


class StepBlocked(GateError):
    """A step has blocking findings: the first one is the message, its fix the fix."""

    def __init__(self, step: str, findings: list[Finding]) -> None:
        first = findings[0]
        more = f" (+{len(findings) - 1} more)" if len(findings) > 1 else ""
        super().__init__(f"step {step} is blocked: {first.message}{more}", fix=first.fix or None)
        self.step = step
        self.findings = findings


class StepFailed(MigrateError):
    """A step's apply or verification failed; the transcript holds the details."""

    def __init__(self, step: str, message: str, *, fix: str | None = None) -> None:
        super().__init__(f"step {step} failed: {message}", fix=fix)
        self.step = step
