"""Sealing secrets inside backups, so rollback can restore them and no file shows them.

A backup of etcd holds registry passwords (`config/docker/registry/<r>/password`), and a
rollback must put them back byte for byte; yet no secret may appear in the state directory.
So secret values are sealed with a key kept outside it (default
`$XDG_CONFIG_HOME/bai-registry-migrate/seal.key`, mode 0600, 32 random bytes in base64).

`sealed:v2:` values use AES-256-GCM from `cryptography` (its AEAD recipe,
https://cryptography.io/en/latest/hazmat/primitives/aead/), with a 96-bit random nonce and a
key derived from the file's key with HKDF-SHA256 (so the legacy construction below never
shares a key with it). The associated data binds each value to where it belongs: the
namespace, the run and the key it is stored under; a value copied to another key, run or
cluster does not open. `sealed:v1:` values (an HMAC-SHA256 keystream and tag, written by
earlier versions) are still read; the next save seals them again as v2.

The key file is created atomically (written to a private temporary file, then hard-linked
into place, which fails if another process was first), so a crash or a full disk leaves no
empty key, and concurrent first uses all end up with the one key. On load it must be a
regular file of the current user, not readable by anyone else, holding exactly 32 bytes.

Losing the key loses only the ability to restore those secret keys: `unseal_tree` can leave a
value it cannot open sealed and report where it was, so a resume or a rollback of everything
else goes on (issue 14, finding 5).
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
import hmac
import os
import secrets
import stat
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from .durable import fsync_dir
from .errors import ConfigError, MigrateError
from .secrets import SEALED_V1, SEALED_V2, is_sealed
from .secrets import is_secret_key as _is_secret_name

KEY_BYTES = 32
NONCE_BYTES = 12
_HKDF_INFO = b"bai-registry-migrate seal v2"
_KEY_FIX_MOVE = ("if no unfinished run needs it, move it aside (a new key is made on the next run); otherwise "
                 "restore the original key file")

Scope = tuple[str, str]   # (namespace, run id)


def default_key_path() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "bai-registry-migrate" / "seal.key"


class SealKeyError(ConfigError):
    """The seal key file is unusable: refused before anything is written (exit 2)."""

    def __init__(self, path: Path, message: str, *, rule: str, fix: str) -> None:
        super().__init__(f"seal key {path}: {message} (rule: {rule})", key="seal key", fix=fix)
        self.path = path


class SealedValueError(MigrateError):
    """A sealed value cannot be opened: the key is missing, another one, or the value was moved."""


class Vault:
    def __init__(self, key_path: Path | None = None) -> None:
        self.key_path = key_path or default_key_path()
        self._key: bytes | None = None
        self._aead: AESGCM | None = None
        self.created = False     # this process made the key (so older sealed values cannot open with it)

    # -- the key ------------------------------------------------------------------------
    def ensure_key(self) -> bytes:
        """The key, created if there is none yet; an unusable key file is a SealKeyError."""
        return self._load_key(create=True)

    def _load_key(self, create: bool) -> bytes:
        if self._key is not None:
            return self._key
        key = self._read_key()
        if key is None:
            if not create:
                raise SealedValueError(f"the seal key {self.key_path} is missing, so sealed secrets in the backup "
                                       "cannot be restored",
                                       fix="restore that file from the machine the run started on, or set the "
                                           "secret keys by hand after rollback")
            key = self._create_key()
        self._key = key
        return key

    def _read_key(self) -> bytes | None:
        path = self.key_path
        try:
            fd = os.open(path, os.O_RDONLY)
        except FileNotFoundError:
            return None
        except OSError as e:
            raise SealKeyError(path, f"cannot be read ({e.strerror})", rule="a readable file of yours",
                               fix="check its permissions, or point XDG_CONFIG_HOME elsewhere") from None
        with os.fdopen(fd, "rb") as f:
            st = os.fstat(f.fileno())
            data = f.read(4096)
        if not stat.S_ISREG(st.st_mode):
            raise SealKeyError(path, "is not a regular file", rule="a regular file", fix=_KEY_FIX_MOVE)
        if st.st_uid != os.geteuid():
            raise SealKeyError(path, f"belongs to uid {st.st_uid}, not to this user (uid {os.geteuid()})",
                               rule="owned by the user who runs the migration",
                               fix=f"run as its owner, or chown it: chown {os.geteuid()} {path}")
        mode = stat.S_IMODE(st.st_mode)
        if mode & 0o077:
            raise SealKeyError(path, f"has mode {mode:04o}: other users can use it",
                               rule="mode 0600", fix=f"chmod 600 {path}")
        text = data.strip()
        if not text:
            raise SealKeyError(path, "is empty (a key of zero bytes protects nothing)",
                               rule=f"{KEY_BYTES} random bytes in base64", fix=_KEY_FIX_MOVE)
        try:
            key = base64.b64decode(text, validate=True)
        except (binascii.Error, ValueError):
            raise SealKeyError(path, "is not base64 text", rule=f"{KEY_BYTES} random bytes in base64",
                               fix=_KEY_FIX_MOVE) from None
        if len(key) != KEY_BYTES:
            raise SealKeyError(path, f"holds {len(key)} bytes", rule=f"{KEY_BYTES} random bytes in base64",
                               fix=_KEY_FIX_MOVE)
        return key

    def _create_key(self) -> bytes:
        """Writes a new key whole, or adopts the one a concurrent process wrote first."""
        path = self.key_path
        try:
            path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        except OSError as e:
            raise SealKeyError(path, f"its directory cannot be created ({e.strerror})", rule="a writable directory",
                               fix="make the directory writable, or set XDG_CONFIG_HOME to one that is") from None
        key = secrets.token_bytes(KEY_BYTES)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            try:
                os.write(fd, base64.b64encode(key) + b"\n")
                os.fsync(fd)
            finally:
                os.close(fd)
            try:
                # link(2) creates the name only if it does not exist yet, with the file already
                # complete: no reader ever sees an empty or partial key.
                os.link(tmp, path)
            except FileExistsError:
                other = self._read_key()
                if other is None:     # removed again in between: give up rather than loop
                    raise SealKeyError(path, "appeared and vanished while being created", rule="a stable file",
                                       fix="run again") from None
                return other
            fsync_dir(path.parent)
        except OSError as e:
            raise SealKeyError(path, f"cannot be created ({e.strerror})", rule="a writable directory",
                               fix="free space or make the directory writable, or set XDG_CONFIG_HOME to a "
                                   "directory that is") from None
        finally:
            # gone already if the open failed; if it cannot be removed, the key file holds the same
            with contextlib.suppress(OSError):
                os.unlink(tmp)
        self.created = True
        return key

    def _cipher(self, *, create: bool) -> AESGCM:
        if self._aead is None:
            key = self._load_key(create)
            self._aead = AESGCM(HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_HKDF_INFO).derive(key))
        return self._aead

    # -- one value ------------------------------------------------------------------------
    @staticmethod
    def associated_data(context: str, scope: Scope | None) -> bytes:
        ns, run = scope or ("", "")
        return "\0".join(("bai-registry-migrate", ns, run, context)).encode("utf-8")

    def seal(self, plaintext: str, *, context: str = "", scope: Scope | None = None) -> str:
        nonce = secrets.token_bytes(NONCE_BYTES)
        ct = self._cipher(create=True).encrypt(nonce, plaintext.encode("utf-8"), self.associated_data(context, scope))
        return SEALED_V2 + base64.urlsafe_b64encode(nonce + ct).decode()

    def unseal(self, sealed: str, *, context: str = "", scope: Scope | None = None) -> str:
        if sealed.startswith(SEALED_V2):
            raw = self._decode(sealed[len(SEALED_V2):])
            if len(raw) < NONCE_BYTES + 16:
                raise self._mismatch()
            try:
                data = self._cipher(create=False).decrypt(raw[:NONCE_BYTES], raw[NONCE_BYTES:], self.associated_data(context, scope))
            except InvalidTag:
                raise self._mismatch() from None
            return data.decode("utf-8")
        if sealed.startswith(SEALED_V1):
            return self._unseal_v1(sealed[len(SEALED_V1):])
        return sealed

    def _mismatch(self) -> SealedValueError:
        return SealedValueError("a sealed secret in the backup does not match the seal key (another key, or the "
                                "value was moved from another key, run or cluster)",
                                fix=f"use the seal key the run was started with ({self.key_path})")

    @staticmethod
    def _decode(text: str) -> bytes:
        try:
            return base64.urlsafe_b64decode(text)
        except (binascii.Error, ValueError):
            raise SealedValueError("a sealed secret in the backup is damaged (not base64)",
                                   fix="set that secret key by hand after rollback") from None

    def _unseal_v1(self, body: str) -> str:
        """The construction of earlier versions: HMAC-SHA256 keystream, truncated HMAC tag."""
        key = self._load_key(create=False)
        raw = self._decode(body)
        nonce, tag, ct = raw[:16], raw[16:32], raw[32:]
        want = hmac.new(key, b"tag" + nonce + ct, hashlib.sha256).digest()[:16]
        if not hmac.compare_digest(tag, want):
            raise self._mismatch()
        stream = bytearray()
        counter = 0
        while len(stream) < len(ct):
            stream += hmac.new(key, b"ks" + nonce + counter.to_bytes(8, "big"), hashlib.sha256).digest()
            counter += 1
        return bytes(a ^ b for a, b in zip(ct, stream, strict=False)).decode("utf-8")

    # -- structures ---------------------------------------------------------------------
    def seal_tree(self, obj: Any, *, scope: Scope | None = None) -> Any:
        """Seals every string under a secret-looking key: dict keys such as `password`, and
        etcd keys whose last segment is one (`config/docker/registry/x/password`). The key it
        sits under, with `scope`, is the value's associated data."""
        if isinstance(obj, Mapping):
            return {k: self._seal_value(k, v, scope) for k, v in obj.items()}
        if isinstance(obj, list):
            return [self.seal_tree(v, scope=scope) for v in obj]
        return obj

    def _seal_value(self, key: Any, v: Any, scope: Scope | None) -> Any:
        if isinstance(v, str) and isinstance(key, str) and is_secret_key(key) and v and not is_sealed(v):
            return self.seal(v, context=key, scope=scope)
        return self.seal_tree(v, scope=scope)

    def unseal_tree(self, obj: Any, *, scope: Scope | None = None, unopened: list[str] | None = None,
                    _key: str = "") -> Any:
        """Opens every sealed value. With `unopened`, a value that cannot be opened (missing or
        other key, moved value) stays sealed and the key it sits under is appended there;
        without it, that is a SealedValueError."""
        if isinstance(obj, Mapping):
            return {k: self.unseal_tree(v, scope=scope, unopened=unopened, _key=str(k)) for k, v in obj.items()}
        if isinstance(obj, list):
            return [self.unseal_tree(v, scope=scope, unopened=unopened, _key=_key) for v in obj]
        if isinstance(obj, str) and is_sealed(obj):
            try:
                return self.unseal(obj, context=_key, scope=scope)
            except SealedValueError:
                if unopened is None:
                    raise
                unopened.append(_key)
                return obj
        return obj


def is_secret_key(key: str) -> bool:
    """`password`, or an etcd key whose last segment is one."""
    last = key.rstrip("/").rsplit("/", 1)[-1]
    return _is_secret_name(last)
