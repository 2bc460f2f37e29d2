"""Escape sequences from the cluster or the plan never reach the operator's terminal or transcript raw.

Issue 14, finding 8. The text comes from where an operator does not control it: a domain name
and a session name in PostgreSQL, and the announcement in the plan (shown back in the plan
and written to etcd). Each carries an OSC title sequence, a CSI "clear screen", an 8-bit CSI
(0x9b), a carriage return with a backspace (which overwrite what was printed) and a
right-to-left override. The run goes through `plan` (every step walked, the cleanup gate
listing the live session) and a real `run --yes --steps preflight,maintenance`; then:

- stdout, stderr and transcript.md hold no C0 control but newline and tab, no DEL, no C1
  control and no bidirectional override: each shows as a visible escape (`\\x1b`, `\\u202e`);
- transcript.jsonl still holds the exact text (a JSON reader gets the same string back), with
  the DEL, C1 and bidi characters as JSON `\\u` escapes.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import pytest
from engine.support import Cli, read_events

from backends.sandbox.layout import SandboxInfo

pytestmark = [pytest.mark.docker]

EVIL = "\x1b]0;owned\x07\x1b[2J\x9b31m\r\bok\u202e"
FORBIDDEN = {chr(c) for c in [*range(0, 9), *range(11, 32), 0x7F, *range(0x80, 0xA0), 0x202E]}


async def _prepare(info: SandboxInfo) -> tuple[str, str]:
    domain, session = f"evil{EVIL}domain", f"evil{EVIL}session"
    conn = await asyncpg.connect(info.pg_dsn())
    try:
        await conn.execute(
            "INSERT INTO domains (name, description, is_active, total_resource_slots, allowed_vfolder_hosts,"
            " allowed_docker_registries, dotfiles) VALUES ($1, 'escapes', true, '{}', '{local}',"
            " $2::varchar[], ''::bytea)", domain, ["index.docker.io"])
        status = await conn.execute(
            "UPDATE kernels SET session_name = $1 WHERE session_name = 'notebook-1'", session)
        assert status == "UPDATE 1", status
    finally:
        await conn.close()
    return domain, session


def _strings(obj: object) -> Iterator[str]:
    if isinstance(obj, str):
        yield obj
    elif isinstance(obj, dict):
        for v in obj.values():
            yield from _strings(v)
    elif isinstance(obj, list):
        for v in obj:
            yield from _strings(v)


def _raw(text: str) -> list[str]:
    return sorted(repr(c) for c in FORBIDDEN & set(text))


def test_control_characters_from_the_cluster_and_the_plan_are_escaped(fresh_sandbox: SandboxInfo,
                                                                       tmp_path: Path) -> None:
    info = fresh_sandbox
    domain, _session = asyncio.run(_prepare(info))
    c0 = Cli.create(info, tmp_path)
    c = c0.with_plan(c0.plan_copy("plan-escapes.toml", [
        ('announcement = "Image registry migration in progress: new sessions are paused."',
         f'announcement = "maintenance {EVIL.encode("unicode_escape").decode().replace(chr(92) + "x", chr(92) + "u00")}"')]))

    walk = c.run("plan", timeout=300)
    assert walk.returncode == 3, walk.stdout[-3000:] + walk.stderr[-2000:]   # the cleanup gate: a live session
    assert "\\x1b]0;owned\\x07\\x1b[2J\\x9b31m\\r\\x08ok\\u202e" in walk.stdout
    escaped = "evil\\x1b]0;owned\\x07\\x1b[2J\\x9b31m\\r\\x08ok\\u202e"
    assert f"{escaped}domain" in walk.stdout and f"{escaped}session" in walk.stdout   # a plan line; the gate's list
    run = c.run("run", "--yes", "--steps", "preflight,maintenance", timeout=300)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-2000:]

    md = c.transcript_dir / "transcript.md"
    for name, text in (("plan stdout", walk.stdout), ("plan stderr", walk.stderr), ("run stdout", run.stdout),
                       ("run stderr", run.stderr), ("transcript.md", md.read_text())):
        assert not _raw(text), (name, _raw(text))
    events = read_events(c.transcript)
    assert any(e.get("kind") == "plan" and e.get("step") == "maintenance"
               and any(ch.get("after") == f"maintenance {EVIL}" for ch in e["changes"]) for e in events)
    assert any(domain in s for e in events for s in _strings(e))       # the data itself, exactly
    assert not _raw(c.transcript.read_text(encoding="utf-8").replace("\n", ""))
