"""When a schedule fires: region time zones and calendars, run windows, DST, crontab days.

Pure: no database. Each region applies one process's schedule in its own time
zone and on its own holiday calendar, so the same cron runs on different days.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

import pytest
import time_machine
import yaml
from pydantic import ValidationError

from robo.crontab import crontab_days
from robo.definition import ProcessDefinition, Schedule, ScheduleEntry
from robo.regional import EffectiveSchedule
from robo.regions import region
from robo.scheduling.plan import UpcomingFire, next_run, upcoming
from tests.conftest import definition

UTC = dt.UTC
WEEKDAYS_CRON = "0 7 * * mon-fri"


def schedule_in(region_slug: str, **schedule: Any) -> EffectiveSchedule:
    """The process's schedule as the installation of ``region_slug`` applies it."""
    defaults = region(region_slug)
    spec = Schedule.model_validate({"triggers": [{"cron": WEEKDAYS_CRON}], **schedule})
    return EffectiveSchedule("sample-process", spec, defaults.timezone, defaults.calendar)


def utc(
    year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0
) -> dt.datetime:
    return dt.datetime(year, month, day, hour, minute, second, tzinfo=UTC)


def fire_on(fires: list[UpcomingFire], day: dt.date) -> UpcomingFire:
    (fire,) = [f for f in fires if f.at_local.date() == day]
    return fire


# --- the same cron, different regions -------------------------------------------------------


def test_guyane_skips_abolition_day_that_occitanie_works() -> None:
    guyane, occitanie = schedule_in("guyane"), schedule_in("occitanie")
    now = utc(2026, 6, 9, 12)  # Tuesday; 10 June 2026 is a Wednesday

    guyane_fire = fire_on(upcoming(guyane, now), dt.date(2026, 6, 10))
    assert guyane.calendar == "FR-973"
    assert guyane_fire.skip_reason is not None
    assert "public holiday (Abolition de l'esclavage" in guyane_fire.skip_reason
    assert "FR-973" in guyane_fire.skip_reason

    assert fire_on(upcoming(occitanie, now), dt.date(2026, 6, 10)).skip_reason is None


def test_next_run_in_guyane_is_the_day_after_the_holiday_with_the_skip_explained() -> None:
    fire, skipped = next_run(schedule_in("guyane"), utc(2026, 6, 9, 12))
    assert fire is not None
    assert fire.at_utc == utc(2026, 6, 11, 10)  # 07:00 in Cayenne
    assert [s.at_local.date() for s in skipped] == [dt.date(2026, 6, 10)]

    fire, skipped = next_run(schedule_in("occitanie"), utc(2026, 6, 9, 12))
    assert fire is not None and fire.at_utc == utc(2026, 6, 10, 5)
    assert skipped == []


@pytest.mark.parametrize(
    ("day", "holiday"),
    [(dt.date(2026, 4, 3), "Vendredi saint"), (dt.date(2025, 12, 26), "Saint-Étienne")],
)
def test_alsace_moselle_keeps_its_two_extra_holidays(day: dt.date, holiday: str) -> None:
    moselle, national = schedule_in("alsace-moselle"), schedule_in("national")
    now = dt.datetime.combine(day - dt.timedelta(days=1), dt.time(12), UTC)
    assert moselle.calendar == "FR-57"

    reason = fire_on(upcoming(moselle, now), day).skip_reason
    assert reason is not None
    assert holiday in reason and "FR-57" in reason
    assert fire_on(upcoming(national, now), day).skip_reason is None


def test_skip_holidays_false_runs_on_public_holidays() -> None:
    guyane = schedule_in("guyane", skip_holidays=False)
    assert fire_on(upcoming(guyane, utc(2026, 6, 9, 12)), dt.date(2026, 6, 10)).skip_reason is None


