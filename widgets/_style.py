"""Shared glyphs and theme-variable styles for the Content-rendered widgets.

Styles are Textual style strings naming theme variables, resolved by the App at render time, so
themes and NO_COLOR (Textual's monochrome filter) apply without any code here. Meaning never
rests on colour alone: every severity or status also has a glyph and, where room allows, a word.

`$text-muted` is "auto 60%" (a contrast colour), which only resolves inside CSS rules; inside
Content it renders as full white. `$foreground-muted` is the Content-safe muted colour.
`$text-accent` equals `$text-warning` in the default theme, so "active" uses `$text-primary`.

Glyphs are East-Asian-width "neutral" where we chose them (Unicode UAX #11;
docs/textual-notes.md#glyph-widths), so CJK-locale terminals keep columns aligned.
"""

from __future__ import annotations

from rich.style import Style

OK = "$text-success"
ERROR = "$text-error"
WARNING = "$text-warning"
ACTIVE = "$text-primary"
MUTED = "$foreground-muted"
LABEL = "$foreground-muted"
EMPHASIS = "bold"

SEVERITY_STYLE: dict[str, str] = {
    "blocking": f"{ERROR} bold",
    "error": f"{ERROR} bold",
    "warning": WARNING,
    "info": ACTIVE,
}
SEVERITY_GLYPH: dict[str, str] = {"blocking": "✗", "error": "✗", "warning": "!", "info": "i"}

ROW_STYLE: dict[str, str] = {"ok": OK, "warning": WARNING, "error": f"{ERROR} bold", "muted": f"{MUTED} italic"}
"""Named row styles accepted by EditableTable and CounterBar."""


def ellipsize(text: str, width: int) -> str:
    """Cut `text` to `width` cells with a trailing ellipsis; data must stay recognisable, so we
    keep the start (aliases and image names differ at the start more often than at the end)."""
    if width <= 0:
        return ""
    if len(text) <= width:
        return text
    if width == 1:
        return "…"
    return text[: width - 1] + "…"


def foreground_only(style: Style) -> Style:
    """The colour and text attributes of a component style, without its background.

    `get_component_rich_style(partial=True)` drops alpha (so `$text-muted`, "auto 60%", comes
    out white), while the full style blends correctly but carries the widget's background,
    which would paint over DataTable's cursor and zebra stripes. So: take the full style, keep
    the foreground.
    """
    return Style(color=style.color, bold=style.bold, dim=style.dim, italic=style.italic,
                 underline=style.underline, strike=style.strike, reverse=style.reverse)
