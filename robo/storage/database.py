"""Opening the database: engine, SQLite pragmas, migrations to the current schema.

Database errors raised through :class:`Database` (its sessions, ``revision``,
migrating on open, any ``translate_errors`` block) leave as
:class:`~robo.errors.StorageError`, whose message says what failed, on which
database (never with its password) and what to do. ``IntegrityError`` stays as it
is: callers catch it to detect a row that is already there. Code that uses
``Database.engine`` directly gets SQLAlchemy's exceptions unless it wraps itself
in ``translate_errors``.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event, inspect, make_url, text
from sqlalchemy.exc import DatabaseError, IntegrityError, SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from robo.errors import ConfigurationError, StorageError

MIGRATIONS = Path(__file__).with_name("migrations")
# pg_advisory_xact_lock key serialising migrations (any fixed 64-bit number: "robo" in ASCII).
MIGRATION_LOCK = 0x726F626F
BUSY_TIMEOUT_SECONDS = 30.0  # how long a SQLite writer waits for another one's lock


def _sqlite_pragmas(busy_timeout_seconds: float) -> Any:
    busy_ms = max(0, round(busy_timeout_seconds * 1000))

    def on_connect(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA journal_mode=WAL")  # readers (CLI) never block the runner
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute(f"PRAGMA busy_timeout={busy_ms}")
        cursor.close()

    return on_connect


def make_engine(url: str, busy_timeout_seconds: float = BUSY_TIMEOUT_SECONDS) -> Engine:
    if url.startswith("sqlite:///"):
        path = Path(url.removeprefix("sqlite:///"))
        if str(path) != ":memory:":
            path.parent.mkdir(parents=True, exist_ok=True)
    # PostgreSQL: a host that drops packets fails in seconds, not at the TCP timeout.
    connect_args = {"connect_timeout": 10} if url.startswith("postgresql") else {}
    try:
        engine = create_engine(url, future=True, connect_args=connect_args)
    except (SQLAlchemyError, ImportError, ValueError) as exc:
        shown = _without_password(url)
        reason = str(exc).replace(url, shown)
        raise ConfigurationError(f"cannot use database URL '{shown}': {reason}") from None
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas(busy_timeout_seconds))
    return engine


def _without_password(url: str) -> str:
    """The URL as it may be shown: a password never reaches a message or a log."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # not even parseable: show the scheme only
        return url.split(":", 1)[0] + "://..."


def _first_line(error: object) -> str:
    lines = str(error).strip().splitlines()
    return lines[0].strip() if lines else type(error).__name__


def storage_error(exc: DatabaseError, url: str) -> StorageError:
    """The database error ``exc`` as a message: what failed, on which database, what to do.

    ``url`` must be safe to show (no password): :attr:`Database.safe_url`.
    """
    orig = exc.orig if exc.orig is not None else exc
    reason = _first_line(orig)
    lowered = reason.lower()
    code = str(getattr(orig, "sqlstate", None) or getattr(orig, "pgcode", None) or "")
    # SQLAlchemy had no statement to run: the connection itself failed.
    connecting = exc.statement is None
    if "database is locked" in lowered or "database table is locked" in lowered or code == "55P03":
        return StorageError(
            f"cannot write to {url}: the database is locked: another process holds a write "
            "lock on it (a running `robo scheduler`, `robo run`, worker or another program); "
            "retry, or stop it"
        )
    if code in ("40001", "40P01"):
        return StorageError(
            f"a transaction on {url} conflicted with a concurrent one ({reason}): retry"
        )
    if "unable to open database file" in lowered:
        return StorageError(
            f"cannot open {url}: {reason}: check that its folder exists and that this user "
            "may write there"
        )
    if "readonly database" in lowered:
        return StorageError(
            f"cannot write to {url}: {reason}: this user may not write the file, or its folder "
            "(SQLite writes -wal and -shm files beside it); fix the permissions"
        )
    if "file is not a database" in lowered or "malformed" in lowered or "disk i/o error" in lowered:
        return StorageError(
            f"cannot read {url}: {reason}: the file is damaged or is not a robo database; "
            "restore it from a backup, or point ROBO_DATABASE_URL at the right file"
        )
    if "database or disk is full" in lowered or code == "53100":
        return StorageError(f"cannot write to {url}: {reason}: free some disk space and retry")
    if code == "28P01" or "password authentication failed" in lowered:
        return StorageError(
            f"cannot connect to {url}: {reason}: the server refused these credentials; "
            "check the user and password in ROBO_DATABASE_URL"
        )
    if code == "3D000" or (connecting and "database" in lowered and "does not exist" in lowered):
        return StorageError(
            f"cannot connect to {url}: {reason}: create that database, or fix its name in "
            "ROBO_DATABASE_URL"
        )
    if connecting:
        return StorageError(
            f"cannot connect to {url}: {reason}: is the database server running and reachable "
            "at that host and port, and is ROBO_DATABASE_URL right?"
        )
    if exc.connection_invalidated:
        return StorageError(
            f"lost the connection to {url}: {reason}: retry; if it keeps happening, "
            "check the database server"
        )
    if code in ("42P01", "42703") or "no such table" in lowered or "no such column" in lowered:
        return StorageError(
            f"the schema of {url} is not the one this robo expects ({reason}): "
            "run `robo db upgrade` (or `robo db current` to compare)"
        )
    return StorageError(f"a database operation on {url} failed: {reason}")


