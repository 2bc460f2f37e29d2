"""Text from elsewhere, made safe to print: control characters shown, never obeyed.

An announcement, a domain name, a session name or an error body can carry terminal escape
sequences (ESC [ ... ; the 8-bit CSI 0x9b; OSC strings that set the title or the clipboard),
backspaces and carriage returns that overwrite what was printed, or bidirectional overrides
that reorder it (CVE-2021-42574, "Trojan Source"). Whatever reaches the operator's terminal or
a transcript goes through here (issue 14, finding 8): C0 controls except tab, DEL, the C1
controls (U+0080-U+009F, Unicode category Cc) and the bidirectional formatting characters are
replaced by visible escapes (`\\x1b`, `\\u202e`); with `keep_newlines`, line feeds stay.
`str.translate` with a fixed table: linear in the text.
"""

from __future__ import annotations

import dataclasses
from typing import Any, TypeVar

T = TypeVar("T")

# Unicode bidirectional formatting characters (UAX #9): marks, embeddings, overrides, isolates.
BIDI = "\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"


def _table(keep_newlines: bool) -> dict[int, str]:
    t: dict[int, str] = {c: f"\\x{c:02x}" for c in range(0x20) if c != 0x09}
    t[0x0A] = "\\n"
    t[0x0D] = "\\r"
    t[0x7F] = "\\x7f"
    t.update({c: f"\\x{c:02x}" for c in range(0x80, 0xA0)})
    t.update({ord(ch): f"\\u{ord(ch):04x}" for ch in BIDI})
    if keep_newlines:
        del t[0x0A]
    return t


_ONE_LINE = _table(False)
_LINES = _table(True)
# In JSON text these characters can only stand inside strings, where \\u escapes mean the same.
_JSON = {c: f"\\u{c:04x}" for c in [0x7F, *range(0x80, 0xA0), *map(ord, BIDI)]}


def terminal_safe(text: str, *, keep_newlines: bool = False) -> str:
    return text.translate(_LINES if keep_newlines else _ONE_LINE)


def json_line_safe(line: str) -> str:
    """A JSON text (json.dumps already escapes C0) with DEL, C1 and bidi characters escaped too."""
    return line.translate(_JSON)


def safe_value(v: Any) -> Any:
    """Strings inside `v` (lists, tuples, dict keys and values) made one-line safe."""
    if isinstance(v, str):
        return terminal_safe(v)
    if isinstance(v, list):
        return [safe_value(x) for x in v]
    if isinstance(v, tuple):
        return tuple(safe_value(x) for x in v)
    if isinstance(v, dict):
        return {safe_value(k): safe_value(x) for k, x in v.items()}
    return v


def safe_event(e: T) -> T:
    """A copy of a dataclass event whose text fields are one-line safe (the same object if clean)."""
    if not dataclasses.is_dataclass(e) or isinstance(e, type):
        return e
    changes = {}
    for f in dataclasses.fields(e):
        if not f.init:
            continue
        v = getattr(e, f.name)
        nv = safe_value(v)
        if nv != v:
            changes[f.name] = nv
    return dataclasses.replace(e, **changes) if changes else e  # type: ignore[type-var]
