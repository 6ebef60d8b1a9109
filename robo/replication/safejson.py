"""Parsing JSON that came from another installation: bounded before it is parsed.

``json.loads`` recurses once per nesting level, so ``[[[[...]]]]`` a few thousand deep
(a few kilobytes) raises RecursionError before any signature can be checked. The
nesting depth is measured on the raw bytes first, without recursion; then the text is
parsed with ``NaN``, ``Infinity`` and numbers beyond a float's range refused, so no
non-finite value reaches a model, a database or a report.
"""

from __future__ import annotations

import json
import math
import re
from itertools import accumulate
from typing import Any

MAX_DEPTH = 16  # a metrics file needs 6 levels, a bundle manifest 2

_STRINGS = re.compile(rb'"(?:[^"\\]|\\.)*"', re.DOTALL)
_DEPTH = {ord("["): 1, ord("{"): 1, ord("]"): -1, ord("}"): -1}
_NOT_BRACKETS = bytes(b for b in range(256) if b not in _DEPTH)


def nesting_depth(raw: bytes) -> int:
    """The deepest nesting of arrays and objects in ``raw``, strings ignored (no recursion)."""
    brackets = _STRINGS.sub(b"", raw).translate(None, delete=_NOT_BRACKETS)
    return max(accumulate(_DEPTH[b] for b in brackets), default=0)


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a number robo accepts (only finite numbers)")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"{text[:30]} is beyond the range of a number")
    return value


def _bounded_int(text: str) -> int:
    if len(text) > 30:
        raise ValueError(f"the integer {text[:20]}... is too large")
    return int(text)


def loads(raw: bytes, max_depth: int = MAX_DEPTH) -> Any:
    """Parse UTF-8 JSON from an untrusted source, or raise ValueError saying why (callers
    turn it into their own error: BundleError, MetricsError)."""
    depth = nesting_depth(raw)
    if depth > max_depth:
        raise ValueError(f"it is nested {depth} levels deep; at most {max_depth} allowed")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ValueError(f"not UTF-8 ({exc.reason} at byte {exc.start})") from None
    try:
        return json.loads(
            text,
            parse_constant=_refuse_constant,
            parse_float=_finite_float,
            parse_int=_bounded_int,
        )
    except json.JSONDecodeError as exc:
        raise ValueError(f"not valid JSON ({exc.msg} at line {exc.lineno})") from None
    except RecursionError:  # not reachable within max_depth; never a traceback
        raise ValueError("it is nested too deeply") from None
