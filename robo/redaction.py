"""Keeping secret values out of everything robo writes: logs, rows, evidence."""

from __future__ import annotations

import base64
import html
import json
import threading
from typing import Any
from urllib.parse import quote, quote_plus

MASK = "[secret]"
MIN_LENGTH = 4  # shorter values would mask ordinary words; secrets are never that short


class Redactor:
    """Knows the secret values in use and masks them wherever they show up."""

    def __init__(self) -> None:
        self._values: set[str] = set()
        self._forms: list[str] = []
        self._lock = threading.Lock()

    def add(self, value: str) -> None:
        if len(value) >= MIN_LENGTH and value not in self._values:
            with self._lock:
                self._values.add(value)
                self._forms = self._encodings()

    @property
    def active(self) -> bool:
        return bool(self._values)

    def forms(self) -> list[str]:
        """Each value as it may appear in text: raw, URL-, JSON-, HTML- and base64-encoded.

        Worked out once per new secret, not on every string masked (logs, rows)."""
        return self._forms

    def _encodings(self) -> list[str]:
        forms: set[str] = set()
        for value in self._values:
            forms |= {
                value,
                quote(value, safe=""),
                quote(value),
                json.dumps(value, ensure_ascii=False)[1:-1],
                quote_plus(value),
                json.dumps(value)[1:-1],
                html.escape(value),
                base64.b64encode(value.encode()).decode(),
            }
        return sorted(forms, key=len, reverse=True)

    def redact(self, obj: Any) -> Any:
        """``obj`` (text, or dicts and lists of it) with every secret form masked."""
        if not self._values or obj is None:
            return obj
        if isinstance(obj, str):
            for form in self.forms():
                obj = obj.replace(form, MASK)
            return obj
        if isinstance(obj, dict):
            return {k: self.redact(v) for k, v in obj.items()}
        if isinstance(obj, list | tuple):
            return type(obj)(self.redact(v) for v in obj)
        return obj

    def redact_bytes(self, data: bytes) -> bytes:
        for form in self.forms():
            data = data.replace(form.encode(), MASK.encode())
        return data

    def structlog_processor(
        self, _logger: Any, _name: str, event: dict[str, Any]
    ) -> dict[str, Any]:
        redacted: dict[str, Any] = self.redact(event)
        return redacted