def test_a_schedule_calendar_overrides_the_region_default() -> None:
    spec = Schedule.model_validate({"triggers": [{"cron": WEEKDAYS_CRON}], "calendar": "FR-973"})
    assert spec.calendar == "FR-973"
    with pytest.raises(ValidationError, match="unknown calendar 'FR-999'"):
        Schedule.model_validate({"triggers": [{"cron": WEEKDAYS_CRON}], "calendar": "FR-999"})


# --- time zones --------------------------------------------------------------------------


def test_seven_in_cayenne_is_ten_utc_all_year() -> None:
    guyane = schedule_in("guyane")
    winter = upcoming(guyane, utc(2026, 1, 5), count=1)[0]
    summer = upcoming(guyane, utc(2026, 7, 6), count=1)[0]
    assert (winter.at_utc, summer.at_utc) == (utc(2026, 1, 5, 10), utc(2026, 7, 6, 10))
    assert winter.at_local.hour == summer.at_local.hour == 7


def test_seven_in_paris_is_six_utc_in_winter_and_five_in_summer() -> None:
    paris = schedule_in("occitanie")
    winter = upcoming(paris, utc(2026, 1, 5), count=1)[0]
    summer = upcoming(paris, utc(2026, 7, 6), count=1)[0]
    assert winter.at_utc == utc(2026, 1, 5, 6)
    assert summer.at_utc == utc(2026, 7, 6, 5)
    assert winter.at_local.hour == summer.at_local.hour == 7


# --- run windows --------------------------------------------------------------------------


def hourly_in_office_hours() -> EffectiveSchedule:
    return schedule_in(
        "occitanie",
        triggers=[{"cron": "0 * * * *"}],
        window={"start": "07:00", "end": "19:00", "days": ["mon", "tue", "wed", "thu", "fri"]},
    )


def test_fires_outside_the_run_window_are_skipped_with_the_reason() -> None:
    plan = hourly_in_office_hours()
    # Friday 6 March 2026, Paris is UTC+1.
    fires = {
        f.at_local.strftime("%a %H:%M"): f.skip_reason
        for f in upcoming(plan, utc(2026, 3, 6, 4, 30), count=48)
    }

    assert (
        fires["Fri 06:00"] == "outside run window: 06:00 is not within 07:00-19:00 (Europe/Paris)"
    )
    assert fires["Fri 07:00"] is None
    assert fires["Fri 18:00"] is None
    assert (
        fires["Fri 19:00"] == "outside run window: 19:00 is not within 07:00-19:00 (Europe/Paris)"
    )
    saturday = fires["Sat 10:00"]
    assert saturday is not None
    assert saturday.startswith("outside run window: Saturday is not a run day")


def test_next_run_after_friday_evening_is_monday_seven() -> None:
    fire, skipped = next_run(hourly_in_office_hours(), utc(2026, 3, 6, 18, 30))
    assert fire is not None
    assert fire.at_local.replace(tzinfo=None) == dt.datetime(2026, 3, 9, 7, 0)
    assert all(s.skip_reason and s.skip_reason.startswith("outside run window") for s in skipped)


def test_unquoted_yaml_window_times_are_refused_with_a_hint_to_quote() -> None:
    window = yaml.safe_load("start: 7:00\nend: 19:00\n")
    assert window == {"start": 420, "end": 1140}  # YAML 1.1 reads them in base 60
    with pytest.raises(ValidationError, match=r"write times in quotes, e\.g\. '07:00'"):
        Schedule.model_validate({"triggers": [{"cron": WEEKDAYS_CRON}], "window": window})


def test_quoted_window_times_are_accepted() -> None:
    window = yaml.safe_load("start: '07:00'\nend: '19:00'\n")
    spec = Schedule.model_validate({"triggers": [{"cron": WEEKDAYS_CRON}], "window": window})
    assert spec.window is not None
    assert (spec.window.start, spec.window.end) == (dt.time(7), dt.time(19))


def test_a_window_that_ends_before_it_starts_is_refused() -> None:
    with pytest.raises(ValidationError, match="window start must be before its end"):
        Schedule.model_validate(
            {"triggers": [{"cron": WEEKDAYS_CRON}], "window": {"start": "19:00", "end": "07:00"}}
        )


