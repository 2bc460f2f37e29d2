"""StepList, ClusterHeader, FindingsView, ChecksView, CounterBar, TranscriptView."""

from __future__ import annotations

from widget_harness import MARKUP_BAIT, Harness, screen_lines, screen_text

from widgets import (
    ChecksView,
    ClusterHeader,
    CounterBar,
    FindingsView,
    StepList,
    TranscriptView,
)
from widgets.items import STEP_STATUSES, CheckItem, FindingItem, StepItem
from widgets.step_list import STATUS_LOOK


def steps() -> list[StepItem]:
    return [StepItem(status, f"{status} {MARKUP_BAIT}" if status == "failed" else status.title(), status)
            for status in STEP_STATUSES if status != "current"]


async def test_step_list_glyph_per_status_and_markup_safe_titles() -> None:
    app = Harness(lambda: [StepList(id="steps")], lambda a: a.query_one(StepList).set_steps(steps()))
    async with app.run_test(size=(60, 20)) as pilot:
        await pilot.pause()
        lines = screen_lines(app)
        for item in steps():
            glyph = STATUS_LOOK[item.status][0]
            line = next(line for line in lines if item.title in line)
            assert line.lstrip().startswith(glyph), (item.status, line)
            assert line.rstrip().endswith(item.status), "status word shown when there is room"
        assert len({STATUS_LOOK[s][0] for s in STEP_STATUSES}) == len(STEP_STATUSES), "glyphs differ"


async def test_step_list_keyboard_and_current_marker() -> None:
    app = Harness(lambda: [StepList(steps(), id="steps")])
    async with app.run_test(size=(60, 20), message_hook=lambda m: app.record(m)) as pilot:
        step_list = app.query_one(StepList)
        step_list.current = "planned"
        step_list.focus()
        await pilot.pause()
        assert step_list.highlighted == 3, "the highlight follows the current step"
        line = next(line for line in screen_lines(app) if "Planned" in line)
        assert line.startswith("▸ ⋄ Planned")
        await pilot.press("down", "down", "enter")
        assert [m.step_id for m in app.of_type(StepList.Selected)] == ["applied"]
        await pilot.press("home", "enter", "end", "enter")
        assert [m.step_id for m in app.of_type(StepList.Selected)][-2:] == ["pending", "rolled-back"]
        step_list.set_steps([StepItem("rolled-back", "Again", "verified"), StepItem("x", "X")])
        assert step_list.highlighted == 0, "set_steps keeps the highlight on the same id"
        assert step_list.status_of("rolled-back") == "verified"


async def test_step_list_narrow_sidebar_truncates_titles() -> None:
    items = [StepItem("a", "A very long step title that cannot fit", "applied")]
    app = Harness(lambda: [StepList(items)], footer=False)
    app.CSS = "StepList { width: 16; }"
    async with app.run_test(size=(40, 5)) as pilot:
        await pilot.pause()
        assert screen_lines(app)[0].rstrip() == "  ✓ A very lon…"  # 16 - padding 1 - glyph columns 4


async def test_cluster_header_identity_badge_and_markup() -> None:
    app = Harness(lambda: [ClusterHeader()], footer=False)
    async with app.run_test(size=(100, 3)) as pilot:
        header = app.query_one(ClusterHeader)
        header.update_identity(MARKUP_BAIT, "127.0.0.1:2379", "20.09.3", "20.09", dry_run=True)
        await pilot.pause()
        line = screen_lines(app)[0]
        assert f"ns {MARKUP_BAIT} · etcd 127.0.0.1:2379 · manager 20.09.3 · era 20.09" in line
        assert line.rstrip().endswith("DRY RUN")
        assert header.size.height == 1
        header.update_identity("default", "127.0.0.1:2379", "20.09.3", "20.09", dry_run=False)
        await pilot.pause()
        assert "DRY RUN" not in screen_text(app)


