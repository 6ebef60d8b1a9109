"""`robo scheduler start`: the long-running scheduler service.

It waits for the leader lease, then runs APScheduler 3 with a persistent job
store in robo's own database, keeps its jobs in step with the registry
(deploy, disable, pause, rollback, overlays take effect without a restart),
abandons runs whose runner died and retries what they left undone, checks
queue triggers every few seconds (``robo.scheduling.queue_trigger``), and shuts
down cleanly.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import socket
import threading
import time
from collections.abc import Callable
from typing import Any

from sqlalchemy import Column, Integer, MetaData, String, Table, Text, func, select, text, update
from sqlalchemy.exc import DBAPIError

from robo.alerts import AlertMonitor
from robo.clock import utcnow
from robo.crontab import build_trigger
from robo.definition import ScheduleEntry
from robo.errors import RoboError, SchedulerBusy, SchedulerLockLost
from robo.ledger import Ledger, RunSummary, process_alive
from robo.logging import get_logger
from robo.queues import Queues
from robo.regional import EffectiveSchedule
from robo.regions import holiday_name
from robo.registry import Registry
from robo.scheduling.decisions import DecisionLog
from robo.scheduling.dispatch import Dispatcher, DispatchExecutor, fire_uid
from robo.scheduling.executors.base import Executor, RunJob
from robo.scheduling.jobstore import BatchingJobStore
from robo.scheduling.lock import LeaderLock, LockHolder, new_owner_id
from robo.scheduling.queue_trigger import (
    QueueCheck,
    QueueTriggers,
    QueueWatch,
    is_queue_trigger_key,
    watches_of,
)
from robo.settings import Settings
from robo.storage.database import Database

JOB_FUNC = "robo.scheduling.dispatch:fire_now"
JOB_TABLE = "robo_apscheduler_jobs"
# What the job store was last synced with (beside it, like it not a migrated table): a
# restart on an unchanged registry reads no schedule, a changed one only the changed ones.
SYNC_TABLE = "robo_apscheduler_sync"
SYNC_FORMAT = 1  # bump when job ids or triggers are built differently: forces a full sync
INCREMENTAL_LIMIT = 500  # more processes changed than this: one full sync instead
RUNNING_SNAPSHOT_SECONDS = 1.0

_SYNC_MARKER = Table(
    SYNC_TABLE,
    MetaData(),
    Column("name", String(64), primary_key=True),
    Column("last_event", Integer, nullable=False),
    Column("fingerprint", Text, nullable=False),
    Column("watched", Text, nullable=False),  # JSON: the processes with queue triggers
)
Marker = tuple[int, str]  # (last registry event, everything else a sync depends on)


def recovery_uid(uid: str) -> str:
    return hashlib.sha256(f"recovery:{uid}".encode()).hexdigest()[:32]


class SchedulerService:
    def __init__(
        self,
        settings: Settings,
        db: Database,
        registry: Registry,
        ledger: Ledger,
        queues: Queues,
        executor: Executor,
        *,
        scheduler_factory: Callable[..., Any] | None = None,
        owner: str | None = None,
        lease_seconds: float | None = None,
        sync_seconds: float = 5,
        recovery_seconds: float = 15,
        queue_check_seconds: float = 5,
        clock: Callable[[], dt.datetime] = utcnow,
        alerts: AlertMonitor | None = None,
    ) -> None:
        self.settings, self.db, self.registry, self.ledger = settings, db, registry, ledger
        self.alerts = alerts  # missed fires, queues, a dead leader (as standby): robo.alerts
        self.queues = queues
        self.owner = owner or new_owner_id()
        self.lease_seconds = lease_seconds or settings.scheduler_lease_seconds
        self.lock = LeaderLock(db, self.owner, self.lease_seconds)
        self.sync_seconds = sync_seconds
        self.recovery_seconds = recovery_seconds
        self.queue_check_seconds = queue_check_seconds
        self.clock = clock
        self.executor = executor
        self.decisions = DecisionLog(db, self.owner)
        # Each process's schedule as last synced; after a warm start only the ones looked up
        # (`_schedule_of`) until the service loop reads them all (`_complete`).
        self._schedules: dict[str, EffectiveSchedule | None] = {}
        self._complete = False
        self._watched: dict[str, EffectiveSchedule] = {}  # processes with queue triggers
        self._watch_known = False  # _watched holds them all (after a full sync, or as recorded)
        self._synced: Marker | None = None  # what the job store reflects
        self._sync_lock = threading.Lock()  # one sync at a time
        # Guards `_schedules` for look-ups from APScheduler's thread, which may hold its job
        # store lock (never taken while calling APScheduler or the database).
        self._cache_lock = threading.Lock()
        self._cache_seq = 0
        self.dispatcher = Dispatcher(
            self.decisions,
            self.executor,
            schedules=self._schedule_of,
            running=self._running_run,
            clock=clock,
        )
        self.queue_triggers = QueueTriggers(
            self.decisions, executor, queues, ledger, queue_check_seconds, clock
        )
        self._running: dict[str, int] = {}
        self._alerts_checked_at: dt.datetime | None = None
        self._recoveries_submitted: set[int] = set()
        self._running_at = dt.datetime.min.replace(tzinfo=dt.UTC)
        self._scheduler_factory = scheduler_factory
        self.aps: Any = None
        self._generation: Any = None
        self.log = get_logger(component="scheduler", owner=self.owner, region=settings.region)

    def _running_run(self, process_id: str) -> int | None:
        """Runs in progress, read at most once a second: a burst of fires costs one query.

        Runs this scheduler started are known exactly (the executor); a run
        started elsewhere in the last second may be missed, as it could be
        started just after any check anyway.
        """
        now = self.clock()
        if (now - self._running_at).total_seconds() > RUNNING_SNAPSHOT_SECONDS:
            self._running = self.ledger.running_runs()
            self._running_at = now
        return self._running.get(process_id)

    # --- leadership ---------------------------------------------------------------------

    def wait_for_lease(self, stop: threading.Event, wait: bool, poll: float = 2.0) -> bool:
        """Take the lease; stand by until it is free if ``wait``. False if stopped first."""
        announced = False
        while not stop.is_set():
            before = self.lock.holder() if self.alerts is not None else None
            if self.lock.try_acquire():
                self.log.info("scheduler.leader")
                if announced:
                    self.lock.stop_standing_by()
                self._report_takeover(before)
                return True
            holder = self.lock.holder()
            if not wait:
                who = (
                    f"{holder.owner} (lease until {holder.expires_at:%H:%M:%S} UTC)"
                    if holder
                    else "another scheduler"
                )
                raise SchedulerBusy(
                    f"{who} is the active scheduler for {self.db.safe_url}; only one may fire "
                    "triggers. Run with --standby to wait and take over when it stops."
                )
            if not announced:
                self.log.warning("scheduler.standby", leader=holder.owner if holder else None)
                announced = True
            self.lock.stand_by()  # seen by `robo status` (robo.status)
            stop.wait(poll)
        if announced:
            self.lock.stop_standing_by()
        return False

    def _report_takeover(self, before: LockHolder | None) -> None:
        """The lease was another scheduler's, which stopped renewing it: it died, or lost
        the database. A dead scheduler cannot report its own death; its successor does."""
        if self.alerts is None or before is None or before.owner == self.owner:
            return
        renewed = before.renewed_at or before.expires_at - dt.timedelta(seconds=self.lease_seconds)
        self.log.warning("scheduler.took_over", previous=before.owner,
                         renewed_at=renewed.isoformat())  # fmt: skip
        self.alerts.leader_taken_over(before.owner, renewed, self.owner)

    def check_alerts(self) -> None:
        """Time-based alert rules, and the run rules of runs ended since the last check
        (abandoned runs have no runner to evaluate them). Never raises."""
        if self.alerts is None:
            return
        now = self.clock()
        since = self._alerts_checked_at or now - dt.timedelta(hours=1)
        self.alerts.check(runs_since=since - dt.timedelta(seconds=5))
        self._alerts_checked_at = now

    # --- APScheduler --------------------------------------------------------------------------

    def start(self) -> None:
        from apscheduler.schedulers.background import BackgroundScheduler

        factory = self._scheduler_factory or BackgroundScheduler
        self.aps = factory(
            jobstores={
                "default": BatchingJobStore(
                    self.dispatcher.flush, engine=self.db.engine, tablename=JOB_TABLE
                )
            },
            executors={"default": DispatchExecutor(self.dispatcher, batched=True)},
            job_defaults={"coalesce": False, "max_instances": 1, "misfire_grace_time": None},
            timezone=dt.UTC,
        )
        # Started paused: only a started scheduler sees the jobs already in its store, which
        # sync_jobs must leave alone (re-adding one resets its next run time, losing the
        # fires missed while no scheduler ran). Synced before any job is processed, so
        # missed fires are judged with current schedules.
        self.aps.start(paused=True)
        self.sync_jobs(force=True)
        self.recover()
        self.resubmit_lost_fires()
        self.aps.resume()
        # The first holiday look-up imports and builds the calendar (~0.2 s): done now, aside,
        # rather than in front of the first fires.
        threading.Thread(target=self._warm_calendars, name="robo-calendars", daemon=True).start()

    def sync_jobs(self, force: bool = False) -> tuple[int, int]:
        """Make the job store match the registry; returns (added, removed).

        Existing jobs are left alone so their next run time, and so any fire
        missed while no scheduler ran, survives a restart. Only the processes
        with a registry event since the last sync are read again (all of them
        when an overlay or the region's defaults changed). ``force`` (start-up):
        compare with what the job store was last synced with, as recorded beside
        it, instead of this service's memory; an unchanged registry is not read.
        """
        with self._sync_lock:
            generation = self.registry.generation()
            defaults = self.registry.defaults
            target: Marker = (
                generation[0],
                f"{SYNC_FORMAT}|{defaults.timezone}|{defaults.calendar}|{generation[1]}",
            )
            watched: set[str] = set()  # queue-triggered processes as of the last sync
            if force:
                stored = self._read_marker()
                self._synced, watched = stored if stored else (None, set())
                self._watch_known = stored is not None
            synced = self._synced
            if synced == target:
                if not (force or self._complete):
                    scope: set[str] | None = None  # the first loop pass after a warm start
                elif watched:  # queue triggers are watched from the start, not by APScheduler
                    scope = watched
                else:
                    return 0, 0
            elif synced is not None and synced[1] == target[1]:
                changed = self.registry.changed_since(synced[0])
                scope = changed | watched if len(changed) <= INCREMENTAL_LIMIT else None
            else:
                scope = None
            added, removed = self._apply(scope)
            if synced != target or added or removed:
                self._write_marker(target)
            self._synced = target
            return added, removed

    def _apply(self, scope: set[str] | None) -> tuple[int, int]:
        """Sync the jobs of the processes in ``scope`` (None: every process)."""
        desired: dict[str, tuple[str, str, ScheduleEntry, str]] = {}
        schedules: dict[str, EffectiveSchedule | None] = dict.fromkeys(scope or ())
        with self._cache_lock:
            self._cache_seq += 1  # a look-up already reading must not cache what it read
        for row in self.registry.schedules(scope):
            schedule = row.schedule if row.fires else None
            schedules[row.process_id] = schedule
            if schedule is None:
                continue
            for index, entry in enumerate(schedule.schedule.triggers):
                if entry.is_queue:  # checked by the service loop, not an APScheduler job
                    continue
                key = entry.key(index, schedule.timezone)
                desired[f"{row.process_id}|{key}"] = (row.process_id, key, entry, schedule.timezone)
        existing = self._stored_job_ids()
        with self._cache_lock:
            self._cache_seq += 1
            if scope is None:
                self._schedules, self._complete, self._watched = schedules, True, {}
                self._watch_known = True
            else:
                existing = {job_id for job_id in existing if job_id.split("|", 1)[0] in scope}
                self._schedules.update(schedules)
        watches_before = set(self._watched)
        for pid, schedule in schedules.items():
            if schedule is not None and any(e.is_queue for e in schedule.schedule.triggers):
                self._watched[pid] = schedule
            else:
                self._watched.pop(pid, None)
        touched = (watches_before | set(self._watched)) & set(schedules)
        if self._watch_known and (scope is None or touched):
            self.queue_triggers.set_watches(self._queue_watches(list(self._watched.values())))
        removed = 0
        for job_id in existing - set(desired):
            self.aps.remove_job(job_id)
            removed += 1
        added = 0
        triggers: dict[tuple[str | None, float | None, str], Any] = {}
        for job_id in set(desired) - existing:
            process_id, key, entry, zone = desired[job_id]
            spec = (entry.cron, entry.every_minutes, zone)
            if spec not in triggers:  # triggers are stateless: processes sharing one share it
                triggers[spec] = build_trigger(entry.cron, entry.every_minutes, zone)
            self.aps.add_job(JOB_FUNC, trigger=triggers[spec], id=job_id,
                             name=f"{process_id} ({entry.describe()})", args=[process_id, key],
                             replace_existing=True)  # fmt: skip
            added += 1
        if added or removed:
            self.log.info("scheduler.synced", processes=len(schedules), scope="all" if scope is None
                          else "changed", added=added, removed=removed)  # fmt: skip
        return added, removed

    def _schedule_of(self, process_id: str) -> EffectiveSchedule | None:
        """The process's schedule as synced; read alone the first time after a warm start."""
        return self._schedules_of([process_id])[process_id]

    def _schedules_of(self, process_ids: list[str]) -> dict[str, EffectiveSchedule | None]:
        """Several at once: the ones not yet known are read in one query a 500."""
        with self._cache_lock:
            known = {p: self._schedules.get(p) for p in process_ids
                     if self._complete or p in self._schedules}  # fmt: skip
            seq = self._cache_seq
        missing = sorted(set(process_ids) - set(known))
        read: dict[str, EffectiveSchedule | None] = dict.fromkeys(missing)
        for start in range(0, len(missing), 500):
            for row in self.registry.schedules(missing[start : start + 500]):
                read[row.process_id] = row.schedule if row.fires else None
        with self._cache_lock:
            if self._cache_seq == seq:  # no sync since: still what the registry says
                for process_id, schedule in read.items():
                    self._schedules.setdefault(process_id, schedule)
        return {**known, **read}

    def _read_marker(self) -> tuple[Marker, set[str]] | None:
        """What the job store was last synced with; None (full sync) if unknown, or if the
        job store no longer holds as many jobs as it did then (restored, emptied...)."""
        query = select(_SYNC_MARKER).where(_SYNC_MARKER.c.name == "default")
        try:
            with self.db.engine.connect() as connection:
                row = connection.execute(query).first()
                if row is None:
                    return None
                jobs = connection.execute(text(f"SELECT count(*) FROM {JOB_TABLE}")).scalar()
        except DBAPIError:  # no such table yet: the first start on this database
            return None
        fingerprint, _, count = str(row.fingerprint).rpartition("|jobs=")
        if count != str(jobs):
            return None
        return (int(row.last_event), fingerprint), set(json.loads(row.watched))

    def _write_marker(self, marker: Marker) -> None:
        with self.db.engine.begin() as connection:
            _SYNC_MARKER.create(connection, checkfirst=True)
            jobs = connection.execute(select(func.count()).select_from(text(JOB_TABLE))).scalar()
            values = {
                "last_event": marker[0],
                "fingerprint": f"{marker[1]}|jobs={jobs}",
                "watched": json.dumps(sorted(self._watched)),
            }
            done = connection.execute(
                update(_SYNC_MARKER).where(_SYNC_MARKER.c.name == "default").values(**values)
            )
            if done.rowcount == 0:
                connection.execute(_SYNC_MARKER.insert().values(name="default", **values))

    def _warm_calendars(self) -> None:
        """Build this year's holidays of the calendars in use (a cache; never raises)."""
        try:
            today = self.clock().date()
            calendars = {self.registry.defaults.calendar}
            calendars |= {s.calendar for s in list(self._schedules.values()) if s is not None}
            for calendar in sorted(calendars):
                holiday_name(calendar, today)
        except Exception:  # only a cache: the first fire builds it otherwise
            self.log.debug("scheduler.calendars_not_warmed", exc_info=True)

    def _queue_watches(self, schedules: list[EffectiveSchedule]) -> list[QueueWatch]:
        """The queue triggers to check; only these processes' definitions are read in full
        (for the queue they take from), once per registry change."""
        watches: list[QueueWatch] = []
        for schedule in schedules:
            try:
                queue = self.registry.active(schedule.process_id).definition.queue_name
            except RoboError as exc:  # removed between the two reads: the next sync sees it
                self.log.warning("scheduler.queue_watch_failed", process=schedule.process_id,
                                 error=exc.message)  # fmt: skip
                continue
            watches += watches_of(schedule.process_id, queue, schedule)
        return watches

    def check_queues(self) -> list[QueueCheck]:
        """Check every queue trigger now (the service loop calls it every few seconds)."""
        try:
            return self.queue_triggers.check()
        except Exception:  # a database hiccup must not stop the scheduler; the next check retries
            self.log.exception("schedule.queue_check_failed")
            return []

    def _stored_job_ids(self) -> set[str]:
        """Job ids straight from the job store's table (no job is unpickled)."""
        with self.db.engine.connect() as connection:
            return set(connection.execute(text(f"SELECT id FROM {JOB_TABLE}")).scalars())

    # --- crash recovery -------------------------------------------------------------------------

    def recover(self) -> list[int]:
        """Abandon runs whose runner died, then submit every recovery still owed."""
        cutoff = self.clock() - dt.timedelta(seconds=self.settings.abandon_after_seconds)
        abandoned = self.ledger.abandon_stale(cutoff, socket.gethostname(), process_alive)
        for run in abandoned:
            self.log.warning("run.abandoned", run=run.id, process=run.process_id, error=run.error)
        self.submit_owed_recoveries()
        return [run.id for run in abandoned]

    def submit_owed_recoveries(self) -> list[int]:
        """Recoveries recorded when their run was abandoned (by this scheduler, an earlier one
        killed before it could submit, or a run that found the dead one) and not yet started.

        Each is submitted once per scheduler lifetime: a recovery a dead scheduler submitted
        died with its pool or still waits in the broker, and its fixed uid makes it run once
        either way. A submission that fails (broker away) stays due and is tried next time.
        """
        submitted = []
        for run in self.ledger.recoveries_owed():
            if run.id in self._recoveries_submitted:
                continue
            if not self._retry_remaining(run):
                self.ledger.set_recovery(run.id, "declined")
                continue
            job = RunJob(
                run.process_id, "recovery", None, resumes_run_id=run.id, uid=recovery_uid(run.uid)
            )
            try:
                self.executor.submit([job])
            except Exception as exc:  # the broker is away: the intent stays, retried next pass
                self.log.error("recovery.submit_failed", run=run.id, process=run.process_id,
                               error=f"{type(exc).__name__}: {exc}")  # fmt: skip
                continue
            self._recoveries_submitted.add(run.id)
            self.ledger.set_recovery(run.id, "submitted")
            self.decisions.record(
                run.process_id, f"recovery-of-{run.id}", self.clock(), "fired",
                f"retrying the items run {run.id} left undone (on_abandoned: retry_remaining)",
            )  # fmt: skip
            submitted.append(run.id)
        return submitted

    def resubmit_lost_fires(self) -> list[str]:
        """Fires recorded but never started (queued when the last scheduler died) run now,
        if still within their grace period. Their uid is the fire's, so a fire whose job
        is still waiting in a broker cannot run twice."""
        now = self.clock()
        resubmitted = []
        fires = [
            (event, fire_uid(event.process_id, event.trigger_key, event.scheduled_for))
            for event in self.decisions.fired_since(now - dt.timedelta(days=1))
            if not event.trigger_key.startswith("recovery-of-")
            and not is_queue_trigger_key(event.trigger_key)  # decided again on its next check
        ]
        started = self.ledger.existing_uids([uid for _, uid in fires])  # one query, not one a fire
        lost = [(event, uid) for event, uid in fires if uid not in started]
        schedules = self._schedules_of([event.process_id for event, _ in lost])
        for event, uid in lost:
            schedule = schedules[event.process_id]
            if schedule is None:
                continue
            if now - event.scheduled_for > dt.timedelta(minutes=schedule.schedule.grace_minutes):
                continue
            self.log.warning("schedule.resubmitted", process=event.process_id,
                             scheduled_for=event.scheduled_for.isoformat())  # fmt: skip
            self.executor.submit(
                [RunJob(event.process_id, "schedule", event.scheduled_for.isoformat(), uid=uid)]
            )
            resubmitted.append(uid)
        return resubmitted

    def _retry_remaining(self, run: RunSummary) -> bool:
        """Work handed to an executor (the ledger records the intent only for that) is
        resumed, unless the schedule says `on_abandoned: leave`; a paused schedule still
        finishes it."""
        try:
            version = self.registry.active(run.process_id)
        except RoboError:
            return False
        schedule = version.definition.schedule
        policy = schedule.on_abandoned if schedule else "retry_remaining"
        return version.enabled and policy == "retry_remaining"

    # --- the service loop ------------------------------------------------------------------------

    def run(self, stop: threading.Event, *, wait: bool = True, drain_seconds: float = 60) -> None:
        if not self.wait_for_lease(stop, wait):
            return
        self.start()
        renew_every = self.lease_seconds / 3
        next_renew = next_sync = next_recovery = next_queues = time.monotonic()
        # The first alert check waits one interval: start-up's missed fires are recorded first.
        next_alerts = next_renew + (self.alerts.check_seconds if self.alerts else 0)
        try:
            while not stop.is_set():
                now = time.monotonic()
                if now >= next_renew:
                    if not self.lock.renew():
                        raise SchedulerLockLost(
                            "this scheduler lost its lease (another scheduler took over, or the "
                            "database was unreachable for too long); it stopped firing"
                        )
                    next_renew = now + renew_every
                if now >= next_sync:
                    self.sync_jobs()
                    next_sync = now + self.sync_seconds
                if now >= next_recovery:
                    self.recover()
                    next_recovery = now + self.recovery_seconds
                if now >= next_queues:
                    self.check_queues()
                    next_queues = now + self.queue_check_seconds
                if self.alerts is not None and now >= next_alerts:
                    self.check_alerts()
                    next_alerts = now + self.alerts.check_seconds
                stop.wait(min(1.0, renew_every))
        finally:
            self.stop(drain_seconds)

    def stop(self, drain_seconds: float = 60) -> None:
        """No more fires; running bots get ``drain_seconds`` to finish, then are interrupted."""
        if self.aps is not None and self.aps.running:
            self.aps.shutdown(wait=False)
        shutdown = getattr(self.executor, "shutdown", None)
        if shutdown is not None:
            shutdown(drain_seconds)
        try:
            self.lock.release()
        except Exception:  # the database may be what failed; the lease then just expires
            self.log.warning("scheduler.release_failed")
        self.log.info("scheduler.stopped")
