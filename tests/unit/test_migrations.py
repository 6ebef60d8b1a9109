"""The schema is what the migrations make, and upgrading keeps every row."""

from __future__ import annotations

import threading
import warnings

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect, text

from robo.storage.database import (
    MIGRATION_LOCK,
    Database,
    _alembic_config,
    current_revision,
    head_revision,
    make_engine,
)
from robo.storage.models import Base


def test_the_migrations_create_exactly_the_models_schema(database_url: str) -> None:
    db = Database(database_url)
    try:
        with db.engine.connect() as connection, warnings.catch_warnings():
            # SQLite cannot reflect an expression index: checked by name below instead.
            warnings.filterwarnings("ignore", "Skipped unsupported reflection of expression")
            warnings.filterwarnings("ignore", "autogenerate skipping metadata-specified expression")
            differences = compare_metadata(MigrationContext.configure(connection), Base.metadata)
            indexes = {i["name"] for i in inspect(connection).get_indexes("queue_items")}
        unreflected = {"ix_queue_items_next"} if database_url.startswith("sqlite") else set()
        assert [
            d
            for d in differences
            if "apscheduler" not in str(d) and not any(name in str(d) for name in unreflected)
        ] == []
        if unreflected:
            with db.engine.connect() as connection:
                sql = connection.exec_driver_sql(
                    "SELECT sql FROM sqlite_master WHERE name = 'ix_queue_items_next'"
                ).scalar()
            assert "WHERE status IN ('new', 'deferred')" in sql
        else:
            assert "ix_queue_items_next" in indexes
        assert current_revision(db.engine) == head_revision()
    finally:
        db.close()


def test_upgrading_a_first_release_database_keeps_its_runs_and_items(database_url: str) -> None:
    engine = make_engine(database_url)
    with engine.begin() as connection:
        command.upgrade(_alembic_config(connection), "0001")
    with engine.begin() as c:
        c.execute(
            text(
                "insert into process_versions (process_id, version, content_hash, definition, definition_text,"
                " source_path, deployed_at, deployed_by) values ('p', '1.0.0', 'h', '{}', '', '', '2026-01-01', '')"
            )
        )
        c.execute(
            text(
                "insert into processes (id, active_version_id, enabled, created_at, updated_at)"
                " values ('p', 1, true, '2026-01-01', '2026-01-01')"
            )
        )
        c.execute(
            text(
                "insert into runs (uid, process_id, version_id, version, region, trigger, status, started_at,"
                " parameters, input_name, manual_minutes_per_item, residual_minutes_per_item,"
                " manual_minutes_per_run, baseline_measured_by, baseline_measured_on, run_minutes_saved, host)"
                " values ('u1', 'p', 1, '1.0.0', 'occitanie', 'manual', 'completed', '2026-01-01', '{}', '',"
                " 10, 2, 0, 'x', '2026-01-01', 0, 'h')"
            )
        )
        c.execute(
            text(
                "insert into items (run_id, position, reference, status, attempts, evidence, data, output,"
                " minutes_saved) values (1, 1, 'A', 'success', 1, '[]', '{}', '{}', 8)"
            )
        )
    engine.dispose()

    db = Database(database_url)  # opening migrates to the newest schema
    try:
        with db.engine.connect() as c:
            assert current_revision(db.engine) == head_revision()
            assert c.execute(text("select uid, application, worker from runs")).all() == [
                ("u1", "", "")
            ]
            assert c.execute(text("select reference, minutes_saved from items")).all() == [
                ("A", 8.0)
            ]
            assert c.execute(text("select paused from processes")).scalar() in (False, 0)
    finally:
        db.close()


@pytest.mark.postgres
def test_a_migration_on_postgresql_waits_for_the_one_already_running(postgres_url: str) -> None:
    """Every robo process migrates on open; on PostgreSQL an advisory lock serialises them."""
    engine = make_engine(postgres_url)
    errors: list[BaseException] = []

    def open_it() -> None:
        try:
            Database(postgres_url).close()
        except BaseException as exc:  # reported below, never lost in a thread
            errors.append(exc)

    try:
        with engine.connect() as holder:  # another process in the middle of migrating
            holder.execute(text("SELECT pg_advisory_lock(:k)"), {"k": MIGRATION_LOCK})
            opener = threading.Thread(target=open_it)
            opener.start()
            opener.join(timeout=1.5)
            assert opener.is_alive()  # waiting for the lock, not migrating alongside
            assert current_revision(engine) is None
            holder.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": MIGRATION_LOCK})
            holder.commit()
        opener.join(timeout=60)
        assert not opener.is_alive() and errors == []
        assert current_revision(engine) == head_revision()
    finally:
        engine.dispose()
