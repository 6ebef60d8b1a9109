"""Scheduler at scale: N registered schedules, robo's SchedulerService vs a bare APScheduler 3.

Both use a SQLAlchemyJobStore on a SQLite file (robo's engine and pragmas) and
the same CronTrigger (``0 7 * * mon-fri``, Europe/Paris), one job per schedule.
Each side runs in its own subprocess so memory (psutil RSS after start) is its own.

- start-up, cold: the job store is empty; robo syncs N jobs from N processes in
  its registry (deployed beforehand by bulk insert, not timed), bare APScheduler
  gets N ``add_job`` calls; then ``start()``.
- start-up, warm: a restart on the filled job store (robo: until it fires; its service
  loop then reads every schedule once, reported apart as "schedules read after start").
- dispatch lag: bursts of M jobs (10, 100, 1,000) are made due at the same instant
  (``modify_job`` to now + 2 s or more); lag = due time -> robo's executor receiving the
  run (a free slot: a recording executor) / bare job function starting. p50 and p99 over M.

Schedules use robo's defaults (``skip_holidays: true``): a fire is checked against the
region's public holidays, a cost bare APScheduler does not have.
"""

from __future__ import annotations

import datetime as dt
import json
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from benchmarks.common import (
    PYTHON,
    ROOT,
    Figure,
    cli,
    median,
    open_robo,
    percentile,
    temp_home,
)

CRON = "0 7 * * mon-fri"
ZONE = "Europe/Paris"
RECORDED: dict[str, float] = {}


def record(job_id: str) -> None:
    """The bare scheduler's job function: note when it started."""
    RECORDED[job_id] = time.time()


def definition(index: int) -> dict[str, Any]:
    return {
        "id": f"sched-{index:05d}", "name": f"Scheduled {index}", "version": "1.0.0",
        "description": "benchmark", "applications": ["none"],
        "owner": {"region": "occitanie", "team": "Lab'O", "contact": "labo@example.org"},
        "items": {"source": "csv", "path": "input/items.csv", "reference": "ref"},
        "bot": {"entrypoint": "bot:process"},
        "baseline": {"manual_minutes_per_item": 1, "residual_minutes_per_item": 0,
                     "manual_minutes_per_run": 0, "measured_by": "bench",
                     "measured_on": "2026-01-01"},
        "schedule": {"triggers": [{"cron": CRON}], "timezone": ZONE,
                     "overlap": "skip", "missed": "run_once"},
    }  # fmt: skip


def prepare(home: Path, count: int) -> Path:
    """A robo database with ``count`` scheduled processes, inserted in bulk."""
    from sqlalchemy import insert

    from robo.definition import ProcessDefinition
    from robo.storage.models import ProcessRow, RegistryEventRow, VersionRow

    robo = open_robo(home)
    now = dt.datetime.now(dt.UTC)
    try:
        versions, processes, events = [], [], []
        for i in range(count):
            spec = ProcessDefinition.model_validate(definition(i)).model_dump(mode="json")
            versions.append({
                "id": i + 1, "process_id": spec["id"], "version": "1.0.0",
                "content_hash": f"{i:064d}", "definition": spec, "definition_text": "",
                "source_path": "bench", "deployed_at": now, "deployed_by": "bench",
            })  # fmt: skip
            processes.append({"id": spec["id"], "enabled": True, "created_at": now,
                              "updated_at": now, "active_version_id": i + 1})  # fmt: skip
            events.append({"process_id": spec["id"], "action": "deploy", "version": "1.0.0",
                           "at": now, "actor": "bench", "detail": ""})  # fmt: skip
        with robo.db.session() as session:
            session.execute(insert(VersionRow), versions)
            session.execute(insert(ProcessRow), processes)
            session.execute(insert(RegistryEventRow), events)
    finally:
        robo.close()
    return home / "robo.db"


class RecordingExecutor:
    """A free slot for every run: records when each run was handed over."""

    def __init__(self) -> None:
        self.received: dict[str, float] = {}

    def submit(self, jobs: list[Any]) -> None:
        at = time.time()
        for job in jobs:
            self.received[job.process_id] = at

    def busy(self, process_id: str) -> bool:
        return False

    def in_flight(self, process_id: str) -> set[str]:
        return set()

    def shutdown(self, drain_seconds: float = 60) -> None:
        pass


def _rss_mib() -> float:
    import psutil

    return psutil.Process().memory_info().rss / 2**20


def _wait(received: dict[str, float], count: int, timeout: float = 60) -> None:
    end = time.monotonic() + timeout
    while len(received) < count and time.monotonic() < end:
        time.sleep(0.05)


def _burst(aps: Any, job_ids: list[str]) -> float:
    # Each modify_job is a commit: leave time to move them all before the due instant.
    due = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=2 + len(job_ids) / 200)
    for job_id in job_ids:
        aps.modify_job(job_id, next_run_time=due)
    return due.timestamp()


def _bursts(aps: Any, bursts: list[int], received: dict[str, float]) -> dict[str, list[float]]:
    """Each burst on jobs of its own; lags in seconds per burst size."""
    ids = [job.id for job in aps.get_jobs()]
    lags, offset = {}, 0
    for size in bursts:
        received.clear()
        due = _burst(aps, ids[offset : offset + size])
        _wait(received, size)
        lags[str(size)] = [at - due for at in received.values()]
        offset += size
    return lags


