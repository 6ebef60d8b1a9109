"""One active scheduler per database: a lease row taken and renewed atomically.

APScheduler 3 is not safe with two schedulers on one job store, so a scheduler
fires nothing until it holds the lease, and stops at once if it loses it. A
standby takes over when the holder stops renewing (it died, or lost the
database) and the lease expires.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import socket
import uuid
from dataclasses import dataclass

from sqlalchemy import delete, or_, select, update
from sqlalchemy.exc import IntegrityError

from robo.clock import utcnow
from robo.storage.database import Database
from robo.storage.models import SchedulerLockRow

LOCK_NAME = "scheduler"
# A standing-by scheduler's row beside the lease (same table, no migration): it renews it
# while it waits and removes it when it leads or stops, so `robo status` can show it.
STANDBY_PREFIX = "standby:"


def new_owner_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


@dataclass(frozen=True)
class LockHolder:
    owner: str
    acquired_at: dt.datetime
    expires_at: dt.datetime
    renewed_at: dt.datetime | None = None


class LeaderLock:
    def __init__(self, db: Database, owner: str, lease_seconds: float = 15) -> None:
        self.db = db
        self.owner = owner
        self.lease = dt.timedelta(seconds=lease_seconds)

    def try_acquire(self) -> bool:
        now = utcnow()
        with self.db.session() as session:
            # A conditional update is atomic on SQLite and PostgreSQL: two standbys
            # racing for an expired lease cannot both see a row count of one.
            taken = session.execute(  # type: ignore[attr-defined]
                update(SchedulerLockRow)
                .where(
                    SchedulerLockRow.name == LOCK_NAME,
                    or_(SchedulerLockRow.owner == self.owner, SchedulerLockRow.expires_at < now),
                )
                .values(
                    owner=self.owner, acquired_at=now, renewed_at=now, expires_at=now + self.lease
                )
            ).rowcount
            if taken:
                return True
            if session.get(SchedulerLockRow, LOCK_NAME) is not None:
                return False
        try:
            with self.db.session() as session:
                session.add(
                    SchedulerLockRow(
                        name=LOCK_NAME, owner=self.owner, acquired_at=now, renewed_at=now,
                        expires_at=now + self.lease,
                    )
                )  # fmt: skip
        except IntegrityError:
            return False  # another scheduler created it first
        return True

    def renew(self) -> bool:
        """Extend the lease; False means it was lost and nothing more may fire."""
        now = utcnow()
        with self.db.session() as session:
            return bool(
                session.execute(  # type: ignore[attr-defined]
                    update(SchedulerLockRow)
                    .where(SchedulerLockRow.name == LOCK_NAME, SchedulerLockRow.owner == self.owner)
                    .values(renewed_at=now, expires_at=now + self.lease)
                ).rowcount
            )

    def release(self) -> None:
        with self.db.session() as session:
            session.execute(
                delete(SchedulerLockRow).where(
                    SchedulerLockRow.name == LOCK_NAME, SchedulerLockRow.owner == self.owner
                )
            )

    def stand_by(self) -> None:
        """Say this scheduler stands by, until a lease length from now; the rows of standbys
        that died (expired) are removed on the way."""
        now = utcnow()
        name = standby_name(self.owner)
        with self.db.session() as session:
            session.execute(
                delete(SchedulerLockRow).where(
                    SchedulerLockRow.name.startswith(STANDBY_PREFIX),
                    SchedulerLockRow.expires_at < now,
                    SchedulerLockRow.name != name,
                )
            )
            row = session.get(SchedulerLockRow, name)
            if row is None:
                session.add(
                    SchedulerLockRow(
                        name=name, owner=self.owner, acquired_at=now, renewed_at=now,
                        expires_at=now + self.lease,
                    )
                )  # fmt: skip
            else:
                row.renewed_at, row.expires_at = now, now + self.lease

    def stop_standing_by(self) -> None:
        with self.db.session() as session:
            session.execute(
                delete(SchedulerLockRow).where(SchedulerLockRow.name == standby_name(self.owner))
            )

    def holder(self) -> LockHolder | None:
        with self.db.session() as session:
            row = session.scalars(
                select(SchedulerLockRow).where(SchedulerLockRow.name == LOCK_NAME)
            ).one_or_none()
            return (
                None
                if row is None
                else LockHolder(row.owner, row.acquired_at, row.expires_at, row.renewed_at)
            )


def standby_name(owner: str) -> str:
    """The standby row's key: the owner id hashed to fit the 64 characters of the key."""
    return STANDBY_PREFIX + hashlib.sha256(owner.encode()).hexdigest()[:32]


def standbys(db: Database, now: dt.datetime) -> list[LockHolder]:
    """Schedulers standing by now (their row renewed within a lease length), oldest first."""
    with db.session() as session:
        rows = session.scalars(
            select(SchedulerLockRow)
            .where(
                SchedulerLockRow.name.startswith(STANDBY_PREFIX),
                SchedulerLockRow.expires_at >= now,
            )
            .order_by(SchedulerLockRow.acquired_at)
        ).all()
        return [LockHolder(r.owner, r.acquired_at, r.expires_at, r.renewed_at) for r in rows]
