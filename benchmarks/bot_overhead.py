"""Bot overhead: `robo run residence-permit-entry` versus a plain Playwright script.

Both drive the same local sample portal through the same page actions, item by
item, in one browser. Per item = (end of the last item - start of the first) / N,
read from the ledger for robo (item rows) and from the script's own clock for
the baseline; start-up = command launched -> first item started. Runs
alternate robo / plain so drift hits both alike; figures are medians.
"""

from __future__ import annotations

import csv
import datetime as dt
import json
import random
import subprocess
import time
from pathlib import Path
from typing import Any

from benchmarks.common import (
    PORTAL_PASSWORD,
    PYTHON,
    ROOT,
    Figure,
    cli,
    median,
    open_robo,
    portal,
    robo_cmd,
    robo_env,
    temp_home,
)

PROCESS = ROOT / "processes" / "residence-permit-entry"
NATIONALITIES = ["DZ", "BR", "CM", "CN", "CI", "US", "HT", "IN", "ML", "MA", "SN", "TN", "VN"]
PERMIT_TYPES = ["salarie", "etudiant", "famille", "visiteur"]
LAST = ["MARTIN", "BENALI", "NDIAYE", "TRAN", "HADDAD", "SILVA", "OKAFOR", "DUBOIS"]
FIRST = ["Karim", "Fatou", "Minh", "Yasmine", "Ana", "Daniel", "Louise", "Ravi"]


def write_items(path: Path, prefix: str, count: int, seed: int = 7) -> Path:
    """``count`` valid permit rows with unique file numbers."""
    rng = random.Random(seed)
    with path.open("w", newline="", encoding="utf-8") as handle:
        out = csv.writer(handle)
        out.writerow(
            ["file_number", "last_name", "first_name", "birth_date", "nationality", "permit_type"]
        )
        for i in range(count):
            born = dt.date(1950, 1, 1) + dt.timedelta(days=rng.randrange(0, 20000))
            out.writerow([
                f"{prefix}-{i:05d}", rng.choice(LAST), rng.choice(FIRST),
                born.strftime("%d/%m/%Y"), rng.choice(NATIONALITIES), rng.choice(PERMIT_TYPES),
            ])  # fmt: skip
    return path


LIGHT = "residence-permit-light"


def deploy(home: Path) -> None:
    """The sample process, and a copy whose failure traces skip DOM snapshots."""
    import shutil

    import yaml

    from robo.loader import load_process

    light = home / LIGHT
    shutil.copytree(PROCESS, light)
    spec = yaml.safe_load((light / "process.yaml").read_text(encoding="utf-8"))
    spec.update(id=LIGHT, evidence={"trace_snapshots": False})
    (light / "process.yaml").write_text(yaml.safe_dump(spec, allow_unicode=True), encoding="utf-8")
    robo = open_robo(home)
    try:
        robo.registry.deploy(load_process(PROCESS))
        robo.registry.deploy(load_process(light))
    finally:
        robo.close()


def item_span(home: Path, run_id: int) -> tuple[float, float, int]:
    """(first item started, last item finished, items) as epoch seconds, from the ledger."""
    from sqlalchemy import case, func, select

    from robo.storage.models import ItemRow

    robo = open_robo(home)
    try:
        with robo.db.session() as session:
            first, last, count, ok = session.execute(
                select(
                    func.min(ItemRow.started_at),
                    func.max(ItemRow.finished_at),
                    func.count(),
                    func.sum(case((ItemRow.status == "success", 1), else_=0)),
                ).where(ItemRow.run_id == run_id)
            ).one()
    finally:
        robo.close()
    if ok != count:
        raise RuntimeError(f"run {run_id}: only {ok} of {count} items succeeded")
    return _epoch(first), _epoch(last), count


def _epoch(moment: dt.datetime) -> float:
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    return moment.timestamp()


def run_robo(
    home: Path, url: str, items: Path, process: str = "residence-permit-entry"
) -> tuple[float, float]:
    """(seconds per item, start-up seconds) of one `robo run`."""
    cmd = robo_cmd("run", process, "--input", str(items), "--json",
                   "--param", f"portal_url={url}")  # fmt: skip
    launched = time.time()
    done = subprocess.run(cmd, env=robo_env(home), capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"robo run failed: {done.stdout}\n{done.stderr}")
    result = json.loads(done.stdout)
    first, last, count = item_span(home, result["run_id"])
    return (last - first) / count, first - launched


def run_plain(url: str, items: Path, chromium: str) -> tuple[float, float]:
    cmd = [PYTHON, str(ROOT / "benchmarks" / "plain_permits.py"), url, PORTAL_PASSWORD,
           str(items), chromium]  # fmt: skip
    launched = time.time()
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"plain script failed: {done.stdout}\n{done.stderr}")
    timing: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return (timing["end"] - timing["first_item"]) / timing["items"], timing["first_item"] - launched


def measure(items_count: int, repeats: int) -> dict[str, list[float]]:
    from robo.runner.browser import find_chromium

    chromium = find_chromium("") or ""
    found: dict[str, list[float]] = {
        k: [] for k in ("robo", "light", "plain", "robo_up", "plain_up")
    }
    with temp_home() as home, portal() as server:
        deploy(home)
        # One warm-up of each so the page cache holds Chromium and the modules.
        warm = write_items(home / "warm.csv", "W", 3)
        run_robo(home, server.url, warm)
        run_plain(server.url, write_items(home / "warm2.csv", "X", 3), chromium)
        for rep in range(repeats):
            per_item, start_up = run_robo(
                home, server.url, write_items(home / f"r{rep}.csv", f"R{rep}", items_count)
            )
            found["robo"].append(per_item)
            found["robo_up"].append(start_up)
            per_item, _ = run_robo(
                home, server.url, write_items(home / f"l{rep}.csv", f"L{rep}", items_count), LIGHT
            )
            found["light"].append(per_item)
            per_item, start_up = run_plain(
                server.url, write_items(home / f"p{rep}.csv", f"P{rep}", items_count), chromium
            )
            found["plain"].append(per_item)
            found["plain_up"].append(start_up)
    return found


def run(quick: bool) -> list[Figure]:
    items_count, repeats = (5, 1) if quick else (150, 3)
    found = measure(items_count, repeats)
    robo, plain, light = median(found["robo"]), median(found["plain"]), median(found["light"])
    robo_up, plain_up = median(found["robo_up"]), median(found["plain_up"])
    size = f"{items_count} items, median of {repeats}"
    return [
        Figure(
            "bot: seconds per item, traces without DOM snapshots",
            "s",
            light,
            plain,
            "≤ 1.05×",
            light <= 1.05 * plain,
            size,
        ),
        Figure(
            "bot: seconds per item, default evidence (DOM snapshots)",
            "s",
            robo,
            plain,
            "≤ 1.05×",
            robo <= 1.05 * plain,
            size,
        ),
        Figure(
            "bot: start-up (command → first item)",
            "s",
            robo_up,
            plain_up,
            "≤ baseline + 1.5 s",
            robo_up <= plain_up + 1.5,
            size,
        ),
    ]


if __name__ == "__main__":
    cli(__doc__.splitlines()[0], run)
