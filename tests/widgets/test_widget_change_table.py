"""ChangeTable: rows, the highlighted change's full command below, Highlighted, copy."""

from __future__ import annotations

from widget_harness import MARKUP_BAIT, Harness, screen_text

from widgets.change_table import ChangeTable
from widgets.items import ChangeItem

LONG_JSON = '{"": "https://cr.backend.ai", "type": "harbor2", "project": "stable,community,[etcd]"}'


def changes() -> list[ChangeItem]:
    return [
        ChangeItem("etcd config/docker/registry/cr.backend.ai", "put", None, LONG_JSON,
                   "backend.ai mgr etcd put-json config/docker/registry/cr.backend.ai registry.json",
                   note=f"new registry {MARKUP_BAIT}"),
        ChangeItem("etcd config/docker/registry/index.docker.io", "delete", '{"": "x"}', None,
                   "backend.ai mgr etcd delete --prefix config/docker/registry/index.docker.io"),
        ChangeItem(f"sql domains[{MARKUP_BAIT}]", "update", "{a}", "{a,b}", "UPDATE domains SET ..."),
    ]


def table_app() -> Harness:
    def setup(app: Harness) -> None:
        table = app.query_one(ChangeTable)
        table.show(changes())
        table.table.focus()

    return Harness(lambda: [ChangeTable(id="changes")], setup)


async def test_rows_and_detail_of_the_highlighted_change() -> None:
    app = table_app()
    async with app.run_test(size=(80, 24), message_hook=lambda m: app.record(m)) as pilot:
        await pilot.pause()
        text = screen_text(app)
        assert "target" in text and "action" in text and "before" in text and "after" in text
        assert "—" in text, "an absent before/after is an em dash, not None"
        assert "$ backend.ai mgr etcd put-json config/docker/registry/cr.backend.ai" in text
        assert f"note: new registry {MARKUP_BAIT}" in text
        assert "[etcd]" in text and "change 1 of 3" in text
        assert app.of_type(ChangeTable.Highlighted)[-1].index == 0
        await pilot.press("down", "down")
        highlighted = app.of_type(ChangeTable.Highlighted)
        assert [m.index for m in highlighted] == [0, 1, 2]
        assert highlighted[-1].item.action == "update"
        assert f"sql domains[{MARKUP_BAIT}]" in screen_text(app)
        assert "$ UPDATE domains SET ..." in screen_text(app)


async def test_long_values_are_cut_in_the_table_and_shown_whole_below() -> None:
    app = table_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        text = screen_text(app)
        assert "…" in text, "long target/after cut in the row"
        assert "stable,community,[etcd]" in text, "the full after value in the detail panel"


async def test_copy_command_and_reshow_keeps_index() -> None:
    app = table_app()
    async with app.run_test(size=(80, 24)) as pilot:
        table = app.query_one(ChangeTable)
        await pilot.press("down", "c")
        assert app.clipboard == changes()[1].command
        table.show(changes()[:2])
        await pilot.pause()
        assert table.highlighted_index == 1
        table.show([])
        await pilot.pause()
        assert table.highlighted_index is None
        assert "No changes" in screen_text(app)
