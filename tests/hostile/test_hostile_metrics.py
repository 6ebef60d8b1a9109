"""Generated metrics files: values changed and re-signed with the trusted key (a signed
file is trusted for who sent it, not for being sane), raw JSON trouble, damaged bytes.

`robo metrics import` imports a sane file, refuses anything else with one line and
stores nothing; the national totals never become infinite, negative or absurd.
"""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from tests.hostile.strategies import values
from tests.hostile.support import (
    HOSTILE,
    World,
    assert_clean,
    copy_home,
    dump,
    resign_metrics,
    run_cli,
    scratch,
)
from tests.hostile.test_hostile_definitions import mutate, node_paths

RAW = [
    b'{"manifest": ' + b"[" * 5000 + b"]" * 5000 + b"}",
    b"[" * 100_000,
    b'{"manifest": {"format": "robo-metrics", "format_version": NaN}}',
    b'{"manifest": {"format": "robo-metrics", "format_version": 1, "runs": [Infinity]}}',
    b"\xef\xbb\xbf{}",
    b"\xff\xfe\x00",
    b"",
    b"null",
    b'{"manifest": "x", "signature": 1}',
]


@st.composite
def metrics_files(draw: st.DrawFn, world: World) -> bytes:
    op = draw(st.sampled_from(["values", "values", "values", "numbers", "raw", "bytes"]))
    document: Any = json.loads(world.metrics)
    if op == "raw":
        return draw(st.sampled_from(RAW))
    if op == "bytes":
        data = bytearray(world.metrics)
        for offset in draw(st.lists(st.integers(0, len(data) - 1), min_size=1, max_size=3)):
            data[offset] = draw(st.integers(0, 255))
        return bytes(data)
    manifest = document["manifest"]
    if op == "numbers":  # every figure a run or an item carries, at the edges
        run = draw(st.sampled_from(manifest["runs"]))
        holder = draw(st.sampled_from([run, run["baseline"], *run["items"]]))
        numeric = [k for k, v in holder.items() if isinstance(v, int | float | type(None))]
        key = draw(st.sampled_from(numeric or list(holder)))
        holder[key] = draw(
            st.sampled_from(
                [float("inf"), float("nan"), -1, -0.0, 1e308, 2**63, 10**400, 0, 10_081, None]
            )
            | st.floats()
        )
    else:
        for _ in range(draw(st.integers(1, 3))):
            path = draw(st.sampled_from(node_paths(manifest)))
            mutate(
                manifest, path, draw(st.sampled_from(["replace", "delete", "add"])), draw(values)
            )
    if draw(st.integers(0, 5)) == 0:
        return json.dumps(document, default=str).encode()  # changed, not re-signed
    try:
        return resign_metrics(document, world.guyane_key)
    except (ValueError, TypeError, UnicodeEncodeError):
        return repr(document).encode("utf-8", "surrogatepass")


@given(data=st.data())
@settings(HOSTILE, max_examples=220)
def test_a_hostile_metrics_file_is_imported_sanely_or_refused_and_stores_nothing(
    world: World, data: st.DataObject
) -> None:
    blob = data.draw(metrics_files(world))
    with scratch() as tmp:
        home = copy_home(world.national, tmp)
        path = tmp / "hostile.json"
        path.write_bytes(blob)
        before = dump(home)
        result = run_cli(home, ["metrics", "import", str(path)])
        after = dump(home)
        assert_clean(result, before, after)
        if result.exit_code == 0:  # what got in is finite and sane
            report = run_cli(home, ["report", "--by", "region", "--json"])
            assert "Infinity" not in report.output and "NaN" not in report.output, report.output
            for line in after:
                assert "Infinity" not in line and "NaN" not in line, line
