"""A real run, recorded and replayed: the wizard without services, from what the engine really did.

The wizard's tests of layout, keys and dialogs do not need a cluster; they need the engine's
answers. A `Recorder` attached to a real `Engine` on a real cluster writes every life-cycle
call (inspect, plan, apply, verify, ...) as one JSON line: the events it emitted, what it
returned or raised, and the step's saved state after it. A `ReplayEngine` is the real
`Engine` class (every view the wizard asks for, every edit check, is the real code over the
recorded state) whose life-cycle calls, instead of touching a cluster, take the next
recorded answer for that step and method, emit its events and adopt its state. Nothing is
invented: a call the recording does not hold is refused with a message naming it.

Replaying costs about 1 ms per call instead of the scan, pulls and writes of a real one
(a whole walk of the sandbox: about 9 s live, well under a second replayed, Textual's own
drawing aside), and it needs no sandbox, so the wizard's tests run anywhere.

Recordings hold what the state file and the transcript hold (secrets sealed or redacted),
plus the probe's result and the plan and manager.toml the run was made with, their
passwords redacted (a replay never connects).
"""

from __future__ import annotations

import asyncio
import json
from collections import defaultdict, deque
from dataclasses import asdict
from pathlib import Path
from typing import Any

from .cluster import Cluster
from .config import Settings
from .engine import Engine
from .errors import MigrateError
from .events import Event, RunFinished, RunStarted, event_from_json
from .plan_file import PlanFile
from .probe import Check, ProbeResult, Unfinished
from .state import RunState, StepState
from .steps.base import Finding, StepPlan, Verification
from .transcript import Transcript

FORMAT = 1


def _state_json(engine: Engine, st: StepState) -> dict[str, Any]:
    """A step's state as the state file holds it: secrets sealed, anything secret-like redacted."""
    scope = (engine.state.namespace, engine.state.run_id)
    return engine.cluster.redactor.redact_obj(engine.cluster.vault.seal_tree(asdict(st), scope=scope))


def _value_json(method: str, value: Any) -> Any:
    if method == "inspect":
        return [f.to_json() for f in value]
    if method == "plan":
        return value.to_json()
    if method == "verify":
        return [c.to_json() for c in value.checks]
    if method == "rollback":
        return [c.to_json() if hasattr(c, "to_json") else c for c in value]
    return value if isinstance(value, (dict, list, str, int, float, bool, type(None))) else None


class Recorder:
    """Attached to a real engine (`engine.recorder = Recorder(path)` and as one of its sinks):
    appends one JSON line per life-cycle call."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.events: list[dict[str, Any]] = []
        self._mark = 0
        self._f = path.open("a", encoding="utf-8")

    def header(self, *, engine: Engine, probe: ProbeResult, manager_toml: str, plan_toml: str) -> None:
        """The run as it opened: its state, the probe's answer, the files it was made from."""
        redact = engine.cluster.redactor
        scope = (engine.state.namespace, engine.state.run_id)
        self._write({"format": FORMAT, "run": redact.redact_obj(engine.cluster.vault.seal_tree(asdict(engine.state),
                                                                                                scope=scope)),
                     "dry_run": engine.cluster.dry_run, "probe": probe_json(probe),
                     "manager_toml": _standin_secrets(manager_toml, engine), "plan_toml": _standin_secrets(plan_toml,
                                                                                                          engine)})

    def __call__(self, event: Event) -> None:
        self.events.append(json.loads(json.dumps(event.to_json(), default=str)))

    def begin(self) -> None:
        self._mark = len(self.events)

    def end(self, engine: Engine, step_id: str, method: str, value: Any = None,
            error: BaseException | None = None) -> None:
        events = self.events[self._mark:]
        st = engine.state.steps.get(step_id)
        rec: dict[str, Any] = {"step": step_id, "method": method, "events": events,
                               "state": _state_json(engine, st) if st is not None else None,
                               "edit_context": engine.step(step_id).edit_context if method == "load_edit_context"
                               else None,
                               "value": _value_json(method, value) if error is None else None}
        if error is not None:
            rec["error"] = {"message": getattr(error, "message", str(error)), "fix": getattr(error, "fix", None),
                            "exit_code": getattr(error, "exit_code", 1)}
        self._write(engine.cluster.redactor.redact_obj(rec))

    def _write(self, obj: dict[str, Any]) -> None:
        self._f.write(json.dumps(obj, ensure_ascii=False, default=str) + "\n")
        self._f.flush()

    def close(self) -> None:
        self._f.close()


