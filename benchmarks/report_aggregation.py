"""Report aggregation on SQLite: robo's query against one hand-written SQL query.

Builds a SQLite ledger with N item rows (default 1,000,000) over three years,
13 processes and 5 regions, then times (median of --repeat runs, warm cache):

- robo: ``robo.reports.queries.aggregate`` (SQLAlchemy, the query ``robo report``
  runs), grouped by process, and by region x month;
- raw: one hand-written SQL statement computing the same figures, run with
  the ``sqlite3`` module directly;
- the whole table report (``build_report``: figures + headline + baselines).

It checks that both queries return the same figures, then prints the times and
the ratio robo / raw.

    .venv/bin/python benchmarks/report_aggregation.py            # 1,000,000 items
    .venv/bin/python benchmarks/report_aggregation.py --quick    # 20,000 items, seconds
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import os
import platform
import random
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from robo.reports.dimensions import dimensions
from robo.reports.queries import Scope, aggregate
from robo.reports.report import build_report
from robo.storage.database import Database

PROCESSES = [f"process-{i:02d}" for i in range(13)]
REGIONS = ["occitanie", "ile-de-france", "bourgogne-franche-comte", "pays-de-la-loire", "guyane"]
START = dt.datetime(2024, 1, 1)
ITEMS_PER_RUN = 25

RAW = """
WITH item_sums AS (
    SELECT {key_items} AS k,
           count(*) AS items,
           sum(i.status = 'success') AS ok,
           sum(i.status = 'business_exception') AS business,
           sum(i.status = 'application_exception') AS application,
           sum(i.minutes_saved) AS minutes,
           sum(coalesce(i.duration_seconds, 0)) AS seconds,
           sum(CASE WHEN i.status = 'success' THEN r.residual_minutes_per_item
                    ELSE r.manual_minutes_per_item END) AS human
    FROM items i JOIN runs r ON r.id = i.run_id
    GROUP BY k
), run_sums AS (
    SELECT {key_runs} AS k, count(*) AS runs, sum(run_minutes_saved) AS run_minutes
    FROM runs r GROUP BY k
)
SELECT run_sums.k, runs, coalesce(items, 0), coalesce(ok, 0), coalesce(business, 0),
       coalesce(application, 0), coalesce(minutes, 0), run_minutes, coalesce(seconds, 0),
       coalesce(human, 0)
