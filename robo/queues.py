"""Work queues: every item has one life across runs, crashes and machines.

The status machine (``docs/queues.md`` draws it)::

    new ──take──► in_progress ──► successful            (earns its minutes, once)
     ▲  ▲              │      ├──► skipped               (nothing to do: 0 minutes)
     │  │              │      ├──► business_exception ─┐ (a human takes over)
     │  │              │      ├──► application_exception (after retry.max_runs runs)
     │  └─retry────────┘      └──► uncertain           ─┤ (run died, no verify block)
     │   (app. exception, runs left; or run died + verify)│
     │                                                    ├─ worklist resolve ─► resolved
     └──────────── worklist return / queue retry ─────────┘
    new/deferred ──postpone──► deferred (not taken before defer_until)
    new/deferred/exceptions/uncertain ──cancel──► cancelled

A run takes an item under a lease that its heartbeat renews. An item still
``in_progress`` whose run is no longer running (or whose lease ran out) is
reclaimed by the next run of its queue: with a ``verify`` block it goes back to
``new`` marked ``needs_verify`` (the next run asks the application whether the
work was done before doing it), without one it becomes ``uncertain`` and waits
for a human: it is never redone silently.

Outcomes are written by the ledger (``Ledger.record_item``) in the same
transaction as the item row: this module decides which status an outcome
leads to, and does everything that is not an outcome (adding, taking,
leases, reclaiming, operator and worklist actions).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from sqlalchemy import and_, func, or_, select, text, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from robo.clock import utcnow
from robo.errors import QueueError, did_you_mean
from robo.storage.database import Database
from robo.storage.models import QueueEventRow, QueueItemRow, QueueRow, RunRow

QueueStatus = Literal[
    "new",
    "in_progress",
    "successful",
    "business_exception",
    "application_exception",
    "skipped",
    "deferred",
    "cancelled",
    "uncertain",
    "resolved",
]
UniquePolicy = Literal["refuse", "after_business_exception"]

#: Waiting for a run.
WAITING: tuple[QueueStatus, ...] = ("new", "deferred")
WAITING_SQL = f"queue_items.status IN ({', '.join(repr(s) for s in WAITING)})"
#: Done with: nothing more happens to them.
FINAL: tuple[QueueStatus, ...] = ("successful", "skipped", "cancelled", "resolved")
#: Waiting for a human: the worklist.
NEEDS_HUMAN: tuple[QueueStatus, ...] = ("business_exception", "application_exception", "uncertain")

#: Item outcome recorded by a run -> the queue status it leads to.
OUTCOME_STATUS: dict[str, QueueStatus] = {
    "success": "successful",
    "skipped": "skipped",
    "business_exception": "business_exception",
    "application_exception": "application_exception",
}

TRANSITIONS: dict[str, frozenset[str]] = {
    # A waiting item past its deadline may be taken over and resolved by a human.
    "new": frozenset({"in_progress", "deferred", "cancelled", "resolved"}),
    "deferred": frozenset({"in_progress", "deferred", "new", "cancelled", "resolved"}),
    "in_progress": frozenset(
        {"successful", "skipped", "business_exception", "application_exception", "new", "uncertain"}
    ),
    "business_exception": frozenset({"new", "resolved", "cancelled"}),
    "application_exception": frozenset({"new", "resolved", "cancelled"}),
    "uncertain": frozenset({"new", "resolved", "cancelled"}),
    "successful": frozenset(),
    "skipped": frozenset(),
    "cancelled": frozenset(),
    "resolved": frozenset(),
}


def check_transition(item_id: int, current: str, target: str) -> None:
    if target not in TRANSITIONS.get(current, frozenset()):
        allowed = ", ".join(sorted(TRANSITIONS.get(current, ()))) or "none (it is final)"
        raise QueueError(
            f"queue item {item_id} is {current}; it cannot become {target} "
            f"(from {current}: {allowed})"
        )


def status_after(outcome: str, runs_failed: int, max_runs: int) -> QueueStatus:
    """The status an outcome leads to; an application exception is retried by later runs
    while ``runs_failed`` (this one included) is below ``max_runs``."""
    if outcome == "application_exception" and runs_failed < max_runs:
        return "new"
    return OUTCOME_STATUS[outcome]


@dataclass(frozen=True)
class NewItem:
    reference: str
    data: dict[str, Any] = field(default_factory=dict)
    priority: int = 0
    deadline: dt.datetime | None = None
    defer_until: dt.datetime | None = None


@dataclass(frozen=True)
class Refusal:
    """A reference the queue already holds: nothing was added for it."""

    reference: str
    earlier_item_id: int
    earlier_status: str

    def render(self) -> str:
        return (
            f"'{self.reference}' is already queued as item {self.earlier_item_id} "
            f"({self.earlier_status}); not added again"
        )


@dataclass(frozen=True)
class AddResult:
    queue: str
    added: list[int]
    refused: list[Refusal]


@dataclass(frozen=True)
class TakenItem:
    id: int
    reference: str
    data: dict[str, Any]
    needs_verify: bool
    attempts: int


@dataclass(frozen=True)
class Reclaimed:
    id: int
    reference: str
    run_id: int | None
    status: str  # new (to verify) or uncertain


@dataclass(frozen=True)
class QueueItemView:
    id: int
    queue: str
    reference: str
    status: str
    priority: int
    deadline: str | None
    defer_until: str | None
    created_at: str
    updated_at: str
    source: str
    run_id: int | None
    attempts: int
    runs_failed: int
    needs_verify: bool
    error: str | None
    taken_by: str | None
    taken_at: str | None
    resolved_by: str | None
    human_minutes: float | None
    note: str
    region: str | None = None
    data: dict[str, Any] = field(default_factory=dict)  # the item's fields, as queued

    @classmethod
    def of(cls, row: QueueItemRow, region: str | None = None) -> QueueItemView:
        return cls(
            id=row.id, queue=row.queue, reference=row.reference, status=row.status,
            priority=row.priority, deadline=_iso(row.deadline), defer_until=_iso(row.defer_until),
            created_at=_iso(row.created_at) or "", updated_at=_iso(row.updated_at) or "",
            source=row.source, run_id=row.run_id, attempts=row.attempts,
            runs_failed=row.runs_failed, needs_verify=row.needs_verify, error=row.error,
            taken_by=row.taken_by, taken_at=_iso(row.taken_at), resolved_by=row.resolved_by,
            human_minutes=row.human_minutes, note=row.note, region=region,
            data=dict(row.data or {}),
        )  # fmt: skip


@dataclass(frozen=True)
class QueueEvent:
    at: str
    action: str
    status: str
    actor: str
    run_id: int | None
    detail: str


@dataclass(frozen=True)
class QueueSummary:
    name: str
    unique_references: str
    counts: dict[str, int]

    @property
    def waiting(self) -> int:
        return sum(self.counts.get(s, 0) for s in WAITING)


def _iso(value: dt.datetime | None) -> str | None:
    return value.isoformat(timespec="seconds") if value else None


def event(
    item_id: int, action: str, status: str, actor: str, run_id: int | None = None, detail: str = ""
) -> QueueEventRow:
    return QueueEventRow(
        item_id=item_id, at=utcnow(), action=action, status=status, actor=actor,
        run_id=run_id, detail=detail,
    )  # fmt: skip


class Queues:
    """Queues and their items in the database (SQLite or PostgreSQL)."""

    def __init__(self, db: Database, actor: str = "") -> None:
        self.db = db
        self.actor = actor

    # --- queues ----------------------------------------------------------------------

    def ensure(self, name: str, unique: UniquePolicy | None = None) -> None:
        """Create the queue if it does not exist (policy ``refuse`` unless given); the
        policy of the process that drains it is applied on each of its runs."""
        try:
            with self.db.session() as session:
                row = session.get(QueueRow, name)
                if row is None:
                    policy = unique or "refuse"
                    session.add(QueueRow(name=name, unique_references=policy, created_at=utcnow()))
                elif unique is not None and row.unique_references != unique:
                    row.unique_references = unique
        except IntegrityError:  # created by a concurrent run at the same moment
            pass

    def summaries(self) -> list[QueueSummary]:
        with self.db.session() as session:
            queues = session.scalars(select(QueueRow).order_by(QueueRow.name)).all()
            counts: dict[str, dict[str, int]] = {}
            for name, status, count in session.execute(
                select(QueueItemRow.queue, QueueItemRow.status, func.count()).group_by(
                    QueueItemRow.queue, QueueItemRow.status
                )
            ):
                counts.setdefault(name, {})[status] = count
            return [
                QueueSummary(q.name, q.unique_references, counts.get(q.name, {})) for q in queues
            ]

    def summary(self, name: str) -> QueueSummary:
        summaries = self.summaries()
        for found in summaries:
            if found.name == name:
                return found
        hint = did_you_mean(name, (q.name for q in summaries))
        raise QueueError(
            f"no queue '{name}'; {hint + ' ' if hint else ''}`robo queue list` shows the queues"
        )

    # --- adding --------------------------------------------------------------------------

    def add(
        self,
        queue: str,
        items: Iterable[NewItem],
        *,
        source: str,
        run_id: int | None = None,
        unique: UniquePolicy | None = None,
    ) -> AddResult:
        """Add items; a reference the queue still holds is refused (and reported), the rest
        is added. The whole batch is one transaction."""
        if unique is not None:
            self.ensure(queue, unique)
        batch = list(items)
        for _ in range(4):
            try:
                return self._add_batch(queue, batch, source, run_id)
            except IntegrityError:
                # Another run added one of these references after we looked (two runs
                # starting at once): look again, and that reference is refused this time.
                continue
        return self._add_batch(queue, batch, source, run_id)

    def _add_batch(
        self, queue: str, batch: list[NewItem], source: str, run_id: int | None
    ) -> AddResult:
        added: list[int] = []
        refused: list[Refusal] = []
        now = utcnow()
        with self.db.session() as session:
            if session.get(QueueRow, queue) is None:
                raise QueueError(
                    f"no queue '{queue}'; a process's queue is created by its first run "
                    "(or name an existing one: `robo queue list`)"
                )
            held = self._held(session, queue, [i.reference for i in batch])
            seen: dict[str, int] = {}
            for item in batch:
                earlier = held.get(item.reference)
                if earlier is not None:
                    refused.append(Refusal(item.reference, *earlier))
                    continue
                if item.reference in seen:
                    refused.append(Refusal(item.reference, seen[item.reference], "new"))
                    continue
                status: QueueStatus = "deferred" if item.defer_until else "new"
                row = QueueItemRow(
                    queue=queue, reference=item.reference, holds_reference=item.reference,
                    data=item.data, status=status, priority=item.priority,
                    deadline=item.deadline, defer_until=item.defer_until, created_at=now,
                    updated_at=now, source=source[:255], added_by_run_id=run_id,
                    needs_verify=False, runs_failed=0, attempts=0, note="",
                )  # fmt: skip
                session.add(row)
                session.flush()
                seen[item.reference] = row.id
                added.append(row.id)
                session.add(event(row.id, "added", status, self.actor, run_id, source))
        return AddResult(queue, added, refused)

    @staticmethod
    def _held(
        session: Session, queue: str, references: Sequence[str]
    ) -> dict[str, tuple[int, str]]:
        held: dict[str, tuple[int, str]] = {}
        unique = sorted(set(references))
        for start in range(0, len(unique), 500):
            chunk = unique[start : start + 500]
            for ref, item_id, status in session.execute(
                select(QueueItemRow.holds_reference, QueueItemRow.id, QueueItemRow.status).where(
                    QueueItemRow.queue == queue, QueueItemRow.holds_reference.in_(chunk)
                )
            ):
                if ref is not None:
                    held[ref] = (item_id, status)
        return held

    # --- runs taking items -----------------------------------------------------------------

    def waiting(self, queue: str, now: dt.datetime | None = None) -> int:
        now = now or utcnow()
        with self.db.session() as session:
            return int(session.scalar(
                select(func.count()).select_from(QueueItemRow).where(*self._available(queue, now))
            ) or 0)  # fmt: skip

    def waiting_counts(
        self, queues: Sequence[str], now: dt.datetime | None = None
    ) -> dict[str, int]:
        """``waiting`` for several queues in one query (the scheduler's queue triggers)."""
        now = now or utcnow()
        counts = dict.fromkeys(queues, 0)
        if not counts:
            return counts
        with self.db.session() as session:
            for name, count in session.execute(
                select(QueueItemRow.queue, func.count())
                .where(QueueItemRow.queue.in_(list(counts)), self._ready(now))
                .group_by(QueueItemRow.queue)
            ):
                counts[name] = int(count)
        return counts

    @staticmethod
    def _ready(now: dt.datetime) -> Any:
        return or_(
            QueueItemRow.status == "new",
            and_(QueueItemRow.status == "deferred", QueueItemRow.defer_until <= now),
        )

    @classmethod
    def _available(cls, queue: str, now: dt.datetime) -> list[Any]:
        # The literal status test is the partial index's own WHERE (migration 0006):
        # SQLite uses a partial index only when the query repeats it, not with parameters.
        return [QueueItemRow.queue == queue, text(WAITING_SQL), cls._ready(now)]

    def take(self, queue: str, run_id: int, lease_seconds: float) -> TakenItem | None:
        """The next item for this run (priority, deadline, age), leased to it; None if none.

        On PostgreSQL the candidate row is locked with SKIP LOCKED, so concurrent runs
        on several machines each get another item; on SQLite writers are serialised.
        Either way the status change is conditional: an item is never held by two runs.
        """
        for _ in range(20):
            now = utcnow()
            with self.db.session() as session:
                query = (
                    select(QueueItemRow)
                    .where(
                        *self._available(queue, now),
                        # What this run ended (an application exception left to a later run)
                        # is not taken again by it; what a human took over is theirs.
                        or_(QueueItemRow.run_id.is_(None), QueueItemRow.run_id != run_id),
                        QueueItemRow.taken_by.is_(None),
                    )
                    .order_by(
                        QueueItemRow.priority.desc(),
                        QueueItemRow.deadline.is_(None),
                        QueueItemRow.deadline,
                        QueueItemRow.created_at,
                        QueueItemRow.id,
                    )
                    .limit(1)
                )
                if self.db.engine.dialect.name == "postgresql":
                    query = query.with_for_update(skip_locked=True)
                row = session.scalars(query).first()
                if row is None:
                    return None
                taken = session.connection().execute(
                    update(QueueItemRow)
                    .where(QueueItemRow.id == row.id, QueueItemRow.status == row.status)
                    .values(
                        status="in_progress",
                        run_id=run_id,
                        updated_at=now,
                        lease_until=now + dt.timedelta(seconds=lease_seconds),
                    )
                )
                if taken.rowcount != 1:  # another run got there between select and update
                    continue
                session.add(event(row.id, "taken", "in_progress", self.actor, run_id))
                return TakenItem(row.id, row.reference, dict(row.data), row.needs_verify,
                                 row.attempts)  # fmt: skip
        return None

    def mark_uncertain(self, item_id: int, run_id: int, reason: str) -> bool:
        """This run cannot tell whether the item's work was done: a human decides."""
        with self.db.session() as session:
            moved = session.connection().execute(
                update(QueueItemRow)
                .where(QueueItemRow.id == item_id, QueueItemRow.status == "in_progress",
                       QueueItemRow.run_id == run_id)
                .values(status="uncertain", lease_until=None, updated_at=utcnow(), error=reason)
            )  # fmt: skip
            if moved.rowcount == 1:
                session.add(event(item_id, "uncertain", "uncertain", self.actor, run_id, reason))
            return moved.rowcount == 1

    def hand_back(
        self, item_id: int, run_id: int, *, touched: bool, verify: bool, reason: str
    ) -> str | None:
        """An item a run held when it was cancelled at once (`robo cancel --now`), not
        counted as done: ``new`` again as it was if the bot had not started on it; if it
        had, ``new`` marked to verify (with a verify block: the next run asks the
        application first) or ``uncertain`` for a human (without one): never redone
        silently. The status it went to; None if the run no longer held it (recorded)."""
        target: QueueStatus = "new" if verify or not touched else "uncertain"
        values: dict[str, Any] = {"status": target, "lease_until": None, "updated_at": utcnow()}
        if touched:
            values["needs_verify"] = verify
            unsure = f"{reason}; without a verify block robo cannot tell whether the work was done"
            values["error"] = None if verify else unsure
        with self.db.session() as session:
            moved = session.connection().execute(
                update(QueueItemRow)
                .where(QueueItemRow.id == item_id, QueueItemRow.status == "in_progress",
                       QueueItemRow.run_id == run_id)
                .values(**values)
            )  # fmt: skip
            if moved.rowcount != 1:
                return None
            detail = reason if not touched else (
                f"{reason}; {'to verify before redoing' if verify else 'no verify block'}"
            )  # fmt: skip
            session.add(event(item_id, "handed_back", target, self.actor, run_id, detail))
            return target

    def renew(self, run_id: int, lease_seconds: float) -> int:
        """Extend the leases of the items this run holds (called by its heartbeat)."""
        now = utcnow()
        with self.db.session() as session:
            result = session.connection().execute(
                update(QueueItemRow)
                .where(QueueItemRow.run_id == run_id, QueueItemRow.status == "in_progress")
                .values(lease_until=now + dt.timedelta(seconds=lease_seconds))
            )
            return int(result.rowcount or 0)

    def reclaim(self, queue: str, *, verify: bool) -> list[Reclaimed]:
        """Items left in progress by a run that is gone (or whose lease ran out)."""
        now = utcnow()
        found: list[Reclaimed] = []
        with self.db.session() as session:
            rows = session.scalars(
                select(QueueItemRow)
                .outerjoin(RunRow, RunRow.id == QueueItemRow.run_id)
                .where(
                    QueueItemRow.queue == queue,
                    QueueItemRow.status == "in_progress",
                    or_(
                        RunRow.id.is_(None),
                        RunRow.status != "running",
                        QueueItemRow.lease_until < now,
                    ),
                )
            ).all()
            for row in rows:
                target: QueueStatus = "new" if verify else "uncertain"
                moved = session.connection().execute(
                    update(QueueItemRow)
                    .where(QueueItemRow.id == row.id, QueueItemRow.status == "in_progress",
                           QueueItemRow.run_id == row.run_id)
                    .values(status=target, needs_verify=verify, lease_until=None, updated_at=now,
                            error=None if verify else (
                                f"run {row.run_id} stopped while doing this item; without a "
                                "verify block robo cannot tell whether the work was done"))
                )  # fmt: skip
                if moved.rowcount == 1:
                    detail = "to verify before redoing" if verify else "no verify block"
                    session.add(event(row.id, "reclaimed", target, self.actor, row.run_id, detail))
                    found.append(Reclaimed(row.id, row.reference, row.run_id, target))
        return found

    # --- reading ------------------------------------------------------------------------------

    def items(
        self,
        queue: str | None = None,
        statuses: Sequence[str] = (),
        *,
        limit: int | None = 200,
    ) -> list[QueueItemView]:
        """Items in id order; with ``limit``, the newest ``limit`` of them."""
        query = select(QueueItemRow).order_by(QueueItemRow.id.desc())
        if queue is not None:
            query = query.where(QueueItemRow.queue == queue)
        if statuses:
            query = query.where(QueueItemRow.status.in_(list(statuses)))
        if limit is not None:
            query = query.limit(limit)
        with self.db.session() as session:
            return [QueueItemView.of(row) for row in reversed(session.scalars(query).all())]

    def get(self, item_id: int) -> tuple[QueueItemView, list[QueueEvent]]:
        with self.db.session() as session:
            row = self._item(session, item_id)
            events = session.scalars(
                select(QueueEventRow).where(QueueEventRow.item_id == item_id)
                .order_by(QueueEventRow.id)
            ).all()  # fmt: skip
            return QueueItemView.of(row), [
                QueueEvent(_iso(e.at) or "", e.action, e.status, e.actor, e.run_id, e.detail)
                for e in events
            ]

    def worklist(
        self,
        queues: Sequence[str] = (),
        *,
        statuses: Sequence[str] = (),
        region: str | None = None,
        older_than: dt.timedelta | None = None,
    ) -> list[QueueItemView]:
        """What waits for a human: exceptions, uncertain items, items past their deadline."""
        now = utcnow()
        wanted = [s for s in statuses if s != "overdue"] if statuses else list(NEEDS_HUMAN)
        overdue = self._overdue(now)
        shown: list[Any] = [QueueItemRow.status.in_(wanted)] if wanted else []
        if not statuses or "overdue" in statuses:
            shown.append(overdue)
        conditions: list[Any] = [or_(*shown)]
        if queues:
            conditions.append(QueueItemRow.queue.in_(list(queues)))
        if region is not None:
            conditions.append(RunRow.region == region)
        if older_than is not None:
            conditions.append(QueueItemRow.updated_at <= now - older_than)
        query = (
            select(QueueItemRow, RunRow.region)
            .outerjoin(RunRow, RunRow.id == QueueItemRow.run_id)
            .where(*conditions)
            .order_by(QueueItemRow.deadline.is_(None), QueueItemRow.deadline, QueueItemRow.id)
        )
        with self.db.session() as session:
            return [QueueItemView.of(row, region) for row, region in session.execute(query)]

    @staticmethod
    def _overdue(now: dt.datetime) -> Any:
        return and_(
            QueueItemRow.status.in_(WAITING),
            QueueItemRow.deadline.is_not(None),
            QueueItemRow.deadline < now,
        )

    def worklist_sizes(self) -> dict[str, int]:
        """How many items ``worklist()`` shows, per queue (one count query)."""
        shown = or_(QueueItemRow.status.in_(NEEDS_HUMAN), self._overdue(utcnow()))
        query = (
            select(QueueItemRow.queue, func.count())
            .where(shown)
            .group_by(QueueItemRow.queue)
            .order_by(QueueItemRow.queue)
        )
        with self.db.session() as session:
            return {name: count for name, count in session.execute(query)}

    # --- operators and humans ---------------------------------------------------------------

    def cancel(self, item_id: int, note: str = "") -> QueueItemView:
        return self._move(item_id, "cancel", "cancelled", note, release=True)

    def retry(self, item_id: int, note: str = "") -> QueueItemView:
        return self._move(item_id, "retry", "new", note, reset=True)

    def postpone(self, item_id: int, until: dt.datetime, note: str = "") -> QueueItemView:
        if until <= utcnow():
            raise QueueError(
                f"postpone until {until:%Y-%m-%d %H:%M} UTC: that is not later than now"
            )
        return self._move(item_id, "postpone", "deferred", note, defer_until=until)

    def take_for_human(self, item_id: int, note: str = "") -> QueueItemView:
        """An agent takes an item off the worklist (status unchanged): who and when."""
        with self.db.session() as session:
            row = self._item(session, item_id)
            if row.status not in NEEDS_HUMAN and row.status not in WAITING:
                raise QueueError(f"queue item {item_id} is {row.status}: nothing to take over")
            self._not_held_by_another(row)
            row.taken_by, row.taken_at = self.actor, utcnow()
            if note:
                row.note = note
            session.add(event(row.id, "taken_by_human", row.status, self.actor, None, note))
            return QueueItemView.of(row)

    def resolve(self, item_id: int, minutes: float, note: str = "") -> QueueItemView:
        """A human did the work: recorded as human minutes, never as robot savings."""
        if minutes < 0:
            raise QueueError("--minutes is the human work spent on the item: 0 or more")
        return self._move(item_id, "resolve", "resolved", note, human_minutes=minutes)

    def give_back(self, item_id: int, note: str = "") -> QueueItemView:
        """Back into the bot's queue (the data was fixed, the application is back)."""
        with self.db.session() as session:
            row = self._item(session, item_id)
            if row.status in WAITING:  # an overdue item a human took over and hands back
                self._not_held_by_another(row)
                row.taken_by = row.taken_at = None
                if note:
                    row.note = note
                session.add(event(row.id, "return", row.status, self.actor, None, note))
                return QueueItemView.of(row)
        return self._move(item_id, "return", "new", note, reset=True)

    def _move(
        self,
        item_id: int,
        action: str,
        target: QueueStatus,
        note: str,
        *,
        reset: bool = False,
        release: bool = False,
        defer_until: dt.datetime | None = None,
        human_minutes: float | None = None,
    ) -> QueueItemView:
        with self.db.session() as session:
            row = self._item(session, item_id)
            check_transition(item_id, row.status, target)
            if action in ("resolve", "return"):
                self._not_held_by_another(row)
            if target == "resolved" and row.status in WAITING and row.taken_by is None:
                raise QueueError(
                    f"queue item {item_id} is {row.status}: a bot will take it; to do it by "
                    f"hand, take it first (`robo worklist take {item_id}`)"
                )
            now = utcnow()
            if reset:
                row.runs_failed, row.error, row.needs_verify = 0, None, False
                row.taken_by = row.taken_at = None
                if row.holds_reference is None:  # it gave its reference back: take it again
                    clash = session.scalar(select(QueueItemRow.id).where(
                        QueueItemRow.queue == row.queue,
                        QueueItemRow.holds_reference == row.reference,
                    ))  # fmt: skip
                    if clash is not None:
                        raise QueueError(
                            f"'{row.reference}' was queued again as item {clash}; "
                            f"work on that one (or cancel it) instead of item {item_id}"
                        )
                    row.holds_reference = row.reference
            if release:
                row.holds_reference = None
            if defer_until is not None:
                row.defer_until = defer_until
            if human_minutes is not None:
                row.human_minutes = human_minutes
                row.resolved_by, row.resolved_at = self.actor, now
            row.status, row.updated_at = target, now
            if note:
                row.note = note
            session.add(event(row.id, action, target, self.actor, None, note))
            return QueueItemView.of(row)

    def _not_held_by_another(self, row: QueueItemRow) -> None:
        if row.taken_by and row.taken_by != self.actor:
            raise QueueError(
                f"queue item {row.id} was taken by {row.taken_by} at {_iso(row.taken_at)}; "
                "they resolve or return it"
            )

    @staticmethod
    def _item(session: Session, item_id: int) -> QueueItemRow:
        row = session.get(QueueItemRow, item_id)
        if row is None:
            raise QueueError(f"no queue item {item_id}; `robo queue show QUEUE` lists items")
        return row
