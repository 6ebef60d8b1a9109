"""Ledger writes: a run of N items whose bot does no page work, through run_process.

Per item = (last item finished - first item started) / N, from the ledger, so
Chromium's launch is excluded. Everything robo does per item is inside: the
item row and its commit, the run heartbeat, logging, the trace chunk, the
watchdog, the bot context. Baseline: the floor for one transaction per item, a
bare sqlite3 INSERT + COMMIT per row on a database with the same pragmas
(WAL, synchronous=NORMAL).
"""

from __future__ import annotations

import json
import sqlite3
import time
from pathlib import Path

from benchmarks.common import ROOT, Figure, cli, median, open_robo, temp_home

PROCESS = ROOT / "benchmarks" / "processes" / "noop-bot"


def robo_per_item(home: Path, count: int, tag: str) -> float:
    from benchmarks.bot_overhead import item_span
    from robo.loader import load_process
    from robo.logging import configure
    from robo.runner.run import RunRequest, run_process

    items = home / f"items-{tag}.csv"
    items.write_text("ref\n" + "".join(f"{tag}-{i:06d}\n" for i in range(count)))
    robo = open_robo(home)
    try:
        configure("warning", "console", robo.redactor)
        robo.registry.deploy(load_process(PROCESS))
        result = run_process(
            robo.run_environment(),
            robo.registry.active("bench-noop"),
            RunRequest("bench-noop", input_path=items),
        )
    finally:
        robo.close()
    first, last, recorded = item_span(home, result.run_id)
    assert recorded == count, (recorded, count)
    return (last - first) / count


def bare_per_item(home: Path, count: int) -> float:
    db = sqlite3.connect(home / f"bare-{count}.db", isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=NORMAL")
    db.execute(
        "CREATE TABLE items (id INTEGER PRIMARY KEY, run_id INT, position INT, reference TEXT,"
        " status TEXT, started_at TEXT, finished_at TEXT, data TEXT, output TEXT,"
        " minutes_saved REAL, UNIQUE (run_id, reference))"
    )
    start = time.perf_counter()
    for i in range(count):
        now = time.time()
        db.execute("BEGIN")
        db.execute(
            "INSERT INTO items (run_id, position, reference, status, started_at, finished_at,"
            " data, output, minutes_saved) VALUES (1, ?, ?, 'success', ?, ?, ?, ?, 2)",
            (i, f"R-{i}", now, now, json.dumps({"ref": f"R-{i}"}), "{}"),
        )
        db.execute("COMMIT")
    elapsed = time.perf_counter() - start
    db.close()
    return elapsed / count


def run(quick: bool) -> list[Figure]:
    count, repeats = (50, 1) if quick else (10_000, 3)
    robo_values, bare_values = [], []
    with temp_home() as home:
        for rep in range(repeats):
            robo_values.append(robo_per_item(home, count, f"r{rep}"))
            bare_values.append(bare_per_item(home, count + rep))
    robo_s = median(robo_values)
    return [
        Figure(
            "ledger: per-item bookkeeping (no page work)",
            "s",
            robo_s,
            median(bare_values),
            "< 2 ms",
            robo_s < 0.002,
            f"{count:,} items, median of {repeats}",
        ),
    ]


if __name__ == "__main__":
    cli(__doc__.splitlines()[0], run)
