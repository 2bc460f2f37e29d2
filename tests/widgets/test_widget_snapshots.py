"""SVG snapshots of every widget in a harness App at a fixed size.

Plain `def` tests (snap_compare runs its own event loop; docs/textual-notes.md#snapshot-tests). Baselines
live in tests/widgets/__snapshots__/ and are (re)made with `pytest --snapshot-update` after
looking at the report. Deterministic: no blinking cursors, a fake clock for throughput, no time.
"""

from __future__ import annotations

from typing import Any

from test_widget_json_editor import validate
from textual.containers import Horizontal, Vertical
from widget_harness import MARKUP_BAIT, Harness

from widgets import (
    ChangeTable,
    ChecksView,
    ClusterHeader,
    CounterBar,
    EditableTable,
    FindingsView,
    JsonEditor,
    PullGrid,
    StepList,
    TranscriptView,
)
from widgets.items import ChangeItem, CheckItem, FindingItem, StepItem

SnapCompare = Any


def steps() -> list[StepItem]:
    return [
        StepItem("start", "Start", "verified"), StepItem("preflight", "Preflight", "applied"),
        StepItem("registry", "Registry", "inspecting"), StepItem("prepull", "Pre-pull images", "failed"),
        StepItem("aliases", f"Aliases {MARKUP_BAIT}", "blocked"), StepItem("allowlists", "Allowlists", "pending"),
        StepItem("maintenance", "Maintenance", "skipped"), StepItem("verify", "Verify", "rolled-back"),
        StepItem("cleanup", "Cleanup", "planned"), StepItem("summary", "Summary", "applying"),
    ]


def findings() -> list[FindingItem]:
    return [
        FindingItem("info", "registry.reachable", "Harbor answered at 127.0.0.1:8443"),
        FindingItem("blocking", "registry.unreachable",
                    f"The registry {MARKUP_BAIT} refused the connection; no image can be resolved.",
                    fix="start Harbor or correct the URL in the plan", details=["GET /v2/ -> refused"]),
        FindingItem("warning", "alias.stale", "alias python points at docker.io/lablup/python",
                    fix="review it in the aliases step"),
    ]


def test_shell_widgets_80x24(snap_compare: SnapCompare) -> None:
    """ClusterHeader, StepList (focused, current step marked), FindingsView, ChecksView, CounterBar."""

    def build():  # type: ignore[no-untyped-def]
        yield ClusterHeader()
        with Horizontal():
            yield StepList(steps())
            with Vertical():
                yield FindingsView(findings())
                yield ChecksView([CheckItem("etcd 127.0.0.1:2379", True, "v3.4, auth on"),
                                  CheckItem(f"PostgreSQL {MARKUP_BAIT}", False, "password authentication failed")])
                yield CounterBar()

    def setup(app: Harness) -> None:
        app.query_one(ClusterHeader).update_identity("default", "127.0.0.1:2379", "20.09.3", "20.09", True)
        step_list = app.query_one(StepList)
        step_list.current = "registry"
        step_list.focus()
        app.query_one(CounterBar).show({"repositories": 12, "tags": 40, "failed": 1}, title="rescan",
                                       styles={"failed": "error"})

    app = Harness(build, setup)
    app.CSS = "StepList { width: 26; } FindingsView { max-height: 14; }"
    assert snap_compare(app, terminal_size=(80, 24))


def test_change_table_80x24(snap_compare: SnapCompare) -> None:
    items = [
        ChangeItem("etcd config/docker/registry/cr.backend.ai", "put", None,
                   '{"": "https://cr.backend.ai", "type": "harbor2", "project": "stable,[etcd]"}',
                   "backend.ai mgr etcd put-json config/docker/registry/cr.backend.ai registry.json",
                   note=f"new registry {MARKUP_BAIT}"),
        ChangeItem("etcd config/docker/registry/index.docker.io", "delete", '{"": "https://registry-1.docker.io"}',
                   None, "backend.ai mgr etcd delete --prefix config/docker/registry/index.docker.io"),
        ChangeItem("sql domains[research].allowed_docker_registries", "update", "{index.docker.io}",
                   "{cr.backend.ai,index.docker.io}", "UPDATE domains SET ... WHERE name = 'research';"),
        ChangeItem("agent i-001", "pull", None, "cr.backend.ai/stable/python:3.9", "docker pull cr.backend.ai/stable/python:3.9"),
    ]

    def setup(app: Harness) -> None:
        app.query_one(ChangeTable).show(items)
        app.query_one(ChangeTable).table.focus()

    assert snap_compare(Harness(lambda: [ChangeTable()], setup), terminal_size=(80, 24))


