"""Fixtures shared by the report tests: a migrated database on each back-end and a
ledger written through the real Ledger and Queues APIs at a controlled clock."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import pytest

from robo.storage.database import Database
from tests.ledger_factory import QueueWork


@pytest.fixture
def db(database_url: str) -> Iterator[Database]:
    database = Database(database_url)
    yield database
    database.close()


@pytest.fixture
def work_start() -> dt.datetime:
    """When the ledger's clock starts; a module overrides it to write another period."""
    return dt.datetime(2026, 10, 5, 9, 0, tzinfo=dt.UTC)


@pytest.fixture
def work(db: Database, monkeypatch: pytest.MonkeyPatch, work_start: dt.datetime) -> QueueWork:
    return QueueWork.open(db, monkeypatch, start=work_start)
