"""Cutting a column of similar strings so that each row still reads differently.

A plan's targets share long prefixes (`etcd config/docker/registry/cr.backend.ai/...`, five
times) or long suffixes (`sql domains[...].allowed_docker_registries`); cutting them at the end,
as `ellipsize` does, left five identical cells at 80 columns, and the operator could not tell
which row was which before applying. Here a value that does not fit keeps its start and its
end and drops the middle, at a separator where it can (`/`, `[`, `]`, `.`, `:`), and among the
forms that fit, one that no other value of the column could also be is chosen:
`etcd …/project`, `etcd config/…/type`, `sql domains[educati…`.

Whether a form is shared is checked against every distinct value of the column through two
sorted indexes (values, and values reversed), so the cost per row is a few binary searches,
not a scan of the column: a pre-pull plan has one row per agent and image.
"""

from __future__ import annotations

import re
from bisect import bisect_left, bisect_right
from collections.abc import Iterable

ELLIPSIS = "…"
HEAD_ENDS = "/[]"      # a kept start ends just after one of these: a whole path segment or subscript
TAIL_STARTS = {"/": 2, "[": 2, ".": 1, ":": 1}   # a kept end starts at one of these; 2: a whole segment
_SUBSCRIPT = re.compile(r"\[[^\[\]]+\]")
KIND_MAX = 10         # "etcd", "sql", "docker": a short first word says which system; kept whole


def _prefix_range(ordered: list[str], prefix: str) -> tuple[int, int]:
    return bisect_left(ordered, prefix), bisect_right(ordered, prefix + "\U0010ffff")


class DistinctCut:
    """The distinct values of one column; `cut(value, width)` shortens one of them."""

    def __init__(self, values: Iterable[str], *, kind_word: bool = False) -> None:
        self.values = sorted(set(values))
        self.reversed = sorted(v[::-1] for v in self.values)
        self.kind_word = kind_word
        self._memo: dict[tuple[str, int], str] = {}

    def _matches(self, head: str, tail: str, limit: int = 2) -> int:
        """How many distinct values start with `head` and end with `tail` (counting stops at
        `limit`: only "one" or "more than one" matters)."""
        lo, hi = _prefix_range(self.values, head)
        rlo, rhi = _prefix_range(self.reversed, tail[::-1])
        found = 0
        if hi - lo <= rhi - rlo:
            candidates = (v for v in self.values[lo:hi] if v.endswith(tail))
        else:
            candidates = (r[::-1] for r in self.reversed[rlo:rhi] if r[::-1].startswith(head))
        for v in candidates:
            if len(v) >= len(head) + len(tail):
                found += 1
                if found >= limit:
                    break
        return found

    def cut(self, value: str, width: int) -> str:
        """`value` in at most `width` cells (a plan repeats values: one per agent and image)."""
        if len(value) <= width:
            return value
        key = (value, width)
        if key not in self._memo:
            self._memo[key] = self._cut(value, width)
        return self._memo[key]

    def _cut(self, value: str, width: int) -> str:
        if width <= 1:
            return ELLIPSIS[:width]
        kind = ""
        if self.kind_word:
            first, space, _rest = value.partition(" ")
            if space and len(first) <= KIND_MAX and len(first) + 3 <= width:
                kind = first + " "
        rest = value[len(kind):]
        room = width - len(kind) - 1          # one cell for the ellipsis
        forms = sorted(_forms(rest, room), key=_score, reverse=True)
        for head, tail, _quality in forms:
            if self._matches(kind + head, tail) == 1:
                return kind + head + ELLIPSIS + tail
        # no form that fits is this value's alone (another value has the same ends): keep the start
        return kind + rest[:room] + ELLIPSIS


def _score(form: tuple[str, str, int]) -> tuple[bool, bool, int, int]:
    """A cut at separators first (`…/project` over `…end.ai/project`); then one that keeps a
    whole subscript, which names its row (`sql domains[research]…`); then the longest end, since
    the end of a path or a name says what it is (`…/project`, `…/python:3.9-ubuntu20.04`), a
    whole segment counting a few cells more than a dotted part; then the shortest start, so a
    start is kept only where the ends alone would read the same, and the rows look alike."""
    head, tail, quality = form
    subscript = _SUBSCRIPT.search(head) is not None or _SUBSCRIPT.search(tail) is not None
    return quality > 0, subscript, len(tail) + 4 * quality, -len(head)


def _forms(rest: str, room: int) -> list[tuple[str, str, int]]:
    """(head, tail, quality) of every way to keep at most `room` cells of `rest` from its start
    and end: cut at separators (quality 2 when both cuts keep whole segments, 1 when one keeps
    a dotted part or a tag), and the plain character cuts (quality 0)."""
    heads = [(0, 2)] + [(i + 1, 2) for i, c in enumerate(rest) if c in HEAD_ENDS]
    tails = [(len(rest), 2)] + [(i, TAIL_STARTS[c]) for i, c in enumerate(rest) if c in TAIL_STARTS]
    forms = [(rest[:h], rest[t:], min(hq, tq)) for h, hq in heads for t, tq in tails
             if t > h and h + len(rest) - t <= room and (h or t < len(rest))]
    if room > 0:
        forms += [(rest[:room], "", 0), ("", rest[len(rest) - room:], 0)]
    return forms
