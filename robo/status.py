"""`robo status`: the installation at a glance, read from the database alone.

Who leads the scheduler (and who stands by), the workers and their slots, the
runs in progress with their item, progress and ETA, the next fires, queue
depths, the worklist and the open alerts. Every figure comes from rows the
ledger, the queues and the scheduler already write; nothing is estimated but
the ETA, which is the mean duration of the items recorded so far times the
items left.

The item in progress is the run's queue item in ``in_progress`` (a run takes
its items from its queue, ``robo.queues``): its reference, and how long ago it
was taken. Between two items there is none, and the run is shown "after item N
of M".
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass, field

from sqlalchemy import func, select

from robo.alerts.store import AlertStore
from robo.clock import utcnow
from robo.queues import NEEDS_HUMAN, WAITING, Queues
from robo.registry import Registry
from robo.scheduling.lock import LeaderLock, standbys
from robo.scheduling.plan import next_run
from robo.scheduling.workers import list_workers
from robo.storage.database import Database
from robo.storage.models import ItemRow, QueueItemRow, RunRow


@dataclass(frozen=True)
class SchedulerView:
    """The scheduler lease: who holds it, whether it is renewed, who stands by."""

    leader: str | None  # the owner id, HOST:PID:TAG (None: no scheduler ever took it)
    leader_host: str | None
    leading_since: str | None
    lease_expires_at: str | None
    live: bool  # the lease has not expired: a scheduler is firing triggers
    standbys: list[str] = field(default_factory=list)

    @property
    def text(self) -> str:
        if self.leader is None:
            return "no scheduler running"
        if not self.live:
            return (
                f"no scheduler running (the lease of {self.leader} expired "
                f"{_utc(self.lease_expires_at)})"
            )
        return f"{self.leader} since {_utc(self.leading_since)}"


def _utc(iso: str | None) -> str:
    """``2026-03-02T10:15:04+00:00`` -> ``2026-03-02 10:15:04 UTC``."""
    return f"{iso[:19].replace('T', ' ')} UTC" if iso else "?"


@dataclass(frozen=True)
class WorkerView:
    id: str
    host: str
    slots: int
    busy: int  # runs in progress on it
    alive: bool
    heartbeat_at: str
    runs: list[int]


@dataclass(frozen=True)
class CurrentItem:
    """The queue item a run holds now."""

    reference: str
    queue_item_id: int
    since: str  # when the run took it (UTC)
    seconds: float  # how long ago


@dataclass(frozen=True)
class RunProgress:
    id: int
    process_id: str
    version: str
    trigger: str
    purpose: str
    started_at: str
    host: str
    worker: str
    heartbeat_at: str | None
    done: int  # items recorded by this run
    total: int | None  # the items it set out to take (None: not known yet)
    succeeded: int
    business_exceptions: int
    application_exceptions: int
    skipped: int
    current: CurrentItem | None
    mean_item_seconds: float | None
    eta_seconds: float | None
    eta_at: str | None

    @property
    def position(self) -> str:
        """ "item 3 of 4" while one is in progress, else "after item 2 of 4"."""
        total = "?" if self.total is None else str(self.total)
        if self.current is not None:
            return f"item {self.done + 1} of {total}"
        return f"after item {self.done} of {total}" if self.done else f"0 of {total} items"


@dataclass(frozen=True)
class NextFire:
    process_id: str
    at_utc: str
    at_local: str
    timezone: str


@dataclass(frozen=True)
class QueueDepth:
    queue: str
    waiting: int  # new, and deferred
    in_progress: int
    needs_human: int  # exceptions and uncertain items (the worklist, without overdue ones)
    counts: dict[str, int]


@dataclass(frozen=True)
class Status:
    at: str
    scheduler: SchedulerView
    workers: list[WorkerView]
    runs: list[RunProgress]
    next_fires: list[NextFire]
    queues: list[QueueDepth]
    worklist: int  # what `robo worklist` shows: exceptions, uncertain, overdue
    alerts_open: int | None  # None: alerts are not configured (no rules file)


def eta_seconds(
    done: int, total: int | None, mean_item_seconds: float | None, current_seconds: float = 0.0
) -> float | None:
    """Seconds until the run's last item is done: the items left times the mean item time
    so far, less what the item in progress has already taken (never below zero). None
    while nothing is recorded or the total is unknown."""
    if total is None or mean_item_seconds is None or done <= 0:
        return None
    left = max(total - done, 0)
    if left == 0:
        return 0.0
    return max(left * mean_item_seconds - max(current_seconds, 0.0), 0.0)


def host_of(owner: str) -> str:
    """The host of a scheduler owner id (``HOST:PID:TAG``)."""
    parts = owner.rsplit(":", 2)
    return parts[0] if len(parts) == 3 else owner


def _iso(value: dt.datetime | None) -> str | None:
    return value.isoformat(timespec="seconds") if value else None


def scheduler_view(db: Database, now: dt.datetime) -> SchedulerView:
    holder = LeaderLock(db, owner="").holder()
    waiting = [s.owner for s in standbys(db, now)]
    if holder is None:
        return SchedulerView(None, None, None, None, False, waiting)
    return SchedulerView(
        leader=holder.owner,
        leader_host=host_of(holder.owner),
        leading_since=_iso(holder.acquired_at),
        lease_expires_at=_iso(holder.expires_at),
        live=holder.expires_at >= now,
        standbys=waiting,
    )


def workers_view(db: Database, heartbeat_seconds: float) -> list[WorkerView]:
    return [
        WorkerView(
            w.id, w.host, w.slots, len(w.current_runs), w.alive, w.heartbeat_at, w.current_runs
        )
        for w in list_workers(db, heartbeat_seconds)
    ]


def running_runs(db: Database, now: dt.datetime) -> list[RunProgress]:
    """Every run in progress, oldest first, with its recorded items and its current one."""
    with db.session() as session:
        runs = session.scalars(
            select(RunRow).where(RunRow.status == "running").order_by(RunRow.started_at, RunRow.id)
        ).all()
        ids = [r.id for r in runs]
        counts: dict[int, dict[str, int]] = {}
        seconds: dict[int, tuple[float, int]] = {}
        current: dict[int, QueueItemRow] = {}
        if ids:
            for run_id, status, count, total_s, timed in session.execute(
                select(
                    ItemRow.run_id,
                    ItemRow.status,
                    func.count(),
                    func.coalesce(func.sum(ItemRow.duration_seconds), 0.0),
                    func.count(ItemRow.duration_seconds),
                )
                .where(ItemRow.run_id.in_(ids))
                .group_by(ItemRow.run_id, ItemRow.status)
            ):
                counts.setdefault(run_id, {})[status] = count
                before = seconds.get(run_id, (0.0, 0))
                seconds[run_id] = (before[0] + float(total_s or 0.0), before[1] + timed)
            for item in session.scalars(
                select(QueueItemRow)
                .where(QueueItemRow.status == "in_progress", QueueItemRow.run_id.in_(ids))
                .order_by(QueueItemRow.updated_at)
            ):
                assert item.run_id is not None
                current[item.run_id] = item  # the latest taken, should a run hold two
        progress = []
        for run in runs:
            by_status = counts.get(run.id, {})
            done = sum(by_status.values())
            total_s, timed = seconds.get(run.id, (0.0, 0))
            mean = total_s / timed if timed else None
            held = current.get(run.id)
            now_item = None
            if held is not None:
                elapsed = max((now - held.updated_at).total_seconds(), 0.0)
                now_item = CurrentItem(held.reference, held.id, _iso(held.updated_at) or "",
                                       round(elapsed, 1))  # fmt: skip
            eta = eta_seconds(done, run.items_total, mean, now_item.seconds if now_item else 0.0)
            progress.append(
                RunProgress(
                    id=run.id, process_id=run.process_id, version=run.version,
                    trigger=run.trigger, purpose=run.purpose, started_at=_iso(run.started_at) or "",
                    host=run.host, worker=run.worker, heartbeat_at=_iso(run.heartbeat_at),
                    done=done, total=run.items_total, succeeded=by_status.get("success", 0),
                    business_exceptions=by_status.get("business_exception", 0),
                    application_exceptions=by_status.get("application_exception", 0),
                    skipped=by_status.get("skipped", 0), current=now_item,
                    mean_item_seconds=None if mean is None else round(mean, 3),
                    eta_seconds=None if eta is None else round(eta, 1),
                    eta_at=None if eta is None else _iso(now + dt.timedelta(seconds=eta)),
                )
            )  # fmt: skip
        return progress


def next_fires(registry: Registry, now: dt.datetime, limit: int | None = None) -> list[NextFire]:
    """The next fire that will really run of each process that fires (holidays, windows
    and pauses applied, as ``robo schedule`` shows them), soonest first. Queue triggers
    have no fire times (their queue's depth is what starts them)."""
    fires = []
    for scheduled in registry.schedules():
        if not scheduled.fires or scheduled.schedule is None:
            continue
        fire, _skipped = next_run(scheduled.schedule, now)
        if fire is not None:
            fires.append((fire.at_utc, scheduled.process_id, fire.at_local, scheduled.schedule))
    fires.sort(key=lambda f: (f[0], f[1]))
    return [
        NextFire(pid, _iso(at) or "", _iso(local) or "", schedule.timezone)
        for at, pid, local, schedule in fires[:limit]
    ]


def queue_depths(queues: Queues) -> list[QueueDepth]:
    return [
        QueueDepth(
            queue=q.name,
            waiting=sum(q.counts.get(s, 0) for s in WAITING),
            in_progress=q.counts.get("in_progress", 0),
            needs_human=sum(q.counts.get(s, 0) for s in NEEDS_HUMAN),
            counts=dict(sorted(q.counts.items())),
        )
        for q in queues.summaries()
    ]


def open_alerts(db: Database, configured: bool) -> int | None:
    """Open alerts (robo.alerts); None where no rules are configured."""
    return len(AlertStore(db).open_keys()) if configured else None


def status(
    db: Database,
    registry: Registry,
    queues: Queues,
    *,
    heartbeat_seconds: float,
    alerts_configured: bool,
    fires: int | None = 10,
    now: dt.datetime | None = None,
) -> Status:
    """The whole picture, from a handful of queries."""
    now = now or utcnow()
    return Status(
        at=_iso(now) or "",
        scheduler=scheduler_view(db, now),
        workers=workers_view(db, heartbeat_seconds),
        runs=running_runs(db, now),
        next_fires=next_fires(registry, now, fires),
        queues=queue_depths(queues),
        worklist=sum(queues.worklist_sizes().values()),
        alerts_open=open_alerts(db, alerts_configured),
    )


def busy_slots(workers: Iterable[WorkerView]) -> tuple[int, int]:
    """(busy, total) slots of the live workers."""
    alive = [w for w in workers if w.alive]
    return sum(min(w.busy, w.slots) for w in alive), sum(w.slots for w in alive)