def _standin_secrets(text: str, engine: Engine) -> str:
    """The configuration files with every known secret redacted (a replay never connects)."""
    return engine.cluster.redactor(text)


def probe_json(p: ProbeResult) -> dict[str, Any]:
    d = asdict(p)
    if p.unfinished is not None:
        d["unfinished"]["path"] = str(p.unfinished.path)
    d["state_dir"] = str(p.state_dir) if p.state_dir else None
    return d


def probe_from_json(d: dict[str, Any]) -> ProbeResult:
    u = d.get("unfinished")
    return ProbeResult([Check(**c) for c in d.get("checks", [])], d.get("manager_version"), d.get("era"),
                       Unfinished(u["run_id"], u["updated_at"], dict(u["statuses"]), Path(u["path"])) if u else None,
                       Path(d["state_dir"]) if d.get("state_dir") else None)


class Recording:
    """A recording read back: the header and, per (step, method), the calls in order."""

    def __init__(self, path: Path, *, start_at: str | None = None) -> None:
        """`start_at`: the run opens where the recording first reaches that step, everything
        before it already done (as a resumed run would), so a test of one screen does not walk
        through all the earlier ones."""
        lines = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
        if not lines or lines[0].get("format") != FORMAT:
            raise MigrateError(f"{path} is not a recording this version can replay",
                               fix="record it again with this version")
        self.path = path
        self.header = lines[0]
        self.start_at = start_at
        self.ordered = lines[1:]
        self.calls: dict[tuple[str, str], deque[dict[str, Any]]] = defaultdict(deque)
        for rec in self.ordered:
            self.calls[(rec["step"], rec["method"])].append(rec)
        if start_at is not None and not any(r["step"] == start_at for r in self.ordered):
            raise MigrateError(f"the recording {path.name} never reaches step {start_at}")

    @property
    def probe(self) -> ProbeResult:
        return probe_from_json(self.header["probe"])

    def write_config(self, directory: Path) -> tuple[Path, Path]:
        """manager.toml and plan.toml as the run used them (passwords stood in), for the wizard
        to read as it reads any configuration."""
        directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        config, plan = directory / "manager.toml", directory / "plan.toml"
        for path, text in ((config, self.header["manager_toml"]), (plan, self.header["plan_toml"])):
            path.write_text(text, encoding="utf-8")
            path.chmod(0o600)
        return config, plan


