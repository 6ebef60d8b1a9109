"""Schedule entries as APScheduler 3 triggers, in the region's time zone.

Cron expressions follow crontab: in the day-of-week field 0 and 7 are Sunday
and 1 is Monday. APScheduler counts from Monday = 0, so numeric days are turned
into names before APScheduler sees them.
"""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from robo.definition import ScheduleEntry

if TYPE_CHECKING:
    from apscheduler.triggers.base import BaseTrigger

CRON_DAYS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")
APS_DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def _day_number(token: str) -> int:
    token = token.strip().lower()
    if token.isdigit():
        number = int(token)
        if not 0 <= number <= 7:
            raise ValueError(f"day of week {number} is out of range (0-7, 0 and 7 are Sunday)")
        return number % 7
    if token[:3] in CRON_DAYS:
        return CRON_DAYS.index(token[:3])
    raise ValueError(f"unknown day of week '{token}'")


def crontab_days(field: str) -> str:
    """A crontab day-of-week field as APScheduler day names, e.g. '1-5' -> 'mon,...,fri'."""
    if field == "*":
        return "*"
    days: set[int] = set()
    for part in field.split(","):
        spec, _, step_text = part.partition("/")
        step = int(step_text) if step_text else 1
        if spec == "*":
            first, last = 0, 6
        elif "-" in spec:
            low, high = spec.split("-", 1)
            first, last = _day_number(low), _day_number(high)
            if high.strip() == "7":
                last = 7
        else:
            first = last = _day_number(spec)
        if last < first:
            raise ValueError(f"day range '{spec}' runs backwards")
        days.update(d % 7 for d in range(first, last + 1, step))
    return ",".join(APS_DAYS[(d - 1) % 7] for d in sorted(days, key=lambda d: (d - 1) % 7))


def build_trigger(entry: ScheduleEntry, timezone: str) -> BaseTrigger:
    from apscheduler.triggers.cron import CronTrigger
    from apscheduler.triggers.interval import IntervalTrigger

    zone = ZoneInfo(timezone)
    if entry.cron is not None:
        minute, hour, day, month, weekday = entry.cron.split()
        return CronTrigger(
            minute=minute, hour=hour, day=day, month=month,
            day_of_week=crontab_days(weekday), timezone=zone,
        )  # fmt: skip
    assert entry.every_minutes is not None
    return IntervalTrigger(minutes=entry.every_minutes, timezone=zone)


def check_entry(entry: ScheduleEntry) -> None:
    """Raise ValueError with APScheduler's reason if the entry cannot be scheduled."""
    try:
        build_trigger(entry, "UTC")
    except (ValueError, KeyError) as exc:
        raise ValueError(f"invalid schedule '{entry.cron or entry.every_minutes}': {exc}") from None


def trigger_key(index: int, entry: ScheduleEntry, timezone: str) -> str:
    """Stable while the entry and its zone are unchanged; a change makes a new job."""
    spec = f"{entry.cron or ''}|{entry.every_minutes or ''}|{timezone}"
    return f"t{index}-{hashlib.sha256(spec.encode()).hexdigest()[:10]}"


def describe(entry: ScheduleEntry) -> str:
    if entry.cron is not None:
        return f"cron {entry.cron}"
    return f"every {entry.every_minutes:g} min"


def is_cron(entry: Any) -> bool:
    return bool(getattr(entry, "cron", None))