# --- daylight saving time (Europe/Paris: 29 March and 25 October 2026) ---------------------


def paris(cron: str) -> EffectiveSchedule:
    return schedule_in("occitanie", triggers=[{"cron": cron}])


def test_spring_change_half_past_two_fires_once_every_day_none_skipped() -> None:
    fires = upcoming(paris("30 2 * * *"), utc(2026, 3, 27, 12), count=4)
    assert [f.at_local.date() for f in fires] == [
        dt.date(2026, 3, 28), dt.date(2026, 3, 29), dt.date(2026, 3, 30), dt.date(2026, 3, 31),
    ]  # fmt: skip
    # 02:30 does not exist on the 29th: it fires as the clock jumps, at 03:30 CEST.
    change_day = fires[1]
    assert change_day.at_utc == utc(2026, 3, 29, 1, 30)
    assert change_day.at_local.strftime("%H:%M %z") == "03:30 +0200"
    assert [f.at_utc for f in fires[2:]] == [utc(2026, 3, 30, 0, 30), utc(2026, 3, 31, 0, 30)]


@pytest.mark.parametrize("start", [utc(2026, 3, 26, 12), utc(2026, 10, 22, 12)])
def test_seven_local_stays_seven_local_across_both_changes(start: dt.datetime) -> None:
    fires = upcoming(paris("0 7 * * *"), start, count=6)
    assert [f.at_local.strftime("%H:%M") for f in fires] == ["07:00"] * 6
    days = [f.at_local.date() for f in fires]
    assert days == [days[0] + dt.timedelta(days=n) for n in range(6)]
    offsets = {f.at_utc.hour for f in fires}
    assert offsets == {5, 6}  # 06:00 UTC in winter time, 05:00 UTC in summer time


def test_autumn_change_half_past_two_appears_once_in_upcoming() -> None:
    fires = upcoming(paris("30 2 * * *"), utc(2026, 10, 23, 12), count=5)
    days = [f.at_local.date() for f in fires]
    assert days == [dt.date(2026, 10, 24) + dt.timedelta(days=n) for n in range(5)]
    (change_day,) = [f for f in fires if f.at_local.date() == dt.date(2026, 10, 25)]
    assert change_day.at_utc == utc(2026, 10, 25, 0, 30)  # the first 02:30, still CEST


def test_next_run_does_not_hang_on_the_autumn_change() -> None:
    fire, skipped = next_run(paris("30 2 * * *"), utc(2026, 10, 25, 0, 45))
    assert skipped == []
    assert fire is not None and fire.at_utc == utc(2026, 10, 26, 1, 30)


@pytest.fixture
def frozen() -> Iterator[time_machine.Traveller]:
    with time_machine.travel(utc(2026, 1, 1), tick=False) as traveller:
        yield traveller


@pytest.mark.parametrize(
    ("start", "changed_hour"),
    [(utc(2026, 10, 24, 22), "02"), (utc(2026, 3, 28, 22), "03")],
)
def test_interval_fires_every_sixty_real_minutes_across_the_change(
    frozen: time_machine.Traveller, start: dt.datetime, changed_hour: str
) -> None:
    frozen.move_to(start)  # an interval counts from when it is scheduled
    plan = schedule_in("occitanie", triggers=[{"every_minutes": 60}])
    fires = upcoming(plan, start, count=8)
    assert len(fires) == 8
    assert [f.at_utc for f in fires] == [start + dt.timedelta(hours=n + 1) for n in range(8)]
    local_hours = [f.at_local.strftime("%H") for f in fires]
    if changed_hour == "02":
        assert local_hours.count("02") == 2  # the repeated hour is worked twice: no gap
    else:
        assert "02" not in local_hours  # the skipped hour simply does not exist: no loop


# --- crontab day-of-week numbers -------------------------------------------------------