def worker_robo(home: Path, bursts: list[int]) -> dict[str, Any]:
    from robo.logging import configure
    from robo.scheduling.service import SchedulerService

    robo = open_robo(home)
    configure("error", "console", robo.redactor)
    result: dict[str, Any] = {}
    for phase in ("cold", "warm"):
        executor = RecordingExecutor()
        svc = SchedulerService(
            robo.settings,
            robo.db,
            robo.registry,
            robo.ledger,
            robo.queues,
            executor,
            owner="bench",
        )
        started = time.perf_counter()
        svc.start()
        result[f"start_{phase}"] = time.perf_counter() - started
        result[f"rss_{phase}"] = _rss_mib()
        if phase == "warm":
            started = time.perf_counter()
            svc.sync_jobs()  # what the service loop does first: read every schedule once
            result["fill_warm"] = time.perf_counter() - started
            result["lags"] = _bursts(svc.aps, bursts, executor.received)
        svc.stop(0)
    robo.close()
    return result


def worker_bare(home: Path, count: int, bursts: list[int]) -> dict[str, Any]:
    from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
    from apscheduler.schedulers.background import BackgroundScheduler
    from apscheduler.triggers.cron import CronTrigger

    from robo.storage.database import make_engine

    engine = make_engine(f"sqlite:///{home / 'bare.db'}")
    result: dict[str, Any] = {}
    for phase in ("cold", "warm"):
        aps = BackgroundScheduler(
            jobstores={"default": SQLAlchemyJobStore(engine=engine, tablename="bare_jobs")},
            job_defaults={"coalesce": False, "max_instances": 1, "misfire_grace_time": None},
            timezone=dt.UTC,
        )
        started = time.perf_counter()
        if phase == "cold":
            for i in range(count):
                trigger = CronTrigger(minute="0", hour="7", day="*", month="*",
                                      day_of_week="mon,tue,wed,thu,fri", timezone=ZONE)  # fmt: skip
                job_id = f"sched-{i:05d}|t0"
                aps.add_job(f"{__name__}:record", trigger=trigger, id=job_id,
                            name=job_id, args=[job_id], replace_existing=True)  # fmt: skip
        aps.start()
        result[f"start_{phase}"] = time.perf_counter() - started
        result[f"rss_{phase}"] = _rss_mib()
        if phase == "warm":
            result["lags"] = _bursts(aps, bursts, RECORDED)
        aps.shutdown(wait=True)
    engine.dispose()
    return result


def _spawn(args: list[str]) -> dict[str, Any]:
    done = subprocess.run(
        [PYTHON, "-m", "benchmarks.scheduler_scale", *args],
        cwd=ROOT, capture_output=True, text=True,
    )  # fmt: skip
    if done.returncode != 0:
        raise RuntimeError(f"scheduler worker failed: {done.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def run(quick: bool) -> list[Figure]:
    count, bursts, repeats = (100, [10], 1) if quick else (10_000, [10, 100, 1000], 5)
    sizes = ",".join(map(str, bursts))
    runs: dict[str, list[dict[str, Any]]] = {"robo": [], "bare": []}
    with temp_home() as root:
        template = prepare(root / "template", count)
        for rep in range(repeats):
            robo_home, bare_home = root / f"robo{rep}", root / f"bare{rep}"
            robo_home.mkdir()
            bare_home.mkdir()
            shutil.copy(template, robo_home / "robo.db")
            runs["robo"].append(_spawn(["--worker", "robo", str(robo_home), str(count), sizes]))
            runs["bare"].append(_spawn(["--worker", "bare", str(bare_home), str(count), sizes]))

    def med(side: str, key: str) -> float:
        return median([r[key] for r in runs[side]])

    def lag(side: str, size: int, q: float) -> float:
        return median([percentile(r["lags"][str(size)], q) for r in runs[side]])

    size = f"{count:,} schedules, median of {repeats}"
    figures = []
    for phase in ("cold", "warm"):
        robo_s, bare_s = med("robo", f"start_{phase}"), med("bare", f"start_{phase}")
        figures.append(Figure(f"scheduler: start-up, {phase} ({count:,} jobs)", "s", robo_s,
                              bare_s, "≤ 1.2×", robo_s <= 1.2 * bare_s, size))  # fmt: skip
    robo_m, bare_m = med("robo", "rss_warm"), med("bare", "rss_warm")
    figures.append(Figure("scheduler: memory (RSS after start)", "MiB", robo_m, bare_m,
                          "≤ 1.2×", robo_m <= 1.2 * bare_m, size))  # fmt: skip
    for burst in bursts:
        for q in (50, 99):
            robo_l, bare_l = lag("robo", burst, q), lag("bare", burst, q)
            figures.append(Figure(f"scheduler: dispatch lag p{q} (burst of {burst})", "s", robo_l,
                                  bare_l, "≤ 1.2×", robo_l <= 1.2 * bare_l, size))  # fmt: skip
    if not quick:
        figures.append(Figure("scheduler: warm, schedules read after start (service loop)", "s",
                              med("robo", "fill_warm"), None, "-", None, size))  # fmt: skip
    return figures


def _worker_main(argv: list[str]) -> None:
    side, home, count = argv[0], Path(argv[1]), int(argv[2])
    bursts = [int(size) for size in argv[3].split(",")]
    result = worker_robo(home, bursts) if side == "robo" else worker_bare(home, count, bursts)
    print(json.dumps(result))


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--worker":
        _worker_main(sys.argv[2:])
        threading.Event().set()
    else:
        cli(__doc__.splitlines()[0], run)
