"""The ledger: runs and items. The only writer of outcomes and minutes saved.

Minutes saved are computed here, once, from the baseline copied onto the run
when it started; a later baseline change never rewrites them. An outcome is
never lost to a busy database: its write is retried with backoff, then kept in
the outcome journal (``robo.journal``) and replayed when the database answers.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import os
import socket
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, TypeVar

from sqlalchemy import Connection, func, insert, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from robo.clock import utcnow
from robo.definition import Baseline
from robo.errors import DuplicateItem, DuplicateRun, RunNotFound, StorageError
from robo.journal import OutcomeJournal
from robo.queues import OUTCOME_STATUS, status_after
from robo.redaction import Redactor
from robo.storage.database import Database
from robo.storage.models import (
    ItemRow,
    MetricImportRow,
    QueueEventRow,
    QueueItemRow,
    QueueRow,
    RunRow,
)

T = TypeVar("T")
# A success that earned minutes (not one recorded by a run that had lost its queue item):
# only such work earns a run its per-run minutes.
CREDITED_SUCCESS = (
    ItemRow.status == "success",
    or_(ItemRow.queue_item_id.is_(None), ItemRow.credited_queue_item_id.is_not(None)),
)
ItemStatus = Literal["success", "business_exception", "application_exception", "skipped"]
RunPurpose = Literal["production", "test", "demo"]
RunStatus = Literal[
    "running", "completed", "failed", "timed_out", "interrupted", "abandoned", "cancelled"
]
ITEM_STATUSES: tuple[ItemStatus, ...] = (
    "success",
    "business_exception",
    "application_exception",
    "skipped",
)
# Work handed to an executor; a run started by hand is the operator's to start again.
# A run an operator cancelled (`robo cancel`, robo.cancellation) is never recovered.
RECOVERABLE_TRIGGERS = ("schedule", "recovery", "submit")
FINAL_RUN_STATUSES = ("completed", "failed", "timed_out", "interrupted", "abandoned", "cancelled")


@dataclass(frozen=True)
class ItemOutcome:
    """What the runner learned about one item; the ledger adds the minutes."""

    position: int
    reference: str
    status: ItemStatus
    attempts: int
    started_at: dt.datetime
    finished_at: dt.datetime
    error_type: str | None = None
    error: str | None = None
    evidence: list[str] = field(default_factory=list)
    data: dict[str, Any] = field(default_factory=dict)
    output: dict[str, Any] = field(default_factory=dict)
    # The queue item this outcome ends (None: an item outside queues), and how many runs
    # may try it before an application exception is final (the retry policy).
    queue_item_id: int | None = None
    max_runs: int = 3


@dataclass(frozen=True)
class HourCost:
    """What one agent hour costs the region (euros), who set it and when (YYYY-MM-DD)."""

    eur: float
    set_by: str = ""
    set_on: str = ""


@dataclass(frozen=True)
class RunSummary:
    id: int
    uid: str
    process_id: str
    version: str
    region: str
    trigger: str
    status: str
    started_at: str
    finished_at: str | None
    duration_seconds: float | None
    items_total: int | None
    succeeded: int
    business_exceptions: int
    application_exceptions: int
    minutes_saved: float
    error: str | None
    skipped: int = 0
    purpose: str = "production"


@dataclass(frozen=True)
class ItemDetail:
    position: int
    reference: str
    status: str
    attempts: int
    started_at: str | None
    duration_seconds: float | None
    error_type: str | None
    error: str | None
    evidence: list[str]
    output: dict[str, Any]
    minutes_saved: float

    @classmethod
    def of(cls, row: ItemRow) -> ItemDetail:
        """The one mapping from an item row to what operators and managers read."""
        return cls(
            position=row.position,
            reference=row.reference,
            status=row.status,
            attempts=row.attempts,
            started_at=row.started_at.isoformat(timespec="seconds") if row.started_at else None,
            duration_seconds=row.duration_seconds,
            error_type=row.error_type,
            error=row.error,
            evidence=row.evidence,
            output=row.output,
            minutes_saved=row.minutes_saved,
        )


@dataclass(frozen=True)
class RunDetail:
    run: RunSummary
    parameters: dict[str, Any]
    input_name: str
    baseline: dict[str, Any]
    host: str
    items: list[ItemDetail]


def process_alive(pid: int) -> bool:
    """Whether a runner's process still runs here (a zombie awaiting its parent does not)."""
    import psutil

    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


