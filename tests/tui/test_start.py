"""The start screen: discovered configuration, connection checks with one-line failures and
their fix, recheck after a fix, quitting without having written anything."""

from __future__ import annotations

import contextlib
import fcntl
import os
import pty
import re
import select
import signal
import struct
import sys
import termios
import time
from pathlib import Path

from tui_support import SIZE, WizardFactory, etcd_namespace

from backends.sandbox.layout import SandboxInfo
from tui.autopilot import wait_for, wait_idle
from tui.screens.start import StartScreen
from widgets.checks import ChecksView


def checks_of(app) -> dict[str, tuple[bool, str]]:  # type: ignore[no-untyped-def]
    view = app.screen.query_one("#start-checks", ChecksView)
    return {c.name: (c.ok, c.detail) for c in view.items}


async def probed(pilot) -> None:  # type: ignore[no-untyped-def]
    await wait_idle(pilot)
    await wait_for(pilot, lambda: pilot.app.controller.probe_result is not None, "the checks")
    await pilot.pause()


def edited_config(info: SandboxInfo, tmp_path: Path, old: str, new: str) -> Path:
    text = info.manager_toml.read_text()
    assert old in text
    path = tmp_path / "manager.toml"
    path.write_text(text.replace(old, new, 1))
    path.chmod(0o600)
    return path


async def test_start_shows_configuration_and_checks(wizard: WizardFactory, fresh_sandbox: SandboxInfo) -> None:
    app = wizard()
    async with app.run_test(size=SIZE) as pilot:
        await probed(pilot)
        assert isinstance(app.screen, StartScreen)
        checks = checks_of(app)
        assert all(ok for ok, _ in checks.values()), checks
        assert str(fresh_sandbox.manager_toml) in checks["manager.toml"][1]
        assert f"127.0.0.1:{fresh_sandbox.ports.etcd}" in checks["etcd"][1]
        assert "20.03.11-21.09" in checks["PostgreSQL"][1]
        assert "20.09.29" in checks["manager"][1]
        assert "no unfinished run" in checks["run state"][1]
        assert app.screen.check_action("begin", ()) is True
        config = str(app.screen.query_one("#start-config").render())
        assert "namespace 'local'" in config and str(fresh_sandbox.plan_toml) in config
        await pilot.press("ctrl+q")
    assert app.return_code == 0
    assert app.controller.engine is None   # quitting from the start screen opened nothing


async def test_bad_toml_is_one_line_and_blocks_begin(wizard: WizardFactory, tmp_path: Path) -> None:
    bad = tmp_path / "manager.toml"
    bad.write_text("[etcd]\nnamespace = \"local\"\naddr = { host = \"127.0.0.1\", port = \n")
    app = wizard(config=str(bad))
    async with app.run_test(size=SIZE) as pilot:
        await probed(pilot)
        ok, detail = checks_of(app)["manager.toml"]
        assert not ok
        assert "is not valid TOML" in detail and "fix:" in detail and "\n" not in detail
        assert app.screen.check_action("begin", ()) is None      # greyed in the footer
        hint = str(app.screen.query_one("#start-hint").render())
        assert "ctrl+r" in hint and "Nothing has been written" in hint
        await pilot.press("enter")                              # does nothing
        await pilot.pause()
        assert isinstance(app.screen, StartScreen) and app.controller.engine is None
        await pilot.press("ctrl+q")


async def test_wrong_db_password_then_fixed_and_rechecked(wizard: WizardFactory, fresh_sandbox: SandboxInfo,
                                                          tmp_path: Path) -> None:
    pw = fresh_sandbox.creds.db_password
    cfg = edited_config(fresh_sandbox, tmp_path, f'password = "{pw}"', 'password = "not-the-password"')
    app = wizard(config=str(cfg))
    async with app.run_test(size=SIZE) as pilot:
        await probed(pilot)
        checks = checks_of(app)
        assert checks["etcd"][0] is True
        ok, detail = checks["PostgreSQL"]
        assert not ok and "fix:" in detail and "\n" not in detail
        assert "not-the-password" not in detail and pw not in detail
        assert app.screen.check_action("begin", ()) is None
        # the operator fixes the file in another pane and checks again
        cfg.write_text(fresh_sandbox.manager_toml.read_text())
        app.controller.probe_result = None
        await pilot.press("ctrl+r")
        await probed(pilot)
        assert checks_of(app)["PostgreSQL"][0] is True
        assert app.screen.check_action("begin", ()) is True
        await pilot.press("ctrl+q")


