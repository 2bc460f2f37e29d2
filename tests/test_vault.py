"""The seal key and sealed values (backends/vault.py; issue 14, findings 4 and 5). No services.

- the key file is checked on load: an empty file (which the old two-step creation could leave)
  is refused instead of being used as a zero-length key; so are a wrong length, text that is not
  base64, a mode that lets others read it, another owner;
- the key is created whole or not at all (a write that fails leaves no key file), and 16
  processes using a missing key at the same moment all end up with the one key;
- v2 values are AES-GCM with the namespace, the run and the key they sit under as associated
  data: a value moved elsewhere does not open, nor a tampered one; v1 values written by the
  old construction still open;
- `unseal_tree` with `unopened` leaves what it cannot open sealed and says where.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest

from backends.errors import EXIT_USAGE
from backends.secrets import SEALED_V1, SEALED_V2
from backends.state import RunState, StateStore
from backends.vault import KEY_BYTES, SealedValueError, SealKeyError, Vault

REPO = Path(__file__).resolve().parents[1]
PW_KEY = "config/docker/registry/cr.backend.ai/password"


def _key_file(path: Path, data: bytes, mode: int = 0o600) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    os.chmod(path, mode)
    return path


@pytest.mark.parametrize(("data", "mode", "says", "rule"), [
    (b"", 0o600, "is empty", "32 random bytes in base64"),
    (b"\n", 0o600, "is empty", "32 random bytes in base64"),
    (base64.b64encode(b"k" * 16) + b"\n", 0o600, "holds 16 bytes", "32 random bytes in base64"),
    (b"this is not base64 at all!\n", 0o600, "is not base64 text", "32 random bytes in base64"),
    (base64.b64encode(b"k" * 32) + b"\n", 0o644, "has mode 0644", "mode 0600"),
    (base64.b64encode(b"k" * 32) + b"\n", 0o640, "has mode 0640", "mode 0600"),
])
def test_an_unusable_key_file_is_refused(tmp_path: Path, data: bytes, mode: int, says: str, rule: str) -> None:
    key = _key_file(tmp_path / "seal.key", data, mode)
    v = Vault(key)
    with pytest.raises(SealKeyError) as e:
        v.seal("pw-123", context=PW_KEY)
    line = e.value.one_line()
    assert str(key) in line and says in line and f"(rule: {rule})" in line and "; fix: " in line, line
    assert e.value.exit_code == EXIT_USAGE
    assert key.read_bytes() == data              # nothing was "repaired" behind the operator's back


def test_a_key_file_of_another_user_is_refused(tmp_path: Path) -> None:
    if os.geteuid() != 0:
        pytest.fail("needs root to give the key file to another user (the suite runs as root)")
    key = _key_file(tmp_path / "seal.key", base64.b64encode(secrets.token_bytes(32)) + b"\n")
    os.chown(key, 65534, 65534)
    with pytest.raises(SealKeyError, match=r"belongs to uid 65534, not to this user .*rule: owned by the user who "
                                           r"runs the migration.*; fix: run as its owner, or chown it"):
        Vault(key).ensure_key()


def test_the_key_is_created_whole_and_private(tmp_path: Path) -> None:
    key = tmp_path / "cfg" / "bai-registry-migrate" / "seal.key"
    v = Vault(key)
    sealed = v.seal("pw-123", context=PW_KEY)
    assert sealed.startswith(SEALED_V2) and v.created
    assert len(base64.b64decode(key.read_text().strip(), validate=True)) == KEY_BYTES
    assert key.stat().st_mode & 0o777 == 0o600 and key.parent.stat().st_mode & 0o777 == 0o700
    assert [p.name for p in key.parent.iterdir()] == ["seal.key"]      # no temporary file left
    assert Vault(key).unseal(sealed, context=PW_KEY) == "pw-123"


def test_a_failed_key_write_leaves_no_key_file(tmp_path: Path) -> None:
    """A full disk while the key is written (here: a file size limit of 0, so every write
    fails with EFBIG): refused with the cause, and no empty key file left to be used later."""
    key = tmp_path / "seal.key"
    code = f"""
import resource, signal, sys
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
resource.setrlimit(resource.RLIMIT_FSIZE, (0, 0))
from pathlib import Path
from backends.vault import Vault
try:
    Vault(Path({str(key)!r})).seal("x")
except Exception as e:
    print(type(e).__name__, e)
    sys.exit(3)
"""
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd=REPO)
    assert r.returncode == 3, r.stdout + r.stderr
    assert r.stdout.startswith("SealKeyError ") and "cannot be created (File too large)" in r.stdout, r.stdout
    assert not key.exists(), f"left behind: {key.read_bytes()!r}"
    assert list(tmp_path.iterdir()) == []


def test_sixteen_concurrent_first_uses_share_one_key(tmp_path: Path) -> None:
    key = tmp_path / "cfg" / "seal.key"
    go = tmp_path / "go"
    code = f"""
import os, time
from pathlib import Path
from backends.vault import Vault
while not Path({str(go)!r}).exists():
    time.sleep(0.001)
