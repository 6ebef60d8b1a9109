"""`robo doctor` looks and never changes: a database behind is reported, not migrated."""

from __future__ import annotations

import json
import os
import warnings
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
    env = {"ROBO_HOME": str(home), "ROBO_DATABASE_URL": url, "ROBO_CONFIG": os.devnull}
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
        with engine.connect() as connection, warnings.catch_warnings():
            # SQLite's reflection skips the expression index of migration 0006 (with a warning).
            warnings.filterwarnings("ignore", "Skipped unsupported reflection of expression")
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


def checks_of(result: Any) -> dict[str, dict[str, str]]:
    return {c["name"]: c for c in json.loads(result.stdout)}


def test_doctor_names_a_run_left_running_by_a_dead_runner(home: Path, sqlite_url: str) -> None:
    import socket

    from robo.clock import utcnow
    from robo.storage.models import RunRow

    db = Database(sqlite_url)
    with db.session() as session:
        session.add(RunRow(
            uid="f" * 32, process_id="residence-permit-entry", version="1.0.0",
            region="occitanie", trigger="manual", status="running", started_at=utcnow(),
            heartbeat_at=utcnow(), host=socket.gethostname(), pid=2**22 + 7, parameters={},
            manual_minutes_per_item=30, residual_minutes_per_item=5, manual_minutes_per_run=5,
            baseline_measured_by="x", baseline_measured_on="2026-01-01",
        ))  # fmt: skip
    db.close()

    result = robo_cli(home, sqlite_url, "doctor", "--json")

    assert result.exit_code == 1
    runs = checks_of(result)["runs"]
    assert runs["status"] == "problem"
    assert (
        "run 1 of residence-permit-entry" in runs["detail"] and "no live runner" in runs["detail"]
    )


def test_doctor_names_outcomes_waiting_in_the_journal(home: Path, sqlite_url: str) -> None:
    from robo.journal import OutcomeJournal

    Database(sqlite_url).close()
    OutcomeJournal(home / "journal").append({"kind": "finish", "run_id": 1})

    result = robo_cli(home, sqlite_url, "doctor", "--json")

    assert result.exit_code == 1
    assert "outcomes wait in" in checks_of(result)["runs"]["detail"]


def test_doctor_names_a_process_whose_secret_is_not_set(
    home: Path, sqlite_url: str, make_process: Any
) -> None:
    from tests.conftest import definition

    spec = definition()
    spec["secrets"] = ["portal_password"]
    deployed = robo_cli(home, sqlite_url, "deploy", str(make_process(spec)))
    assert deployed.exit_code == 0, deployed.output

    missing = robo_cli(home, sqlite_url, "doctor", "--json")
    env = {"ROBO_HOME": str(home), "ROBO_DATABASE_URL": sqlite_url,
           "ROBO_CONFIG": os.devnull, "ROBO_SECRET_PORTAL_PASSWORD": "x"}  # fmt: skip
    given = CliRunner(env=env).invoke(cli, ["doctor", "--json"], catch_exceptions=False)

    found = checks_of(missing)["process secrets"]
    assert missing.exit_code == 1 and found["status"] == "problem"
    assert "sample-process needs 'portal_password'" in found["detail"]
    assert checks_of(given)["process secrets"]["status"] == "ok"


def test_doctor_warns_when_items_wait_for_a_human(home: Path, sqlite_url: str) -> None:
    from robo.clock import utcnow
    from robo.queues import NewItem, Queues

    db = Database(sqlite_url)
    queues = Queues(db)
    queues.ensure("sample-process")
    queues.add("sample-process", [NewItem("late", deadline=utcnow())], source="test")
    db.close()

    result = robo_cli(home, sqlite_url, "doctor", "--json")

    worklist = checks_of(result)["worklist"]
    assert worklist["status"] == "warning" and "1 item(s) wait for a human" in worklist["detail"]