async def test_unreachable_etcd(wizard: WizardFactory, fresh_sandbox: SandboxInfo, tmp_path: Path) -> None:
    text = fresh_sandbox.manager_toml.read_text()
    port = fresh_sandbox.ports.etcd
    new = re.sub(rf"port = {port}\b", "port = 1", text, count=1)
    assert new != text
    cfg = tmp_path / "manager.toml"
    cfg.write_text(new)
    cfg.chmod(0o600)
    before = await etcd_namespace(fresh_sandbox)
    app = wizard(config=str(cfg))
    async with app.run_test(size=SIZE) as pilot:
        await probed(pilot)
        ok, detail = checks_of(app)["etcd"]
        assert not ok and "127.0.0.1:1" in detail and "unreachable" in detail and "fix:" in detail
        assert app.screen.check_action("begin", ()) is None
        await pilot.press("ctrl+q")
    assert await etcd_namespace(fresh_sandbox) == before


def _run_in_a_terminal(argv: list[str], env: dict[str, str], until: bytes = b"Begin", limit: float = 30.0) -> str:
    """The wizard in a real pseudo-terminal (120x36) until it has drawn `until` (and a little
    more), then ctrl+q; what it drew."""
    pid, fd = pty.fork()
    if pid == 0:                                             # the child: the wizard, as a user starts it
        os.execve(argv[0], argv, env)
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", 36, 120, 0, 0))
    out = bytearray()

    def read_for(limit: float, until: bytes | None = None) -> bool:
        deadline = time.monotonic() + limit
        while time.monotonic() < deadline and not (until and until in out):
            ready, _, _ = select.select([fd], [], [], 0.1)
            if ready:
                try:
                    chunk = os.read(fd, 65536)
                except OSError:                              # the child has gone: EIO on Linux
                    return False
                if not chunk:
                    return False
                out.extend(chunk)
        return True

    try:
        read_for(limit, until)
        read_for(0.5)                                        # the frame that carried it, to the end
        os.write(fd, b"\x11")                                # ctrl+q
        read_for(10.0)
    finally:
        with contextlib.suppress(ChildProcessError):
            if os.waitpid(pid, os.WNOHANG) == (0, 0):
                os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
        os.close(fd)
    return out.decode("utf-8", "replace")


def _colours(screen: str) -> set[tuple[int, int, int]]:
    """Every truecolor foreground and background the terminal was told to use."""
    found = set()
    for params in re.findall(r"\x1b\[([0-9;]*)m", screen):
        p = params.split(";")
        for i in range(len(p) - 4):
            if p[i] in ("38", "48") and p[i + 1] == "2":
                found.add((int(p[i + 2]), int(p[i + 3]), int(p[i + 4])))
    return found


def test_no_color_draws_in_greys_only_in_a_real_terminal(sandbox: SandboxInfo, tmp_path: Path) -> None:
    """NO_COLOR (no-color.org): the same start screen, drawn in a real terminal, uses colours
    without it and only greys with it."""
    argv = [str(Path(sys.executable).parent / "bai-registry-migrate"), "--config", str(sandbox.manager_toml),
            "--plan", str(sandbox.plan_toml), "--state-dir", str(tmp_path / "state")]
    env = {k: v for k, v in os.environ.items() if k not in ("NO_COLOR", "TEXTUAL_THEME")}
    env.update(TERM="xterm-256color", COLORTERM="truecolor")
    coloured = _colours(_run_in_a_terminal(argv, env))
    grey = _colours(_run_in_a_terminal(argv, {**env, "NO_COLOR": "1"}))
    assert any(len({r, g, b}) > 1 for r, g, b in coloured), sorted(coloured)[:10]   # the control: colours
    assert grey and all(r == g == b for r, g, b in grey), sorted(c for c in grey if len(set(c)) > 1)[:10]
