"""Run state on disk: saved atomically after every transition, so a dropped link resumes.

One JSON file per cluster namespace (`state.json`), written with write-fsync-rename in a 0700
directory and mode 0600. Secrets inside backups are sealed by the vault before they reach
the disk; anything else that looks like a known secret is redacted.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
import uuid
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from .durable import fsync_dir
from .errors import ConfigError, MigrateError
from .secrets import Redactor
from .statuses import FINISHED, Status
from .vault import Vault

STATE_FILE = "state.json"


def default_state_dir(namespace: str) -> Path:
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "bai-registry-migrate" / namespace


@dataclass
class StepState:
    id: str
    status: Status = Status.PENDING
    inputs: dict[str, Any] = field(default_factory=dict)
    plan: dict[str, Any] | None = None
    backup: dict[str, Any] | None = None
    result: dict[str, Any] | None = None
    journal: list[dict[str, Any]] = field(default_factory=list)
    error: str | None = None
    attempts: int = 0
    started_at: float | None = None
    finished_at: float | None = None

    def __post_init__(self) -> None:
        self.status = Status(self.status)   # loaded from JSON as a plain string

    def journaled(self, key: str) -> bool:
        return any(j.get("key") == key for j in self.journal)

    def journal_value(self, key: str) -> Any:
        for j in reversed(self.journal):
            if j.get("key") == key:
                return j.get("value")
        return None


@dataclass
class RunState:
    run_id: str
    namespace: str
    started_at: float
    updated_at: float
    plan_source: str | None
    dry_run: bool
    steps: dict[str, StepState]
    finished: bool = False
    version: int = 1

    @classmethod
    def new(cls, namespace: str, step_ids: Iterable[str], *, plan_source: str | None, dry_run: bool) -> RunState:
        now = time.time()
        return cls(run_id=time.strftime("%Y%m%d-%H%M%S-") + uuid.uuid4().hex[:6], namespace=namespace,
                   started_at=now, updated_at=now, plan_source=plan_source, dry_run=dry_run,
                   steps={s: StepState(s) for s in step_ids})

    def step(self, step_id: str) -> StepState:
        if step_id not in self.steps:
            self.steps[step_id] = StepState(step_id)
        return self.steps[step_id]

    @property
    def unfinished(self) -> bool:
        return not self.finished and any(s.status is not Status.PENDING for s in self.steps.values())

    def current(self) -> str | None:
        for sid, s in self.steps.items():
            if s.status not in FINISHED:
                return sid
        return None


class StateSaveError(MigrateError):
    """The run state could not be written: the run stops, since a resume relies on it."""


class StateStore:
    def __init__(self, directory: Path, *, vault: Vault | None = None, redactor: Redactor | None = None) -> None:
        self.dir = directory
        self.vault = vault or Vault()
        self.redactor = redactor or Redactor()
        # Keys whose sealed values the last load could not open (seal key missing or another):
        # they stay sealed; only restoring those secret keys is impossible (issue 14, finding 5).
        self.unopened: list[str] = []

    @property
    def path(self) -> Path:
        return self.dir / STATE_FILE

    def ensure_dir(self) -> None:
        try:
            self.dir.mkdir(parents=True, exist_ok=True, mode=0o700)
            os.chmod(self.dir, 0o700)
        except OSError as e:
            raise ConfigError(f"state directory {self.dir} cannot be created ({e.strerror})",
                              fix="pass --state-dir DIR with a writable directory") from None

    def check_writable(self) -> None:
        """Refuses (exit 2, before anything is written) a state directory that cannot be written:
        the directory itself if it exists, else the nearest existing parent. access(2) reports
        a read-only file system even to root."""
        d = self.dir
        while not d.exists() and d != d.parent:
            d = d.parent
        if not os.access(d, os.W_OK | os.X_OK):
            where = str(self.dir) if d == self.dir else f"{self.dir} (its parent {d})"
            raise ConfigError(f"state directory {where} is not writable (rule: the run state is saved after "
                              "every transition)", key="--state-dir",
                              fix="pass --state-dir DIR with a writable directory")

    def exists(self) -> bool:
        return self.path.is_file()

    def load(self) -> RunState | None:
        try:
            raw = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as e:
            raise ConfigError(f"run state {self.path} is unreadable ({e})",
                              fix="move it aside to start over, or restore it from the transcript directory") from None
        except RecursionError:
            raise ConfigError(f"run state {self.path} is nested too deeply to be a run state",
                              fix="move it aside to start over") from None
        if not isinstance(raw, dict) or not isinstance(raw.get("steps"), dict):
            raise ConfigError(f"run state {self.path} is not a run state of this tool",
                              fix="move it aside to start over") from None
        self.unopened = []
        scope = (str(raw.get("namespace", "")), str(raw.get("run_id", "")))
        raw = self.vault.unseal_tree(raw, scope=scope, unopened=self.unopened)
        try:
            steps = {k: StepState(**v) for k, v in raw.pop("steps").items()}
            return RunState(steps=steps, **raw)
        except TypeError as e:
            raise ConfigError(f"run state {self.path} does not have the fields of a run state ({e})",
                              fix="move it aside to start over") from None

    def save(self, state: RunState) -> None:
        """write, fsync, rename: a crash leaves either the old or the new file, never half of one.

        A file system that refuses (full, read-only) is a StateSaveError naming the file and the
        cause: the previous state file is still whole, but what just happened is not in it."""
        self.ensure_dir()
        state.updated_at = time.time()
        data = self.redactor.redact_obj(self.vault.seal_tree(asdict(state), scope=(state.namespace, state.run_id)))
        # Not sort_keys: the steps mapping keeps the run's step order, which resume relies on.
        text = json.dumps(data, indent=1, ensure_ascii=False)
        tmp = self.path.with_name(f".{STATE_FILE}.{os.getpid()}.tmp")
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            try:
                with os.fdopen(fd, "w", encoding="utf-8") as f:
                    f.write(text)
                    f.flush()
                    os.fsync(f.fileno())
                os.replace(tmp, self.path)
            finally:
                with contextlib.suppress(OSError):
                    tmp.unlink()
            fsync_dir(self.dir)
        except OSError as e:
            raise StateSaveError(f"cannot save the run state to {self.path} ({e.strerror or type(e).__name__})",
                                 fix="free space on that file system or make it writable (or use --state-dir), "
                                     "then run the same command again: the last saved state resumes") from None

    def archive(self) -> Path | None:
        """Moves a finished or abandoned state aside (kept for the record, never deleted)."""
        if not self.exists():
            return None
        dest = self.dir / f"state-{time.strftime('%Y%m%d-%H%M%S')}.json"
        os.replace(self.path, dest)
        return dest
