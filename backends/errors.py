"""Errors that reach the operator: each names the cause and the fix, and maps to an exit status.

Exit statuses are part of the CLI contract (README.md, "Using it on a real cluster"): 0 verified,
1 a step failed, 2 bad usage or configuration, 3 stopped at a gate.
"""

from __future__ import annotations

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