class ReportedBaseline(Protocol):
    @property
    def manual_minutes_per_item(self) -> float: ...
    @property
    def residual_minutes_per_item(self) -> float: ...
    @property
    def manual_minutes_per_run(self) -> float: ...
    @property
    def measured_by(self) -> str: ...
    @property
    def measured_on(self) -> str: ...


class ReportedItem(Protocol):
    """An item another region reported: outcome and minutes, no data (see replication)."""

    @property
    def key(self) -> str: ...
    @property
    def position(self) -> int: ...
    @property
    def status(self) -> str: ...
    @property
    def attempts(self) -> int: ...
    @property
    def started_at(self) -> dt.datetime | None: ...
    @property
    def finished_at(self) -> dt.datetime | None: ...
    @property
    def duration_seconds(self) -> float | None: ...
    @property
    def error_type(self) -> str | None: ...
    @property
    def minutes_saved(self) -> float: ...


class ReportedRun(Protocol):
    """A finished run another region reported, with its baseline snapshot."""

    @property
    def uid(self) -> str: ...
    @property
    def process_id(self) -> str: ...
    @property
    def version(self) -> str: ...
    @property
    def region(self) -> str: ...
    @property
    def application(self) -> str: ...
    @property
    def origin_region(self) -> str | None: ...
    @property
    def origin_version(self) -> str | None: ...
    @property
    def trigger(self) -> str: ...
    @property
    def purpose(self) -> str: ...
    @property
    def status(self) -> str: ...
    @property
    def started_at(self) -> dt.datetime: ...
    @property
    def finished_at(self) -> dt.datetime | None: ...
    @property
    def items_total(self) -> int | None: ...
    @property
    def baseline(self) -> ReportedBaseline: ...
    @property
    def run_minutes_saved(self) -> float: ...
    @property
    def items(self) -> Sequence[ReportedItem]: ...


@dataclass(frozen=True)
class ReportedFile:
    """One region's report (a metrics file), identified by its hash."""

    file_hash: str
    region: str
    runs: Sequence[ReportedRun]


