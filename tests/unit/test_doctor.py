"""`robo doctor` looks and never changes: a database behind is reported, not migrated."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from click.testing import CliRunner
from sqlalchemy import inspect, text

from robo import doctor
from robo.cli.main import cli
from robo.doctor import Check
from robo.settings import Settings
from robo.storage.database import (
    Database,
    _alembic_config,
    current_revision,
    head_revision,
    make_engine,
)


@pytest.fixture(autouse=True)
def _no_browser(monkeypatch: pytest.MonkeyPatch) -> None:
    """Chromium has its own test (tests/integration/test_ops_cli.py); here it only costs time."""
    monkeypatch.setattr(doctor, "_chromium", lambda _settings: Check("chromium", "ok", "stub"))


def robo_cli(home: Path, url: str, *args: str) -> Any:
    env = {"ROBO_HOME": str(home), "ROBO_DATABASE_URL": url, "ROBO_CONFIG": str(home / "none")}
    return CliRunner(env=env).invoke(cli, list(args), catch_exceptions=False)


def one_revision_behind(url: str) -> str:
    """A database migrated to the newest schema, then downgraded one revision."""
    Database(url).close()  # opening migrates to the newest
    engine = make_engine(url)
    try:
        with engine.begin() as connection:
            command.downgrade(_alembic_config(connection), "-1")
        revision = current_revision(engine)
    finally:
        engine.dispose()
    assert revision is not None and revision != head_revision()
    return revision


def schema(url: str) -> tuple[str | None, dict[str, list[str]]]:
    """The revision, and every table with its columns and indexes."""
    engine = make_engine(url)
    try:
        with engine.connect() as connection:
            found = inspect(connection)
            tables = {
                table: sorted(
                    [c["name"] for c in found.get_columns(table)]
                    + [f"index {i['name']}" for i in found.get_indexes(table)]
                )
                for table in found.get_table_names()
            }
        return current_revision(engine), tables
    finally:
        engine.dispose()


def test_doctor_reports_a_pending_migration_and_does_not_apply_it(
    home: Path, database_url: str
) -> None:
    behind = one_revision_behind(database_url)
    before = schema(database_url)

    result = robo_cli(home, database_url, "doctor")

    assert result.exit_code != 0
    assert (
        f"1 migration(s) pending (current {behind}, head {head_revision()}): "
        "run `robo db upgrade`" in result.output
    )
    assert schema(database_url) == before
    assert before[0] == behind


def test_doctor_reports_pending_migrations_as_a_failing_check_in_json(
    home: Path, sqlite_url: str
) -> None:
    behind = one_revision_behind(sqlite_url)

    result = robo_cli(home, sqlite_url, "doctor", "--json")

    checks = {c["name"]: c for c in json.loads(result.stdout)}
    assert result.exit_code == 1
    assert checks["migrations"]["status"] == "problem"
    assert f"(current {behind}, head {head_revision()})" in checks["migrations"]["detail"]


def test_doctor_on_an_up_to_date_database_reports_no_migration(home: Path, sqlite_url: str) -> None:
    assert robo_cli(home, sqlite_url, "db", "upgrade").exit_code == 0

    result = robo_cli(home, sqlite_url, "doctor", "--json")

    checks = {c["name"]: c for c in json.loads(result.stdout)}
    assert result.exit_code == 0, result.output
    assert "migrations" not in checks
    assert checks["database"]["status"] == "ok"
    assert f"at schema {head_revision()} (newest)" in checks["database"]["detail"]


def test_doctor_does_not_create_a_database_that_is_not_there(home: Path, tmp_path: Path) -> None:
    path = tmp_path / "nothing-yet.db"

    result = robo_cli(home, f"sqlite:///{path}", "doctor", "--json")

    checks = {c["name"]: c for c in json.loads(result.stdout)}
    assert result.exit_code == 0, result.output
    assert checks["database"]["status"] == "warning"
    assert "does not exist yet" in checks["database"]["detail"]
    assert not path.exists()
    assert not (home / "secret.key").exists()


def test_doctor_names_a_database_newer_than_this_robo(home: Path, sqlite_url: str) -> None:
    db = Database(sqlite_url)
    with db.engine.begin() as connection:
        connection.execute(text("UPDATE alembic_version SET version_num = '9999'"))
    db.close()

    result = robo_cli(home, sqlite_url, "doctor")

    assert result.exit_code == 1
    assert "schema revision 9999, which this robo does not know" in result.output


def test_doctor_says_when_stored_secrets_have_lost_their_key(home: Path, sqlite_url: str) -> None:
    from robo.secrets import SecretStore, load_or_create_key

    settings = Settings(home=home, database_url=sqlite_url)
    db = Database(sqlite_url)
    SecretStore(db, load_or_create_key(settings.secret_key_file)).set("portal_password", "x")
    db.close()
    settings.secret_key_file.unlink()

    result = robo_cli(home, sqlite_url, "doctor")

    assert result.exit_code == 1
    assert f"1 secret(s) stored but the key file {settings.secret_key_file} is missing" in (
        result.output
    )
