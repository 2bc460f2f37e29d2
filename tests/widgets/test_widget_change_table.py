"""ChangeTable: rows, the highlighted change's full command below, Highlighted, copy."""

from __future__ import annotations

from widget_harness import MARKUP_BAIT, Harness, screen_text

from widgets.change_table import ChangeTable
from widgets.distinct_cut import DistinctCut
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


REGISTRY_KEYS = ["etcd config/docker/registry/cr.backend.ai", *(f"etcd config/docker/registry/cr.backend.ai/{k}"
                                                                 for k in ("type", "project", "username", "password"))]
DOMAINS = [f"sql domains[{d}].allowed_docker_registries" for d in ("archive", "default", "education", "research")]


def same_prefix_changes() -> list[ChangeItem]:
    """A registry plan's keys (one prefix, different ends) and an allowlists plan's domains
    (one prefix and one suffix, different middles), with values as long as the real ones."""
    return ([ChangeItem(t, "put", None, "http://127.0.0.1:43659", f"put {t}") for t in REGISTRY_KEYS]
            + [ChangeItem(t, "update", "{index.docker.io,registry.research.local:5000}",
                          "{registry.research.local:5000,cr.backend.ai}", f"UPDATE {t}") for t in DOMAINS])


async def test_rows_that_share_a_long_prefix_read_differently_at_80_columns() -> None:
    """At 80x24 the step screen gives the plan 55 columns: five registry keys used to read
    `etcd config/docke…` five times. Each row must show what tells it apart."""
    def setup(app: Harness) -> None:
        app.query_one(ChangeTable).show(same_prefix_changes())

    app = Harness(lambda: [ChangeTable(id="changes")], setup)
    app.CSS = "ChangeTable { width: 55; height: 1fr; }"
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        table = app.query_one(ChangeTable).table
        shown = [str(table.get_row_at(r)[0]) for r in range(table.row_count)]
        assert len(set(shown)) == len(shown), shown
        assert shown[:5] == ["etcd …/cr.backend.ai", "etcd …/type", "etcd …/project", "etcd …/username",
                             "etcd …/password"]
        for s, domain in zip(shown[5:], ("archive", "default", "education", "research"), strict=True):
            assert s.startswith(f"sql domains[{domain[:7]}"), s
        text = screen_text(app)
        for s in shown:
            assert s in text                       # on screen, not only in the table's data
        assert table.virtual_size.width <= table.size.width, "no column under a horizontal scrollbar"
        # the highlighted row's target is in full below the table
        assert f"target: {REGISTRY_KEYS[0]}" in text


def test_distinct_cut_keeps_what_differs() -> None:
    cut = DistinctCut(REGISTRY_KEYS + ["etcd images/cr.backend.ai/*", "manager"], kind_word=True)
    assert cut.cut("manager", 20) == "manager"                                   # fits: unchanged
    assert cut.cut(REGISTRY_KEYS[2], 28) == "etcd …/cr.backend.ai/project"       # the end, at a separator
    assert cut.cut(REGISTRY_KEYS[2], 16) == "etcd …/project"
    domains = DistinctCut(DOMAINS, kind_word=True)
    assert domains.cut(DOMAINS[2], 28) == "sql domains[education]…"             # the middle is what differs
    assert domains.cut(DOMAINS[2], 20) == "sql domains[educati…"
    alone = DistinctCut(DOMAINS[3:], kind_word=True)
    assert alone.cut(DOMAINS[3], 28) == "sql domains[research]…"                # a subscript names its row
    refs = DistinctCut(["cr.backend.ai/stable/python:3.6-ubuntu18.04", "cr.backend.ai/stable/python:3.9-ubuntu20.04"])
    assert refs.cut("cr.backend.ai/stable/python:3.9-ubuntu20.04", 24) == "…/python:3.9-ubuntu20.04"
    for width in range(2, 50):                                                    # never wider than asked
        for value in [*REGISTRY_KEYS, *DOMAINS]:
            assert len(cut.cut(value, width)) <= width and len(domains.cut(value, width)) <= width
