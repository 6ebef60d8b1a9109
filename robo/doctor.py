"""`robo doctor`: check every part an installation depends on, in plain words.

Doctor looks and never changes anything: it opens the database without migrating
it (a database that is behind is reported, with the command that upgrades it),
and it does not create a secret key that is not there.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
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


def _process_secrets(settings: Settings, database: Database, env: Mapping[str, str]) -> Check:
    """Every secret an active process uses (under its local name) has a value to give."""
    from sqlalchemy import select

    from robo.regional import RegionDefaults
    from robo.registry import Registry
    from robo.secrets import ENV_PREFIX
    from robo.storage.models import SecretRow

    registry = Registry(
        database, RegionDefaults(settings.effective_timezone, settings.effective_calendar), actor=""
    )
    with database.session() as session:
        stored = set(session.scalars(select(SecretRow.name)))
    missing: list[str] = []
    processes = registry.process_ids()
    for process_id in processes:
        try:
            version = registry.active(process_id)
        except RoboError:
            continue
        for name in version.definition.secrets:
            local = version.secret_names.get(name, name)
            if local not in stored and not (
                env.get(ENV_PREFIX + local.upper()) or env.get(ENV_PREFIX + local)
            ):
                missing.append(f"{process_id} needs '{local}'")
    if missing:
        return Check(
            "process secrets",
            "problem",
            f"{'; '.join(missing)}: set them with `robo secret set NAME` "
            "(or ROBO_SECRET_<NAME>); these runs would fail at once",
        )
    return Check("process secrets", "ok", f"every secret of {len(processes)} process(es) is set")


def _runs(settings: Settings, database: Database) -> Check:
    """Runs marked running whose runner is gone, and outcomes waiting in the journal."""
    import datetime as dt
    import socket

    from sqlalchemy import select

    from robo.journal import OutcomeJournal
    from robo.ledger import process_alive
    from robo.storage.models import RunRow

    cutoff = utcnow() - dt.timedelta(seconds=settings.abandon_after_seconds)
    host = socket.gethostname()
    dead: list[str] = []
    with database.session() as session:
        for run in session.scalars(select(RunRow).where(RunRow.status == "running")):
            beat = run.heartbeat_at or run.started_at
            gone = run.host == host and run.pid is not None and not process_alive(run.pid)
            if gone or beat < cutoff:
                dead.append(
                    f"run {run.id} of {run.process_id} (process {run.pid} on {run.host}, last "
                    f"heartbeat {beat:%Y-%m-%d %H:%M:%S} UTC)"
                )
    journal = OutcomeJournal(settings.home / "journal")
    problems = []
    if dead:
        problems.append(
            f"{len(dead)} run(s) marked running have no live runner: {'; '.join(dead[:3])}"
            f"{' ...' if len(dead) > 3 else ''}; the next `robo run` of the process (or the "
            "scheduler) ends them as abandoned and takes their items back"
        )
    if journal.pending():
        problems.append(
            f"outcomes wait in {journal.path} (the database was away): any robo command that "
            "opens the ledger writes them, e.g. `robo runs`"
        )
    if problems:
        return Check("runs", "problem", " / ".join(problems))
    return Check("runs", "ok", "no run left running without its runner; no outcome waiting")


def _worklist(database: Database) -> Check:
    from robo.queues import Queues

    waiting = Queues(database).worklist()
    if waiting:
        by_status: dict[str, int] = {}
        for item in waiting:
            by_status[item.status] = by_status.get(item.status, 0) + 1
        counts = ", ".join(f"{n} {status}" for status, n in sorted(by_status.items()))
        return Check(
            "worklist",
            "warning",
            f"{len(waiting)} item(s) wait for a human ({counts}): `robo worklist`",
        )
    return Check("worklist", "ok", "no item waits for a human")


def _guarded(name: str, check: Callable[[], Check]) -> Check:
    try:
        return check()
    except Exception as exc:  # a check must never hide the others
        return Check(name, "problem", f"check failed: {_first_line(exc)}")


def diagnose(
    settings: Settings,
    longest_run: Callable[[], tuple[float, str]],
    env: Mapping[str, str] | None = None,
) -> list[Check]:
    """Every check, in order; the database first, since most others need it.

    The database is opened as it is: never migrated, never created. ``longest_run`` gives
    the longest run timeout of the active versions, in seconds, and its process (the
    Celery timeouts must exceed it); it is called only once the schema is known to be
    the newest. ``env`` is where ``ROBO_SECRET_<NAME>`` values are looked for.
    """
    database_check, database = _database(settings)
    results = [database_check]
    try:
        if database is not None:
            results.append(_guarded("secrets", lambda: _secret_key(settings, database)))
            results.append(
                _guarded("process secrets", lambda: _process_secrets(settings, database, env or {}))
            )
            results.append(_guarded("runs", lambda: _runs(settings, database)))
            results.append(_guarded("worklist", lambda: _worklist(database)))
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
