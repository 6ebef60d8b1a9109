"""Queue overhead: take + record of a queue item vs a plain record; a big queue drained by 2 workers.

(a) Per item, in-process, no browser: ``Queues.take`` + ``Ledger.record_item``
    of the taken item (which moves the queue item to ``successful`` in the same
    transaction) against the baseline of the same run, ``Ledger.record_item``
    of an item that belongs to no queue (the per-run path before queues). On
    SQLite and on PostgreSQL; the two alternate, median of the repetitions.
(b) A 100,000-item queue on PostgreSQL (items inserted in bulk, not timed)
    drained by 2 worker processes, each one run doing take + record until the
    queue is empty (no browser). Throughput = items / (last worker end - first
    worker start). Baseline, same run: 1 worker on a queue of the same size,
    stopped after a fifth of it. Afterwards every item must have been taken
    once ('taken' events), recorded once and be ``successful``; if not, the
    benchmark fails with the offending items.

Needs PostgreSQL (ROBO_BENCH_POSTGRES_URL; the default is this machine's).
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import signal
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from benchmarks.common import ROOT, Figure, cli, median, temp_home

POSTGRES_URL = os.environ.get(
    "ROBO_BENCH_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
PROCESS = ROOT / "benchmarks" / "processes" / "noop-bot"
PROCESS_ID = "bench-noop"
LEASE_SECONDS = 300.0
# What a take needs on a big queue (migration 0006); dropped to measure the queue before it.
TAKE_INDEX = "ix_queue_items_next"


# --- databases ---------------------------------------------------------------------------


@contextlib.contextmanager
def database(kind: str, home: Path) -> Iterator[str]:
    """A fresh database URL: a SQLite file, or a PostgreSQL schema dropped afterwards."""
    if kind == "sqlite":
        yield f"sqlite:///{home / f'queue-{uuid.uuid4().hex[:8]}.db'}"
        return
    from sqlalchemy import create_engine, text

    schema = f"bench_{uuid.uuid4().hex[:10]}"
    admin = create_engine(POSTGRES_URL)
    with admin.begin() as connection:
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    sep = "&" if "?" in POSTGRES_URL else "?"
    try:
        yield f"{POSTGRES_URL}{sep}options=-csearch_path%3D{schema}"
    finally:
        with admin.begin() as connection:
            connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def open_at(home: Path, url: str) -> Any:
    from robo.app import Robo
    from robo.settings import Settings

    return Robo(Settings(home=home, database_url=url, region="occitanie"), env={})


def deployed(home: Path, url: str) -> Any:
    from robo.loader import load_process
    from robo.logging import configure

    robo = open_at(home, url)
    configure("error", "console", robo.redactor)
    robo.registry.deploy(load_process(PROCESS))
    return robo


def start_run(robo: Any) -> int:
    version = robo.registry.active(PROCESS_ID)
    d = version.definition
    run_id: int = robo.ledger.start_run(
        process_id=PROCESS_ID, version_id=version.version_id, version=d.version,
        baseline=d.baseline, region="occitanie", parameters={}, trigger="manual",
    )  # fmt: skip
    return run_id


def fill(robo: Any, queue: str, count: int) -> None:
    """``count`` new items in ``queue``, inserted in bulk (setup, not measured)."""
    from sqlalchemy import insert

    from robo.clock import utcnow
    from robo.storage.models import QueueItemRow

    robo.queues.ensure(queue)
    now = utcnow()
    rows = [
        {
            "queue": queue,
            "reference": f"R{i:07d}",
            "holds_reference": f"R{i:07d}",
            "data": {"ref": f"R{i:07d}"},
            "status": "new",
            "priority": 0,
            "created_at": now,
            "updated_at": now,
            "source": "benchmark",
            "needs_verify": False,
            "runs_failed": 0,
            "attempts": 0,
            "note": "",
        }
        for i in range(count)
    ]
    with robo.db.engine.begin() as connection:
        for start in range(0, count, 5000):
            connection.execute(insert(QueueItemRow), rows[start : start + 5000])
        if connection.dialect.name == "postgresql":
            connection.exec_driver_sql("ANALYZE queue_items")  # as autovacuum soon would


def outcome(position: int, reference: str, queue_item_id: int | None) -> Any:
    from robo.clock import utcnow
    from robo.ledger import ItemOutcome

    now = utcnow()
    return ItemOutcome(
        position=position, reference=reference, status="success", attempts=1,
        started_at=now, finished_at=now, queue_item_id=queue_item_id,
    )  # fmt: skip


# --- (a) per-item overhead ---------------------------------------------------------------


def drop_take_index(robo: Any) -> None:
    """The queue as it was before migration 0006: without the index in take order, a
    take sorts every waiting item of the queue instead of reading one index entry."""
    from sqlalchemy import text

    with robo.db.engine.begin() as connection:
        connection.execute(text(f"DROP INDEX {TAKE_INDEX}"))


def plain_per_item(robo: Any, count: int, tag: str) -> float:
    """Today's per-run path: record_item of items that belong to no queue."""
    run_id = start_run(robo)
    started = time.perf_counter()
    for position in range(1, count + 1):
        robo.ledger.record_item(run_id, outcome(position, f"{tag}-{position}", None))
    elapsed = time.perf_counter() - started
    robo.ledger.finish_run(run_id, "completed")
    return elapsed / count


