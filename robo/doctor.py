"""`robo doctor`: check every part an installation depends on, in plain words."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from robo.app import Robo
from robo.clock import utcnow

Status = Literal["ok", "warning", "problem"]


@dataclass(frozen=True)
class Check:
    name: str
    status: Status
    detail: str


def _database(robo: Robo) -> Check:
    from robo.storage.database import current_revision, head_revision

    url = robo.settings.effective_database_url
    try:
        database = robo.db  # opening migrates a database that is behind, as every command does
        found = current_revision(database.engine)
    except Exception as exc:
        return Check("database", "problem", f"cannot open {url}: {str(exc).splitlines()[0]}")
    head = head_revision()
    if found != head:
        return Check(
            "migrations",
            "problem",
            f"schema at {found or 'nothing'}, robo needs {head}: run `robo db upgrade`",
        )
    return Check("database", "ok", f"{database.safe_url} at schema {found} (newest)")


def _chromium(robo: Robo) -> Check:
    from robo.runner.browser import BrowserSession, find_chromium

    try:
        path = find_chromium(robo.settings.chromium)
        with BrowserSession(chromium=robo.settings.chromium) as session:
            assert session.browser is not None
            version = session.browser.version
    except Exception as exc:
        return Check("chromium", "problem", f"{str(exc).splitlines()[0]}")
    return Check(
        "chromium",
        "ok",
        f"Chromium {version} ({path or 'Playwright managed browser'}) starts headless",
    )


def _broker(robo: Robo) -> Check:
    settings = robo.settings
    if settings.executor != "celery":
        return Check("executor", "ok", f"local process pool, {settings.bot_slots} slot(s)")
    from robo.scheduling.executors.celery import celery_app, check_timeouts, longest_run

    try:
        check_timeouts(settings, *longest_run(robo))
    except Exception as exc:
        return Check("timeouts", "problem", str(exc))
    try:
        app = celery_app(settings)
        with app.connection_for_write() as connection:
            connection.ensure_connection(max_retries=1, timeout=5)
        app.close()
    except Exception as exc:
        return Check("broker", "problem", f"cannot reach {settings.broker_url}: {exc}")
    return Check("broker", "ok", f"{settings.broker_url} reachable, queue {settings.broker_queue}")


def _workers(robo: Robo) -> Check:
    if robo.settings.executor != "celery":
        return Check("workers", "ok", "not used with the local executor")
    from robo.scheduling.workers import list_workers

    live = [w for w in list_workers(robo) if w.alive]
    if not live:
        return Check("workers", "warning", "no live `robo worker`: queued runs will wait")
    return Check(
        "workers", "ok", f"{len(live)} live worker(s), {sum(w.slots for w in live)} slot(s)"
    )


def _scheduler(robo: Robo) -> Check:
    from robo.scheduling.lock import LeaderLock

    holder = LeaderLock(robo.db, owner="").holder()
    if holder is None:
        return Check(
            "scheduler", "warning", "no scheduler holds the lock: nothing fires on schedule"
        )
    if holder.expires_at < utcnow():
        return Check(
            "scheduler",
            "warning",
            f"lock of {holder.owner} expired at {holder.expires_at:%H:%M:%S} UTC: that scheduler stopped",
        )
    return Check("scheduler", "ok", f"{holder.owner} is the active scheduler")


def _secret_key(robo: Robo) -> Check:
    try:
        robo.secrets.names()
    except Exception as exc:
        return Check("secrets", "problem", str(exc))
    return Check("secrets", "ok", "secret key readable")


CHECKS: list[Callable[[Robo], Check]] = [
    _database,
    _secret_key,
    _chromium,
    _broker,
    _workers,
    _scheduler,
]


def diagnose(robo: Robo) -> list[Check]:
    results = []
    for check in CHECKS:
        try:
            results.append(check(robo))
        except Exception as exc:  # a check must never hide the others
            results.append(Check(check.__name__.strip("_"), "problem", f"check failed: {exc}"))
        if results[-1].name in ("database", "migrations") and results[-1].status == "problem":
            break  # every other check needs the database
    return results
