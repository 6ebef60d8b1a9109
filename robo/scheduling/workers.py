"""Live workers, known from the heartbeats they write to the shared database."""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import socket
import threading
from dataclasses import dataclass

from sqlalchemy import delete, select

from robo.clock import utcnow
from robo.storage.database import Database
from robo.storage.models import RunRow, WorkerRow


@dataclass(frozen=True)
class WorkerInfo:
    id: str
    host: str
    pid: int
    slots: int
    started_at: str
    heartbeat_at: str
    alive: bool
    current_runs: list[int]


class WorkerHeartbeat(threading.Thread):
    def __init__(self, db: Database, worker_id: str, slots: int, every_seconds: float) -> None:
        super().__init__(name="robo-worker-heartbeat", daemon=True)
        self.db, self.worker_id, self.slots = db, worker_id, slots
        self.every_seconds = every_seconds
        self._stop_event = threading.Event()

    def beat(self) -> None:
        now = utcnow()
        with self.db.session() as session:
            row = session.get(WorkerRow, self.worker_id)
            if row is None:
                session.add(
                    WorkerRow(
                        id=self.worker_id, host=socket.gethostname(), pid=os.getpid(),
                        slots=self.slots, started_at=now, heartbeat_at=now, current_runs=[],
                    )
                )  # fmt: skip
            else:
                row.heartbeat_at = now

    def run(self) -> None:
        while True:
            with contextlib.suppress(Exception):  # the database may be briefly away
                self.beat()
            if self._stop_event.wait(self.every_seconds):
                return

    def stop(self) -> None:
        self._stop_event.set()
        with self.db.session() as session:
            session.execute(delete(WorkerRow).where(WorkerRow.id == self.worker_id))


def list_workers(db: Database, heartbeat_seconds: float) -> list[WorkerInfo]:
    """Every registered worker; alive if it beat within three heartbeat periods."""
    horizon = utcnow() - dt.timedelta(seconds=3 * heartbeat_seconds)
    with db.session() as session:
        rows = session.scalars(select(WorkerRow).order_by(WorkerRow.id)).all()
        running = session.execute(
            select(RunRow.worker, RunRow.id).where(RunRow.status == "running", RunRow.worker != "")
        ).all()
    by_worker: dict[str, list[int]] = {}
    for worker, run_id in running:
        by_worker.setdefault(worker, []).append(run_id)
    return [
        WorkerInfo(
            id=row.id,
            host=row.host,
            pid=row.pid,
            slots=row.slots,
            started_at=row.started_at.isoformat(timespec="seconds"),
            heartbeat_at=row.heartbeat_at.isoformat(timespec="seconds"),
            alive=row.heartbeat_at >= horizon,
            current_runs=sorted(by_worker.get(row.id, [])),
        )
        for row in rows
    ]
