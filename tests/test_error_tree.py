"""backends/errors.py draws the whole exception tree in its docstring; this keeps it true.

Every MigrateError subclass anywhere in backends/ must appear there under each of its bases,
with its exit status, and must carry `message` and `fix` (MigrateError.__init__ sets both).
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import re
from types import SimpleNamespace
from typing import Any

import backends
from backends import errors
from backends.errors import MigrateError


def _all_errors() -> set[type[MigrateError]]:
    for m in pkgutil.walk_packages(backends.__path__, "backends."):
        if not m.name.endswith("__main__"):
            importlib.import_module(m.name)
    out: set[type[MigrateError]] = set()
    todo = [MigrateError]
    while todo:
        c = todo.pop()
        if c not in out:
            out.add(c)
            todo.extend(c.__subclasses__())
    return out


def _drawn() -> dict[str, list[tuple[int, str, int]]]:
    """name -> [(indent, parent, exit status)] for every line of the drawn tree."""
    doc = errors.__doc__ or ""
    out: dict[str, list[tuple[int, str, int]]] = {}
    stack: list[tuple[int, str]] = []
    for line in doc.splitlines():
        m = re.match(r"^(\s*)[*+-] (\w+)\s+exit (\d)", line)
        if not m:
            continue
        indent, name, code = len(m[1]), m[2], int(m[3])
        while stack and stack[-1][0] >= indent:
            stack.pop()
        out.setdefault(name, []).append((indent, stack[-1][1] if stack else "", code))
        stack.append((indent, name))
    return out


def test_every_error_is_drawn_under_each_base_with_its_exit_status() -> None:
    drawn = _drawn()
    for cls in _all_errors():
        assert cls.__name__ in drawn, f"{cls.__module__}.{cls.__name__} is missing from backends/errors.py's tree"
        parents = {p for _i, p, _c in drawn[cls.__name__]}
        bases = {b.__name__ for b in cls.__bases__ if issubclass(b, MigrateError)} or {""}
        assert parents == bases, f"{cls.__name__}: drawn under {parents}, defined on {bases}"
        assert {c for _i, _p, c in drawn[cls.__name__]} == {cls.exit_code}, cls.__name__
    assert set(drawn) == {c.__name__ for c in _all_errors()}, "the tree names a class that does not exist"


def test_every_error_keeps_message_and_fix() -> None:
    """Each class built from its own constructor (dummy arguments by parameter name)."""
    special: dict[str, Any] = {"holder": {}, "status": 500, "conflicts": [],
                               "findings": [SimpleNamespace(message="blocked", fix="the fix")]}
    for cls in _all_errors():
        params = inspect.signature(cls.__init__).parameters
        kw = {n: special.get(n, f"<{n}>") for n, p in params.items()
              if n != "self" and p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL) and n != "fix"
              and p.default is p.empty}
        if "fix" in params:
            kw["fix"] = "the fix"
        e = cls(**kw)
        assert isinstance(e.message, str) and e.message, cls.__name__
        assert e.fix == "the fix" or ("fix" not in params and cls.__name__ != "StepBlocked"), cls.__name__
        assert str(e) == e.one_line(), cls.__name__
