"""Crontab strings in, APScheduler 3 triggers out: a leaf, imported by definitions and scheduling.

A schedule entry is either a five-field cron expression or an interval in
minutes; everything here takes those two values as plain data, so validating a
definition never needs the scheduler. Cron expressions follow crontab, including
its rule for the two day fields: when both are restricted (neither starts with
``*``), a fire happens on a day matching either. In the day-of-week field 0 and 7
are Sunday and 1 is Monday. APScheduler counts from Monday = 0, so numeric days are turned
into names before APScheduler sees them.
"""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

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


def build_trigger(cron: str | None, every_minutes: float | None, timezone: str) -> BaseTrigger:
    """The trigger for one entry: ``cron`` or ``every_minutes`` (exactly one), in ``timezone``."""
    from apscheduler.triggers.cron import CronTrigger
    from apscheduler.triggers.interval import IntervalTrigger

    zone = ZoneInfo(timezone)
    if cron is not None:
        minute, hour, day, month, weekday = cron.split()
        days = crontab_days(weekday)
        if day.startswith("*") or weekday.startswith("*"):
            return CronTrigger(
                minute=minute, hour=hour, day=day, month=month, day_of_week=days, timezone=zone
            )
        # Both day fields restricted: crontab fires when EITHER matches ("0 6 1 * mon" is
        # every 1st and every Monday); APScheduler alone would want both.
        from apscheduler.triggers.combining import OrTrigger

        return OrTrigger([
            CronTrigger(minute=minute, hour=hour, day=day, month=month, timezone=zone),
            CronTrigger(minute=minute, hour=hour, month=month, day_of_week=days, timezone=zone),
        ])  # fmt: skip
    if every_minutes is None:
        raise ValueError("a schedule entry has exactly one of 'cron' or 'every_minutes'")
    return IntervalTrigger(minutes=every_minutes, timezone=zone)


def check(cron: str | None, every_minutes: float | None) -> None:
    """Raise ValueError with APScheduler's reason if the entry cannot be scheduled."""
    try:
        build_trigger(cron, every_minutes, "UTC")
    except (ValueError, KeyError) as exc:
        raise ValueError(f"invalid schedule '{cron or every_minutes}': {exc}") from None


def trigger_key(index: int, cron: str | None, every_minutes: float | None, timezone: str) -> str:
    """Stable while the entry and its zone are unchanged; a change makes a new job.

    Stored with every schedule decision: the spelling must never change.
    """
    spec = f"{cron or ''}|{every_minutes or ''}|{timezone}"
    return f"t{index}-{hashlib.sha256(spec.encode()).hexdigest()[:10]}"


def describe(cron: str | None, every_minutes: float | None) -> str:
    if cron is not None:
        return f"cron {cron}"
    return f"every {every_minutes:g} min"
