"""One exception tree: every exception robo defines is in robo.errors, and database
errors reach the user as StorageError saying what failed, where and what to do."""

from __future__ import annotations

import ast
import builtins
import re
import sqlite3
import time
from collections.abc import Mapping
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError

import robo
from robo import errors
from robo.errors import Deadline, RoboError, StorageError
from robo.storage.database import Database

ROBO = Path(robo.__file__).parent
BUILTIN_EXCEPTIONS = {
    name
    for name, value in vars(builtins).items()
    if isinstance(value, type) and issubclass(value, BaseException)
}


def _base_name(node: ast.expr) -> str:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):  # sqlalchemy.exc.OperationalError
        return node.attr
    if isinstance(node, ast.Subscript):  # Generic[...]
        return _base_name(node.value)
    return ""


def exception_classes(sources: Mapping[str, str]) -> list[tuple[str, int, str]]:
    """(file, line, class) of every exception class defined in ``sources`` (file -> text).

    A class is an exception if a base is a built-in exception, is named like one
    (…Error, …Exception, BaseException: jinja2.TemplateError, click.ClickException) or is
    an exception class found here, in any of the files (so subclasses of subclasses count).
    """
    classes = []
    for file, source in sources.items():
        for node in ast.walk(ast.parse(source, filename=file)):
            if isinstance(node, ast.ClassDef):
                bases = {_base_name(base) for base in node.bases}
                classes.append((file, node.lineno, node.name, bases))
    known = set(BUILTIN_EXCEPTIONS)
    found: set[tuple[str, int, str]] = set()
    while True:
        new = {
            (file, line, name)
            for file, line, name, bases in classes
            if (file, line, name) not in found
            and any(b in known or b.endswith(("Error", "Exception")) for b in bases)
        }
        if not new:
            return sorted(found)
        found |= new
        known |= {name for _, _, name in new}


def robo_sources() -> dict[str, str]:
    return {
        str(path.relative_to(ROBO.parent)): path.read_text(encoding="utf-8")
        for path in sorted(ROBO.rglob("*.py"))
    }


def test_every_exception_class_of_robo_is_in_robo_errors() -> None:
    outside = [
        f"{file}:{line}: class {name}"
        for file, line, name in exception_classes(robo_sources())
        if file != "robo/errors.py"
    ]

    assert outside == [], "define exceptions in robo/errors.py (and draw them there):\n" + (
        "\n".join(outside)
    )


def test_the_search_for_exception_classes_follows_bases_across_modules() -> None:
    sources = {
        "a.py": "class Base(RoboError): ...\nclass Timeout(KeyboardInterrupt): ...\n",
        "b.py": "import a\nclass Sub(a.Base): ...\nclass Deeper(Sub): ...\nclass Plain(Model): ...",
        "c.py": "class Wrapped(sqlalchemy.exc.OperationalError): ...\nclass G(Generic[T]): ...",
    }

    assert [name for _, _, name in exception_classes(sources)] == [
        "Base",
        "Timeout",
        "Sub",
        "Deeper",
        "Wrapped",
    ]


def test_the_search_finds_the_exception_classes_of_robo_errors() -> None:
    names = {name for file, _, name in exception_classes(robo_sources())}

    assert {"RoboError", "StorageError", "StepError", "TemplateProblem", "Deadline"} <= names


def test_the_tree_drawing_names_every_exception_class() -> None:
    classes = [
        name
        for name, value in vars(errors).items()
        if isinstance(value, type)
        and issubclass(value, BaseException)
        and value.__module__ == "robo.errors"
    ]
    drawn = set(re.findall(r"(?m)^[ │├└─]*(\w+)", errors.__doc__ or ""))

    assert [name for name in classes if name not in drawn] == []


def test_deadline_stays_out_of_reach_of_except_exception() -> None:
    assert issubclass(Deadline, BaseException)
    assert not issubclass(Deadline, Exception)


def test_the_scheduler_errors_keep_their_exit_codes() -> None:
    assert (errors.SchedulerBusy.exit_code, errors.SchedulerLockLost.exit_code) == (3, 4)
    assert errors.StorageError().message == "The database failed."


def test_error_types_stored_in_the_ledger_keep_their_values() -> None:
    from robo.runner.run import BROWSER_CRASHED, ITEM_TIMEOUT

    assert (BROWSER_CRASHED, ITEM_TIMEOUT) == ("BrowserCrashed", "ItemTimeout")


# --- StorageError ----------------------------------------------------------------------


def test_a_locked_sqlite_database_is_a_storage_error_saying_what_to_do(tmp_path: Path) -> None:
    path = tmp_path / "robo.db"
    Database(f"sqlite:///{path}").close()  # the schema, created while nobody holds a lock
    db = Database(f"sqlite:///{path}", busy_timeout_seconds=0.2)
    other = sqlite3.connect(path, isolation_level=None, timeout=0)
    other.execute("BEGIN EXCLUSIVE")
    started = time.monotonic()
    try:
        with pytest.raises(StorageError) as raised, db.session() as session:
            session.execute(text("UPDATE alembic_version SET version_num = version_num"))
    finally:
        other.rollback()
        other.close()
        db.close()

    assert time.monotonic() - started < 5
    message = raised.value.message
    assert message.startswith(f"cannot write to sqlite:///{path}: the database is locked:")
    assert "another process holds a write lock" in message
    assert message.endswith("retry, or stop it")


def test_an_unreachable_postgresql_server_is_a_storage_error_without_the_password() -> None:
    pytest.importorskip("psycopg")
    started = time.monotonic()

    with pytest.raises(StorageError) as raised:
        Database("postgresql+psycopg://postgres:hunter2@127.0.0.1:1/none")

    assert time.monotonic() - started < 5
    message = raised.value.message
    assert message.startswith(
        "cannot connect to postgresql+psycopg://postgres:***@127.0.0.1:1/none"
    )
    assert "is the database server running" in message
    assert "hunter2" not in message
    assert isinstance(raised.value, RoboError)


def test_a_session_on_an_unreachable_postgresql_server_is_a_storage_error() -> None:
    pytest.importorskip("psycopg")
    db = Database("postgresql+psycopg://postgres@127.0.0.1:1/none", migrate=False)

    with (
        pytest.raises(StorageError, match=r"^cannot connect to postgresql\+psycopg://"),
        db.session() as session,
    ):
        session.execute(text("SELECT 1"))
    db.close()


def test_a_database_without_the_schema_says_to_upgrade(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path / 'empty.db'}", migrate=False)

    with pytest.raises(StorageError, match=r"run `robo db upgrade`"), db.session() as session:
        session.execute(text("SELECT count(*) FROM runs"))
    db.close()


def test_an_integrity_error_is_left_for_callers_to_catch(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path / 'robo.db'}")

    with pytest.raises(IntegrityError), db.session() as session:
        session.execute(text("INSERT INTO alembic_version (version_num) VALUES ('x')"))
        session.execute(text("INSERT INTO alembic_version (version_num) VALUES ('x')"))
    db.close()
