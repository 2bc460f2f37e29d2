"""Malformed inputs, through the CLI's `run --yes`: refused naming field, rule and fix; nothing written.

The inputs (cases.py) cover the registry JSON (syntax, shape, quotes, commas, braces, empty,
very long, unicode, lists, nulls, booleans, registry names with schemes/paths/ports), the plan
file, manager.toml, alias names and override targets, domain allowlist entries and agent URL
templates. Each runs `bai-registry-migrate run --yes` (tui.cli.main with the same argv, in
this process to keep the suite fast) against the sandbox and must:

- exit 2 (refused as configuration, before anything is opened) or, where only the cluster can
  tell (a domain that does not exist), 3 at preflight's gate, before any step writes;
- print one error line that contains the field, the rule and the fix the case expects;
- leave etcd (every key of every prefix, raw) and the domains, kernels and agents tables
  exactly as the freshly reset sandbox had them (compared after every case; since every case
  must change nothing, "equal to the baseline" is "equal to what it was before this case");
- for exit 2, not even create the state directory.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from backends.sandbox.layout import SandboxInfo
from tui.cli import main

from .cases import CASES, Bad
from .conftest import Contents

pytestmark = [pytest.mark.docker]


def test_there_are_enough_cases() -> None:
    assert len(CASES) >= 50
    families = {c.id.split("-")[0] for c in CASES}
    assert {"json", "project", "url", "name", "plan", "manager", "override", "alias", "domain", "allowlist",
            "agent", "toml"} <= families


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_refused_with_field_rule_fix_and_nothing_written(case: Bad, baseline: tuple[SandboxInfo, Contents],
                                                         tmp_path: Path, capfd: pytest.CaptureFixture[str],
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    info, before = baseline
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg-config"))
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "xdg-state"))
    for var in ("BACKEND_CONFIG_FILE", "BACKEND_NAMESPACE", "BACKEND_ETCD_ADDR", "BACKEND_DB_ADDR"):
        monkeypatch.delenv(var, raising=False)
    inputs = case.build(info, tmp_path)
    state = tmp_path / "state"
    rc = main(["run", "--yes", "--config", str(inputs.config), "--plan", str(inputs.plan),
               "--state-dir", str(state), "--transcript", str(tmp_path / "transcript")])
    out = capfd.readouterr()
    text = out.out + out.err
    assert "Traceback" not in text
    assert rc == case.code, text[-2000:]
    verdicts = [ln for ln in text.splitlines()
                if ln.startswith("bai-registry-migrate: error: ") or ln.startswith("run gate (exit 3): ")]
    assert len(verdicts) == 1, text[-2000:]
    line = verdicts[0]
    missing = [what for what, s in (("field", case.field), ("rule", case.rule), ("fix", case.fix)) if s not in line]
    assert not missing, f"{missing} not in: {line}"
    assert "; fix: " in line
    if case.code == 2:
        assert not state.exists()
    diff = before.diff(Contents.read(info))
    assert not diff, "\n".join(diff[:20])


SAMPLE = ("json-trailing-comma", "override-shell", "domain-entry-quotes", "agent-url-unknown-placeholder",
          "toml-db-mysql")


def test_the_installed_command_says_the_same(baseline: tuple[SandboxInfo, Contents], tmp_path: Path) -> None:
    """A sample of the cases through the real `bai-registry-migrate` executable: same line, same exit."""
    import subprocess

    from engine.support import cli_path

    info, before = baseline
    for case in (c for c in CASES if c.id in SAMPLE):
        d = tmp_path / case.id
        d.mkdir()
        inputs = case.build(info, d)
        r = subprocess.run([str(cli_path()), "run", "--yes", "--config", str(inputs.config), "--plan",
                            str(inputs.plan), "--state-dir", str(d / "state")], capture_output=True, text=True,
                           timeout=60, env={"PATH": "/usr/bin:/bin", "XDG_CONFIG_HOME": str(d / "xdg")})
        lines = [ln for ln in (r.stdout + r.stderr).splitlines() if ln.strip()]
        assert r.returncode == case.code and len(lines) == 1, (case.id, r.returncode, lines)
        assert all(s in lines[0] for s in (case.field, case.rule, case.fix)), lines[0]
    assert not before.diff(Contents.read(info))