def test_json_editor_invalid_80x24(snap_compare: SnapCompare) -> None:
    text = '{\n  "[etcd]": 1,\n  "url": "https://cr.backend.ai",\n  "project": ["stable"]\n}\n'

    async def run_before(pilot) -> None:  # type: ignore[no-untyped-def]
        await pilot.pause()
        pilot.app.query_one(JsonEditor).goto_issue(0)
        await pilot.pause()

    app = Harness(lambda: [JsonEditor(text, validate, cursor_blink=False)])
    assert snap_compare(app, terminal_size=(80, 24), run_before=run_before)


def test_editable_table_refusal_80x24(snap_compare: SnapCompare) -> None:
    columns = [("alias", "alias"), ("current", "current target"), ("proposed", "proposed target"),
               ("status", "status")]
    rows = [
        {"alias": "python", "current": "lablup/python:3.9", "proposed": "cr.backend.ai/stable/python:3.9",
         "status": "ok"},
        {"alias": MARKUP_BAIT, "current": "lablup/[etcd]", "proposed": "", "status": "unresolved"},
        {"alias": "r-base", "current": "lablup/r-base:4.0", "proposed": "cr.backend.ai/stable/r-base:4.0",
         "status": "risky"},
        {"alias": "old", "current": "lablup/old:1", "proposed": "", "status": "dropped"},
    ]

    def setup(app: Harness) -> None:
        table = app.query_one(EditableTable)
        table.set_rows(columns, rows, row_key="alias", editable="proposed",
                       styles={"python": "ok", MARKUP_BAIT: "error", "r-base": "warning", "old": "muted"})
        table.table.focus()

    table = EditableTable(validator=lambda row_id, v: f"{v!r} is not in the rescanned metadata",
                          cursor_blink=False)
    app = Harness(lambda: [table], setup)
    assert snap_compare(app, terminal_size=(80, 24), press=["down", "enter", "n", "o", "p", "e", "enter"])


class FixedClock:
    now = 100.0

    def __call__(self) -> float:
        return self.now


def grid_app(agents: int) -> Harness:
    clock = FixedClock()
    names = [f"i-agent-{i:03d}" for i in range(agents)]
    images = [f"cr.backend.ai/stable/{n}" for n in ("python:3.9-ubuntu20.04", "pytorch:1.8-py38-cuda11.1",
                                                    "tensorflow:2.5-py38", "r-base:4.0", "julia:1.6",
                                                    "ngc-pytorch:21.05", "[etcd]:1", "sftp-upload:latest")]
    states = ["done", "pulling", "extracting", "failed", "queued", "skipped", "done", "pulling", "kept", "removed"]

    def setup(app: Harness) -> None:
        grid = app.query_one(PullGrid)
        grid.set_matrix(names, images, labels={images[0]: "python:3.9", images[1]: "torch:1.8"})
        grid.flush()
        for r, agent in enumerate(names):
            for c, image in enumerate(images):
                state = states[(r * 3 + c) % len(states)]
                done = ((r * 7 + c * 13) % 100) * 3_000_000
                grid.update_cell(agent, image, state, done=done, total=300_000_000,
                                 message="manifest unknown: [bold]denied[/]" if state == "failed" else "")
        clock.now = 101.0
        grid.flush()
        grid.focus()

    return Harness(lambda: [PullGrid(clock=clock)], setup)


def test_pull_grid_80x24(snap_compare: SnapCompare) -> None:
    assert snap_compare(grid_app(40), terminal_size=(80, 24), press=["down", "right", "f"])


def test_pull_grid_160x48(snap_compare: SnapCompare) -> None:
    assert snap_compare(grid_app(300), terminal_size=(160, 48), press=["pagedown", "right", "right"])


def test_transcript_80x10(snap_compare: SnapCompare) -> None:
    def setup(app: Harness) -> None:
        log = app.query_one(TranscriptView)
        for i in range(12):
            log.append(f"12:00:{i:02d} registry put config/docker/registry {MARKUP_BAIT} #{i}")

    assert snap_compare(Harness(lambda: [TranscriptView()], setup, footer=False), terminal_size=(80, 10))
