"""`robo doctor`: check every part an installation depends on, in plain words.

Doctor looks and never changes anything: it opens the database without migrating
it (a database that is behind is reported, with the command that upgrades it),
and it does not create a secret key that is not there.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from sqlalchemy.engine import make_url

from robo.clock import utcnow
from robo.errors import RoboError
from robo.settings import Settings
from robo.storage.database import Database, head_revision, pending_revisions

Status = Literal["ok", "warning", "problem"]


@dataclass(frozen=True)
class Check:
    name: str
    status: Status
    detail: str


def _first_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else type(exc).__name__


def _sqlite_file(url: str) -> Path | None:
    try:
        parsed = make_url(url)
    except Exception:
        return None
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
        return None
    return Path(parsed.database)


def _database(settings: Settings) -> tuple[Check, Database | None]:
    """The database check, and the database opened as it is if the other checks can use it."""
    url = settings.effective_database_url
    path = _sqlite_file(url)
    if path is not None and not path.exists():
        return Check(
            "database",
            "warning",
            f"{url} does not exist yet: the first command that needs it creates it "
            "(or run `robo db upgrade`)",
        ), None
    try:
        database = Database(url, migrate=False)
    except RoboError as exc:
        return Check("database", "problem", exc.message), None
    try:
        found = database.revision()
        pending = pending_revisions(found)
    except RoboError as exc:
        database.close()
        return Check("database", "problem", exc.message), None
    head = head_revision()
    if pending:
        database.close()
        return Check(
            "migrations",
            "problem",
            f"{len(pending)} migration(s) pending (current {found or 'none'}, head {head}): "
            "run `robo db upgrade`",
        ), None
    return Check("database", "ok", f"{database.safe_url} at schema {found} (newest)"), database


def _secret_key(settings: Settings, database: Database) -> Check:
    from robo.secrets import SecretStore, load_or_create_key

    key_file = settings.secret_key_file
    if not settings.secret_key and not key_file.exists():
        from sqlalchemy import func, select

        from robo.storage.models import SecretRow

        with database.session() as session:
            stored = session.scalar(select(func.count()).select_from(SecretRow)) or 0
        if stored:
            return Check(
                "secrets",
                "problem",
                f"{stored} secret(s) stored but the key file {key_file} is missing: restore it "
                "(or set ROBO_SECRET_KEY), else set every secret again with `robo secret set`",
            )
        return Check(
            "secrets", "ok", f"no secret key yet: the first `robo secret set` creates {key_file}"
        )
    try:
        store = SecretStore(database, load_or_create_key(key_file, settings.secret_key))
        names = [entry["name"] for entry in store.names()]
        if names:
            store.get(names[0])  # the key decrypts what is stored
    except RoboError as exc:
        return Check("secrets", "problem", exc.message)
    return Check("secrets", "ok", f"secret key readable ({len(names)} secret(s) stored)")


def _chromium(settings: Settings) -> Check:
    from robo.runner.browser import BrowserSession, find_chromium

    try:
        path = find_chromium(settings.chromium)
        with BrowserSession(chromium=settings.chromium) as session:
            assert session.browser is not None
            version = session.browser.version
    except Exception as exc:
        return Check("chromium", "problem", _first_line(exc))
    return Check(
        "chromium",
        "ok",
        f"Chromium {version} ({path or 'Playwright managed browser'}) starts headless",
    )


def _broker(settings: Settings, longest_run: Callable[[], tuple[float, str]] | None) -> Check:
    if settings.executor != "celery":
        return Check("executor", "ok", f"local process pool, {settings.bot_slots} slot(s)")
    from robo.scheduling.executors.celery import celery_app, check_timeouts

    try:
        check_timeouts(settings, *(longest_run() if longest_run else (0.0, "-")))
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


def _workers(settings: Settings, database: Database) -> Check:
    if settings.executor != "celery":
        return Check("workers", "ok", "not used with the local executor")
    from robo.scheduling.workers import list_workers

    live = [w for w in list_workers(database, settings.heartbeat_seconds) if w.alive]
    if not live:
        return Check("workers", "warning", "no live `robo worker`: queued runs will wait")
    return Check(
        "workers", "ok", f"{len(live)} live worker(s), {sum(w.slots for w in live)} slot(s)"
    )


def _scheduler(database: Database) -> Check:
    from robo.scheduling.lock import LeaderLock

    holder = LeaderLock(database, owner="").holder()
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


def _guarded(name: str, check: Callable[[], Check]) -> Check:
    try:
        return check()
    except Exception as exc:  # a check must never hide the others
        return Check(name, "problem", f"check failed: {_first_line(exc)}")


def diagnose(settings: Settings, longest_run: Callable[[], tuple[float, str]]) -> list[Check]:
    """Every check, in order; the database first, since most others need it.

    The database is opened as it is: never migrated, never created. ``longest_run`` gives
    the longest run timeout of the active versions, in seconds, and its process (the
    Celery timeouts must exceed it); it is called only once the schema is known to be
    the newest.
    """
    database_check, database = _database(settings)
    results = [database_check]
    try:
        if database is not None:
            results.append(_guarded("secrets", lambda: _secret_key(settings, database)))
        results.append(_guarded("chromium", lambda: _chromium(settings)))
        results.append(
            _guarded("broker", lambda: _broker(settings, longest_run if database else None))
        )
        if database is not None:
            results.append(_guarded("workers", lambda: _workers(settings, database)))
            results.append(_guarded("scheduler", lambda: _scheduler(database)))
    finally:
        if database is not None:
            database.close()
    return results