class Ledger:
    def __init__(
        self,
        db: Database,
        redactor: Redactor | None = None,
        *,
        journal: OutcomeJournal | None = None,
        retry_seconds: float = 60.0,
    ) -> None:
        self.db = db
        self.redactor = redactor or Redactor()
        self.journal = journal
        self.retry_seconds = retry_seconds
        self._per_item: dict[int, float] = {}

    # --- outcomes that must not be lost ----------------------------------------------

    def _durably(self, write: Callable[[], T], entry: dict[str, Any], fallback: T) -> T:
        """``write()``, retried with backoff while the database is busy or away; then, with
        a journal, the entry is journaled and ``fallback`` returned; without one, it raises."""
        from tenacity import (
            Retrying,
            retry_if_exception_type,
            stop_after_delay,
            wait_exponential,
        )

        retrying = Retrying(
            stop=stop_after_delay(self.retry_seconds),
            wait=wait_exponential(multiplier=0.5, max=5),
            retry=retry_if_exception_type(StorageError),
            reraise=True,
        )
        try:
            result = retrying(write)
        except StorageError as exc:
            if self.journal is None:
                raise
            self.journal.append(entry)
            from robo.logging import get_logger

            get_logger(component="ledger").warning(
                "ledger.journaled", kind=entry["kind"], run=entry["run_id"],
                reason=exc.message.splitlines()[0], journal=str(self.journal.path),
            )  # fmt: skip
            return fallback
        if self.journal is not None and self.journal.pending():
            self.replay_journal()  # the database is back: what waited goes in now
        return result

    def replay_journal(self) -> int:
        """Write what the journal kept; each entry counts once however often it is replayed.

        Returns the number of entries applied; leaves the rest if the database fails again.
        """
        if self.journal is None or not self.journal.pending():
            return 0
        try:
            return self.journal.replay(self._apply)
        except StorageError:
            return 0

    def _apply(self, entry: dict[str, Any]) -> None:
        run_id = int(entry["run_id"])
        if entry["kind"] == "item":
            data = dict(entry["outcome"])
            for key in ("started_at", "finished_at"):
                data[key] = dt.datetime.fromisoformat(data[key])
            # Written before the journal was cleared (a crash mid-replay): it counts once.
            with contextlib.suppress(DuplicateItem):
                self._record_item_now(run_id, ItemOutcome(**data))
        elif entry["kind"] == "finish":
            self._finish_run_now(
                run_id, entry["status"], entry.get("error"),
                dt.datetime.fromisoformat(entry["finished_at"]),
            )  # fmt: skip

    # --- writing -----------------------------------------------------------------

    def start_run(
        self,
        *,
        process_id: str,
        version_id: int,
        version: str,
        baseline: Baseline,
        region: str,
        parameters: dict[str, Any],
        trigger: str = "manual",
        input_name: str = "",
        application: str = "",
        origin_region: str | None = None,
        origin_version: str | None = None,
        scheduled_for: dt.datetime | None = None,
        resumes_run_id: int | None = None,
        worker: str = "",
        uid: str | None = None,
        purpose: RunPurpose = "production",
        hour_cost: HourCost | None = None,
    ) -> int:
        now = utcnow()
        row = RunRow(
            uid=uid or uuid.uuid4().hex,
            process_id=process_id,
            version_id=version_id,
            version=version,
            region=region,
            trigger=trigger,
            purpose=purpose,
            hour_cost_eur=None if hour_cost is None else hour_cost.eur,
            hour_cost_set_by="" if hour_cost is None else hour_cost.set_by,
            hour_cost_set_on="" if hour_cost is None else hour_cost.set_on,
            status="running",
            started_at=now,
            heartbeat_at=now,
            host=socket.gethostname(),
            pid=os.getpid(),
            parameters=self.redactor.redact(parameters),
            input_name=input_name,
            application=application,
            origin_region=origin_region,
            origin_version=origin_version,
            scheduled_for=scheduled_for,
            resumes_run_id=resumes_run_id,
            worker=worker,
            manual_minutes_per_item=baseline.manual_minutes_per_item,
            residual_minutes_per_item=baseline.residual_minutes_per_item,
            manual_minutes_per_run=baseline.manual_minutes_per_run,
            baseline_measured_by=baseline.measured_by,
            baseline_measured_on=baseline.measured_on.isoformat(),
        )
        try:
            with self.db.session() as session:
                session.add(row)
                session.flush()
                if resumes_run_id is not None:  # its recovery is no longer owed
                    session.execute(
                        update(RunRow).where(RunRow.id == resumes_run_id).values(recovery="started")
                    )
                return row.id
        except IntegrityError:
            raise DuplicateRun(f"a run with uid {row.uid} already exists") from None

    def set_items_total(self, run_id: int, total: int) -> None:
        with self.db.session() as session:
            session.execute(update(RunRow).where(RunRow.id == run_id).values(items_total=total))

    def heartbeat(self, run_id: int) -> None:
        with self.db.session() as session:
            session.execute(update(RunRow).where(RunRow.id == run_id).values(heartbeat_at=utcnow()))

    def record_item(self, run_id: int, outcome: ItemOutcome) -> float:
        """Write one finished item (durably: retried, else journaled); the minutes it saved."""
        entry = {
            "kind": "item", "run_id": run_id,
            "outcome": {
                **dataclasses.asdict(outcome),
                "error": self.redactor.redact(outcome.error),
                "data": self.redactor.redact(outcome.data),
                "output": self.redactor.redact(outcome.output),
                "started_at": outcome.started_at.isoformat(),
                "finished_at": outcome.finished_at.isoformat(),
            },
        }  # fmt: skip
        expected = self._per_item.get(run_id, 0.0) if outcome.status == "success" else 0.0
        return self._durably(lambda: self._record_item_now(run_id, outcome), entry, expected)

    def _record_item_now(self, run_id: int, outcome: ItemOutcome) -> float:
        """Write one finished item; returns the minutes it saved.

        One INSERT and one heartbeat UPDATE in one transaction, through SQLAlchemy Core:
        the ORM unit of work and a SELECT of the run per item cost more than the commit.
        A queue item's status moves in the same transaction, and only if this run still
        holds it: its one success earns its minutes (a unique column makes a second
        credit impossible); a run that lost the item records its outcome uncredited.
        """
        redact = self.redactor.redact
        saved = self._minutes_per_item(run_id) if outcome.status == "success" else 0.0
        row = {
            "run_id": run_id,
            "position": outcome.position,
            "reference": outcome.reference,
            "status": outcome.status,
            "attempts": outcome.attempts,
            "started_at": outcome.started_at,
            "finished_at": outcome.finished_at,
            "duration_seconds": (outcome.finished_at - outcome.started_at).total_seconds(),
            "error_type": outcome.error_type,
            "error": redact(outcome.error),
            "evidence": outcome.evidence,
            "data": redact(outcome.data),
            "output": redact(outcome.output),
            "minutes_saved": saved,
        }
        try:
            with self.db.translate_errors(), self.db.engine.begin() as connection:
                if outcome.queue_item_id is not None:
                    held = self._end_queue_item(connection, run_id, outcome)
                    row["queue_item_id"] = outcome.queue_item_id
                    if not held:
                        saved = row["minutes_saved"] = 0.0
                        row["error"] = redact(
                            f"{outcome.error or ''} [not credited: run {run_id} no longer held "
                            "this queue item when it finished]".strip()
                        )
                    elif outcome.status == "success":
                        row["credited_queue_item_id"] = outcome.queue_item_id
                connection.execute(insert(ItemRow), [row])
                connection.execute(
                    update(RunRow).where(RunRow.id == run_id).values(heartbeat_at=utcnow())
                )
        except IntegrityError:
            raise DuplicateItem(
                f"item '{outcome.reference}' is already recorded in run {run_id}"
            ) from None
        return saved

    def _end_queue_item(self, connection: Connection, run_id: int, outcome: ItemOutcome) -> bool:
        """Move the queue item to its outcome's status; False if this run no longer holds it."""
        item_id = outcome.queue_item_id
        query = (
            select(QueueItemRow.runs_failed, QueueRow.unique_references)
            .join(QueueRow, QueueRow.name == QueueItemRow.queue)
            .where(
                QueueItemRow.id == item_id,
                QueueItemRow.status == "in_progress",
                QueueItemRow.run_id == run_id,
            )
        )
        if connection.dialect.name == "postgresql":
            query = query.with_for_update(of=QueueItemRow)
        found = connection.execute(query).first()
        if found is None:
            return False
        runs_failed = found.runs_failed + (outcome.status == "application_exception")
        target = status_after(outcome.status, runs_failed, outcome.max_runs)
        values: dict[str, Any] = {
            "status": target, "runs_failed": runs_failed, "lease_until": None,
            "needs_verify": False, "updated_at": utcnow(),
            "attempts": QueueItemRow.attempts + outcome.attempts,
            "error": self.redactor.redact(outcome.error),
        }  # fmt: skip
        if target == "business_exception" and found.unique_references != "refuse":
            values["holds_reference"] = None  # the reference may be queued again
        moved = connection.execute(
            update(QueueItemRow)
            .where(
                QueueItemRow.id == item_id,
                QueueItemRow.status == "in_progress",
                QueueItemRow.run_id == run_id,
            )
            .values(**values)
        )
        if moved.rowcount != 1:
            return False
        detail = outcome.status if target == OUTCOME_STATUS[outcome.status] else (
            f"{outcome.status}; retried by a later run ({runs_failed} of {outcome.max_runs})"
        )  # fmt: skip
        connection.execute(
            insert(QueueEventRow),
            [{"item_id": item_id, "at": utcnow(), "action": "completed", "status": target,
              "actor": "", "run_id": run_id, "detail": detail}],
        )  # fmt: skip
        return True

    def _minutes_per_item(self, run_id: int) -> float:
        """The run's baseline snapshot, read once: it never changes after the run starts."""
        cached = self._per_item.get(run_id)
        if cached is None:
            with self.db.session() as session:
                run = self._run(session, run_id)
                cached = run.manual_minutes_per_item - run.residual_minutes_per_item
            if len(self._per_item) > 1000:
                self._per_item.clear()
            self._per_item[run_id] = cached
        return cached

    def recorded_references(self, run_id: int) -> set[str]:
        with self.db.session() as session:
            return set(session.scalars(select(ItemRow.reference).where(ItemRow.run_id == run_id)))

    def recorded_in_chain(self, run_id: int) -> set[str]:
        """References recorded by a run and by every run it resumed: never done twice."""
        references: set[str] = set()
        seen: set[int] = set()
        current: int | None = run_id
        with self.db.session() as session:
            while current is not None and current not in seen:
                seen.add(current)
                references |= set(
                    session.scalars(select(ItemRow.reference).where(ItemRow.run_id == current))
                )
                current = session.scalar(select(RunRow.resumes_run_id).where(RunRow.id == current))
        return references

    def abandon_stale(
        self,
        cutoff: dt.datetime,
        host: str,
        is_alive: Callable[[int], bool],
        *,
        process_id: str | None = None,
    ) -> list[RunSummary]:
        """End runs whose runner died: silent since ``cutoff``, or gone from this host
        (only ``process_id``'s runs, if given).

        Their recorded items stay as they are; nothing is recounted.
        """
        abandoned = []
        query = select(RunRow).where(RunRow.status == "running")
        if process_id is not None:
            query = query.where(RunRow.process_id == process_id)
        with self.db.session() as session:
            for run in session.scalars(query):
                beat = run.heartbeat_at or run.started_at
                dead_here = run.host == host and run.pid is not None and not is_alive(run.pid)
                if beat >= cutoff and not dead_here:
                    continue
                recorded = session.scalar(select(func.count()).where(ItemRow.run_id == run.id)) or 0
                run.status = "abandoned"
                run.finished_at = utcnow()
                run.error = (
                    f"the runner stopped (process {run.pid} on {run.host}, last heartbeat "
                    f"{beat:%Y-%m-%d %H:%M:%S} UTC); {recorded} of {run.items_total if run.items_total is not None else '?'} items recorded"
                )
                run.run_minutes_saved = 0.0  # per-run minutes: completed runs only
                if run.cancel_requested_at is not None:  # it died before it read `robo cancel`
                    run.status = "cancelled"
                    run.error = f"{run.error}; cancel requested by {run.cancel_requested_by}"
                elif run.trigger in RECOVERABLE_TRIGGERS and (
                    run.items_total is None or recorded < run.items_total
                ):
                    run.recovery = "due"  # in this transaction: a crash cannot lose it
                abandoned.append(run.id)
        return [self.summary(run_id) for run_id in abandoned]

    def recoveries_owed(self) -> list[RunSummary]:
        """Abandoned runs whose recovery is due, or submitted but not yet started."""
        with self.db.session() as session:
            ids = session.scalars(
                select(RunRow.id)
                .where(RunRow.recovery.in_(("due", "submitted")))
                .order_by(RunRow.id)
            ).all()
        return [self.summary(run_id) for run_id in ids]

    def set_recovery(self, run_id: int, state: Literal["submitted", "declined"]) -> None:
        with self.db.session() as session:
            session.execute(
                update(RunRow)
                .where(RunRow.id == run_id, RunRow.recovery.in_(("due", "submitted")))
                .values(recovery=state)
            )

    def find_run(self, uid: str) -> RunSummary | None:
        with self.db.session() as session:
            run = session.scalars(select(RunRow).where(RunRow.uid == uid)).one_or_none()
            if run is None:
                return None
            return self._summary(run, self._counts(session, [run.id]).get(run.id, {}))

    def existing_uids(self, uids: Sequence[str]) -> set[str]:
        """Which of these run uids have a run (started, whatever its end): one query a 500."""
        found: set[str] = set()
        with self.db.engine.connect() as connection:
            for start in range(0, len(uids), 500):
                chunk = list(uids[start : start + 500])
                found.update(connection.scalars(select(RunRow.uid).where(RunRow.uid.in_(chunk))))
        return found

    def running_runs(self) -> dict[str, int]:
        """Process id -> a run of it in progress, for every process running now."""
        with self.db.engine.connect() as connection:
            return {
                process_id: run_id
                for process_id, run_id in connection.execute(
                    select(RunRow.process_id, RunRow.id).where(RunRow.status == "running")
                )
            }

    def running_run(self, process_id: str) -> int | None:
        with self.db.session() as session:
            return session.scalar(
                select(RunRow.id)
                .where(RunRow.process_id == process_id, RunRow.status == "running")
                .limit(1)
            )

    def finish_run(self, run_id: int, status: RunStatus, error: str | None = None) -> None:
        """End a run (durably: retried, else journaled and replayed later)."""
        at = utcnow()
        entry = {
            "kind": "finish", "run_id": run_id, "status": status,
            "error": self.redactor.redact(error), "finished_at": at.isoformat(),
        }  # fmt: skip
        self._durably(lambda: self._finish_run_now(run_id, status, error, at), entry, None)

    def _finish_run_now(self, run_id: int, status: str, error: str | None, at: dt.datetime) -> None:
        with self.db.session() as session:
            run = self._run(session, run_id)
            successes = session.scalar(
                select(func.count()).where(ItemRow.run_id == run_id, *CREDITED_SUCCESS)
            )
            if run.status != "running":
                return  # ended already (abandoned while its end waited in the journal)
            run.status = status
            run.error = self.redactor.redact(error)
            run.finished_at = at
            if (
                status == "interrupted"
                and run.trigger in RECOVERABLE_TRIGGERS
                and run.cancel_requested_at is None  # an operator's cancel is not undone
            ):
                run.recovery = "due"  # a drain or Ctrl-C stopped work an executor was given
            run.run_minutes_saved = run_minutes_due(
                status, successes or 0, run.manual_minutes_per_run
            )

    # --- runs reported by other regions ------------------------------------------

    def own_final_runs(
        self, since: dt.datetime | None = None, until: dt.datetime | None = None
    ) -> Iterator[tuple[RunRow, Sequence[ItemRow]]]:
        """This installation's finished runs (not imported ones), oldest first, with items."""
        query = select(RunRow).where(
            RunRow.imported_from.is_(None), RunRow.status.in_(FINAL_RUN_STATUSES)
        )
        if since is not None:
            query = query.where(RunRow.started_at >= since)
        if until is not None:
            query = query.where(RunRow.started_at < until)
        with self.db.session() as session:
            for run in session.scalars(query.order_by(RunRow.started_at, RunRow.id)).all():
                items = session.scalars(
                    select(ItemRow).where(ItemRow.run_id == run.id).order_by(ItemRow.position)
                ).all()
                yield run, items

    def import_reported(self, files: Sequence[ReportedFile]) -> list[tuple[int, int] | None]:
        """Merge other regions' reports in one transaction, idempotently.

        Per file: (runs added, items added), or None if that file was imported
        before. A run is added when its uid is unknown; its items when their key
        is not there yet; this installation's own runs are never touched.
        """
        results: list[tuple[int, int] | None] = []
        seen: set[str] = set()
        with self.db.session() as session:
            for report in files:
                done = session.scalar(
                    select(MetricImportRow).where(MetricImportRow.file_hash == report.file_hash)
                )
                if done is not None or report.file_hash in seen:
                    results.append(None)
                    continue
                seen.add(report.file_hash)
                runs, items = self._merge_reported(session, report)
                session.add(
                    MetricImportRow(
                        file_hash=report.file_hash, region=report.region, imported_at=utcnow(),
                        runs=runs, items=items,
                    )
                )  # fmt: skip
                session.flush()
                results.append((runs, items))
        return results

    @staticmethod
    def _merge_reported(session: Any, report: ReportedFile) -> tuple[int, int]:
        runs_added = items_added = 0
        for record in report.runs:
            row = session.scalar(select(RunRow).where(RunRow.uid == record.uid))
            if row is None:
                row = _reported_run_row(record, report.region)
                session.add(row)
                session.flush()
                runs_added += 1
                present: set[str] = set()
            elif row.imported_from != report.region:
                continue  # this installation's own run, or one reported by another region
            else:
                present = set(
                    session.scalars(select(ItemRow.reference).where(ItemRow.run_id == row.id))
                )
            for item in record.items:
                if item.key in present:
                    continue
                session.add(
                    ItemRow(
                        run_id=row.id, position=item.position, reference=item.key,
                        status=item.status, attempts=item.attempts, started_at=item.started_at,
                        finished_at=item.finished_at, duration_seconds=item.duration_seconds,
                        error_type=item.error_type, error=None, evidence=[], data={}, output={},
                        minutes_saved=item.minutes_saved,
                    )
                )  # fmt: skip
                items_added += 1
        return runs_added, items_added

    # --- reading -------------------------------------------------------------------

    def runs(
        self, *, process_id: str | None = None, status: str | None = None, limit: int = 50
    ) -> list[RunSummary]:
        with self.db.session() as session:
            query = select(RunRow).order_by(RunRow.id.desc()).limit(limit)
            if process_id:
                query = query.where(RunRow.process_id == process_id)
            if status:
                query = query.where(RunRow.status == status)
            runs = session.scalars(query).all()
            counts = self._counts(session, [r.id for r in runs])
            return [self._summary(r, counts.get(r.id, {})) for r in runs]

    def summary(self, run_id: int) -> RunSummary:
        with self.db.session() as session:
            run = self._run(session, run_id)
            return self._summary(run, self._counts(session, [run_id]).get(run_id, {}))

    def run_detail(self, run_id: int) -> RunDetail:
        with self.db.session() as session:
            run = self._run(session, run_id)
            items = session.scalars(
                select(ItemRow).where(ItemRow.run_id == run_id).order_by(ItemRow.position)
            ).all()
            counts = self._counts(session, [run_id])
            return RunDetail(
                run=self._summary(run, counts.get(run_id, {})),
                parameters=run.parameters,
                input_name=run.input_name,
                baseline={
                    "manual_minutes_per_item": run.manual_minutes_per_item,
                    "residual_minutes_per_item": run.residual_minutes_per_item,
                    "manual_minutes_per_run": run.manual_minutes_per_run,
                    "measured_by": run.baseline_measured_by,
                    "measured_on": run.baseline_measured_on,
                },
                host=run.host,
                items=[ItemDetail.of(i) for i in items],
            )

    @staticmethod
    def _run(session: Session, run_id: int) -> RunRow:
        run = session.get(RunRow, run_id)
        if run is None:
            raise RunNotFound(f"no run {run_id} in the ledger; `robo runs` lists recent runs")
        return run

    @staticmethod
    def _counts(session: Any, run_ids: list[int]) -> dict[int, dict[str, Any]]:
        if not run_ids:
            return {}
        rows = session.execute(
            select(ItemRow.run_id, ItemRow.status, func.count(), func.sum(ItemRow.minutes_saved))
            .where(ItemRow.run_id.in_(run_ids))
            .group_by(ItemRow.run_id, ItemRow.status)
        ).all()
        counts: dict[int, dict[str, Any]] = {}
        for run_id, status, count, minutes in rows:
            entry = counts.setdefault(run_id, {"minutes": 0.0})
            entry[status] = count
            entry["minutes"] += minutes or 0.0
        return counts

    @staticmethod
    def _summary(run: RunRow, counts: dict[str, Any]) -> RunSummary:
        duration = (run.finished_at - run.started_at).total_seconds() if run.finished_at else None
        return RunSummary(
            id=run.id,
            uid=run.uid,
            process_id=run.process_id,
            version=run.version,
            region=run.region,
            trigger=run.trigger,
            purpose=run.purpose,
            status=run.status,
            started_at=run.started_at.isoformat(timespec="seconds"),
            finished_at=run.finished_at.isoformat(timespec="seconds") if run.finished_at else None,
            duration_seconds=duration,
            items_total=run.items_total,
            succeeded=counts.get("success", 0),
            business_exceptions=counts.get("business_exception", 0),
            application_exceptions=counts.get("application_exception", 0),
            skipped=counts.get("skipped", 0),
            minutes_saved=counts.get("minutes", 0.0) + run.run_minutes_saved,
            error=run.error,
        )


