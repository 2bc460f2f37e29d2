"""Sealing secrets inside backups, so rollback can restore them and no file shows them.

A backup of etcd holds registry passwords (`config/docker/registry/<r>/password`), and a
rollback must put them back byte for byte; yet no secret may appear in the state directory.
So secret values are sealed with a key kept outside it (default
`$XDG_CONFIG_HOME/bai-registry-migrate/seal.key`, mode 0600): HMAC-SHA256 in counter mode
as the keystream and HMAC-SHA256 over nonce and ciphertext as the tag, stdlib only. Losing
the key loses only the ability to roll back those secret keys, and says so.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .errors import MigrateError
from .secrets import SEALED_PREFIX as PREFIX
from .secrets import is_secret_key


def default_key_path() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "bai-registry-migrate" / "seal.key"


class Vault:
    def __init__(self, key_path: Path | None = None) -> None:
        self.key_path = key_path or default_key_path()
        self._key: bytes | None = None

    def _load_key(self, create: bool) -> bytes:
        if self._key is not None:
            return self._key
        try:
            self._key = base64.b64decode(self.key_path.read_text().strip())
        except FileNotFoundError:
            if not create:
                raise MigrateError(f"the seal key {self.key_path} is missing, so sealed secrets in the backup "
                                   "cannot be restored",
                                   fix="restore that file from the machine the run started on, or set the "
                                       "secret keys by hand after rollback") from None
            self.key_path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            key = secrets.token_bytes(32)
            fd = os.open(self.key_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as f:
                f.write(base64.b64encode(key).decode() + "\n")
            self._key = key
        return self._key

    @staticmethod
    def _stream(key: bytes, nonce: bytes, n: int) -> bytes:
        out = bytearray()
        counter = 0
        while len(out) < n:
            out += hmac.new(key, b"ks" + nonce + counter.to_bytes(8, "big"), hashlib.sha256).digest()
            counter += 1
        return bytes(out[:n])

    def seal(self, plaintext: str) -> str:
        key = self._load_key(create=True)
        nonce = secrets.token_bytes(16)
        data = plaintext.encode("utf-8")
        ct = bytes(a ^ b for a, b in zip(data, self._stream(key, nonce, len(data)), strict=True))
        tag = hmac.new(key, b"tag" + nonce + ct, hashlib.sha256).digest()[:16]
        return PREFIX + base64.urlsafe_b64encode(nonce + tag + ct).decode()

    def unseal(self, sealed: str) -> str:
        if not sealed.startswith(PREFIX):
            return sealed
        key = self._load_key(create=False)
        raw = base64.urlsafe_b64decode(sealed[len(PREFIX):])
        nonce, tag, ct = raw[:16], raw[16:32], raw[32:]
        want = hmac.new(key, b"tag" + nonce + ct, hashlib.sha256).digest()[:16]
        if not hmac.compare_digest(tag, want):
            raise MigrateError("a sealed secret in the backup does not match the seal key",
                               fix=f"use the seal key the run was started with ({self.key_path})")
        return bytes(a ^ b for a, b in zip(ct, self._stream(key, nonce, len(ct)), strict=True)).decode("utf-8")

    # -- structures ---------------------------------------------------------------------
    def seal_tree(self, obj: Any, *, parent_key: str | None = None) -> Any:
        """Seals every string under a secret-looking key: dict keys such as `password`, and
        etcd keys whose last segment is one (`config/docker/registry/x/password`)."""
        if isinstance(obj, Mapping):
            return {k: self._seal_value(k, v) for k, v in obj.items()}
        if isinstance(obj, list):
            return [self.seal_tree(v) for v in obj]
        return obj

    def _seal_value(self, key: Any, v: Any) -> Any:
        if isinstance(v, str) and isinstance(key, str) and _secret_key(key) and v and not v.startswith(PREFIX):
            return self.seal(v)
        return self.seal_tree(v)

    def unseal_tree(self, obj: Any) -> Any:
        if isinstance(obj, Mapping):
            return {k: self.unseal_tree(v) for k, v in obj.items()}
        if isinstance(obj, list):
            return [self.unseal_tree(v) for v in obj]
        if isinstance(obj, str) and obj.startswith(PREFIX):
            return self.unseal(obj)
        return obj


def _secret_key(key: str) -> bool:
    last = key.rstrip("/").rsplit("/", 1)[-1]
    return is_secret_key(last)