async def test_cluster_header_keeps_badge_when_narrow() -> None:
    app = Harness(lambda: [ClusterHeader()], footer=False)
    async with app.run_test(size=(40, 3)) as pilot:
        app.query_one(ClusterHeader).update_identity("a-long-namespace", "127.0.0.1:2379", "20.09.3",
                                                     "20.09", dry_run=True)
        await pilot.pause()
        line = screen_lines(app)[0]
        assert line.startswith(" ns a-long-namespace") and "…" in line
        assert line.rstrip().endswith("DRY RUN")


async def test_findings_blocking_first_with_fix_and_details() -> None:
    items = [
        FindingItem("info", "i.code", "all fine"),
        FindingItem("warning", "w.code", "stale alias"),
        FindingItem("blocking", "b.code", f"registry {MARKUP_BAIT} unreachable", fix="start it",
                    details=["GET /v2/ -> refused", "[red]x[/]"]),
    ]
    app = Harness(lambda: [FindingsView(id="findings")])
    async with app.run_test(size=(80, 24)) as pilot:
        view = app.query_one(FindingsView)
        await view.show(items)
        await pilot.pause()
        assert view.has_blocking and view.has_class("-blocking")
        assert [i.severity for i in view.items] == ["blocking", "warning", "info"]
        lines = [line.strip() for line in screen_lines(app) if line.strip()]
        assert lines[0].startswith("1 blocking · 1 warning · 1 info")
        assert lines[1].startswith("✗ blocking") and "b.code" in lines[1]
        assert f"registry {MARKUP_BAIT} unreachable" in lines[2]
        assert lines[3] == "fix: start it" and lines[4] == "- GET /v2/ -> refused" and lines[5] == "- [red]x[/]"
        assert lines[6].startswith("! warning")
        await view.show([FindingItem("info", "x", "y")])
        assert not view.has_blocking


async def test_findings_empty_says_so() -> None:
    app = Harness(lambda: [FindingsView()])
    async with app.run_test(size=(80, 10)) as pilot:
        await pilot.pause()
        assert "✓ nothing found that needs attention" in screen_text(app)


async def test_checks_view_tick_and_cross() -> None:
    checks = [CheckItem("etcd", True, "127.0.0.1:2379"), CheckItem(f"db {MARKUP_BAIT}", False, "auth failed [x]")]
    app = Harness(lambda: [ChecksView(checks)])
    async with app.run_test(size=(80, 10)) as pilot:
        await pilot.pause()
        lines = screen_lines(app)
        assert lines[0].startswith("✓ etcd") and "127.0.0.1:2379" in lines[0]
        assert lines[1].startswith(f"✗ db {MARKUP_BAIT}") and "auth failed [x]" in lines[1]
        assert lines[0].index("127.0.0.1:2379") == lines[1].index("auth failed"), "details aligned"
        view = app.query_one(ChecksView)
        assert not view.all_ok and view.has_class("-failed")
        await view.show([CheckItem("etcd", True)])
        await pilot.pause()
        assert view.all_ok and "✗" not in screen_text(app)


async def test_counter_bar_shows_counters_literally() -> None:
    app = Harness(lambda: [CounterBar()])
    async with app.run_test(size=(100, 5)) as pilot:
        app.query_one(CounterBar).show({"repositories": 12, "tags [etcd]": 1234}, title="rescan [bold]")
        await pilot.pause()
        assert "rescan [bold]  repositories 12 · tags [etcd] 1,234" in screen_lines(app)[0]
        assert app.query_one(CounterBar).counters == {"repositories": 12, "tags [etcd]": 1234}


async def test_transcript_appends_literally_and_is_selectable() -> None:
    app = Harness(lambda: [TranscriptView()])
    async with app.run_test(size=(80, 10)) as pilot:
        log = app.query_one(TranscriptView)
        log.append(f"put {MARKUP_BAIT}")
        log.append("two\nlines")
        await pilot.pause()
        assert log.lines == [f"put {MARKUP_BAIT}", "two", "lines"]
        assert f"put {MARKUP_BAIT}" in screen_text(app)
        log.text_select_all()
        await pilot.pause()
        assert app.screen.get_selected_text() == log.text
