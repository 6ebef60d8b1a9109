"""A schedule as this region runs it: the zone and calendar resolved, holidays and windows.

The registry resolves every version through :func:`resolve_schedule` (one
process) or :class:`ScheduleResolver` (ten thousand, streamed), so the runner,
the dispatcher and `robo schedule` read the same rule: the overlay's schedule
fields over the definition's, then the schedule's own zone and calendar, then
the region's; a disabled or paused process does not fire.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

from robo.canonical import signed_bytes
from robo.definition import WEEKDAYS, Schedule
from robo.overlay import merged_schedule
from robo.regions import holiday_name


@dataclass(frozen=True)
class RegionDefaults:
    """What a schedule that names no zone or calendar uses: the installation's region's."""

    timezone: str
    calendar: str


@dataclass(frozen=True)
class EffectiveSchedule:
    """A process's schedule as this installation applies it (zone and calendar resolved)."""

    process_id: str
    schedule: Schedule
    timezone: str
    calendar: str

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def local(self, moment: dt.datetime) -> dt.datetime:
        # Via UTC: a wall time in the spring DST gap (02:30 on the change day, as the
        # cron trigger returns it) becomes the instant's real local time (03:30).
        return moment.astimezone(dt.UTC).astimezone(self.zone)

    def skip_reason(self, moment: dt.datetime) -> str | None:
        """Why a fire at ``moment`` must not run, or None if it may."""
        local = self.local(moment)
        if self.schedule.skip_holidays:
            name = holiday_name(self.calendar, local.date())
            if name:
                return f"public holiday ({name}, {local:%a %d %b %Y}, calendar {self.calendar})"
        window = self.schedule.window
        if window is not None:
            day = WEEKDAYS[local.weekday()]
            if day not in window.days:
                return f"outside run window: {local:%A} is not a run day ({', '.join(window.days)})"
            if not window.start <= local.time() < window.end:
                return (
                    f"outside run window: {local:%H:%M} is not within "
                    f"{window.start:%H:%M}-{window.end:%H:%M} ({self.timezone})"
                )
        return None


def resolve_schedule(
    process_id: str, schedule: Schedule | None, defaults: RegionDefaults
) -> EffectiveSchedule | None:
    """A validated schedule block (overlay already applied) with its zone and calendar."""
    if schedule is None:
        return None
    return EffectiveSchedule(
        process_id=process_id,
        schedule=schedule,
        timezone=schedule.timezone or defaults.timezone,
        calendar=schedule.calendar or defaults.calendar,
    )


def fires(enabled: bool, paused: bool, schedule: EffectiveSchedule | None) -> bool:
    """Whether a scheduler fires this schedule (manual runs ignore pause)."""
    return schedule is not None and enabled and not paused


class ScheduleResolver:
    """Resolves raw schedule blocks as stored (definition JSON + overlay JSON).

    Programmes reuse a few schedules ("07:00 on working days") across many
    processes: each distinct block is validated once.
    """

    def __init__(self, defaults: RegionDefaults) -> None:
        self.defaults = defaults
        self._parsed: dict[bytes, Schedule] = {}

    def resolve(
        self, process_id: str, base: dict[str, Any] | None, overlay: dict[str, Any] | None
    ) -> EffectiveSchedule | None:
        data = merged_schedule(base, overlay) if overlay else base
        if data is None:
            return None
        key = signed_bytes(data)
        schedule = self._parsed.get(key)
        if schedule is None:
            schedule = self._parsed[key] = Schedule.model_validate(data)
        return resolve_schedule(process_id, schedule, self.defaults)
