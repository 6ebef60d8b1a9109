"""Bot overhead: `robo run` versus bare Playwright doing the same page calls.

Two applications: the sample portal (residence-permit-entry, in its steps form
and as a Python bot) and a form whose field ids change every round, like the RPA
Challenge (``benchmarks/challenge_app.py``, found by label, Python bot). Every
``robo run`` is a subprocess with the installation's defaults (evidence
included: trace policy on-first-retry), next to a bare Playwright script doing
the same calls in one browser (``plain_permits.py``, ``plain_challenge.py``).
Runs are interleaved robo / bare, so drift hits both alike; figures are medians.

- per item = (end of the last item - start of the first) / N: the ledger's item
  rows for robo, the script's own clock for the bare one;
- start-up = command launched -> first item started; whole command = launched -> exited;
- CPU = user + system seconds of the command and every descendant it waited for
  (``RUSAGE_CHILDREN`` before/after: Python, the Playwright driver, Chromium);
- linearity = robo's per item over 200 items against over 50 (steps form).
"""

from __future__ import annotations

import csv
import datetime as dt
import json
import random
import resource
import subprocess
import time
from dataclasses import dataclass
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
STEPS, PYTHON_FORM, CHANGING = (
    "residence-permit-entry",
    "bench-permit-python",
    "bench-changing-form",
)
PROCESSES = [PROCESS, ROOT / "benchmarks/processes/permit-python",
             ROOT / "benchmarks/processes/changing-form"]  # fmt: skip
NATIONALITIES = ["DZ", "BR", "CM", "CN", "CI", "US", "HT", "IN", "ML", "MA", "SN", "TN", "VN"]
PERMIT_TYPES = ["salarie", "etudiant", "famille", "visiteur"]
LAST = ["MARTIN", "BENALI", "NDIAYE", "TRAN", "HADDAD", "SILVA", "OKAFOR", "DUBOIS"]
FIRST = ["Karim", "Fatou", "Minh", "Yasmine", "Ana", "Daniel", "Louise", "Ravi"]
COMPANIES = ["Acme", "Globex", "Initech", "Umbrella", "Hooli", "Vandelay"]
ROLES = ["Clerk", "Analyst", "Manager", "Engineer", "Officer"]


@dataclass
class Timing:
    per_item: float
    start_up: float
    whole: float
    cpu: float


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


def write_people(path: Path, prefix: str, count: int, seed: int = 5) -> Path:
    """``count`` rows for the changing form, with unique emails."""
    rng = random.Random(seed)
    with path.open("w", newline="", encoding="utf-8") as handle:
        out = csv.writer(handle)
        out.writerow(["first_name", "last_name", "company", "role", "address", "email", "phone"])
        for i in range(count):
            first, last = rng.choice(FIRST), rng.choice(LAST).title()
            out.writerow([
                first, last, rng.choice(COMPANIES), rng.choice(ROLES),
                f"{rng.randrange(1, 200)} rue de la République",
                f"{first}.{last}.{prefix}{i}@example.org".lower(), f"06{rng.randrange(10**8):08d}",
            ])  # fmt: skip
    return path


def deploy(home: Path) -> None:
    from robo.loader import load_process

    robo = open_robo(home)
    try:
        for folder in PROCESSES:
            robo.registry.deploy(load_process(folder))
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


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _timed(cmd: list[str], env: dict[str, str] | None = None) -> tuple[float, float, str]:
    """(launched at, whole seconds, stdout) and CPU via the caller's before/after."""
    launched = time.time()
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=1800)
    whole = time.time() - launched
    if done.returncode != 0:
        raise RuntimeError(f"{cmd[0]} failed: {done.stdout[-2000:]}\n{done.stderr[-3000:]}")
    return launched, whole, done.stdout


def run_robo(home: Path, process: str, items: Path, params: dict[str, str]) -> Timing:
    cmd = robo_cmd("run", process, "--input", str(items), "--json")
    for key, value in params.items():
        cmd += ["--param", f"{key}={value}"]
    cpu = _children_cpu()
    launched, whole, out = _timed(cmd, robo_env(home))
    cpu = _children_cpu() - cpu
    first, last, count = item_span(home, json.loads(out)["run_id"])
    return Timing((last - first) / count, first - launched, whole, cpu)


