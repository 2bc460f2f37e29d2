"""Fixtures for the wizard's tests: the real sandbox (reset per test), the app factory, the
cluster's end state read back without the UI, and stable snapshots.

Snapshot determinism (why the SVGs do not change between machines or sandboxes): every
sandbox gets random ports, a random short socket root (/tmp/bairm-<hash>) and lives in a
pytest temporary directory. The snapshot apps therefore read copies of manager.toml and
plan.toml placed in a fixed directory (SNAP_DIR), whose plan points the manager's stop/start
commands through fixed-length symlinks to the sandbox and to this Python, and whose
transcript goes to a fixed directory. What still varies is masked in the SVG text by
`stable_svg`: `127.0.0.1:<port>` keeps its length with the port's digits replaced by zeros,
the socket root's hash becomes zeros, run ids become a fixed pattern. Equal lengths keep the
layout identical, so the masked SVG is byte-for-byte stable. Secrets never appear (the
registry editor masks them), and dry runs are used to reach later steps, so no clock, pull
speed or timestamp is on a snapshot screen.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from tui_support import WizardFactory, stable_svg

from backends.plan_file import load_plan
from backends.replay import Recording
from backends.sandbox.layout import SandboxInfo
from tui.app import MigrationApp, make_app

SNAP_DIR = Path("/tmp/bairm-tui-snap")
# A dry walk of every step on the sandbox, recorded by the wizard itself (the live snapshot
# walk in test_snapshots.py records it again and checks it is current). Tests of layout, keys
# and dialogs replay it: the real engine's answers, no services.
DRY_WALK = Path(__file__).parent / "recordings" / "dry-walk.jsonl"


@pytest.fixture(autouse=True)
def _private_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Own XDG dirs (seal key, default state dir) and no BACKEND_* overrides from the caller."""
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "xdg-state"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg-config"))
    for k in list(os.environ):
        if k.startswith("BACKEND_"):
            monkeypatch.delenv(k)


@pytest.fixture
def wizard(fresh_sandbox: SandboxInfo, tmp_path: Path) -> WizardFactory:
    """make_app(...) on the freshly reset sandbox, with a per-test state directory."""

    def make(**kw: Any) -> MigrationApp:
        kw.setdefault("config", str(fresh_sandbox.manager_toml))
        kw.setdefault("plan_path", str(fresh_sandbox.plan_toml))
        kw.setdefault("state_dir", tmp_path / "state")
        kw.setdefault("cursor_blink", False)
        return make_app(**kw)

    return make


@pytest.fixture
def stable_snapshots(monkeypatch: pytest.MonkeyPatch) -> None:
    """pytest-textual-snapshot takes its SVG from textual._doc.take_svg_screenshot at call time:
    wrap it so the per-sandbox values are masked before syrupy compares or stores them."""
    import textual._doc as doc

    original = doc.take_svg_screenshot

    def take(*args: Any, **kw: Any) -> str:
        return stable_svg(original(*args, **kw))

    monkeypatch.setattr(doc, "take_svg_screenshot", take)


@pytest.fixture
def snap_files(fresh_sandbox: SandboxInfo, stable_snapshots: None) -> Iterator[dict[str, Path]]:
    """manager.toml, plan.toml, a state and a transcript directory at fixed paths (see the module
    docstring); the plan reaches the sandbox and this Python through fixed-length symlinks."""
    if SNAP_DIR.exists():
        shutil.rmtree(SNAP_DIR)
    SNAP_DIR.mkdir(mode=0o700)
    (SNAP_DIR / "sbx").symlink_to(fresh_sandbox.path)
    (SNAP_DIR / "python").symlink_to(load_plan(fresh_sandbox.plan_toml).manager.stop[0])
    shutil.copyfile(fresh_sandbox.manager_toml, SNAP_DIR / "manager.toml")
    plan = fresh_sandbox.plan_toml.read_text()
    python = load_plan(fresh_sandbox.plan_toml).manager.stop[0]
    plan = plan.replace(json.dumps(python), json.dumps(str(SNAP_DIR / "python")))
    plan = plan.replace(str(fresh_sandbox.path), str(SNAP_DIR / "sbx"))
    (SNAP_DIR / "plan.toml").write_text(plan)
    os.chmod(SNAP_DIR / "manager.toml", 0o600)
    os.chmod(SNAP_DIR / "plan.toml", 0o600)
    try:
        yield {"config": SNAP_DIR / "manager.toml", "plan": SNAP_DIR / "plan.toml", "state": SNAP_DIR / "state",
               "transcript": SNAP_DIR / "transcript"}
    finally:
        shutil.rmtree(SNAP_DIR, ignore_errors=True)


@pytest.fixture
def replay_files(stable_snapshots: None) -> Iterator[dict[str, Path]]:
    """The recorded dry walk's manager.toml and plan.toml at the fixed snapshot paths (the same
    paths the recording was made with, so screens read the same), and a fresh state and
    transcript directory; no sandbox."""
    if SNAP_DIR.exists():
        shutil.rmtree(SNAP_DIR)
    config, plan = Recording(DRY_WALK).write_config(SNAP_DIR)
    try:
        yield {"config": config, "plan": plan, "state": SNAP_DIR / "state", "transcript": SNAP_DIR / "transcript",
               "recording": DRY_WALK}
    finally:
        shutil.rmtree(SNAP_DIR, ignore_errors=True)


@pytest.fixture
def replay_wizard(replay_files: dict[str, Path]) -> WizardFactory:
    """make_app(...) replaying the recorded dry walk: a dry run, no services."""

    def make(**kw: Any) -> MigrationApp:
        kw.setdefault("config", str(replay_files["config"]))
        kw.setdefault("plan_path", str(replay_files["plan"]))
        kw.setdefault("state_dir", replay_files["state"])
        kw.setdefault("transcript_dir", replay_files["transcript"])
        kw.setdefault("dry_run", True)
        kw.setdefault("cursor_blink", False)
        kw.setdefault("replay", Recording(replay_files["recording"]))
        return make_app(**kw)

    return make
