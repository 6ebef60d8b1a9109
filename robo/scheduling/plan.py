"""What will happen next: upcoming fires of a schedule, with the reason for any skip.

Queue triggers have no fire times: they are shown with the items waiting now
and what a check now would do.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from robo.crontab import build_trigger
from robo.queues import Queues
from robo.regional import EffectiveSchedule
from robo.registry import Registry
from robo.scheduling.queue_trigger import describe, queue_trigger_key


@dataclass(frozen=True)
class UpcomingFire:
    at_utc: dt.datetime
    at_local: dt.datetime
    trigger_key: str
    trigger: str
    skip_reason: str | None


def upcoming(
    schedule: EffectiveSchedule, now: dt.datetime, count: int = 5, horizon_days: int = 400
) -> list[UpcomingFire]:
    """The next ``count`` fires after ``now``, skipped ones included (with their reason).

    A cron time repeated by the autumn DST change appears once, as it runs once.
    """
    fires: list[UpcomingFire] = []
    horizon = now + dt.timedelta(days=horizon_days)
    for index, entry in enumerate(schedule.schedule.triggers):
        if entry.is_queue:  # no fire times: see queue_plans
            continue
        trigger = build_trigger(entry.cron, entry.every_minutes, schedule.timezone)
        key = entry.key(index, schedule.timezone)
        previous: dt.datetime | None = None
        seen_wall: set[dt.datetime] = set()
        moment = now
        produced = 0
        while produced < count * 4:
            nxt = trigger.get_next_fire_time(previous, moment)
            if nxt is None or nxt > horizon:
                break
            # Step on in UTC: local arithmetic drops `fold`, and would go back an hour
            # (forever) from the second 02:30 of the autumn DST change.
            previous, moment = nxt, nxt.astimezone(dt.UTC) + dt.timedelta(microseconds=1)
            local = schedule.local(nxt)
            wall = local.replace(tzinfo=None)
            if entry.is_cron and (wall in seen_wall or _repeated(local)):
                continue
            seen_wall.add(wall)
            fires.append(
                UpcomingFire(
                    nxt.astimezone(dt.UTC), local, key, entry.describe(), schedule.skip_reason(nxt)
                )
            )
            produced += 1
    fires.sort(key=lambda f: f.at_utc)
    return fires[:count]


def _repeated(local: dt.datetime) -> bool:
    """The second occurrence of a wall time the autumn DST change brings round twice."""
    return local.fold == 1 and local.replace(fold=0).utcoffset() != local.utcoffset()


def next_run(
    schedule: EffectiveSchedule, now: dt.datetime
) -> tuple[UpcomingFire | None, list[UpcomingFire]]:
    """The next fire that will really run, and the skipped fires before it."""
    skipped: list[UpcomingFire] = []
    batch = upcoming(schedule, now, count=60)
    for fire in batch:
        if fire.skip_reason is None:
            return fire, skipped
        skipped.append(fire)
    return None, skipped


@dataclass(frozen=True)
class QueueTriggerPlan:
    """A queue trigger as `robo schedule` shows it: the items waiting now, and what a check
    now would do."""

    trigger_key: str
    queue: str
    min_items: int
    max_runs: int
    waiting: int
    running: int | None  # runs of the process in progress (None: not looked up)
    trigger: str  # "when >= 20 items wait (12 now), at most 2 runs at once"
    now: str  # "would start runs", "waits for 8 more items", or why it would be skipped


def queue_plans(
    schedule: EffectiveSchedule,
    queue: str,
    waiting: int,
    now: dt.datetime,
    running: int | None = None,
) -> list[QueueTriggerPlan]:
    """The schedule's queue triggers, judged now by the rules a scheduler's check applies."""
    plans = []
    for index, entry in enumerate(schedule.schedule.triggers):
        if entry.queue is None:
            continue
        trigger = entry.queue
        verdict: str
        if waiting < trigger.min_items:
            verdict = f"waits for {trigger.min_items - waiting} more item(s)"
        elif reason := schedule.skip_reason(now):
            verdict = f"skipped: {reason}"
        elif running is not None and running >= trigger.max_runs:
            verdict = f"skipped: max_runs ({running} running)"
        else:
            verdict = "would start runs"
        plans.append(
            QueueTriggerPlan(
                trigger_key=queue_trigger_key(index),
                queue=queue,
                min_items=trigger.min_items,
                max_runs=trigger.max_runs,
                waiting=waiting,
                running=running,
                trigger=describe(trigger, waiting),
                now=verdict,
            )
        )
    return plans


@dataclass(frozen=True)
class ProcessPlan:
    """One scheduled process as `robo schedule` shows it."""

    process_id: str
    state: str  # active, paused or disabled
    timezone: str
    next_run_local: str | None
    skipped_before: list[dict[str, str | None]]
    queue_triggers: list[QueueTriggerPlan]


def overview(registry: Registry, now: dt.datetime, queues: Queues) -> list[ProcessPlan]:
    """Every process with a schedule block: its state, next real run and the skips before it,
    and its queue triggers with the items waiting now (one count over all their queues)."""
    plans = []
    found = []
    for summary in registry.processes():
        version = registry.active(summary.id)
        if version.schedule is not None:
            found.append((summary.id, version))
    watched = {
        v.definition.queue_name
        for _, v in found
        if v.schedule and any(e.is_queue for e in v.schedule.schedule.triggers)
    }
    waiting = queues.waiting_counts(sorted(watched), now)
    for process_id, version in found:
        schedule = version.schedule if version.fires else None
        fire, skipped = next_run(schedule, now) if schedule else (None, [])
        queue = version.definition.queue_name
        triggers = (
            queue_plans(version.schedule, queue, waiting.get(queue, 0), now)
            if version.schedule
            else []
        )
        plans.append(
            ProcessPlan(
                process_id=process_id,
                state="disabled"
                if not version.enabled
                else "paused"
                if version.paused
                else "active",
                timezone=schedule.timezone if schedule else "",
                next_run_local=fire.at_local.isoformat(timespec="minutes") if fire else None,
                skipped_before=[
                    {"at_local": s.at_local.isoformat(timespec="minutes"), "reason": s.skip_reason}
                    for s in skipped
                ],
                queue_triggers=triggers,
            )
        )
    return plans