def queue_per_item(robo: Any, count: int, tag: str) -> float:
    """take + record_item of each item of a ``count``-item queue, until it is empty."""
    queue = f"bench-{tag}"
    fill(robo, queue, count)
    run_id = start_run(robo)
    position = 0
    started = time.perf_counter()
    while (taken := robo.queues.take(queue, run_id, LEASE_SECONDS)) is not None:
        position += 1
        robo.ledger.record_item(run_id, outcome(position, taken.reference, taken.id))
    elapsed = time.perf_counter() - started
    robo.ledger.finish_run(run_id, "completed")
    if position != count:
        raise RuntimeError(f"queue {queue}: took {position} of {count} items")
    return elapsed / count


def overhead(kind: str, count: int, repeats: int, index: bool = True) -> tuple[float, float]:
    """(queue, plain) seconds per item, medians; the two alternate on one database."""
    queue_values, plain_values = [], []
    with temp_home() as home, database(kind, home) as url:
        robo = deployed(home, url)
        try:
            if not index:
                drop_take_index(robo)
            plain_per_item(robo, min(count, 50), "warm")  # first-use costs out of the way
            queue_per_item(robo, min(count, 50), "warm")
            for rep in range(repeats):
                plain_values.append(plain_per_item(robo, count, f"p{rep}"))
                queue_values.append(queue_per_item(robo, count, f"q{rep}"))
        finally:
            robo.close()
    return median(queue_values), median(plain_values)


# --- (b) one big queue, two workers ------------------------------------------------------


def drain_worker(
    home: str, url: str, queue: str, limit: int, ready: Any, go: Any, out: Any
) -> None:
    """In a worker process: one run takes and records items until the queue is empty
    (or ``limit`` items); reports what it took and when."""
    if sys.platform.startswith("linux"):  # die with the benchmark, even if it is killed
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    robo = open_at(Path(home), url)
    try:
        from robo.logging import configure

        configure("error", "console", robo.redactor)
        run_id = start_run(robo)
        robo.queues.renew(run_id, LEASE_SECONDS)  # connection and statements warmed up
        ready.put(run_id)
        go.wait(120)
        started = time.time()
        taken_ids = []
        while len(taken_ids) < limit:
            taken = robo.queues.take(queue, run_id, LEASE_SECONDS)
            if taken is None:
                break
            taken_ids.append(taken.id)
            robo.ledger.record_item(run_id, outcome(len(taken_ids), taken.reference, taken.id))
        ended = time.time()
        robo.ledger.finish_run(run_id, "completed")
        out.put({"run_id": run_id, "ids": taken_ids, "start": started, "end": ended})
    finally:
        robo.close()


def drain(
    workers: int, count: int, limit: int | None = None, index: bool = True
) -> tuple[float, int]:
    """(items/s, items taken) for ``workers`` processes draining a ``count``-item queue on
    PostgreSQL, each stopping after ``limit`` items (None: until the queue is empty)."""
    context = multiprocessing.get_context("spawn")
    with temp_home() as home, database("postgres", home) as url:
        robo = deployed(home, url)
        procs: list[Any] = []
        try:
            if not index:
                drop_take_index(robo)
            fill(robo, "big", count)
            ready, go, out = context.Queue(), context.Event(), context.Queue()
            each = count if limit is None else limit
            procs = [
                context.Process(target=drain_worker, args=(str(home), url, "big", each, ready, go, out),
                                daemon=True)
                for _ in range(workers)
            ]  # fmt: skip
            for proc in procs:
                proc.start()
            for _ in procs:
                ready.get(timeout=120)  # every worker connected, its run started
            go.set()
            reports = [_report(out, procs) for _ in procs]
            check_each_item_once(robo, "big", reports, expect_all=limit is None, count=count)
            taken = sum(len(r["ids"]) for r in reports)
            elapsed = max(r["end"] for r in reports) - min(r["start"] for r in reports)
        finally:
            for proc in procs:
                proc.join(timeout=60)
                if proc.is_alive():
                    proc.kill()
            robo.close()
    return taken / elapsed, taken