class ReplayEngine(Engine):
    """The real engine over a recorded run: views and edit checks are real, life-cycle calls are
    answered from the recording. `pace` seconds pass between recorded events (0: as fast as the
    event loop turns), so a test sees the same sequence of updates the live run produced."""

    recording: Recording
    pace: float = 0.0

    @classmethod
    async def replay(cls, recording: Recording, settings: Settings, plan_file: PlanFile, *,
                     transcript_dir: Path | None, sinks: list[Any], pace: float = 0.0) -> ReplayEngine:
        cluster = Cluster(settings, plan_file, dry_run=bool(recording.header.get("dry_run")))
        raw = dict(recording.header["run"])
        steps = {k: StepState(**v) for k, v in raw.pop("steps").items()}
        state = RunState(steps=steps, **raw)
        transcript = Transcript(transcript_dir, cluster.redactor) if transcript_dir else None
        eng = cls(cluster, state, None, sinks=sinks, transcript=transcript)
        eng.recording = recording
        eng.pace = pace
        eng.emit(RunStarted(state.run_id, state.namespace, cluster.dry_run, "replay", plan_file.source))
        if recording.start_at is not None:
            eng._fast_forward(recording.start_at)
        return eng

    def _fast_forward(self, step_id: str) -> None:
        """Adopts every recorded call before the first one of `step_id`, silently."""
        for rec in self.recording.ordered:
            if rec["step"] == step_id:
                return
            self.recording.calls[(rec["step"], rec["method"])].popleft()
            if rec.get("state") is not None:
                self._adopt_state(rec["step"], rec["state"])
            self._adopt(rec)

    def _adopt_state(self, step_id: str, raw: dict[str, Any]) -> None:
        """The step's recorded state, in place: a step object made earlier keeps reading the
        run's state through the same StepState (a new object would leave it a stale copy)."""
        new = StepState(**raw)
        cur = self.state.steps.get(step_id)
        if cur is None:
            self.state.steps[step_id] = new
        else:
            cur.__dict__.update(new.__dict__)

    def _adopt(self, rec: dict[str, Any]) -> None:
        """The caches a life-cycle call fills, from its recorded answer."""
        step_id, method, value = rec["step"], rec["method"], rec.get("value")
        if rec.get("error"):
            return
        if method == "inspect":
            self.findings[step_id] = [Finding.from_json(f) for f in value]
        elif method == "load_edit_context":
            self.step(step_id).edit_context = dict(rec.get("edit_context") or {})
        elif method == "plan":
            self.plans[step_id] = StepPlan.from_json(value)
            self._planned_from[step_id] = type(self.step(step_id)).input_key(self.cluster.plan)
        elif method == "verify":
            self.verifications[step_id] = Verification.from_json(value)

    async def close(self, status: str | None = None, exit_code: int = 0, message: str = "") -> None:
        if status is not None:
            self.emit(RunFinished(status, exit_code, message))
        if self.transcript is not None:
            self.transcript.close()

    async def _answer(self, step_id: str, method: str) -> dict[str, Any]:
        queue = self.recording.calls.get((step_id, method))
        if not queue:
            raise MigrateError(f"the recording {self.recording.path.name} holds no further {method} of step "
                               f"{step_id}", fix="record a run that does this (python -m tests.tui.record)")
        rec = queue.popleft()
        last: float | None = None
        for raw in rec["events"]:
            event = event_from_json(raw)
            if self.pace and last is not None:
                await asyncio.sleep(min(max(event.ts - last, 0.0), 1.0) * self.pace)
            last = event.ts
            self.emit(event)
            await asyncio.sleep(0)
        if rec.get("state") is not None:
            self._adopt_state(step_id, rec["state"])
        if rec.get("error"):
            e = rec["error"]
            err = MigrateError(e["message"], fix=e.get("fix"))
            err.exit_code = int(e.get("exit_code", 1))
            raise err
        return rec

    async def inspect(self, step_id: str) -> list[Finding]:
        self._adopt(await self._answer(step_id, "inspect"))
        return self.findings[step_id]

    async def load_edit_context(self, step_id: str) -> None:
        self._adopt(await self._answer(step_id, "load_edit_context"))

    async def plan(self, step_id: str) -> StepPlan:
        self._adopt(await self._answer(step_id, "plan"))
        return self.plans[step_id]

    async def apply(self, step_id: str) -> dict[str, Any]:
        rec = await self._answer(step_id, "apply")
        return dict(rec["value"] or {})

    async def verify(self, step_id: str) -> Verification:
        self._adopt(await self._answer(step_id, "verify"))
        return self.verifications[step_id]

    async def rollback(self, step_id: str) -> list[Any]:
        rec = await self._answer(step_id, "rollback")
        return list(rec["value"] or [])

    async def skip(self, step_id: str, reason: str = "") -> None:
        await self._answer(step_id, "skip")

    async def _lift_freeze(self, step_id: str) -> None:
        if (step_id, "_lift_freeze") in self.recording.calls:
            await self._answer(step_id, "_lift_freeze")
