"""Keeping secret values out of everything robo writes: logs, rows, evidence.

A secret can show up encoded. The redactor masks, for every secret value:

- the raw value, its JSON-escaped forms and its HTML-escaped forms;
- every URL-encoded form, inside any longer string (a query, a form body
  ``password=s%40cret&x=1``): each character may be literal or percent-encoded
  (either hex case), a space may be ``+`` or ``%20``, so ``quote``,
  ``quote_plus``, JavaScript's ``encodeURIComponent`` and browsers' form
  encoding are all caught;
- its base64 form (standard and URL-safe alphabets) at any alignment inside a
  longer base64 string, such as an ``Authorization: Basic base64(user:secret)``
  header: a secret that starts 0, 1 or 2 bytes into a 3-byte group is encoded
  differently, so each alignment is encoded once with that many prefix bytes and
  the characters that also depend on neighbouring bytes are dropped.

The patterns are built once per new secret, not on every string masked.
"""

from __future__ import annotations

import base64
import html
import json
import re
import sys
import threading
import traceback
from typing import Any
from urllib.parse import quote, quote_plus

MASK = "[secret]"
MIN_LENGTH = 4  # shorter values would mask ordinary words; secrets are never that short
# Characters a URL encoder never escapes; every other character may appear percent-encoded.
_NEVER_ENCODED = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789")


def base64_fragments(raw: bytes) -> list[str]:
    """The base64 characters that encode ``raw`` wherever it sits in a longer byte string.

    For a prefix of 0, 1 and 2 bytes, keep only the characters whose 6 bits all
    come from ``raw``: those are the same whatever bytes surround it.
    """
    fragments: list[str] = []
    for prefix in range(3):
        first = -(-8 * prefix // 6)  # ceil: the first character made of raw's bits only
        last = (8 * prefix + 8 * len(raw)) // 6  # exclusive: later ones mix in what follows
        for encode in (base64.b64encode, base64.urlsafe_b64encode):
            fragment = encode(b"\0" * prefix + raw).decode("ascii")[first:last]
            if fragment:
                fragments.append(fragment)
    return fragments


def _url_encoded_pattern(value: str) -> str:
    """A regular expression matching ``value`` under any URL encoding (see the module doc)."""
    parts: list[str] = []
    for char in value:
        if char in _NEVER_ENCODED:
            parts.append(re.escape(char))
            continue
        encoded = "".join(_percent(b) for b in char.encode("utf-8"))
        options = [re.escape(char), encoded]
        if char == " ":
            options.append(r"\+")
        parts.append("(?:" + "|".join(options) + ")")
    return "".join(parts)


def _percent(byte: int) -> str:
    return "%" + "".join(f"[{c}{c.lower()}]" if c.isalpha() else c for c in f"{byte:02X}")


class Redactor:
    """Knows the secret values in use and masks them wherever they show up."""

    def __init__(self) -> None:
        self._values: set[str] = set()
        self._forms: list[str] = []
        self._pattern: re.Pattern[str] | None = None
        self._bytes_pattern: re.Pattern[bytes] | None = None
        self._lock = threading.Lock()

    def add(self, value: str) -> None:
        if len(value) < MIN_LENGTH or value in self._values:
            return
        with self._lock:
            values = self._values | {value}
            forms = _literal_forms(values)
            patterns = [re.escape(form) for form in forms]
            patterns += [_url_encoded_pattern(v) for v in sorted(values, key=len, reverse=True)]
            # Literal forms first (longest first), so a whole form wins over a part of it.
            text = "|".join(patterns)
            self._pattern = re.compile(text)
            self._bytes_pattern = re.compile(text.encode("utf-8"))
            self._forms = forms
            self._values = values

    @property
    def active(self) -> bool:
        return bool(self._values)

    def forms(self) -> list[str]:
        """Each value as it may appear in text, longest first: raw, URL-, JSON-, HTML-encoded,
        and its base64 fragments. What a page is searched for before a screenshot."""
        return self._forms

    def redact(self, obj: Any) -> Any:
        """``obj`` (text, or dicts and lists of it: keys too) with every secret form masked."""
        pattern = self._pattern
        if pattern is None or obj is None:
            return obj
        if isinstance(obj, str):
            return pattern.sub(MASK, obj)
        if isinstance(obj, dict):
            masked: dict[Any, Any] = {}
            for key, value in obj.items():
                new_key = pattern.sub(MASK, key) if isinstance(key, str) else key
                while new_key in masked:  # two keys masked alike: keep both values
                    new_key = f"{new_key}#"
                masked[new_key] = self.redact(value)
            return masked
        if isinstance(obj, list | tuple):
            return type(obj)(self.redact(v) for v in obj)
        return obj

    def redact_bytes(self, data: bytes) -> bytes:
        pattern = self._bytes_pattern
        return data if pattern is None else pattern.sub(MASK.encode(), data)

    def structlog_processor(
        self, _logger: Any, _name: str, event: dict[str, Any]
    ) -> dict[str, Any]:
        if self._pattern is None:
            return event
        exc_info = event.pop("exc_info", None)
        if exc_info:  # rendered here, so the traceback's text is masked too
            event["exception"] = _format_exception(exc_info)
        redacted: dict[str, Any] = {
            key: value if _plain(value) else str(value) for key, value in event.items()
        }
        return self.redact(redacted)  # type: ignore[no-any-return]


def _literal_forms(values: set[str]) -> list[str]:
    forms: set[str] = set()
    for value in values:
        forms |= {
            value,
            quote(value, safe=""),
            quote(value),
            quote_plus(value),
            json.dumps(value, ensure_ascii=False)[1:-1],
            json.dumps(value)[1:-1],
            html.escape(value),
            html.escape(value, quote=False),
            *base64_fragments(value.encode("utf-8")),
        }
    return sorted(forms, key=lambda form: (-len(form), form))


def _plain(value: Any) -> bool:
    """Values a log renderer shows as they are (others are shown through str, masked)."""
    if value is None or isinstance(value, str | int | float | bool):
        return True
    if isinstance(value, dict):
        return all(_plain(v) for v in value.values())
    if isinstance(value, list | tuple):
        return all(_plain(v) for v in value)
    return False


def _format_exception(exc_info: Any) -> str:
    if isinstance(exc_info, BaseException):
        exc_info = (type(exc_info), exc_info, exc_info.__traceback__)
    elif not isinstance(exc_info, tuple):
        exc_info = sys.exc_info()
    if exc_info[0] is None:
        return ""
    return "".join(traceback.format_exception(*exc_info)).rstrip()