@pytest.mark.parametrize(
    ("field", "days"),
    [
        ("1", "mon"),
        ("0", "sun"),
        ("7", "sun"),
        ("1-5", "mon,tue,wed,thu,fri"),
        ("mon-fri", "mon,tue,wed,thu,fri"),
        ("sat,sun", "sat,sun"),
        ("6,0", "sat,sun"),
        ("5-7", "fri,sat,sun"),
        ("*/2", "tue,thu,sat,sun"),  # crontab counts from Sunday = 0
        ("*", "*"),
    ],
)
def test_crontab_day_numbers_mean_what_crontab_means(field: str, days: str) -> None:
    assert crontab_days(field) == days


@pytest.mark.parametrize(
    ("weekday_field", "expected"),
    [("1", "Monday"), ("0", "Sunday"), ("7", "Sunday"), ("6", "Saturday")],
)
def test_numeric_day_fires_on_that_weekday(weekday_field: str, expected: str) -> None:
    fires = upcoming(paris(f"0 7 * * {weekday_field}"), utc(2026, 3, 2), count=3)
    assert {f.at_local.strftime("%A") for f in fires} == {expected}


def test_one_to_five_fires_monday_to_friday_only() -> None:
    fires = upcoming(paris("0 7 * * 1-5"), utc(2026, 3, 1), count=10)
    assert [f.at_local.strftime("%a") for f in fires[:5]] == ["Mon", "Tue", "Wed", "Thu", "Fri"]
    assert not {f.at_local.strftime("%a") for f in fires} & {"Sat", "Sun"}


def test_a_day_of_month_and_a_weekday_fire_on_either_as_in_crontab() -> None:
    """'0 6 1 * mon' is every 1st of the month and every Monday (crontab's rule)."""
    fires = upcoming(paris("0 6 1 * mon"), utc(2026, 5, 27), count=5)
    assert [f.at_local.strftime("%a %d %b") for f in fires] == [
        "Mon 01 Jun", "Mon 08 Jun", "Mon 15 Jun", "Mon 22 Jun", "Mon 29 Jun",
    ]  # fmt: skip
    fires = upcoming(paris("0 6 1 * mon"), utc(2026, 6, 30), count=3)
    assert [f.at_local.strftime("%a %d %b") for f in fires] == [
        "Wed 01 Jul", "Mon 06 Jul", "Mon 13 Jul",
    ]  # fmt: skip


def test_a_stepped_day_field_narrows_the_other_as_in_crontab() -> None:
    """A day field starting with '*' is not 'restricted': both must match."""
    fires = upcoming(paris("0 6 */10 * mon"), utc(2026, 6, 1), count=2)
    assert {f.at_local.strftime("%a") for f in fires} == {"Mon"}
    assert all(f.at_local.day in (1, 11, 21, 31) for f in fires)


@pytest.mark.parametrize(
    ("cron", "message"),
    [
        ("0 25 * * *", "invalid schedule '0 25 \\* \\* \\*'"),
        ("0 7 * * 8", "day of week 8 is out of range \\(0-7, 0 and 7 are Sunday\\)"),
        ("0 7 * *", "must have 5 fields: minute hour day month weekday"),
        ("0 7 * * * *", "must have 5 fields"),
        ("61 7 * * *", "invalid schedule"),
        ("0 7 * * 5-1", "runs backwards"),
        ("0 7 * * funday", "unknown day of week 'funday'"),
    ],
)
def test_invalid_crons_are_refused_when_the_definition_is_validated(
    cron: str, message: str
) -> None:
    with pytest.raises(ValidationError, match=message):
        ProcessDefinition.model_validate(definition(schedule={"triggers": [{"cron": cron}]}))


def test_a_schedule_entry_has_exactly_one_kind_of_trigger() -> None:
    with pytest.raises(ValidationError, match="exactly one of 'cron', 'every_minutes' or 'queue'"):
        ScheduleEntry.model_validate({"cron": WEEKDAYS_CRON, "every_minutes": 10})
    with pytest.raises(ValidationError, match="exactly one of 'cron', 'every_minutes' or 'queue'"):
        ScheduleEntry.model_validate({})
