"""Hypothesis strategies for hostile values: numbers at the edges, odd text, deep nesting."""

from __future__ import annotations

import datetime as dt
from typing import Any

from hypothesis import strategies as st

EDGE_NUMBERS: list[Any] = [
    float("inf"), float("-inf"), float("nan"), 1e308, -1e308, 1.7976931348623157e308,
    5e-324, 0.0, -0.0, 0.001, 0.1, 0.5, 1, 59, 60, 1440, 10_080, 10_081, 86_400, 86_401,
    604_800, 604_801, 2**31 - 1, 2**31, 2**53 + 1, 2**63 - 1, 2**63, 2**64, -(2**63), 10**30,
    -1, 0, True, False,
]  # fmt: skip

EDGE_TEXT: list[str] = [
    "", " ", "\t", "\0", "a\0b", "\ud800", "x\udfffy", "\x85", "\ufeff", "\u202e", "é" * 200,
    "a" * 64, "a" * 65, "a" * 255, "a" * 256, "a" * 300, "b" * 5000, "../etc/passwd",
    "/etc/passwd", "a\\b", "C:x", "./x", "a/./b", "input/../../x", "README.md",
    "{{ params.portal_url }}", "{{ params.portal_ulr }}", "{{ item.x }", "{{ item.nope }}",
    "{{ (7 ** 4000000) % 2 }}", "{{ 'a' * 1000000000 }}", "{{ x | nofilter }}", "{% for %}",
    "{{ text }}", "19:00", "07:00", "25:99", "2024-13-45", "2024-02-30", "mon", "funday",
    "* * * * *", "0 25 * * *", "0 6 1 * mon", "*/0 * * * *", "Europe/Paris", "Mars/Olympus",
    "America/Cayenne", "FR", "FR-973", "FR-999", "DE-BY", "occitanie", "Guyane", "1.0.0",
    "1.0.0-" + "a" * 100, "01.0.0", "1.0", "bot:process", "bot:", "os:system", "csv", "xml",
    "bot", "queue", "null", "~", "true", "no", "0x1F", "1e309", ".inf", "NaN",
]  # fmt: skip


def deep(depth: int, leaf: Any = 1) -> Any:
    value: Any = leaf
    for level in range(depth):
        value = [value] if level % 2 else {"k": value}
    return value


scalars = st.one_of(
    st.sampled_from(EDGE_NUMBERS),
    st.sampled_from(EDGE_TEXT),
    st.integers(),
    st.floats(),
    st.text(max_size=40),
    st.text(st.characters(codec=None, categories=["Cs", "Cc", "Co", "Zs", "So"]), max_size=8),
    st.booleans(),
    st.none(),
    st.dates(min_value=dt.date(1, 1, 1)),
    st.datetimes(),
)

values = st.recursive(
    scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.dictionaries(st.text(max_size=12), children, max_size=4),
    ),
    max_leaves=12,
) | st.integers(min_value=1, max_value=60).map(deep)  # deeper: as text (YAML_SNIPPETS)

# Text spliced into a YAML file as it is (not as a value): tags, anchors, odd syntax.
YAML_SNIPPETS: list[str] = [
    "x: !!int 'zz'", "x: !!float 'abc'", "x: !!timestamp 'x'", "x: !!binary '@@@'",
    "x: !!python/object/apply:os.system ['true']", "x: !!python/name:os.system",
    "x: &a [1]\ny: *a", "<<: {id: other}", "? [a, b]\n: c", "x: {[1]: 2}", "x: [",
    "x: {", "x: '", 'x: "\\ud800"', 'x: "\\0"', "\tx: 1", "x: 1\n x: 2", "%YAML 1.1\n---",
    "---\n---", "...", "x: " + "[" * 400 + "]" * 400, "x: " + "{a: " * 100 + "1" + "}" * 100,
    "x: " + "9" * 5000, "x: 0x" + "f" * 3000, "x: 1e400", "x: -.inf", "x: !!str", "x: !custom 1",
    "@x: 1", "`x: 1", "x: |\n  text\n bad", "id: duplicate-id", "\ufeffx: 1", "x: \x85",
]  # fmt: skip
