"""EditableTable: keyboard editing, refusal with the reason under the input, messages."""

from __future__ import annotations

from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import DataTable, Input
from widget_harness import MARKUP_BAIT, Harness, screen_text

from widgets.editable_table import EditableTable

COLUMNS = [("alias", "alias"), ("current", "current target"), ("proposed", "proposed target"),
           ("status", "status")]
KNOWN = {"cr.backend.ai/stable/python:3.9", "cr.backend.ai/stable/python:3.10"}


def rows() -> list[dict[str, str]]:
    return [
        {"alias": "python", "current": "lablup/python:3.9", "proposed": "cr.backend.ai/stable/python:3.9",
         "status": "ok"},
        {"alias": MARKUP_BAIT, "current": "lablup/[etcd]", "proposed": "", "status": "unresolved"},
        {"alias": "python3", "current": "lablup/python:3.10", "proposed": "cr.backend.ai/stable/python:3.10",
         "status": "ok"},
    ]


def must_exist(row_id: str, value: str) -> str | None:
    return None if value in KNOWN else f"{value!r} is not in the rescanned metadata"


def table_app() -> Harness:
    def setup(app: Harness) -> None:
        table = app.query_one(EditableTable)
        table.set_rows(COLUMNS, rows(), row_key="alias", editable="proposed",
                       styles={MARKUP_BAIT: "error", "python3": "muted"})
        table.table.focus()

    return Harness(lambda: [EditableTable(validator=must_exist, id="aliases", cursor_blink=False)], setup)


async def test_cells_are_not_markup_and_rows_are_keyed_by_id() -> None:
    app = table_app()
    async with app.run_test(size=(100, 20)) as pilot:
        await pilot.pause()
        text = screen_text(app)
        assert MARKUP_BAIT in text and "lablup/[etcd]" in text
        table = app.query_one(EditableTable)
        assert [r["alias"] for r in table.rows] == ["python", MARKUP_BAIT, "python3"]
        assert table.cursor_row_id == "python"


async def test_enter_edits_refuses_unknown_target_with_reason_and_keeps_cell() -> None:
    app = table_app()
    async with app.run_test(size=(100, 20), message_hook=lambda m: app.record(m)) as pilot:
        table = app.query_one(EditableTable)
        await pilot.press("down")
        assert table.cursor_row_id == MARKUP_BAIT
        assert app.of_type(EditableTable.RowHighlighted)[-1].row_id == MARKUP_BAIT
        await pilot.press("enter")
        assert table.editing == MARKUP_BAIT and app.focused is table.input
        assert table.input.value == "", "prefilled with the current (empty) value"
        await pilot.press(*"nope", "enter")
        await pilot.pause()
        assert table.editing == MARKUP_BAIT, "a refused value keeps the editor open"
        assert "✗ 'nope' is not in the rescanned metadata" in screen_text(app)
        assert table.input.has_class("-invalid")
        assert not app.of_type(EditableTable.Edited)
        assert table.row(MARKUP_BAIT)["proposed"] == ""
        # typing on re-checks; fixing the value clears the reason, Enter accepts it
        await pilot.press("ctrl+u", *"cr.backend.ai/stable/python:3.9")
        await pilot.pause()
        assert "not in the rescanned metadata" not in screen_text(app)
        await pilot.press("enter")
        await pilot.pause()
        edited = app.of_type(EditableTable.Edited)
        assert [(e.row_id, e.value) for e in edited] == [(MARKUP_BAIT, "cr.backend.ai/stable/python:3.9")]
        assert table.editing is None and app.focused is table.table
        cell = table.table.get_cell(MARKUP_BAIT, "proposed")
        assert cell.plain == "cr.backend.ai/stable/python:3.9"
        assert table.row(MARKUP_BAIT)["proposed"] == "cr.backend.ai/stable/python:3.9"


async def test_e_prefills_and_escape_cancels_without_change() -> None:
    app = table_app()
    async with app.run_test(size=(100, 20), message_hook=lambda m: app.record(m)) as pilot:
        table = app.query_one(EditableTable)
        await pilot.press("e")
        assert table.editing == "python"
        assert table.input.value == "cr.backend.ai/stable/python:3.9"
        assert "Editing proposed target of python" in screen_text(app)
        await pilot.press("backspace", "escape")
        assert table.editing is None and app.focused is table.table
        assert table.row("python")["proposed"] == "cr.backend.ai/stable/python:3.9"
        assert not app.of_type(EditableTable.Edited)
        assert "Editing" not in screen_text(app)


async def test_escape_reaches_the_screen_when_not_editing() -> None:
    """The table's Escape binding is disabled outside an edit, so a screen's "back" still works."""

    class Step(Screen[None]):
        BINDINGS = [Binding("escape", "back", "Back")]
        went_back = False

        def compose(self):  # type: ignore[no-untyped-def]
            yield EditableTable(validator=must_exist, cursor_blink=False)

        def on_mount(self) -> None:
            self.query_one(EditableTable).set_rows(COLUMNS, rows(), row_key="alias", editable="proposed")
            self.query_one(DataTable).focus()

        def action_back(self) -> None:
            self.went_back = True

    app = Harness(lambda: [])
    async with app.run_test(size=(100, 20)) as pilot:
        step = Step()
        await app.push_screen(step)
        await pilot.press("escape")
        assert step.went_back
        step.went_back = False
        await pilot.press("enter", "escape")
        assert not step.went_back, "while editing, Escape cancels the edit instead"
        assert step.query_one(EditableTable).editing is None


async def test_set_rows_keeps_cursor_on_same_row_id_and_validator_crash_refuses() -> None:
    app = table_app()
    async with app.run_test(size=(100, 20)) as pilot:
        table = app.query_one(EditableTable)
        await pilot.press("down", "down")
        assert table.cursor_row_id == "python3"
        reordered = list(reversed(rows()))
        table.set_rows(COLUMNS, reordered, row_key="alias", editable="proposed")
        await pilot.pause()
        assert table.cursor_row_id == "python3"

        def broken(row_id: str, value: str) -> str | None:
            raise ValueError("metadata not loaded")

        table.validator = broken
        await pilot.press("enter", "x", "enter")
        assert table.editing == "python3"
        assert "cannot check this value (ValueError: metadata not loaded)" in screen_text(app)


async def test_focus_leaving_the_widget_abandons_the_edit() -> None:
    app = Harness(lambda: [EditableTable(validator=must_exist, cursor_blink=False), Input(id="other")])
    async with app.run_test(size=(100, 20)) as pilot:
        table = app.query_one(EditableTable)
        table.set_rows(COLUMNS, rows(), row_key="alias", editable="proposed")
        table.table.focus()
        await pilot.press("e")
        assert table.editing == "python"
        app.query_one("#other", Input).focus()
        await pilot.pause()
        assert table.editing is None


async def test_row_colours_follow_the_app_theme() -> None:
    app = table_app()
    async with app.run_test(size=(100, 20)) as pilot:
        table = app.query_one(EditableTable)
        await pilot.pause()

        def error_row_colour() -> str:
            cell = table.table.get_cell(MARKUP_BAIT, "alias")
            return cell.style.color.get_truecolor().hex.upper()

        assert error_row_colour() == app.theme_variables["text-error"].upper()
        app.theme = "textual-light"
        await pilot.pause()
        assert error_row_colour() == app.theme_variables["text-error"].upper()
