"""No secret of the sandbox reaches the state or transcript directories; files are private.

After a full migration (the reference run: preflight's namespace backup, the registry JSON with
the Harbor password in the plan and in etcd, database and etcd credentials from manager.toml),
no file under the state directory or the transcript directory contains the etcd, database or
Harbor password, in plain text or in any base64 form (whatever its alignment inside a larger
encoded blob, standard or URL-safe alphabet, or as HTTP Basic `user:password`). Every such file
is mode 0600 and every directory 0700.
"""

from __future__ import annotations

import stat

import pytest

from backends.state import StateStore
from backends.vault import Vault

from .conftest import ReferenceRun
from .support import dirs_under, files_under, secret_forms

pytestmark = [pytest.mark.docker]


def test_no_secret_in_state_or_transcript_and_files_are_private(reference_run: ReferenceRun) -> None:
    c = reference_run.cli
    creds = c.info.creds
    secrets = {"etcd password": secret_forms(creds.etcd_password, creds.etcd_user),
               "database password": secret_forms(creds.db_password, creds.db_user),
               "Harbor password": secret_forms(creds.harbor_password, creds.harbor_user)}
    files = sorted(files_under(c.state_dir, c.transcript_dir))
    names = {p.name for p in files}
    # What there is to look at: the run state, the namespace and domain backups, both transcripts.
    assert {"state.json", "etcd-namespace.json", "domains.json", "transcript.jsonl", "transcript.md"} <= names
    assert sum(p.stat().st_size for p in files) > 100_000

    plain = {creds.etcd_password, creds.db_password, creds.harbor_password}
    leaks = [f"{path}: {what} ({'plain' if form in plain else 'encoded'})"
             for path in files for what, forms in secrets.items()
             for form in forms if form in path.read_bytes().decode("utf-8", "replace")]
    assert not leaks, "\n".join(leaks)
    for what, forms in secrets.items():
        assert not any(f in reference_run.stdout for f in forms), f"{what} printed by the run"

    # Yet the Harbor password is kept, sealed, where a resume or rollback needs it: the key that
    # opens it lives outside these directories.
    key = c.home / "xdg-config" / "bai-registry-migrate" / "seal.key"
    assert key.is_file() and c.state_dir not in key.parents and c.transcript_dir not in key.parents
    raw = (c.state_dir / "state.json").read_text()
    assert "sealed:v2:" in raw   # AES-GCM (backends/vault.py)
    state = StateStore(c.state_dir, vault=Vault(key)).load()
    assert state is not None
    plan = state.steps["registry"].plan
    assert plan is not None
    puts = plan["data"]["config_puts"]
    assert puts["config/docker/registry/cr.backend.ai/password"] == creds.harbor_password

    loose = [f"{p}: {stat.filemode(p.stat().st_mode)}" for p in files if stat.S_IMODE(p.stat().st_mode) != 0o600]
    loose += [f"{d}/: {stat.filemode(d.stat().st_mode)}" for d in dirs_under(c.state_dir, c.transcript_dir)
              if stat.S_IMODE(d.stat().st_mode) != 0o700]
    assert not loose, "\n".join(loose)
