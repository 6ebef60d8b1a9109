"""Alerts and delivery attempts in the database: open once per key, resolve once.

An alert's key is its rule and subject (``run_failed:invoice-check``). While it
is open, ``alerts.open_key`` holds the key, and that column is unique: of
several evaluators seeing the same storm at once (a run's end, the scheduler,
``robo watch``), exactly one opens the alert and sends its message; the others
count an occurrence. Resolving is a conditional update: exactly one evaluator
sends the recovery.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any, Literal

from sqlalchemy import func, or_, select, update
from sqlalchemy.exc import IntegrityError

from robo.storage.database import Database
from robo.storage.models import AlertDeliveryRow, AlertRow

Event = Literal["opened", "resolved", "test"]


@dataclass(frozen=True)
class Finding:
    """What a rule found about one subject. ``active``: True (the condition holds), False
    (it no longer holds: an open alert resolves) or None (cannot tell: nothing changes)."""

    rule: str
    subject: str
    active: bool | None
    summary: str
    facts: dict[str, Any] = field(default_factory=dict)
    run_id: int | None = None  # the run that shows it: each new run is one more occurrence

    @property
    def key(self) -> str:
        return f"{self.rule}:{self.subject}"


@dataclass(frozen=True)
class AlertView:
    id: int
    key: str
    rule: str
    subject: str
    state: str
    summary: str
    opened_at: dt.datetime
    last_seen_at: dt.datetime
    resolved_at: dt.datetime | None
    resolution: str
    occurrences: int
    facts: dict[str, Any]
    sent: int = 0  # successful deliveries
    failed: int = 0  # failed attempts

    @classmethod
    def of(cls, row: AlertRow, sent: int = 0, failed: int = 0) -> AlertView:
        return cls(
            id=row.id,
            key=row.key,
            rule=row.rule,
            subject=row.subject,
            state=row.state,
            summary=row.summary,
            opened_at=row.opened_at,
            last_seen_at=row.last_seen_at,
            resolved_at=row.resolved_at,
            resolution=row.resolution,
            occurrences=row.occurrences,
            facts=dict(row.facts or {}),
            sent=sent,
            failed=failed,
        )


@dataclass(frozen=True)
class DeliveryView:
    alert_id: int
    event: str
    channel: str
    attempt: int
    at: dt.datetime
    ok: bool
    error: str | None


@dataclass(frozen=True)
class Transition:
    event: Event
    alert: AlertView


class AlertStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    def open_keys(self) -> set[str]:
        with self.db.session() as session:
            return set(session.scalars(select(AlertRow.key).where(AlertRow.state == "open")))

    def apply(self, finding: Finding, now: dt.datetime) -> Transition | None:
        """Open, count or resolve the alert of ``finding``; the transition, if this call
        made one (then its message is this caller's to send)."""
        if finding.active is True:
            return self._open_or_count(finding, now)
        if finding.active is False:
            return self._resolve(finding, now)
        return None

    def _open_or_count(self, finding: Finding, now: dt.datetime) -> Transition | None:
        if self._count(finding, now):
            return None
        try:
            with self.db.session() as session:
                row = AlertRow(
                    key=finding.key,
                    open_key=finding.key,
                    rule=finding.rule,
                    subject=finding.subject,
                    state="open",
                    summary=finding.summary,
                    facts=finding.facts,
                    opened_at=now,
                    last_seen_at=now,
                    resolved_at=None,
                    resolution="",
                    occurrences=1,
                    last_run_id=finding.run_id,
                )
                session.add(row)
                session.flush()
                view = AlertView.of(row)
        except IntegrityError:  # another evaluator opened it first: one more occurrence
            self._count(finding, now)
            return None
        return Transition("opened", view)

    def _count(self, finding: Finding, now: dt.datetime) -> bool:
        """Note one more sighting of an open alert; False if none is open."""
        with self.db.session() as session:
            row = session.scalars(
                select(AlertRow).where(AlertRow.open_key == finding.key)
            ).one_or_none()
            if row is None:
                return False
            values: dict[str, Any] = {"last_seen_at": now}
            condition: list[Any] = [AlertRow.id == row.id]
            if finding.run_id is not None:  # a new run is a new occurrence; a re-check is not
                values |= {
                    "occurrences": AlertRow.occurrences + 1,
                    "last_run_id": finding.run_id,
                    "facts": {**(row.facts or {}), "last": finding.summary},
                }
                condition.append(
                    or_(AlertRow.last_run_id.is_(None), AlertRow.last_run_id < finding.run_id)
                )
            result = session.execute(update(AlertRow).where(*condition).values(**values))
            if not result.rowcount and finding.run_id is not None:  # type: ignore[attr-defined]
                session.execute(
                    update(AlertRow).where(AlertRow.id == row.id).values(last_seen_at=now)
                )
            return True

    def _resolve(self, finding: Finding, now: dt.datetime) -> Transition | None:
        with self.db.session() as session:
            done = session.execute(
                update(AlertRow)
                .where(AlertRow.open_key == finding.key, AlertRow.state == "open")
                .values(
                    state="resolved",
                    open_key=None,
                    resolved_at=now,
                    last_seen_at=now,
                    resolution=finding.summary,
                )
            ).rowcount  # type: ignore[attr-defined]
            if not done:
                return None
            row = session.scalars(
                select(AlertRow)
                .where(AlertRow.key == finding.key, AlertRow.state == "resolved")
                .order_by(AlertRow.id.desc())
                .limit(1)
            ).one()
            return Transition("resolved", AlertView.of(row))

    def record_test(self, summary: str, now: dt.datetime) -> AlertView:
        with self.db.session() as session:
            row = AlertRow(
                key="test:channels",
                open_key=None,
                rule="test",
                subject="channels",
                state="test",
                summary=summary,
                facts={},
                opened_at=now,
                last_seen_at=now,
                resolved_at=now,
                resolution="",
                occurrences=1,
                last_run_id=None,
            )
            session.add(row)
            session.flush()
            return AlertView.of(row)

    def record_attempt(
        self,
        alert_id: int,
        event: Event,
        channel: str,
        attempt: int,
        ok: bool,
        error: str | None,
        at: dt.datetime,
    ) -> None:
        with self.db.session() as session:
            session.add(
                AlertDeliveryRow(
                    alert_id=alert_id,
                    event=event,
                    channel=channel,
                    attempt=attempt,
                    at=at,
                    ok=ok,
                    error=error,
                )
            )

    def alerts(self, *, open_only: bool = False, limit: int = 50) -> list[AlertView]:
        """Newest first, with how many deliveries succeeded and failed."""
        query = select(AlertRow).order_by(AlertRow.id.desc()).limit(limit)
        if open_only:
            query = query.where(AlertRow.state == "open")
        with self.db.session() as session:
            rows = list(session.scalars(query))
            counts: dict[tuple[int, bool], int] = {}
            if rows:
                for alert_id, ok, count in session.execute(
                    select(AlertDeliveryRow.alert_id, AlertDeliveryRow.ok, func.count())
                    .where(AlertDeliveryRow.alert_id.in_([r.id for r in rows]))
                    .group_by(AlertDeliveryRow.alert_id, AlertDeliveryRow.ok)
                ):
                    counts[(alert_id, bool(ok))] = count
            return [
                AlertView.of(r, counts.get((r.id, True), 0), counts.get((r.id, False), 0))
                for r in rows
            ]

    def deliveries(self, alert_id: int) -> list[DeliveryView]:
        with self.db.session() as session:
            return [
                DeliveryView(d.alert_id, d.event, d.channel, d.attempt, d.at, d.ok, d.error)
                for d in session.scalars(
                    select(AlertDeliveryRow)
                    .where(AlertDeliveryRow.alert_id == alert_id)
                    .order_by(AlertDeliveryRow.id)
                )
            ]