def _report(out: Any, procs: list[Any], timeout: float = 7200) -> dict[str, Any]:
    """The next worker's report; fails (instead of waiting for ever) if a worker died."""
    import queue

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            report: dict[str, Any] = out.get(timeout=1)
            return report
        except queue.Empty:
            dead = [p.exitcode for p in procs if p.exitcode not in (None, 0)]
            if dead:
                raise RuntimeError(f"a drain worker exited with code {dead[0]}") from None
    raise RuntimeError(f"no drain report within {timeout:g} s")


def check_each_item_once(
    robo: Any, queue: str, reports: list[dict[str, Any]], *, expect_all: bool, count: int
) -> None:
    """Fail loudly if any item was taken twice, recorded twice, or left behind."""
    from sqlalchemy import func, select

    from robo.storage.models import ItemRow, QueueEventRow, QueueItemRow

    problems = []
    seen: dict[int, int] = {}
    for report in reports:
        for item_id in report["ids"]:
            if item_id in seen:
                problems.append(
                    f"item {item_id} taken by run {seen[item_id]} and {report['run_id']}"
                )
            seen[item_id] = report["run_id"]
    with robo.db.session() as s:
        twice = s.execute(
            select(QueueEventRow.item_id, func.count())
            .where(QueueEventRow.action == "taken")
            .group_by(QueueEventRow.item_id)
            .having(func.count() > 1)
            .limit(10)
        ).all()
        problems += [f"item {item}: {n} 'taken' events" for item, n in twice]
        recorded = s.execute(
            select(ItemRow.queue_item_id, func.count())
            .group_by(ItemRow.queue_item_id)
            .having(func.count() > 1)
            .limit(10)
        ).all()
        problems += [f"item {item}: {n} item rows" for item, n in recorded]
        successful = s.scalar(
            select(func.count()).where(
                QueueItemRow.queue == queue, QueueItemRow.status == "successful"
            )
        )
        events = s.scalar(select(func.count()).where(QueueEventRow.action == "taken"))
    if successful != len(seen) or events != len(seen):
        problems.append(f"{len(seen)} taken by the workers, {events} 'taken' events, "
                        f"{successful} successful items")  # fmt: skip
    if expect_all and len(seen) != count:
        problems.append(f"{count - len(seen)} of {count} items were never taken")
    if problems:
        raise RuntimeError("QUEUE INTEGRITY FAILED:\n  " + "\n  ".join(problems))


# --- figures ------------------------------------------------------------------------------


def require_postgres() -> None:
    from sqlalchemy import create_engine, text
    from sqlalchemy.exc import OperationalError

    engine = create_engine(POSTGRES_URL)
    try:
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))
    except OperationalError as exc:
        raise SystemExit(
            f"queue_overhead needs PostgreSQL: set ROBO_BENCH_POSTGRES_URL ({exc.orig})"
        ) from None
    finally:
        engine.dispose()


def run(quick: bool = False) -> list[Figure]:
    require_postgres()
    count, repeats = (50, 1) if quick else (2_000, 3)
    big = 300 if quick else 100_000
    window = 50 if quick else 500  # items per worker measured without the take index
    figures = []
    for kind, label, index in (
        ("sqlite", "SQLite", True),
        ("postgres", "PostgreSQL", True),
        ("postgres", "PostgreSQL without the take index (before 0006)", False),
    ):
        queued, plain = overhead(kind, count, repeats, index)
        figures.append(Figure(
            f"queue: take + record per item, {label}", "s", queued, plain,
            "plain + < 2 ms", queued - plain < 0.002,
            f"queue of {count:,}, drained; median of {repeats}; "
            "baseline: record_item without a queue",
        ))  # fmt: skip
    one, _ = drain(1, big, limit=window, index=False)
    two, taken = drain(2, big, limit=window, index=False)
    figures.append(Figure(
        f"queue: 2 workers on a {big:,}-item queue, PostgreSQL without the take index "
        f"(before 0006), first {2 * window:,} items", "items/s",
        two, one, "> 1× (scales out), no item twice", two > one,
        f"{taken:,} items, each taken once; baseline: 1 worker, first {window:,} items",
    ))  # fmt: skip
    one, _ = drain(1, big, limit=big // 5)
    two, taken = drain(2, big)
    figures.append(Figure(
        f"queue: {big:,} items drained by 2 workers, PostgreSQL", "items/s",
        two, one, "> 1× (scales out), no item twice", two > one,
        f"{taken:,} items, each taken once; baseline: 1 worker, {big // 5:,} of {big:,} items",
    ))  # fmt: skip
    return figures


if __name__ == "__main__":
    cli(__doc__.splitlines()[0], run)
