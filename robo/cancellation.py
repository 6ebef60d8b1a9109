"""`robo cancel RUN`: an operator's request that a running run stop, kept on its row.

The request is a column change on ``runs`` (migration 0010), made with a conditional
UPDATE that only a running run accepts, and read by the run itself wherever it runs
(``robo run`` in a terminal, the scheduler's process pool, a Celery worker on another
machine): no signal crosses machines, the database row does. Two modes:

    after_item   the run takes no new item, finishes the one in flight, ends `cancelled`
    now          the run stops at once: the item in flight goes back to its queue (not
                 counted), the browser is closed, the run ends `cancelled`

A cancelled run keeps what it recorded, earns no per-run minutes and is never
recovered (``robo.ledger``); the items it did not take stay in the queue.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Literal, get_args

from sqlalchemy import and_, or_, select, update

from robo.clock import utcnow
from robo.errors import RunNotFound, RunNotRunning
from robo.storage.database import Database
from robo.storage.models import RunRow

CancelMode = Literal["after_item", "now"]
CANCEL_MODES: tuple[CancelMode, ...] = get_args(CancelMode)


@dataclass(frozen=True)
class CancelRequest:
    """A run's cancel request as the database holds it."""

    run_id: int
    process_id: str
    mode: CancelMode
    requested_by: str
    requested_at: str  # ISO, UTC
    worker: str = ""  # where the run runs ("" for `robo run` or the local pool)
    host: str = ""
    already: bool = False  # asked before (this call changed nothing)

    @property
    def when(self) -> str:
        """``requested_at`` for a person: 2026-12-03 06:56:52 UTC."""
        return f"{self.requested_at[:19].replace('T', ' ')} UTC"

    def describe(self) -> str:
        how = "at once" if self.mode == "now" else "after the item in flight"
        return f"cancelled by {self.requested_by or '?'} at {self.when} ({how})"


class Cancellations:
    """Cancel requests on runs: made by operators, read by the runs themselves."""

    def __init__(self, db: Database, actor: str = "") -> None:
        self.db = db
        self.actor = actor

    def request(self, run_id: int, mode: CancelMode = "after_item") -> CancelRequest:
        """Ask a running run to stop. Asking again changes nothing, except that ``now``
        hurries a run asked to stop ``after_item``. A run that is not running (or does not
        exist) is refused with its status."""
        now = utcnow()
        # Conditional: only a running run takes the request, so a run ending at the same
        # moment is never marked; a second `--now` never rewrites who asked first.
        upgradable = (
            RunRow.cancel_mode.is_(None)
            if mode == "after_item"
            else or_(RunRow.cancel_mode.is_(None), RunRow.cancel_mode == "after_item")
        )
        with self.db.session() as session:
            changed = session.connection().execute(
                update(RunRow)
                .where(and_(RunRow.id == run_id, RunRow.status == "running", upgradable))
                .values(cancel_requested_at=now, cancel_mode=mode, cancel_requested_by=self.actor)
            )
            row = session.get(RunRow, run_id)
            if row is None:
                raise RunNotFound(f"no run {run_id} in the ledger; `robo runs` lists recent runs")
            if changed.rowcount != 1 and row.status != "running":
                ended = (
                    f", finished {row.finished_at:%Y-%m-%d %H:%M:%S} UTC" if row.finished_at else ""
                )
                raise RunNotRunning(
                    f"run {run_id} ({row.process_id}) is {row.status}{ended}: only a running "
                    "run can be cancelled (`robo runs --status running` lists them)"
                )
            return _request_of(row, already=changed.rowcount != 1)

    def requested(self, run_id: int) -> CancelRequest | None:
        """The run's cancel request, if any: one primary-key read (runs poll it)."""
        with self.db.translate_errors(), self.db.engine.connect() as connection:
            found = connection.execute(
                select(
                    RunRow.id, RunRow.process_id, RunRow.cancel_mode, RunRow.cancel_requested_by,
                    RunRow.cancel_requested_at, RunRow.worker, RunRow.host,
                ).where(RunRow.id == run_id, RunRow.cancel_mode.is_not(None))
            ).first()  # fmt: skip
        if found is None:
            return None
        return CancelRequest(
            run_id=found.id, process_id=found.process_id, mode=_mode(found.cancel_mode),
            requested_by=found.cancel_requested_by,
            requested_at=_iso(found.cancel_requested_at), worker=found.worker, host=found.host,
        )  # fmt: skip


def _mode(value: str | None) -> CancelMode:
    return value if value in CANCEL_MODES else "after_item"


def _iso(value: dt.datetime | None) -> str:
    return value.isoformat(timespec="seconds") if value else ""


def _request_of(row: RunRow, *, already: bool) -> CancelRequest:
    return CancelRequest(
        run_id=row.id, process_id=row.process_id, mode=_mode(row.cancel_mode),
        requested_by=row.cancel_requested_by, requested_at=_iso(row.cancel_requested_at),
        worker=row.worker, host=row.host, already=already,
    )  # fmt: skip