FROM run_sums LEFT JOIN item_sums ON item_sums.k = run_sums.k
"""
KEYS = {
    "process": "r.process_id",
    "region-month": "r.region || '|' || strftime('%Y-%m', r.started_at)",
}


def build(path: Path, items: int, seed: int = 1) -> tuple[int, int]:
    """Create the schema with robo (migrations), then bulk-insert runs and items."""
    Database(f"sqlite:///{path}").close()
    rng = random.Random(seed)
    runs = max(1, items // ITEMS_PER_RUN)
    span = 3 * 365 * 24 * 3600
    con = sqlite3.connect(path)
    con.execute("PRAGMA journal_mode=WAL")
    con.execute("PRAGMA synchronous=OFF")
    with con:
        con.execute(
            "INSERT INTO process_versions (process_id, version, content_hash, definition, "
            "definition_text, source_path, deployed_at, deployed_by) "
            "VALUES ('bench', '1', '', '{}', '', '', '2024-01-01 00:00:00', '')"
        )
        # Runs in start order, each with its items contiguous: the ledger writes them so.
        starts = sorted(START + dt.timedelta(seconds=rng.randrange(span)) for _ in range(runs))
        run_rows = []
        for run_id, started in enumerate(starts, start=1):
            manual, residual = rng.choice([(30, 5), (22, 4), (12.5, 0), (8, 1)])
            run_rows.append(
                (
                    run_id, f"{run_id:032x}", rng.choice(PROCESSES), 1, "1.0.0", rng.choice(REGIONS),
                    "app", "completed", started.isoformat(" "),
                    (started + dt.timedelta(minutes=20)).isoformat(" "), "{}", manual, residual, 5,
                    "bench", "2024-01-01", 5,
                )
            )  # fmt: skip
        con.executemany(
            "INSERT INTO runs (id, uid, process_id, version_id, version, region, application, "
            "status, started_at, finished_at, parameters, manual_minutes_per_item, "
            "residual_minutes_per_item, manual_minutes_per_run, baseline_measured_by, "
            "baseline_measured_on, run_minutes_saved, trigger, host, input_name, worker) "
            "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,'schedule','bench','','')",
            run_rows,
        )
        saved = {r[0]: r[11] - r[12] for r in run_rows}

        def item_rows() -> Any:
            for n in range(items):
                run_id = n * runs // items + 1
                status = rng.choices(
                    ("success", "business_exception", "application_exception"), (0.8, 0.12, 0.08)
                )[0]
                yield (
                    run_id, n, f"ref-{n}", status, 1, rng.uniform(2, 90), "[]", "{}", "{}",
                    saved[run_id] if status == "success" else 0.0,
                )  # fmt: skip

        con.executemany(
            "INSERT INTO items (run_id, position, reference, status, attempts, duration_seconds, "
            "evidence, data, output, minutes_saved) VALUES (?,?,?,?,?,?,?,?,?,?)",
            item_rows(),
        )
    con.execute("ANALYZE")
    con.close()
    return runs, items


def median_seconds(fn: Callable[[], Any], repeat: int) -> tuple[float, Any]:
    result = fn()  # warm-up: page cache, statement compilation
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), result


def raw_query(path: Path, key: str) -> list[tuple[Any, ...]]:
    con = sqlite3.connect(path)
    try:
        sql = RAW.format(key_items=KEYS[key], key_runs=KEYS[key])
        return con.execute(sql).fetchall()
    finally:
        con.close()


def same(robo_rows: list[Any], raw_rows: list[tuple[Any, ...]], key: str) -> None:
    raw = {r[0]: r[1:] for r in raw_rows}
    for row in robo_rows:
        k = "|".join(row.keys.values()) if key == "region-month" else row.keys["process_id"]
        f = row.figures
        mine = (f.runs, f.items, f.succeeded, f.business_exceptions, f.application_exceptions,
                f.item_minutes_saved, f.run_minutes_saved, f.robot_seconds, f.human_minutes)  # fmt: skip
        for a, b in zip(mine, raw[k], strict=True):
            assert math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-6), (k, mine, raw[k])
    assert len(robo_rows) == len(raw)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--items", type=int, default=1_000_000)
    parser.add_argument("--quick", action="store_true", help="20,000 items (used by the tests)")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--db", type=Path, help="Keep the database here (reused if present).")
    parser.add_argument("--json", action="store_true", help="Print the figures as JSON.")
    args = parser.parse_args(argv)
    items = 20_000 if args.quick else args.items
    with tempfile.TemporaryDirectory() as folder:
        path = args.db or Path(folder) / "bench.db"
        t0 = time.perf_counter()
        if not path.exists():
            build(path, items)
        built = time.perf_counter() - t0
        db = Database(f"sqlite:///{path}")
        try:
            results: dict[str, Any] = {"items": items, "build_seconds": round(built, 1)}
            for key, dims in (("process", ["process"]), ("region-month", ["region", "month"])):
                robo_s, robo_rows = median_seconds(
                    lambda d=dims: aggregate(db, dimensions(d), Scope()),
                    args.repeat,  # type: ignore[misc]
                )
                raw_s, raw_rows = median_seconds(lambda k=key: raw_query(path, k), args.repeat)  # type: ignore[misc]
                same(robo_rows, raw_rows, key)
                results[key] = {"robo_s": robo_s, "raw_s": raw_s, "ratio": robo_s / raw_s}
            full_s, _ = median_seconds(lambda: build_report(db, ("process",)), args.repeat)
            results["full_table_report_s"] = full_s
        finally:
            db.close()
    machine = f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, SQLite {sqlite3.sqlite_version}"
    results["machine"] = machine
    if args.json:
        print(json.dumps(results, indent=2))
        return results
    print(f"report aggregation over {items:,} item rows ({machine})")
    print(f"  database built in {built:.1f} s")
    for key in ("process", "region-month"):
        r = results[key]
        print(
            f"  by {key:<13} robo {r['robo_s'] * 1000:8.1f} ms   raw SQL {r['raw_s'] * 1000:8.1f} ms"
            f"   ratio {r['ratio']:.2f}"
        )
    print(f"  whole table report (figures + headline + baselines): {full_s * 1000:.1f} ms")
    return results


if __name__ == "__main__":
    main()
