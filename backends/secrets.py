"""Secrets that cannot leak by accident.

A `Secret` prints as `***` in str(), repr(), f-strings, logging and json; only `.reveal()`
gives the value, so a password can travel through settings, plans and events without ending
up in a transcript. `Redactor` scrubs known secret values from any text that came from
elsewhere (exception messages, subprocess output, HTTP error bodies).
"""

from __future__ import annotations

import base64
import re
from collections.abc import Iterable

MASK = "***"
# Values sealed by backends.vault are ciphertext, kept as they are: v2 (AES-GCM) is written,
# v1 (the earlier HMAC construction) is still read.
SEALED_V1 = "sealed:v1:"
SEALED_V2 = "sealed:v2:"
SEALED_PREFIXES = (SEALED_V1, SEALED_V2)


def is_sealed(value: object) -> bool:
    return isinstance(value, str) and value.startswith(SEALED_PREFIXES)


class Secret:
    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __bool__(self) -> bool:
        return bool(self._value)

    def __str__(self) -> str:
        return MASK

    def __repr__(self) -> str:
        return "Secret('***')"

    def __format__(self, spec: str) -> str:
        return MASK

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(("Secret", self._value))

    def __reduce__(self) -> object:  # pickling would carry the value out of the process
        raise TypeError("Secret values cannot be pickled")


def reveal(value: Secret | str | None) -> str | None:
    if value is None:
        return None
    if isinstance(value, Secret):
        return value.reveal()
    return value


# Keys whose values are secret wherever they appear (registry JSON, manager.toml, headers).
SECRET_KEYS = frozenset({
    "password", "passwd", "secret", "secret_key", "token", "access_token", "authorization",
    "x-registry-auth", "identitytoken", "auth",
})


def is_secret_key(key: str) -> bool:
    return key.strip().lower() in SECRET_KEYS


class Redactor:
    """Replaces every known secret, and its common encodings, with `***`."""

    def __init__(self, secrets: Iterable[str | Secret | None] = ()) -> None:
        self._values: set[str] = set()
        self._order: list[str] | None = None
        for s in secrets:
            self.add(s)

    def add(self, secret: str | Secret | None, *, user: str | None = None) -> None:
        value = reveal(secret)
        if not value or len(value) < 3:
            # Masking 1-2 character strings would shred ordinary text; such a
            # password is reported by the validators instead.
            return
        forms = {value}
        forms.add(base64.b64encode(value.encode()).decode())
        forms.add(base64.urlsafe_b64encode(value.encode()).decode())
        if user is not None:
            pair = f"{user}:{value}".encode()
            forms.add(base64.b64encode(pair).decode())
            forms.add(base64.urlsafe_b64encode(pair).decode())
        from urllib.parse import quote

        forms.add(quote(value, safe=""))
        self._values |= {f.rstrip("=") for f in forms if f}
        self._order = None

    def __call__(self, text: str) -> str:
        return self.redact(text)

    def redact(self, text: str) -> str:
        if not text:
            return text
        text = _AUTH_HEADER.sub(lambda m: f"{m.group(1)}{MASK}", text)
        text = _URL_CREDS.sub(lambda m: f"{m.group(1)}{MASK}@", text)
        # Longest first, so a value that contains another is masked whole. `str.replace` is a
        # substring search (CPython's fastsearch, which falls back to the two-way algorithm on
        # inputs that would make it slow): linear in the text for each value, unlike the one
        # alternation regex used before (issue 14: 40 KB took 11.6 s).
        for v in self._ordered():
            text = text.replace(v, MASK)
        return text

    def _ordered(self) -> list[str]:
        if self._order is None:
            self._order = sorted(self._values, key=lambda v: (-len(v), v))
        return self._order

    def redact_obj(self, obj: object) -> object:
        """Deep copy of JSON-like data with secret keys masked and secret values scrubbed."""
        if isinstance(obj, Secret):
            return MASK
        if isinstance(obj, dict):
            return {k: (MASK if isinstance(k, str) and is_secret_key(k) and v not in (None, "")
                        and not is_sealed(v)
                        else self.redact_obj(v)) for k, v in obj.items()}
        if isinstance(obj, (list, tuple)):
            return [self.redact_obj(v) for v in obj]
        if isinstance(obj, str):
            return obj if is_sealed(obj) else self.redact(obj)
        return obj


# Both patterns run in time linear in the text (issue 14: the URL pattern used to try every
# position of a long run of letters as the start of a scheme, so 40 KB took 11.6 s and a 3 MB
# announcement hung the run). A scheme is tried only where a run of scheme characters starts
# (the look-behind), and possessive quantifiers (`*+`, `++`, Python 3.11+, see "Possessive
# quantifiers" in https://docs.python.org/3/library/re.html) never give back what they took:
# none of these runs can contain the character that must follow it, so nothing is lost.
_AUTH_HEADER = re.compile(r"((?:Authorization|X-Registry-Auth)\s*+[:=]\s*+(?:Basic |Bearer )?)\S+", re.I)
_URL_CREDS = re.compile(r"(?<![a-z0-9+.-])([a-z0-9+.-]++://[^/\s:@]++:)[^@\s/]++@", re.I)
