"""Shell completion of process ids and run ids, read from the installation's database.

click completes commands and options itself (``_ROBO_COMPLETE=bash_source robo``,
see the README); these functions add the values. Each TAB runs robo afresh, so
they stay quick and quiet: the database is opened without migrating, an SQLite
file that does not exist is not created, the query is given ``TIMEOUT_SECONDS``
and any failure (no database, a server down, a locked file) completes nothing.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click
from click.shell_completion import CompletionItem

TIMEOUT_SECONDS = 2.0
RECENT_RUNS = 30

T = TypeVar("T")


def process_ids(ctx: click.Context, _param: click.Parameter, incomplete: str) -> list[str]:
    """Registered process ids starting with ``incomplete``."""
    from sqlalchemy import select

    from robo.storage.models import ProcessRow

    def query(session: Any) -> list[str]:
        return list(
            session.scalars(
                select(ProcessRow.id)
                .where(ProcessRow.id.startswith(incomplete, autoescape=True))
                .order_by(ProcessRow.id)
            )
        )

    return _read(ctx, query) or []


def run_ids(ctx: click.Context, _param: click.Parameter, incomplete: str) -> list[CompletionItem]:
    """The most recent runs whose id starts with ``incomplete``, with what they were."""
    from sqlalchemy import select

    from robo.storage.models import RunRow

    def query(session: Any) -> list[CompletionItem]:
        rows = session.execute(
            select(RunRow.id, RunRow.process_id, RunRow.status, RunRow.started_at)
            .order_by(RunRow.id.desc())
            .limit(RECENT_RUNS)
        )
        return [
            CompletionItem(str(run_id), help=f"{process} {status} {started:%Y-%m-%d %H:%M}")
            for run_id, process, status, started in rows
            if str(run_id).startswith(incomplete)
        ]

    return _read(ctx, query) or []


def _read(ctx: click.Context, query: Callable[[Any], list[T]]) -> list[T] | None:
    """``query(session)`` on this installation's database, or None: never an error,
    never a new file or a migration, never longer than ``TIMEOUT_SECONDS``."""
    found: list[list[T]] = []

    def work() -> None:
        try:
            url = _database_url(ctx)
            if url is None:
                return
            from robo.storage.database import Database

            db = Database(url, migrate=False, busy_timeout_seconds=0.5)
            try:
                with db.session() as session:
                    found.append(query(session))
            finally:
                db.close()
        except Exception:  # completion fails silently: no database yet, a server down...
            return

    # A thread, so that a database server that does not answer cannot hold the shell.
    thread = threading.Thread(target=work, name="robo-complete", daemon=True)
    thread.start()
    thread.join(TIMEOUT_SECONDS)
    return found[0] if found else None


def _database_url(ctx: click.Context) -> str | None:
    """The database the command line would open (its --home/--database-url, ROBO_*,
    robo.toml), or None for an SQLite file that does not exist."""
    from sqlalchemy.engine import make_url

    from robo.settings import Settings

    root = ctx.find_root().params
    names = ("home", "database_url", "region")
    # Settings, not load_settings: completing must not create ROBO_HOME.
    settings = Settings(**{k: root[k] for k in names if root.get(k) is not None})
    url = settings.effective_database_url
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if not parsed.database or parsed.database == ":memory:":
            return None
        if not Path(parsed.database).is_file():
            return None
    return url