def _alembic_config(connection: Any) -> Any:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = connection
    return config


_REVISION = re.compile(r"^revision\b[^=]*=\s*['\"]([^'\"]+)['\"]", re.M)
_DOWN_REVISION = re.compile(r"^down_revision\b[^=]*=(.*)$", re.M)


def head_revision() -> str:
    """The newest migration, read from the files: every command opening the database checks
    it, and Alembic's ScriptDirectory costs ~80 ms of imports. Alembic decides if unsure."""
    revisions: set[str] = set()
    parents: set[str] = set()
    for path in (MIGRATIONS / "versions").glob("*.py"):
        text = path.read_text(encoding="utf-8")
        revision, down = _REVISION.search(text), _DOWN_REVISION.search(text)
        if revision is None or down is None:
            return alembic_head_revision()
        revisions.add(revision.group(1))
        parents.update(re.findall(r"['\"]([^'\"]+)['\"]", down.group(1)))
    heads = revisions - parents
    return heads.pop() if len(heads) == 1 else alembic_head_revision()


def alembic_head_revision() -> str:
    from alembic.script import ScriptDirectory

    config = _alembic_config(None)
    head = ScriptDirectory.from_config(config).get_current_head()
    assert head is not None
    return head


def pending_revisions(current: str | None) -> list[str]:
    """The migrations `robo db upgrade` would apply to a database at ``current``, newest first.

    Raises StorageError if ``current`` is a revision this robo does not know (a newer robo
    migrated the database).
    """
    from alembic.script import ScriptDirectory
    from alembic.script.revision import RevisionError

    script = ScriptDirectory.from_config(_alembic_config(None))
    try:
        return [r.revision for r in script.iterate_revisions("heads", current or "base")]
    except RevisionError as exc:
        raise StorageError(
            f"the database is at schema revision {current}, which this robo does not know "
            f"(its newest is {head_revision()}): a newer robo migrated it; upgrade robo"
        ) from exc


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as connection:
        if not inspect(connection).has_table("alembic_version"):
            return None
        return connection.execute(text("SELECT version_num FROM alembic_version")).scalar()


def upgrade(engine: Engine) -> None:
    """Bring the schema to the newest migration (a no-op when it is there), atomically."""
    from alembic import command

    if engine.dialect.name != "sqlite":
        with engine.begin() as connection:
            if engine.dialect.name == "postgresql":
                # Every robo process migrates on open: one at a time. The lock ends with
                # the transaction; the next one in finds the schema at head (a no-op).
                connection.execute(
                    text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK}
                )
            command.upgrade(_alembic_config(connection), "head")
        return
    # SQLite: pysqlite commits DDL on its own unless the transaction is driven by hand,
    # and batch migrations copy tables, which foreign keys would refuse mid-way.
    migrator = create_engine(engine.url, connect_args={"isolation_level": None})

    @event.listens_for(migrator, "begin")
    def _begin(connection: Any) -> None:
        connection.exec_driver_sql("BEGIN IMMEDIATE")

    try:
        with migrator.connect() as connection:
            connection.exec_driver_sql("PRAGMA foreign_keys=OFF")
            connection.commit()  # ends SQLAlchemy's autobegun (empty) transaction
            with connection.begin():
                command.upgrade(_alembic_config(connection), "head")
                broken = connection.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
                if broken:
                    raise ConfigurationError(f"migration left broken references: {broken[:5]}")
    finally:
        migrator.dispose()


class Database:
    """An engine plus a session factory; created once at the edge.

    ``migrate=False`` opens the database as it is (``robo doctor``, ``robo db current``):
    nothing is created or changed until a caller writes.
    """

    def __init__(
        self,
        url: str,
        *,
        migrate: bool = True,
        busy_timeout_seconds: float = BUSY_TIMEOUT_SECONDS,
    ) -> None:
        self.url = url
        self.engine = make_engine(url, busy_timeout_seconds)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)
        if migrate:
            self.migrate_if_needed()

    def migrate_if_needed(self) -> None:
        with self.translate_errors():
            if current_revision(self.engine) != head_revision():
                upgrade(self.engine)

    def revision(self) -> str | None:
        """The schema revision the database is at (None: no schema yet)."""
        with self.translate_errors():
            return current_revision(self.engine)

    @property
    def safe_url(self) -> str:
        return self.engine.url.render_as_string(hide_password=True)

    @contextlib.contextmanager
    def translate_errors(self) -> Iterator[None]:
        """Database errors inside the block leave it as StorageError (IntegrityError stays)."""
        try:
            yield
        except IntegrityError:
            raise
        except DatabaseError as exc:
            raise storage_error(exc, self.safe_url) from exc

    @contextlib.contextmanager
    def session(self) -> Iterator[Session]:
        """A unit of work: committed on success, rolled back on any error.

        Database errors leave as StorageError, except IntegrityError (a duplicate row).
        """
        try:
            with self._sessions() as session, session.begin():
                yield session
        except IntegrityError:
            raise
        except DatabaseError as exc:
            raise storage_error(exc, self.safe_url) from exc

    def close(self) -> None:
        self.engine.dispose()