v = Vault(Path({str(key)!r}))
s = v.seal("pw-" + str(os.getpid()), context="password")
print(s)
"""
    procs = [subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True, cwd=REPO) for _ in range(16)]
    try:
        go.touch()
        results = [(p.pid, *p.communicate(timeout=120)) for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    failed = [(pid, err[-500:]) for (pid, _out, err), p in zip(results, procs, strict=True) if p.returncode != 0]
    assert not failed, failed
    v = Vault(key)
    for pid, out, _err in results:
        assert v.unseal(out.strip(), context="password") == f"pw-{pid}"     # every one sealed with the one key
    assert sorted(p.name for p in key.parent.iterdir()) == ["seal.key"]


def test_sealed_values_are_bound_to_their_place(tmp_path: Path) -> None:
    v = Vault(tmp_path / "seal.key")
    scope = ("local", "run-1")
    sealed = v.seal("pw-123", context=PW_KEY, scope=scope)
    assert v.unseal(sealed, context=PW_KEY, scope=scope) == "pw-123"
    moved = [("config/docker/registry/other/password", scope), (PW_KEY, ("other-ns", "run-1")),
             (PW_KEY, ("local", "run-2")), (PW_KEY, None)]
    for context, sc in moved:
        with pytest.raises(SealedValueError, match="does not match the seal key"):
            v.unseal(sealed, context=context, scope=sc)
    raw = bytearray(base64.urlsafe_b64decode(sealed[len(SEALED_V2):]))
    raw[-1] ^= 1
    with pytest.raises(SealedValueError):
        v.unseal(SEALED_V2 + base64.urlsafe_b64encode(bytes(raw)).decode(), context=PW_KEY, scope=scope)
    # Two seals of one value differ (a fresh nonce each time).
    assert v.seal("pw-123", context=PW_KEY, scope=scope) != sealed


def _seal_v1(key: bytes, plaintext: str) -> str:
    """The construction of earlier versions, written out here: HMAC-SHA256 keystream and tag."""
    nonce = secrets.token_bytes(16)
    data = plaintext.encode()
    stream = b"".join(hmac.new(key, b"ks" + nonce + i.to_bytes(8, "big"), hashlib.sha256).digest()
                      for i in range(len(data) // 32 + 1))
    ct = bytes(a ^ b for a, b in zip(data, stream, strict=False))
    tag = hmac.new(key, b"tag" + nonce + ct, hashlib.sha256).digest()[:16]
    return SEALED_V1 + base64.urlsafe_b64encode(nonce + tag + ct).decode()


def test_old_v1_values_still_open_and_are_sealed_again_as_v2(tmp_path: Path) -> None:
    key = secrets.token_bytes(32)
    key_path = _key_file(tmp_path / "seal.key", base64.b64encode(key) + b"\n")
    v = Vault(key_path)
    old = _seal_v1(key, "an old password with é")
    assert v.unseal(old) == "an old password with é"
    # A state saved by an earlier version: loaded, then saved again as v2.
    store = StateStore(tmp_path / "state", vault=v)
    st = RunState.new("local", ["registry"], plan_source=None, dry_run=False)
    st.step("registry").backup = {"etcd": {"items": {PW_KEY: "placeholder"}}}
    store.save(st)
    data = json.loads(store.path.read_text())
    data["steps"]["registry"]["backup"]["etcd"]["items"][PW_KEY] = old
    store.path.write_text(json.dumps(data))
    back = store.load()
    assert back is not None and back.step("registry").backup == {"etcd": {"items": {PW_KEY: "an old password with é"}}}
    store.save(back)
    text = store.path.read_text()
    assert SEALED_V2 in text and SEALED_V1 not in text and "an old password" not in text


def test_values_that_cannot_be_opened_stay_sealed_and_are_named(tmp_path: Path) -> None:
    """Finding 5: a missing key costs only the secret keys, not the whole state."""
    store = StateStore(tmp_path / "state", vault=Vault(tmp_path / "seal.key"))
    st = RunState.new("local", ["preflight", "registry"], plan_source=None, dry_run=False)
    st.step("preflight").backup = {"etcd": {"items": {PW_KEY: "pw-123", "config/x": "plain"}}}
    st.step("registry").plan = {"data": {"config_puts": {PW_KEY: "pw-123"}}}
    store.save(st)
    (tmp_path / "seal.key").unlink()

    with pytest.raises(SealedValueError, match="is missing"):
        Vault(tmp_path / "seal.key").unseal_tree(json.loads(store.path.read_text()),
                                                  scope=("local", st.run_id))
    lenient = StateStore(tmp_path / "state", vault=Vault(tmp_path / "seal.key"))
    back = lenient.load()
    assert back is not None and back.run_id == st.run_id
    items = back.step("preflight").backup["etcd"]["items"]            # type: ignore[index]
    assert items["config/x"] == "plain" and items[PW_KEY].startswith(SEALED_V2)
    assert sorted(lenient.unopened) == [PW_KEY, PW_KEY]
