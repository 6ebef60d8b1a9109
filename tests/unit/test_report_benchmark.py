"""The report benchmark still runs and its two queries still agree (a small N, so it cannot rot)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_the_quick_benchmark_runs_and_both_queries_agree() -> None:
    result = subprocess.run(
        [
            sys.executable,
            str(REPO / "benchmarks" / "report_aggregation.py"),
            "--quick",
            "--repeat",
            "1",
            "--json",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )

    assert result.returncode == 0, result.stderr
    figures = json.loads(result.stdout)
    assert figures["items"] == 20_000
    for key in ("process", "region-month"):
        assert figures[key]["robo_s"] > 0 and figures[key]["raw_s"] > 0
        assert figures[key]["ratio"] < 10  # robo's query shape must not drift far from raw SQL