def run_bare(script: str, args: list[str]) -> Timing:
    cpu = _children_cpu()
    launched, whole, out = _timed([PYTHON, str(ROOT / "benchmarks" / script), *args])
    cpu = _children_cpu() - cpu
    timing: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
    per_item = (timing["end"] - timing["first_item"]) / timing["items"]
    return Timing(per_item, timing["first_item"] - launched, whole, cpu)


def measure(items: int, rounds: int, big: int, repeats: int) -> dict[str, list[Timing]]:
    from benchmarks.challenge_app import ChallengeApp
    from robo.runner.browser import find_chromium

    chromium = find_chromium("") or ""
    found: dict[str, list[Timing]] = {
        k: [] for k in ("steps", "python", "bare", "changing", "changing_bare", "big")
    }
    with temp_home() as home, portal() as server, ChallengeApp() as app:
        deploy(home)
        url = {"portal_url": server.url}
        form = {"form_url": app.url}
        n = iter(range(10**6))

        def permits(count: int) -> Path:
            i = next(n)
            return write_items(home / f"p{i}.csv", f"P{i}", count, seed=i)

        def people(count: int) -> Path:
            i = next(n)
            return write_people(home / f"c{i}.csv", f"c{i}", count, seed=i)

        # One warm-up of each so the page cache holds Chromium and the modules.
        run_robo(home, STEPS, permits(3), url)
        run_robo(home, CHANGING, people(3), form)
        run_bare("plain_permits.py", [server.url, PORTAL_PASSWORD, str(permits(3)), chromium])
        for _ in range(repeats):
            bare = ["plain_permits.py", server.url, PORTAL_PASSWORD]
            found["steps"].append(run_robo(home, STEPS, permits(items), url))
            found["bare"].append(run_bare(bare[0], [*bare[1:], str(permits(items)), chromium]))
            found["python"].append(run_robo(home, PYTHON_FORM, permits(items), url))
            found["changing"].append(run_robo(home, CHANGING, people(rounds), form))
            found["changing_bare"].append(
                run_bare("plain_challenge.py", [app.url, str(people(rounds)), chromium])
            )
            found["big"].append(run_robo(home, STEPS, permits(big), url))
    return found


def run(quick: bool) -> list[Figure]:
    items, rounds, big, repeats = (5, 5, 20, 1) if quick else (50, 50, 200, 5)
    found = measure(items, rounds, big, repeats)

    def m(key: str, what: str) -> float:
        return median([getattr(t, what) for t in found[key]])

    size = f"{items} items, median of {repeats}"
    steps, bare = m("steps", "per_item"), m("bare", "per_item")
    python, big_item = m("python", "per_item"), m("big", "per_item")
    changing, changing_bare = m("changing", "per_item"), m("changing_bare", "per_item")
    whole, whole_bare = m("steps", "whole"), m("bare", "whole")
    up, up_bare = m("steps", "start_up"), m("bare", "start_up")
    cpu, cpu_bare = m("steps", "cpu"), m("bare", "cpu")
    return [
        Figure("bot: seconds per item, sample portal, steps form", "s", steps, bare,
               "≤ 1.05×", steps <= 1.05 * bare, size),
        Figure("bot: seconds per item, sample portal, Python form", "s", python, bare,
               "≤ 1.05×", python <= 1.05 * bare, size),
        Figure("bot: seconds per item, changing form (new field ids every round)", "s",
               changing, changing_bare, "≤ 1.05×", changing <= 1.05 * changing_bare,
               f"{rounds} rounds, median of {repeats}"),
        Figure("bot: whole command (launch → exit), sample portal", "s", whole, whole_bare,
               "≤ baseline + 0.5 s", whole <= whole_bare + 0.5, size),
        Figure("bot: start-up (command → first item)", "s", up, up_bare,
               "≤ baseline + 0.5 s", up <= up_bare + 0.5, size),
        Figure("bot: whole-run CPU (user + system, all processes)", "s", cpu, cpu_bare,
               "≤ 1.1×", cpu <= 1.1 * cpu_bare, size),
        Figure(f"bot: seconds per item, {big} items vs {items} (robo, steps form)", "s",
               big_item, steps, "≤ 1.05× (linear)", big_item <= 1.05 * steps,
               f"median of {repeats}"),
    ]  # fmt: skip


if __name__ == "__main__":
    cli(__doc__.splitlines()[0], run)
