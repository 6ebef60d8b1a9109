"""Bot throughput on Celery workers: 1 worker vs 2 workers (one browser slot each).

Needs PostgreSQL and Redis (ROBO_BENCH_POSTGRES_URL, ROBO_BENCH_REDIS_URL; the
defaults are this project's CI services). Each run visits the sample portal
once per item with a short pause, like a light real bot. Throughput is items
finished per second of wall time, from the first run start to the last end.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

from benchmarks.common import Figure, cli, portal, temp_home

POSTGRES_URL = os.environ.get(
    "ROBO_BENCH_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
REDIS_URL = os.environ.get("ROBO_BENCH_REDIS_URL", "redis://127.0.0.1:6379/8")

BOT = """
def process(ctx):
    ctx.page.goto(ctx.params["portal_url"] + "/api/health")
    ctx.page.wait_for_timeout(200)
"""

DEFINITION = """
id: throughput
name: Throughput benchmark
version: 1.0.0
owner: {{region: occitanie, team: bench, contact: bench@example.org}}
applications: [sample-portal]
parameters: {{portal_url: "{url}"}}
items: {{source: csv, path: input/items.csv, reference: ref}}
bot: {{entrypoint: "bot:process"}}
baseline: {{manual_minutes_per_item: 5, residual_minutes_per_item: 1, measured_by: bench, measured_on: "2026-01-01"}}
timeouts: {{item_seconds: 30, run_seconds: 600}}
"""


def _schema_url() -> tuple[str, str]:
    from sqlalchemy import create_engine, text

    schema = f"bench_{uuid.uuid4().hex[:10]}"
    engine = create_engine(POSTGRES_URL)
    with engine.begin() as connection:
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    engine.dispose()
    return f"{POSTGRES_URL}?options=-csearch_path%3D{schema}", schema


def _drop(schema: str) -> None:
    from sqlalchemy import create_engine, text

    engine = create_engine(POSTGRES_URL)
    with engine.begin() as connection:
        connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
    engine.dispose()


def _measure(workers: int, runs: int, items: int, portal_url: str, home: Path) -> float:
    from sqlalchemy import func, select

    from robo.app import Robo
    from robo.loader import load_process
    from robo.settings import Settings
    from robo.storage.models import ItemRow, RunRow

    url, schema = _schema_url()
    folder = home / f"process-{workers}"
    (folder / "input").mkdir(parents=True)
    (folder / "process.yaml").write_text(DEFINITION.format(url=portal_url))
    (folder / "bot.py").write_text(BOT)
    (folder / "input" / "items.csv").write_text(
        "ref\n" + "\n".join(f"R{i}" for i in range(items)) + "\n"
    )
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("ROBO_")},
        "ROBO_HOME": str(home / f"home-{workers}"),
        "ROBO_DATABASE_URL": url,
        "ROBO_EXECUTOR": "celery",
        "ROBO_BROKER_URL": REDIS_URL,
        "ROBO_BROKER_QUEUE": f"bench-{uuid.uuid4().hex[:8]}",
        "ROBO_LOG_LEVEL": "error",
    }
    robo = Robo(Settings(home=home / f"home-{workers}", database_url=url))
    procs: list[subprocess.Popen[bytes]] = []
    try:
        robo.registry.deploy(load_process(folder))
        for index in range(workers):
            procs.append(subprocess.Popen(
                [sys.executable, "-m", "robo", "worker", "--slots", "1", "--name", f"bench{index}"],
                env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            ))  # fmt: skip
        time.sleep(4)  # workers connect
        subprocess.run([sys.executable, "-m", "robo", "submit", *(["throughput"] * runs)],
                       env=env, check=True, stdout=subprocess.DEVNULL)  # fmt: skip
        deadline = time.monotonic() + 900
        while time.monotonic() < deadline:
            with robo.db.session() as s:
                done = s.scalar(select(func.count()).where(RunRow.status == "completed"))
            if done >= runs:
                break
            time.sleep(0.5)
        with robo.db.session() as s:
            first = s.scalar(select(func.min(RunRow.started_at)))
            last = s.scalar(select(func.max(RunRow.finished_at)))
            finished = s.scalar(select(func.count(ItemRow.id)))
        assert first is not None and last is not None
        return finished / (last - first).total_seconds()
    finally:
        for proc in procs:
            proc.send_signal(signal.SIGTERM)
        for proc in procs:
            proc.wait(timeout=120)
        robo.close()
        _drop(schema)


def run(quick: bool = False) -> list[Figure]:
    runs, items = (2, 3) if quick else (8, 25)
    with temp_home() as home, portal() as server:
        one = _measure(1, runs, items, server.url, home)
        two = _measure(2, runs, items, server.url, home)
    return [
        Figure("worker throughput, 2 workers vs 1", "items/s", two, one, "> 1× (scales out)", two > one,
               f"{runs} runs × {items} items"),
    ]  # fmt: skip


if __name__ == "__main__":
    cli(__doc__ or "", run)
