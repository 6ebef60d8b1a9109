"""Deciding what a due trigger does: fire, or skip with a reason that is recorded.

APScheduler hands over every due time of a job (coalescing is off, so runs
missed while no scheduler ran are all visible here); the missed-run policy,
the calendar, the run window and the overlap rule decide each one.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from apscheduler.executors.base import BaseExecutor

from robo.clock import utcnow
from robo.logging import get_logger
from robo.regional import EffectiveSchedule
from robo.scheduling.decisions import Decision, DecisionLog
from robo.scheduling.executors.base import Executor, RunJob

# A fire is "on time" within this lateness even under the 'skip' policy: the
# scheduler's own wake-up is never exact to the millisecond.
ON_TIME = dt.timedelta(seconds=60)
# How far apart two fires of one cron trigger at the same local wall time can be:
# the autumn DST change repeats one hour.
DST_REPEAT = dt.timedelta(hours=3)


@dataclass(frozen=True)
class Outcome:
    scheduled_for: dt.datetime
    decision: str
    reason: str


@dataclass(frozen=True)
class _Pending:
    """A decision taken and not yet recorded; ``job`` is the run it starts once recorded."""

    process_id: str
    trigger_key: str
    at: dt.datetime
    decision: Decision
    reason: str
    job: RunJob | None = None


class Dispatcher:
    def __init__(
        self,
        decisions: DecisionLog,
        executor: Executor,
        schedules: Callable[[str], EffectiveSchedule | None],
        running: Callable[[str], int | None],
        clock: Callable[[], dt.datetime] = utcnow,
    ) -> None:
        self.decisions = decisions
        self.executor = executor
        self.schedules = schedules  # process id -> effective schedule, None if not schedulable
        self.running = running  # process id -> id of a run in progress, or None
        self.clock = clock
        self.log = get_logger(component="dispatcher")
        self._pending: list[_Pending] = []  # decided, to record and hand over in one go
        self._firing: set[str] = set()  # processes with a pending fire (overlap within a batch)

    def due(self, process_id: str, trigger_key: str, run_times: list[dt.datetime]) -> list[Outcome]:
        """Decide, record and hand over the due times of one trigger."""
        self.decide(process_id, trigger_key, run_times)
        return self.flush()

    def decide(self, process_id: str, trigger_key: str, run_times: list[dt.datetime]) -> None:
        """Decide the due times of one trigger; recorded and handed over by ``flush``. A pass
        over many due jobs (a burst) decides them all, then records them in one transaction."""
        now = self.clock()
        schedule = self.schedules(process_id)
        pending = self._pending
        if schedule is None:
            for at in run_times:
                pending.append(_Pending(process_id, trigger_key, at, "skipped",
                                        "process is disabled, paused or has no schedule"))  # fmt: skip
            return
        fired = False
        for at, verdict in self._apply_missed_policy(schedule, sorted(run_times), now):
            if verdict is not None:
                pending.append(_Pending(process_id, trigger_key, at, "missed", verdict))
                continue
            reason = schedule.skip_reason(at) or self._repeated_wall_time(schedule, trigger_key, at)
            if reason is None and schedule.schedule.overlap == "skip" and not fired:
                reason = self._overlap(process_id)
            if reason is not None:
                pending.append(_Pending(process_id, trigger_key, at, "skipped", reason))
                continue
            job = RunJob(
                process_id, "schedule", at.isoformat(), uid=fire_uid(process_id, trigger_key, at)
            )
            pending.append(_Pending(process_id, trigger_key, at, "fired", "", job))
            fired = True
            self._firing.add(process_id)

    def flush(self) -> list[Outcome]:
        """Record every pending decision (one transaction), then hand the fired runs over,
        one batch per trigger as decided. A fire already decided by another scheduler is
        a ``duplicate`` and starts nothing."""
        pending, self._pending = self._pending, []
        self._firing.clear()
        if not pending:
            return []
        recorded = self.decisions.record_many(
            [(p.process_id, p.trigger_key, p.at, p.decision, p.reason) for p in pending]
        )
        outcomes: list[Outcome] = []
        batches: dict[tuple[str, str], list[RunJob]] = {}
        for item, new in zip(pending, recorded, strict=True):
            if not new:
                outcomes.append(Outcome(item.at, "duplicate", "already decided by a scheduler"))
                continue
            self.log.info(f"schedule.{item.decision}", process=item.process_id,
                          scheduled_for=item.at.isoformat(), reason=item.reason)  # fmt: skip
            outcomes.append(Outcome(item.at, item.decision, item.reason))
            if item.job is not None:
                batches.setdefault((item.process_id, item.trigger_key), []).append(item.job)
        for (process_id, _), jobs in batches.items():
            try:
                self.executor.submit(jobs)
            except Exception:  # the others still go; a lost fire is resubmitted at start-up
                self.log.exception("schedule.dispatch_failed", process=process_id)
        return outcomes

    def _apply_missed_policy(
        self, schedule: EffectiveSchedule, run_times: list[dt.datetime], now: dt.datetime
    ) -> list[tuple[dt.datetime, str | None]]:
        """Each due time with None (go on) or the reason it was missed."""
        policy = schedule.schedule.missed
        grace = dt.timedelta(minutes=schedule.schedule.grace_minutes)
        limit = ON_TIME if policy == "skip" else max(grace, ON_TIME)
        within = [t for t in run_times if now - t <= limit]
        keep = within[-1:] if policy == "run_once" else within
        verdicts: list[tuple[dt.datetime, str | None]] = []
        for at in run_times:
            late = now - at
            if at in keep:
                verdicts.append((at, None))
            elif at in within:
                verdicts.append(
                    (
                        at,
                        f"missed while no scheduler ran; coalesced into the run due {keep[-1].astimezone(dt.UTC):%Y-%m-%d %H:%M} UTC (missed: run_once)",
                    )
                )
            elif policy == "skip":
                verdicts.append(
                    (at, f"missed while no scheduler ran ({_minutes(late)} late; missed: skip)")
                )
            else:
                verdicts.append(
                    (
                        at,
                        f"missed while no scheduler ran ({_minutes(late)} late, beyond grace of {schedule.schedule.grace_minutes:g} min)",
                    )
                )
        return verdicts

    def _repeated_wall_time(
        self, schedule: EffectiveSchedule, trigger_key: str, at: dt.datetime
    ) -> str | None:
        """A cron time that the autumn DST change brings round twice runs once."""
        entry_index = int(trigger_key[1:].split("-")[0]) if trigger_key.startswith("t") else -1
        entries = schedule.schedule.triggers
        if not (0 <= entry_index < len(entries)) or not entries[entry_index].is_cron:
            return None
        local = schedule.local(at)
        wall = local.replace(tzinfo=None)
        if (
            wall.replace(tzinfo=schedule.zone, fold=0).utcoffset()
            == wall.replace(tzinfo=schedule.zone, fold=1).utcoffset()
        ):
            return None  # an unambiguous local time (all but one hour a year): nothing to look up
        moment = at.astimezone(dt.UTC)  # local arithmetic would drop `fold`: go back an hour
        for other in self.decisions.decided_between(
            schedule.process_id, trigger_key, moment - DST_REPEAT, moment - dt.timedelta(seconds=1)
        ):
            if schedule.local(other).replace(tzinfo=None) == local.replace(tzinfo=None):
                return (
                    f"{local:%H:%M} local time comes twice on the DST change; it already ran once"
                )
        return None

    def _overlap(self, process_id: str) -> str | None:
        if process_id in self._firing or self.executor.busy(process_id):
            return "overlap: a run of this process is still queued or running"
        run_id = self.running(process_id)
        if run_id is not None:
            return f"overlap: run {run_id} of this process is still running"
        return None


def fire_uid(process_id: str, trigger_key: str, at: dt.datetime) -> str:
    """The run uid of one fire: the same fire can never start two runs."""
    key = f"{process_id}|{trigger_key}|{at.astimezone(dt.UTC).isoformat()}"
    return hashlib.sha256(key.encode()).hexdigest()[:32]


def _minutes(delta: dt.timedelta) -> str:
    minutes = delta.total_seconds() / 60
    return f"{minutes:.0f} min" if minutes < 120 else f"{minutes / 60:.1f} h"


class DispatchExecutor(BaseExecutor):  # type: ignore[misc]  # APScheduler 3 is untyped
    """An APScheduler executor that hands due times to the Dispatcher.

    It receives every due time of a job at once (``run_times``), which
    APScheduler's own executors would only check against a grace period.
    Dispatching is quick (rows and a queue), so it happens right here. With
    ``batched`` (robo's job store, ``robo.scheduling.jobstore``) it only decides:
    the job store records a whole pass of due jobs when the pass ends.
    """

    def __init__(self, dispatcher: Dispatcher, batched: bool = False) -> None:
        super().__init__()
        self.dispatcher = dispatcher
        self.batched = batched

    def submit_job(self, job: Any, run_times: list[dt.datetime]) -> None:
        self._do_submit_job(job, run_times)

    def _do_submit_job(self, job: Any, run_times: list[dt.datetime]) -> None:
        process_id, trigger_key = job.args
        try:
            if self.batched:
                self.dispatcher.decide(process_id, trigger_key, run_times)
            else:
                self.dispatcher.due(process_id, trigger_key, run_times)
        except Exception:
            self.dispatcher.log.exception("schedule.dispatch_failed", process=process_id)


def fire_now(process_id: str, trigger_key: str) -> None:
    """The job's callable as stored by APScheduler; robo's executor never calls it.

    It exists so that the persisted job refers to something importable.
    """
    raise RuntimeError(
        f"job {process_id}/{trigger_key} reached a plain APScheduler executor; "
        "only `robo scheduler start` may run robo's job store"
    )
