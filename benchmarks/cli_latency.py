"""CLI latency: `robo --help`, `robo processes`, `robo runs --json` on a ledger of 10,000 runs.

Each command is timed as a subprocess, median of several. The baseline is the
floor for the same answer: a bare click group's --help, and a plain sqlite3 +
json script that reads the same rows (processes; the 30 newest runs with their
item counts) from the same database file.
"""

from __future__ import annotations

import datetime as dt
import uuid
from pathlib import Path

from benchmarks.common import (
    PYTHON,
    ROOT,
    Figure,
    cli,
    median,
    open_robo,
    robo_cmd,
    robo_env,
    temp_home,
    timed_run,
)

BARE_HELP = """
import click
@click.group()
@click.option("--home")
def cli(home): "robo"
@cli.command()
def runs(): "List recent runs."
cli(["--help"])
"""

BARE_PROCESSES = """
import json, sqlite3, sys
db = sqlite3.connect(sys.argv[1])
rows = db.execute("SELECT p.id, v.version, p.enabled, v.definition FROM processes p "
                  "JOIN process_versions v ON v.id = p.active_version_id ORDER BY p.id").fetchall()
print(json.dumps([{"id": r[0], "version": r[1], "enabled": bool(r[2]),
                   "name": json.loads(r[3]).get("name")} for r in rows], indent=2))
"""

BARE_RUNS = """
import json, sqlite3, sys
db = sqlite3.connect(sys.argv[1])
runs = db.execute("SELECT id, process_id, version, status, started_at FROM runs "
                  "ORDER BY id DESC LIMIT 30").fetchall()
ids = [r[0] for r in runs]
counts = db.execute("SELECT run_id, status, count(*), sum(minutes_saved) FROM items WHERE run_id IN (%s) "
                    "GROUP BY run_id, status" % ",".join("?" * len(ids)), ids).fetchall()
print(json.dumps({"runs": runs, "counts": counts}, indent=2))
"""


def prepare(home: Path, runs: int, items_per_run: int) -> None:
    """A deployed sample process and ``runs`` finished runs, inserted in bulk."""
    from sqlalchemy import insert

    from robo.loader import load_process
    from robo.storage.models import ItemRow, RunRow

    robo = open_robo(home)
    try:
        robo.registry.deploy(load_process(ROOT / "processes" / "residence-permit-entry"))
        version_id = robo.registry.active("residence-permit-entry").version_id
        start = dt.datetime(2025, 1, 1, 7, tzinfo=dt.UTC)
        run_rows = []
        for i in range(runs):
            at = start + dt.timedelta(hours=i)
            run_rows.append({
                "id": i + 1, "uid": uuid.uuid4().hex, "process_id": "residence-permit-entry",
                "version_id": version_id, "version": "1.0.0", "region": "ile-de-france",
                "trigger": "schedule", "status": "completed", "started_at": at,
                "finished_at": at + dt.timedelta(minutes=3), "heartbeat_at": at, "host": "bench",
                "pid": 1, "parameters": {}, "input_name": "permits.csv",
                "items_total": items_per_run, "manual_minutes_per_item": 30.0,
                "residual_minutes_per_item": 5.0, "manual_minutes_per_run": 5.0,
                "baseline_measured_by": "bench", "baseline_measured_on": "2024-05-13",
                "run_minutes_saved": 5.0,
            })  # fmt: skip
        item_rows = [
            {"run_id": r["id"], "position": p, "reference": f"F-{r['id']}-{p}", "status": "success",
             "attempts": 1, "started_at": r["started_at"], "finished_at": r["started_at"],
             "duration_seconds": 0.4, "evidence": [], "data": {}, "output": {},
             "minutes_saved": 25.0}
            for r in run_rows for p in range(1, items_per_run + 1)
        ]  # fmt: skip
        with robo.db.session() as session:
            session.execute(insert(RunRow), run_rows)
            session.execute(insert(ItemRow), item_rows)
    finally:
        robo.close()


def run(quick: bool) -> list[Figure]:
    runs, items_per_run, repeats = (200, 2, 2) if quick else (10_000, 5, 7)
    figures = []
    with temp_home() as home:
        prepare(home, runs, items_per_run)
        env = robo_env(home)
        db_file = str(home / "robo.db")
        scripts = {}
        for name, text in (("help", BARE_HELP), ("processes", BARE_PROCESSES), ("runs", BARE_RUNS)):
            scripts[name] = home / f"bare_{name}.py"
            scripts[name].write_text(text)
        cases = [
            ("cli: robo --help", robo_cmd("--help"), [PYTHON, str(scripts["help"])], 0.3),
            ("cli: robo processes", robo_cmd("processes"),
             [PYTHON, str(scripts["processes"]), db_file], 0.5),
            (f"cli: robo runs --json ({runs:,} runs)", robo_cmd("runs", "--json"),
             [PYTHON, str(scripts["runs"]), db_file], 0.5),
        ]  # fmt: skip
        for name, robo_args, bare_args, limit in cases:
            timed_run(robo_args, env, cwd=home)  # warm the page cache and .pyc files
            timed_run(bare_args, env, cwd=home)
            robo_t, bare_t = [], []
            for _ in range(repeats):
                robo_t.append(timed_run(robo_args, env, cwd=home))
                bare_t.append(timed_run(bare_args, env, cwd=home))
            robo_s = median(robo_t)
            figures.append(
                Figure(
                    name,
                    "s",
                    robo_s,
                    median(bare_t),
                    f"< {limit:g} s",
                    robo_s < limit,
                    f"median of {repeats}",
                )
            )
    return figures


if __name__ == "__main__":
    cli(__doc__.splitlines()[0], run)
