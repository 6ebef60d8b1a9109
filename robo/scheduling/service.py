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
import socket
import threading
import time
from collections.abc import Callable
from typing import Any

from robo.clock import utcnow
from robo.crontab import build_trigger
from robo.definition import ScheduleEntry
from robo.errors import RoboError, SchedulerBusy, SchedulerLockLost
from robo.ledger import Ledger, RunSummary, process_alive
from robo.logging import get_logger
from robo.queues import Queues
from robo.regional import EffectiveSchedule
from robo.registry import Registry
from robo.scheduling.decisions import DecisionLog
from robo.scheduling.dispatch import Dispatcher, DispatchExecutor, fire_uid
from robo.scheduling.executors.base import Executor, RunJob
from robo.scheduling.lock import LeaderLock, new_owner_id
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
RUNNING_SNAPSHOT_SECONDS = 1.0


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
    ) -> None:
        self.settings, self.db, self.registry, self.ledger = settings, db, registry, ledger
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
        self._schedules: dict[str, EffectiveSchedule | None] = {}
        self.dispatcher = Dispatcher(
            self.decisions,
            self.executor,
            schedules=lambda pid: self._schedules.get(pid),
            running=self._running_run,
            clock=clock,
        )
        self.queue_triggers = QueueTriggers(
            self.decisions, executor, queues, ledger, queue_check_seconds, clock
        )
        self._running: dict[str, int] = {}
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
            if self.lock.try_acquire():
                self.log.info("scheduler.leader")
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
            stop.wait(poll)
        return False

    # --- APScheduler --------------------------------------------------------------------------

    def start(self) -> None:
        from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
        from apscheduler.schedulers.background import BackgroundScheduler

        factory = self._scheduler_factory or BackgroundScheduler
        self.aps = factory(
            jobstores={"default": SQLAlchemyJobStore(engine=self.db.engine, tablename=JOB_TABLE)},
            executors={"default": DispatchExecutor(self.dispatcher)},
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

    def sync_jobs(self, force: bool = False) -> tuple[int, int]:
        """Make the job store match the registry; returns (added, removed).

        Existing jobs are left alone so their next run time, and so any fire
        missed while no scheduler ran, survives a restart. Only schedules whose
        version or overlay changed are parsed again.
        """
        generation = self.registry.generation()
        if not force and generation == self._generation:
            return 0, 0
        self._generation = generation
        desired: dict[str, tuple[str, str, ScheduleEntry, str]] = {}
        schedules: dict[str, EffectiveSchedule | None] = {}
        watched: list[EffectiveSchedule] = []
        for row in self.registry.schedules():
            schedule = row.schedule if row.fires else None
            schedules[row.process_id] = schedule
            if schedule is None:
                continue
            if any(entry.is_queue for entry in schedule.schedule.triggers):
                watched.append(schedule)
            for index, entry in enumerate(schedule.schedule.triggers):
                if entry.is_queue:  # checked by the service loop, not an APScheduler job
                    continue
                key = entry.key(index, schedule.timezone)
                desired[f"{row.process_id}|{key}"] = (row.process_id, key, entry, schedule.timezone)
        self._schedules = schedules
        self.queue_triggers.set_watches(self._queue_watches(watched))
        existing = self._stored_job_ids()
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
            self.log.info("scheduler.synced", jobs=len(desired), added=added, removed=removed)
        return added, removed

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
        from sqlalchemy import text

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
        for event in self.decisions.fired_since(now - dt.timedelta(days=1)):
            schedule = self._schedules.get(event.process_id)
            if schedule is None or event.trigger_key.startswith("recovery-of-"):
                continue
            if is_queue_trigger_key(event.trigger_key):
                continue  # a queue trigger decides again on its next check
            if now - event.scheduled_for > dt.timedelta(minutes=schedule.schedule.grace_minutes):
                continue
            uid = fire_uid(event.process_id, event.trigger_key, event.scheduled_for)
            if self.ledger.find_run(uid) is None:
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
