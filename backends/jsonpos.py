"""A small JSON parser that remembers where every value came from.

The registry editor must point at the offending field ("line 7, column 20: `project` must be
a comma-separated string"), and `json.loads` only knows positions for syntax errors. This
parser accepts exactly RFC 8259 JSON (it defers number and string decoding to `json`) and
returns the plain Python value plus a map from JSON path to (line, column), both 1-based.
Duplicate keys are reported, because `put-json` would silently keep only the last one.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

Path = tuple[str | int, ...]

_WS = re.compile(r"[ \t\n\r]*")
_NUMBER = re.compile(r"-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?")
_STRING = re.compile(r'"(?:[^"\\\x00-\x1f]|\\(?:["\\/bfnrt]|u[0-9a-fA-F]{4}))*"')


class JSONPosError(ValueError):
    def __init__(self, message: str, line: int, column: int) -> None:
        super().__init__(f"line {line}, column {column}: {message}")
        self.message = message
        self.line = line
        self.column = column


@dataclass
class Parsed:
    value: Any
    positions: dict[Path, tuple[int, int]] = field(default_factory=dict)   # where each value starts
    key_positions: dict[Path, tuple[int, int]] = field(default_factory=dict)  # where each key starts
    duplicates: list[tuple[Path, int, int]] = field(default_factory=list)

    def where(self, path: Path) -> tuple[int, int]:
        """Best position for `path`: its key, else its value, else the nearest ancestor."""
        p = tuple(path)
        while True:
            if p in self.key_positions:
                return self.key_positions[p]
            if p in self.positions:
                return self.positions[p]
            if not p:
                return (1, 1)
            p = p[:-1]


MAX_DEPTH = 32


class _Parser:
    def __init__(self, text: str) -> None:
        self.s = text
        self.i = 0
        self.out = Parsed(None)
        # line starts for offset -> (line, col)
        self._starts = [0] + [m.end() for m in re.finditer(r"\n", text)]

    def pos(self, i: int | None = None) -> tuple[int, int]:
        i = self.i if i is None else i
        lo, hi = 0, len(self._starts) - 1
        while lo < hi:
            mid = (lo + hi + 1) // 2
            if self._starts[mid] <= i:
                lo = mid
            else:
                hi = mid - 1
        return lo + 1, i - self._starts[lo] + 1

    def err(self, msg: str, i: int | None = None) -> JSONPosError:
        line, col = self.pos(i)
        return JSONPosError(msg, line, col)

    def ws(self) -> None:
        self.i = _WS.match(self.s, self.i).end()  # type: ignore[union-attr]

    def parse(self) -> Parsed:
        self.ws()
        if self.i >= len(self.s):
            raise self.err("the document is empty; expected a JSON object")
        self.out.value = self.value(())
        self.ws()
        if self.i != len(self.s):
            raise self.err("unexpected text after the end of the JSON document")
        return self.out

    def value(self, path: Path) -> Any:
        self.ws()
        if len(path) > MAX_DEPTH:
            # Bounded so that a deeply nested document is an error with a position, not a
            # RecursionError (issue 14: 100,000 levels gave a traceback).
            raise self.err(f"the document nests more than {MAX_DEPTH} levels deep (a registry document has 5)")
        self.out.positions[path] = self.pos()
        if self.i >= len(self.s):
            raise self.err("unexpected end of document; a value is missing")
        c = self.s[self.i]
        if c == "{":
            return self.obj(path)
        if c == "[":
            return self.arr(path)
        if c == '"':
            return self.string()
        for lit, val in (("true", True), ("false", False), ("null", None)):
            if self.s.startswith(lit, self.i):
                self.i += len(lit)
                return val
        m = _NUMBER.match(self.s, self.i)
        if m and m.end() > self.i:
            self.i = m.end()
            return json.loads(m.group(0))
        if c == "'":
            raise self.err("strings must use double quotes (\"), not single quotes")
        raise self.err(f"unexpected character {c!r}; expected a value")

    def string(self) -> str:
        m = _STRING.match(self.s, self.i)
        if not m:
            j = self.s.find('"', self.i + 1)
            nl = self.s.find("\n", self.i + 1)
            if j == -1 or (nl != -1 and nl < j):
                raise self.err("unterminated string (a closing \" is missing)")
            raise self.err("invalid character or escape in string")
        self.i = m.end()
        return json.loads(m.group(0))

    def obj(self, path: Path) -> dict[str, Any]:
        self.i += 1
        result: dict[str, Any] = {}
        self.ws()
        if self.s.startswith("}", self.i):
            self.i += 1
            return result
        while True:
            self.ws()
            if self.i >= len(self.s):
                raise self.err("unexpected end of document inside an object (a } is missing)")
            if self.s[self.i] != '"':
                if self.s[self.i] == "}":
                    raise self.err("trailing comma before } is not allowed in JSON")
                raise self.err("expected a key in double quotes")
            kpos = self.pos()
            key = self.string()
            sub = (*path, key)
            if key in result:
                self.out.duplicates.append((sub, *kpos))
            self.out.key_positions[sub] = kpos
            self.ws()
            if not self.s.startswith(":", self.i):
                raise self.err(f"expected ':' after key {key!r}")
            self.i += 1
            result[key] = self.value(sub)
            self.ws()
            if self.s.startswith(",", self.i):
                self.i += 1
                continue
            if self.s.startswith("}", self.i):
                self.i += 1
                return result
            raise self.err("expected ',' or '}' after a value in an object")

    def arr(self, path: Path) -> list[Any]:
        self.i += 1
        result: list[Any] = []
        self.ws()
        if self.s.startswith("]", self.i):
            self.i += 1
            return result
        while True:
            result.append(self.value((*path, len(result))))
            self.ws()
            if self.s.startswith(",", self.i):
                self.i += 1
                self.ws()
                if self.s.startswith("]", self.i):
                    raise self.err("trailing comma before ] is not allowed in JSON")
                continue
            if self.s.startswith("]", self.i):
                self.i += 1
                return result
            raise self.err("expected ',' or ']' after a value in a list")


def parse(text: str) -> Parsed:
    return _Parser(text).parse()
