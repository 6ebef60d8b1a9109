"""The scheduling ledger: every fire and every skip, with its reason.

It answers "why did this not run on Monday?". A unique key on (process,
trigger, scheduled time) means a fire can be recorded, and so started, once.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Literal

from sqlalchemy import insert, select
from sqlalchemy.exc import IntegrityError

from robo.clock import utcnow
from robo.storage.database import Database
from robo.storage.models import ScheduleEventRow

Decision = Literal["fired", "skipped", "missed"]


@dataclass(frozen=True)
class ScheduleEvent:
    process_id: str
    trigger_key: str
    scheduled_for: str
    decided_at: str
    decision: str
    reason: str
    run_id: int | None
    scheduler: str


_INSERT = insert(ScheduleEventRow)


class DecisionLog:
    def __init__(self, db: Database, scheduler: str = "") -> None:
        self.db = db
        self.scheduler = scheduler

    def record(
        self,
        process_id: str,
        trigger_key: str,
        scheduled_for: dt.datetime,
        decision: Decision,
        reason: str = "",
    ) -> bool:
        """Record one decision; False if this fire was already decided (by anyone)."""
        row = {
            "process_id": process_id,
            "trigger_key": trigger_key,
            "scheduled_for": scheduled_for,
            "decided_at": utcnow(),
            "decision": decision,
            "reason": reason,
            "scheduler": self.scheduler,
        }
        try:
            # One prepared Core statement: this runs once per fire on the scheduler's thread.
            with self.db.engine.begin() as connection:
                connection.execute(_INSERT, row)
        except IntegrityError:
            return False
        return True

    def record_many(self, rows: list[tuple[str, str, dt.datetime, Decision, str]]) -> list[bool]:
        """Record decisions (process, trigger, time, decision, reason) in one transaction; for
        each, False if that fire was already decided. A burst of fires costs one commit."""
        if not rows:
            return []
        now = utcnow()
        values = [
            {"process_id": p, "trigger_key": k, "scheduled_for": at, "decided_at": now,
             "decision": d, "reason": r, "scheduler": self.scheduler}
            for p, k, at, d, r in rows
        ]  # fmt: skip
        try:
            with self.db.engine.begin() as connection:
                connection.execute(_INSERT, values)
        except IntegrityError:  # some were decided by another scheduler: find which, one by one
            return [self.record(*row) for row in rows]
        return [True] * len(rows)

    def decided_between(
        self, process_id: str, trigger_key: str, start: dt.datetime, end: dt.datetime
    ) -> list[dt.datetime]:
        with self.db.session() as session:
            return list(
                session.scalars(
                    select(ScheduleEventRow.scheduled_for).where(
                        ScheduleEventRow.process_id == process_id,
                        ScheduleEventRow.trigger_key == trigger_key,
                        ScheduleEventRow.scheduled_for >= start,
                        ScheduleEventRow.scheduled_for <= end,
                    )
                )
            )

    def fired_since(self, since: dt.datetime) -> list[ScheduleEventRow]:
        with self.db.session() as session:
            return list(
                session.scalars(
                    select(ScheduleEventRow)
                    .where(
                        ScheduleEventRow.decision == "fired",
                        ScheduleEventRow.scheduled_for >= since,
                    )
                    .order_by(ScheduleEventRow.scheduled_for)
                )
            )

    def events(
        self, process_id: str | None = None, since: dt.datetime | None = None, limit: int = 50
    ) -> list[ScheduleEvent]:
        query = select(ScheduleEventRow).order_by(ScheduleEventRow.id.desc()).limit(limit)
        if process_id:
            query = query.where(ScheduleEventRow.process_id == process_id)
        if since:
            query = query.where(ScheduleEventRow.scheduled_for >= since)
        with self.db.session() as session:
            return [
                ScheduleEvent(
                    process_id=r.process_id,
                    trigger_key=r.trigger_key,
                    scheduled_for=r.scheduled_for.isoformat(timespec="seconds"),
                    decided_at=r.decided_at.isoformat(timespec="seconds"),
                    decision=r.decision,
                    reason=r.reason,
                    run_id=r.run_id,
                    scheduler=r.scheduler,
                )
                for r in session.scalars(query)
            ]
