"""Registries over HTTP: Harbor's `/api/v2.0` and Docker Distribution's `/v2/`.

Named `registry_api` because "registry" already means three other things here: the registry
JSON document (`registry_document`), the etcd registry step (`steps/registry.py`) and the sandbox's
stand-in (`sandbox/harbor_registry.py`). Split by what each part holds: `transport` (httpx,
retries, auth, request stats), `harbor` and `distribution` (the calls of each API), `models`
(what they answer), `errors`, and `client` (`RegistryClient`, which combines both APIs to
resolve tags the way a scanner needs). The names other modules use are re-exported here.
"""

from __future__ import annotations

from .client import RegistryClient
from .errors import (
    RegistryAuthError,
    RegistryError,
    RegistryNotFound,
    RegistryRedirectError,
    RegistryUnavailable,
)

__all__ = [
    "RegistryAuthError",
    "RegistryClient",
    "RegistryError",
    "RegistryNotFound",
    "RegistryRedirectError",
    "RegistryUnavailable",
]
