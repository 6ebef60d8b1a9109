"""Whether a fire may run at its local time: public holidays and run windows."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from robo.definition import WEEKDAYS, Schedule
from robo.regions import holiday_name


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
