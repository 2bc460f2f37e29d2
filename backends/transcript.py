"""The run transcript: JSON Lines for machines, Markdown for people, both written as it goes.

Every event passes through the redactor before it touches a file, so a password that slipped
into an error message or a subprocess' output still comes out as `***`. Markdown keeps what a
reviewer needs (findings, each change with before/after and its manual command, verification)
and summarises pull progress to its final state per agent and image.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from pathlib import Path
from typing import Any, TextIO

from .errors import ConfigError, MigrateError
from .events import (
    ChangeApplied,
    Event,
    FindingEvent,
    LogLine,
    PlanReady,
    Progress,
    PullProgress,
    RunFinished,
    RunStarted,
    StepStatus,
    VerifyResult,
)
from .secrets import Redactor
from .textsafe import json_line_safe, safe_event

FINAL_PULL_STATES = {"done", "failed", "skipped", "removed", "kept"}


class TranscriptError(MigrateError):
    """The transcript could not be written: the run stops rather than go on unrecorded."""


def _open_private(path: Path, mode: str = "a") -> TextIO:
    flags = os.O_WRONLY | os.O_CREAT | (os.O_APPEND if mode == "a" else os.O_TRUNC)
    fd = os.open(path, flags, 0o600)
    os.chmod(path, 0o600)
    return os.fdopen(fd, mode, encoding="utf-8")


def _md_cell(v: str | None) -> str:
    if v is None:
        return "_(absent)_"
    s = v.replace("|", "\\|").replace("\n", " ")
    return f"`{s}`" if s else "`\"\"`"


class Transcript:
    """Appends to `<dir>/transcript.jsonl` and `<dir>/transcript.md` (both 0600)."""

    def __init__(self, directory: Path, redactor: Redactor) -> None:
        self.dir = directory
        self.redact = redactor
        self.jsonl_path = self.dir / "transcript.jsonl"
        self.md_path = self.dir / "transcript.md"
        try:
            self.dir.mkdir(parents=True, exist_ok=True, mode=0o700)
            for d in (self.dir, self.dir.parent):
                if d.name in ("transcripts",) or d == self.dir:
                    os.chmod(d, 0o700)
            self._jsonl = _open_private(self.jsonl_path)
            self._md = _open_private(self.md_path)
        except OSError as e:
            raise ConfigError(f"the transcript cannot be written to {self.dir} ({e.strerror or type(e).__name__})",
                              key="--transcript", fix="pass --transcript DIR with a writable directory") from None
        self._current_step: str | None = None
        self._pull_final: dict[tuple[str, str, str], PullProgress] = {}

    def close(self) -> None:
        try:
            self._flush_pulls()
        finally:
            for f in (self._jsonl, self._md):
                if not f.closed:
                    with contextlib.suppress(OSError):   # a full disk: what was flushed is kept
                        f.close()

    def __call__(self, event: Event) -> None:
        self.write(event)

    def write(self, event: Event) -> None:
        # JSON escapes C0 controls itself; DEL, C1 and bidi characters are escaped too (the same
        # data to a JSON reader), and the Markdown shows them as visible escapes (textsafe).
        line = json_line_safe(json.dumps(self.redact.redact_obj(event.to_json()), ensure_ascii=False,
                                         sort_keys=True))
        try:
            self._jsonl.write(line + "\n")
            self._jsonl.flush()
            md = self._markdown(safe_event(event))
            if md:
                self._md.write(self.redact.redact(md))
                self._md.flush()
        except OSError as e:
            raise TranscriptError(f"cannot write the transcript in {self.dir} ({e.strerror or type(e).__name__})",
                                  fix="free space on that file system or make it writable, then run the same "
                                      "command again to resume") from None

    # -- markdown -----------------------------------------------------------------------
    def _heading(self, step: str) -> str:
        if step == self._current_step:
            return ""
        self._flush_pulls()
        self._current_step = step
        return f"\n## Step `{step}`\n\n"

    def _markdown(self, e: Event) -> str:
        stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(e.ts))
        if isinstance(e, RunStarted):
            mode = "dry run (nothing written)" if e.dry_run else "live"
            return (f"# bai-registry-migrate transcript\n\n- run: `{e.run_id}`{' (resumed)' if e.resumed else ''}\n"
                    f"- started: {stamp}\n- namespace: `{e.namespace}`\n- mode: {mode}\n- tool: {e.version}\n"
                    f"- plan: `{e.plan or '(defaults)'}`\n")
        if isinstance(e, StepStatus):
            return self._heading(e.step) + f"- {stamp} **{e.status}**{': ' + e.message if e.message else ''}\n"
        if isinstance(e, FindingEvent):
            fix = f" — fix: {e.fix}" if e.fix else ""
            return self._heading(e.step) + f"- {e.severity.upper()} `{e.code}`: {e.message}{fix}\n"
        if isinstance(e, PlanReady):
            out = self._heading(e.step) + f"\n**Plan** — {e.summary}\n\n"
            if e.changes:
                out += "| target | action | before | after | equivalent command |\n|---|---|---|---|---|\n"
                for c in e.changes:
                    out += (f"| {_md_cell(c['target'])} | {c['action']} | {_md_cell(c.get('before'))} | "
                            f"{_md_cell(c.get('after'))} | {_md_cell(c.get('command'))} |\n")
            return out + "\n"
        if isinstance(e, ChangeApplied):
            return self._heading(e.step) + (f"- {stamp} changed {_md_cell(e.target)} ({e.action}): "
                                            f"{_md_cell(e.before)} → {_md_cell(e.after)} — `{e.command}`\n")
        if isinstance(e, Progress):
            if e.phase in ("phase", "summary"):
                return self._heading(e.step) + f"- {stamp} {e.message}\n"
            return ""
        if isinstance(e, PullProgress):
            if e.state in FINAL_PULL_STATES:
                self._pull_final[(e.step, e.agent, e.image)] = e
            return ""
        if isinstance(e, VerifyResult):
            out = self._heading(e.step) + f"\n**Verification: {'passed' if e.ok else 'FAILED'}**\n\n"
            for c in e.checks:
                mark = "✓" if c.get("ok") else "✗"
                out += f"- {mark} {c.get('name')}: {c.get('detail', '')}\n"
            return out + "\n"
        if isinstance(e, LogLine):
            if e.level in ("warning", "error"):
                return (self._heading(e.step) if e.step else "") + f"- {e.level.upper()}: {e.message}\n"
            return ""
        if isinstance(e, RunFinished):
            self._flush_pulls()
            return (f"\n---\n\n**Run {e.status}** at {stamp} (exit {e.exit_code}){': ' + e.message if e.message else ''}\n"
                    + (f"\n- cluster: {e.cluster}\n" if e.cluster else ""))
        return ""

    def _flush_pulls(self) -> None:
        if not self._pull_final:
            return
        rows = sorted(self._pull_final.values(), key=lambda p: (p.agent, p.image))
        out = "\n| agent | image | result | detail |\n|---|---|---|---|\n"
        for p in map(safe_event, rows):
            out += f"| `{p.agent}` | `{p.image}` | {p.state} | {p.message.replace('|', '/')} |\n"
        self._pull_final.clear()
        self._md.write(self.redact.redact(out + "\n"))
        self._md.flush()


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]
