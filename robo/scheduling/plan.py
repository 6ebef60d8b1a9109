"""What will happen next: upcoming fires of a schedule, with the reason for any skip."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from robo.crontab import build_trigger
from robo.regional import EffectiveSchedule
from robo.registry import Registry


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
class ProcessPlan:
    """One scheduled process as `robo schedule` shows it."""

    process_id: str
    state: str  # active, paused or disabled
    timezone: str
    next_run_local: str | None
    skipped_before: list[dict[str, str | None]]


def overview(registry: Registry, now: dt.datetime) -> list[ProcessPlan]:
    """Every process with a schedule block: its state, next real run and the skips before it."""
    plans = []
    for summary in registry.processes():
        version = registry.active(summary.id)
        if version.schedule is None:
            continue
        schedule = version.schedule if version.fires else None
        fire, skipped = next_run(schedule, now) if schedule else (None, [])
        plans.append(
            ProcessPlan(
                process_id=summary.id,
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
            )
        )
    return plans
