"""The registry JSON as the editor shows it: secrets masked, and put back when the text is used.

The plan's registry JSON usually carries the Harbor password. It must not be on screen (or in
screenshots, or a tmux scrollback): the editor shows `"***"` instead, and the text adopted into
the plan has the stored password back in place of every `"***"` left where a secret was. A
mask that cannot be put back (the registry was renamed, say) is a validation error at its
line:column: the operator types the password, and nothing is written meanwhile. Pure module.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

from backends.secrets import MASK, is_secret_key
from widgets.items import IssueItem

_TOKEN = re.compile(r'(?<!\\)"' + re.escape(MASK) + '"')


def _secret_values(doc: Any) -> Iterator[tuple[tuple[str, ...], str]]:
    """(registry name, key) -> value for every secret-looking key of every registry entry."""
    try:
        regs = doc["config"]["docker"]["registry"]
    except (KeyError, TypeError):
        return
    if not isinstance(regs, dict):
        return
    for name, entry in regs.items():
        if isinstance(entry, dict):
            for k, v in entry.items():
                if is_secret_key(k) and isinstance(v, str) and v:
                    yield (name, k), v


def _walk_masks(obj: Any, path: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    """Paths of every string value equal to the mask, in document order (= text order)."""
    if isinstance(obj, dict):
        for k, v in obj.items():
            yield from _walk_masks(v, (*path, k))
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            yield from _walk_masks(v, (*path, str(i)))
    elif obj == MASK:
        yield path


def _line_col(text: str, offset: int) -> tuple[int, int]:
    line = text.count("\n", 0, offset) + 1
    col = offset - (text.rfind("\n", 0, offset) + 1) + 1
    return line, col


class MaskedRegistryText:
    """Masks the secrets of `original` and unmasks edited text with them."""

    def __init__(self, original: str) -> None:
        self.original = original
        try:
            doc = json.loads(original)
        except ValueError:
            doc = None
        self.secrets: dict[tuple[str, ...], str] = dict(_secret_values(doc))
        masked = original
        for value in set(self.secrets.values()):
            masked = masked.replace(json.dumps(value, ensure_ascii=False), json.dumps(MASK))
            masked = masked.replace(json.dumps(value), json.dumps(MASK))
        self.masked = masked

    def unmask(self, text: str) -> tuple[str | None, list[IssueItem]]:
        """The real text for `text` from the editor, or None and the reasons it cannot be made."""
        if text == self.masked:
            return self.original, []
        try:
            doc = json.loads(text)
        except ValueError:
            return None, []   # the registry validator reports the syntax error with its position
        paths = list(_walk_masks(doc))
        tokens = list(_TOKEN.finditer(text))
        if not paths:
            return text, []
        if len(paths) != len(tokens):
            line, col = _line_col(text, tokens[0].start()) if tokens else (1, 1)
            return None, [IssueItem(line, col, f"{MASK} stands for a stored secret here, but the text around it "
                                    "cannot be matched", "secrets stay masked", "type the value in full")]
        issues: list[IssueItem] = []
        out, last = [], 0
        for path, tok in zip(paths, tokens, strict=True):
            key = (path[3], path[4]) if len(path) == 5 and path[:3] == ("config", "docker", "registry") else None
            value = self.secrets.get(key) if key else None
            out.append(text[last:tok.start()])
            if value is None:
                line, col = _line_col(text, tok.start())
                what = "/".join(path[3:]) or "/".join(path)
                issues.append(IssueItem(line, col, f"{what} is {MASK}, and there is no stored secret to put "
                                        "back in its place", "secrets stay masked",
                                        "type the real value (it is masked again in the transcript)"))
                out.append(tok.group(0))
            else:
                out.append(json.dumps(value, ensure_ascii=False))
            last = tok.end()
        out.append(text[last:])
        return (None, issues) if issues else ("".join(out), [])
