"""Registry errors: what a registry answered that we cannot use, typed by what the operator must do.

Harbor and Docker Distribution both answer errors as `{"errors":[{"code","message"}]}`
(Harbor `src/lib/errors/errors.go` and `src/lib/http/error.go`; distribution
`registry/api/errcode`), so every `RegistryError` carries the HTTP status, that code and that
message. Whether the operator fixes credentials, configuration or waits decides the class, and
with it the exit status (see the tree in backends/errors.py).
"""

from __future__ import annotations

from typing import Any

from ..errors import EXIT_USAGE, ConfigError, ConnectError, MigrateError


class RegistryError(MigrateError):
    """A registry answered something we cannot use; carries Harbor's status/code/message."""

    def __init__(self, message: str, *, status: int | None = None, code: str | None = None,
                 detail: str | None = None, url: str | None = None, fix: str | None = None) -> None:
        self.status = status
        self.code = code
        self.detail = detail
        self.url = url
        super().__init__(message, fix=fix)


class RegistryAuthError(RegistryError, ConnectError):
    """Credentials rejected or missing (401/403): exit 2, fix the registry entry."""


class RegistryNotFound(RegistryError):
    """404: no such project, repository, tag or blob."""


class RegistryUnavailable(RegistryError, ConnectError):
    """Unreachable, timing out, rate limited or failing with 5xx after every attempt."""


class RegistryRedirectError(RegistryError, ConfigError):
    """The configured URL redirects; Backend.AI would fail, so this is a configuration error."""

    exit_code = EXIT_USAGE

    def __init__(self, message: str, *, location: str, suggested: str, **kw: Any) -> None:
        self.location = location
        self.suggested = suggested
        super().__init__(message, **kw)