def run_minutes_due(status: str, successes: int, manual_minutes_per_run: float) -> float:
    """The per-run saving (opening the tools, compiling a report) is the agent's only for a
    run that completed with at least one successful item: a failed, timed out, interrupted,
    abandoned or cancelled run, or one that succeeded at nothing, is credited none."""
    return manual_minutes_per_run if status == "completed" and successes > 0 else 0.0


def _reported_run_row(record: ReportedRun, region: str) -> RunRow:
    b = record.baseline
    return RunRow(
        uid=record.uid, process_id=record.process_id, version_id=None, version=record.version,
        region=record.region, application=record.application,
        origin_region=record.origin_region, origin_version=record.origin_version,
        imported_from=region, trigger=record.trigger, purpose=record.purpose,
        status=record.status,
        started_at=record.started_at, finished_at=record.finished_at, heartbeat_at=None,
        host="", pid=None, parameters={}, input_name="", items_total=record.items_total,
        error=None, manual_minutes_per_item=b.manual_minutes_per_item,
        residual_minutes_per_item=b.residual_minutes_per_item,
        manual_minutes_per_run=b.manual_minutes_per_run, baseline_measured_by=b.measured_by,
        baseline_measured_on=b.measured_on,
        # The importing side's rule: a file from an older robo may credit a failed run.
        run_minutes_saved=record.run_minutes_saved if record.status == "completed" else 0.0,
    )  # fmt: skip
