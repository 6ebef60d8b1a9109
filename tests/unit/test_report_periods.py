"""Periods a manager types, and the UTC intervals they mean."""

from __future__ import annotations

import datetime as dt

import pytest

from robo.errors import ReportError
from robo.reports.periods import (
    months_between,
    parse_period,
    parse_since,
    parse_until,
    quarter_label,
    week_label,
)


def utc(*args: int) -> dt.datetime:
    return dt.datetime(*args, tzinfo=dt.UTC)


@pytest.mark.parametrize(
    ("text", "label", "start", "end"),
    [
        ("2026", "2026", utc(2026, 1, 1), utc(2027, 1, 1)),
        ("2026-Q3", "2026-Q3", utc(2026, 7, 1), utc(2026, 10, 1)),
        ("2026-q4", "2026-Q4", utc(2026, 10, 1), utc(2027, 1, 1)),
        ("2026-10", "2026-10", utc(2026, 10, 1), utc(2026, 11, 1)),
        ("2026-12", "2026-12", utc(2026, 12, 1), utc(2027, 1, 1)),
        ("2026-W42", "2026-W42", utc(2026, 10, 12), utc(2026, 10, 19)),
        ("2026-W53", "2026-W53", utc(2026, 12, 28), utc(2027, 1, 4)),
        ("2026-10-05", "2026-10-05", utc(2026, 10, 5), utc(2026, 10, 6)),
    ],
)
def test_a_named_period_is_a_half_open_utc_interval(
    text: str, label: str, start: dt.datetime, end: dt.datetime
) -> None:
    period = parse_period(text)

    assert (period.label, period.start, period.end) == (label, start, end)
    assert start in period
    assert end not in period


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("notadate", "'notadate' is not a date (YYYY-MM-DD) or a period; use 2026, 2026-Q3"),
        ("2026-Q5", "is not a date"),
        ("2026-13", "not a valid period"),
        ("2025-W53", "not a valid period"),  # 2025 has 52 ISO weeks
        ("2026-02-30", "not a valid period"),
        ("9999-12-31", "not a valid period"),  # its end would be in year 10000
        ("9999-Q4", "not a valid period"),
        ("9999-W52", "not a valid period"),
    ],
)
def test_a_bad_period_says_what_to_type(text: str, says: str) -> None:
    with pytest.raises(ReportError) as raised:
        parse_period(text)

    assert says in raised.value.message
    assert "2026-W42" in raised.value.message


def test_until_a_date_excludes_that_day_but_until_a_period_includes_it_whole() -> None:
    assert parse_until("2026-11-01") == utc(2026, 11, 1)
    assert parse_until("2026-10") == utc(2026, 11, 1)
    assert parse_until("2026-Q3") == utc(2026, 10, 1)
    assert parse_since("2026-Q3") == utc(2026, 7, 1)


def test_iso_weeks_and_quarters_at_the_turn_of_the_year() -> None:
    assert week_label(utc(2027, 1, 1, 12)) == "2026-W53"
    assert week_label(utc(2026, 1, 1)) == "2026-W01"
    assert week_label(utc(2024, 12, 30)) == "2025-W01"
    assert quarter_label(utc(2026, 9, 30, 23, 59)) == "2026-Q3"


def test_months_between_lists_empty_months_too() -> None:
    assert months_between("2026-11", "2027-02") == ["2026-11", "2026-12", "2027-01", "2027-02"]
