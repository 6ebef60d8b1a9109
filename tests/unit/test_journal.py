"""Outcomes survive a database that stays locked: retried, then journaled, replayed once."""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy import func, select

from robo.clock import utcnow
from robo.errors import StorageError
from robo.journal import OutcomeJournal
from robo.ledger import ItemOutcome, Ledger
from robo.loader import load_process
from robo.queues import NewItem, Queues
from robo.regional import RegionDefaults
from robo.registry import ProcessVersion, Registry
from robo.storage.database import Database
from robo.storage.models import ItemRow, QueueItemRow, RunRow
from tests.conftest import definition

BUSY = 0.2  # seconds a write waits for the lock before the ledger retries it


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Database]:
    database = Database(f"sqlite:///{tmp_path / 'robo.db'}", busy_timeout_seconds=BUSY)
    yield database
    database.close()


@pytest.fixture
def version(db: Database, make_process: Callable[..., Path]) -> ProcessVersion:
    registry = Registry(db, RegionDefaults("Europe/Paris", "FR"), actor="tester")
    registry.deploy(load_process(make_process(definition())))
    return registry.active("sample-process")


def ledger_for(db: Database, tmp_path: Path, retry_seconds: float) -> Ledger:
    return Ledger(db, journal=OutcomeJournal(tmp_path / "journal"), retry_seconds=retry_seconds)


def start_run(ledger: Ledger, version: ProcessVersion) -> int:
    d = version.definition
    return ledger.start_run(
        process_id=d.id, version_id=version.version_id, version=d.version,
        baseline=d.baseline, region="occitanie", parameters={},
    )  # fmt: skip


def outcome(reference: str, queue_item_id: int | None = None) -> ItemOutcome:
    now = utcnow()
    return ItemOutcome(
        position=1, reference=reference, status="success", attempts=1, started_at=now,
        finished_at=now, data={"file": reference}, queue_item_id=queue_item_id,
    )  # fmt: skip


class ExclusiveLock:
    """Another process's write lock on the SQLite file, held for ``seconds``."""

    def __init__(self, path: Path, seconds: float) -> None:
        self.connection = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self.connection.execute("BEGIN EXCLUSIVE")
        self.timer = threading.Timer(seconds, self.release)
        self.timer.start()

    def release(self) -> None:
        if self.connection is not None:
            self.connection.execute("ROLLBACK")
            self.connection.close()
            self.connection = None  # type: ignore[assignment]

    def __enter__(self) -> ExclusiveLock:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.timer.cancel()
        self.release()


def item_rows(db: Database) -> list[tuple[str, float]]:
    with db.session() as session:
        return [
            (r.reference, r.minutes_saved)
            for r in session.scalars(select(ItemRow).order_by(ItemRow.id))
        ]


def test_a_lock_shorter_than_the_retries_delays_the_write_and_loses_nothing(
    db: Database, tmp_path: Path, version: ProcessVersion
) -> None:
    ledger = ledger_for(db, tmp_path, retry_seconds=5)
    run_id = start_run(ledger, version)

    with ExclusiveLock(tmp_path / "robo.db", seconds=1.0):
        began = time.monotonic()
        saved = ledger.record_item(run_id, outcome("A"))

    assert time.monotonic() - began >= 0.9  # it waited for the lock, then wrote
    assert saved == 8 and item_rows(db) == [("A", 8)]
    assert not ledger.journal or not ledger.journal.pending()


def test_a_lock_longer_than_the_retries_journals_the_outcome_and_replays_it_once(
    db: Database, tmp_path: Path, version: ProcessVersion
) -> None:
    queues = Queues(db)
    queues.ensure("sample-process")
    (item_id,) = queues.add("sample-process", [NewItem("A")], source="cli").added
    ledger = ledger_for(db, tmp_path, retry_seconds=0.5)
    run_id = start_run(ledger, version)
    assert queues.take("sample-process", run_id, 60) is not None

    with ExclusiveLock(tmp_path / "robo.db", seconds=30):
        ledger.record_item(run_id, outcome("A", item_id))
        ledger.finish_run(run_id, "completed")
        assert ledger.journal is not None and ledger.journal.pending()
    assert item_rows(db) == []  # kept on disk, not in the database yet

    assert ledger.replay_journal() == 2
    assert ledger.replay_journal() == 0
    assert item_rows(db) == [("A", 8)]
    with db.session() as session:
        run = session.get(RunRow, run_id)
        item = session.get(QueueItemRow, item_id)
        assert run is not None and item is not None
        assert (run.status, item.status) == ("completed", "successful")
        credits = session.scalar(
            select(func.count()).where(ItemRow.credited_queue_item_id == item_id)
        )
    assert credits == 1


def test_an_entry_replayed_twice_still_counts_once(
    db: Database, tmp_path: Path, version: ProcessVersion
) -> None:
    """A crash between writing the entries and clearing the journal replays them again."""
    ledger = ledger_for(db, tmp_path, retry_seconds=0.3)
    run_id = start_run(ledger, version)
    with ExclusiveLock(tmp_path / "robo.db", seconds=30):
        ledger.record_item(run_id, outcome("A"))
    journal = ledger.journal
    assert journal is not None
    kept = journal.path.read_text()

    ledger.replay_journal()
    journal.path.write_text(kept)  # as if the process died before clearing it
    ledger.replay_journal()

    assert item_rows(db) == [("A", 8)]


def test_the_next_successful_write_replays_what_waited(
    db: Database, tmp_path: Path, version: ProcessVersion
) -> None:
    ledger = ledger_for(db, tmp_path, retry_seconds=0.3)
    run_id = start_run(ledger, version)
    with ExclusiveLock(tmp_path / "robo.db", seconds=30):
        ledger.record_item(run_id, outcome("A"))

    ledger.record_item(run_id, outcome("B"))

    assert sorted(item_rows(db)) == [("A", 8), ("B", 8)]
    assert ledger.journal is not None and not ledger.journal.pending()


def test_without_a_journal_a_lasting_lock_is_a_clear_storage_error(
    db: Database, tmp_path: Path, version: ProcessVersion
) -> None:
    ledger = Ledger(db, retry_seconds=0.3)
    run_id = start_run(ledger, version)
    with (
        ExclusiveLock(tmp_path / "robo.db", seconds=30),
        pytest.raises(StorageError, match="locked"),
    ):
        ledger.record_item(run_id, outcome("A"))


def test_a_run_abandoned_while_its_end_waited_in_the_journal_stays_abandoned(
    db: Database, tmp_path: Path, version: ProcessVersion
) -> None:
    ledger = ledger_for(db, tmp_path, retry_seconds=0.3)
    run_id = start_run(ledger, version)
    with ExclusiveLock(tmp_path / "robo.db", seconds=30):
        ledger.finish_run(run_id, "completed")
    ledger.abandon_stale(utcnow(), "another-host", lambda _pid: True)

    ledger.replay_journal()

    assert ledger.summary(run_id).status == "abandoned"


def test_the_journal_is_private(db: Database, tmp_path: Path, version: ProcessVersion) -> None:
    ledger = ledger_for(db, tmp_path, retry_seconds=0.3)
    run_id = start_run(ledger, version)
    with ExclusiveLock(tmp_path / "robo.db", seconds=30):
        ledger.record_item(run_id, outcome("A"))
    assert ledger.journal is not None
    assert ledger.journal.path.stat().st_mode & 0o077 == 0
