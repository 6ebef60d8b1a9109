"""Periods a manager names: ``2026``, ``2026-Q3``, ``2026-10``, ``2026-W42``, ``2026-10-05``.

Every period is a half-open UTC interval ``[start, end)`` on the runs' start
time. Labels use the same spelling as the report's time columns, so a figure
in the ``month`` column can be pasted back into ``--period``.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

from robo.errors import ReportError

FORMATS_HINT = "2026, 2026-Q3, 2026-10, 2026-W42 or 2026-10-05"

_YEAR = re.compile(r"^(\d{4})$")
_QUARTER = re.compile(r"^(\d{4})-[Qq]([1-4])$")
_MONTH = re.compile(r"^(\d{4})-(\d{2})$")
_WEEK = re.compile(r"^(\d{4})-[Ww](\d{2})$")
_DAY = re.compile(r"^(\d{4})-(\d{2})-(\d{2})$")


@dataclass(frozen=True)
class Period:
    """A half-open UTC interval with the label a person typed."""

    label: str
    start: dt.datetime
    end: dt.datetime

    def __contains__(self, moment: dt.datetime) -> bool:
        return self.start <= moment < self.end


def _utc(day: dt.date) -> dt.datetime:
    return dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC)


def _add_months(day: dt.date, months: int) -> dt.date:
    index = day.year * 12 + day.month - 1 + months
    return dt.date(index // 12, index % 12 + 1, 1)


def parse_period(text: str) -> Period:
    """A named period; raises ReportError saying what to type instead."""
    value = text.strip()
    try:
        if m := _YEAR.match(value):
            year = int(m.group(1))
            return Period(value, _utc(dt.date(year, 1, 1)), _utc(dt.date(year + 1, 1, 1)))
        if m := _QUARTER.match(value):
            year, quarter = int(m.group(1)), int(m.group(2))
            first = dt.date(year, 3 * quarter - 2, 1)
            return Period(f"{year}-Q{quarter}", _utc(first), _utc(_add_months(first, 3)))
        if m := _MONTH.match(value):
            first = dt.date(int(m.group(1)), int(m.group(2)), 1)
            return Period(value, _utc(first), _utc(_add_months(first, 1)))
        if m := _WEEK.match(value):
            year, week = int(m.group(1)), int(m.group(2))
            monday = dt.date.fromisocalendar(year, week, 1)
            return Period(f"{year}-W{week:02d}", _utc(monday), _utc(monday + dt.timedelta(days=7)))
        if _DAY.match(value):
            day = dt.date.fromisoformat(value)
            return Period(value, _utc(day), _utc(day + dt.timedelta(days=1)))
    except (ValueError, OverflowError) as exc:  # 2026-02-30; 9999-12-31 (its end is year 10000)
        raise ReportError(f"'{text}' is not a valid period ({exc}); use {FORMATS_HINT}") from None
    raise ReportError(f"'{text}' is not a date (YYYY-MM-DD) or a period; use {FORMATS_HINT}")


def parse_since(text: str) -> dt.datetime:
    """``--since``: the start of the date or period given (included)."""
    return parse_period(text).start


def parse_until(text: str) -> dt.datetime:
    """``--until``: a date is the first day *excluded*; a longer period is included whole."""
    if _DAY.match(text.strip()):
        return parse_period(text).start
    return parse_period(text).end


def month_label(moment: dt.datetime) -> str:
    return f"{moment.year:04d}-{moment.month:02d}"


def week_label(moment: dt.datetime) -> str:
    year, week, _ = moment.isocalendar()
    return f"{year:04d}-W{week:02d}"


def quarter_label(moment: dt.datetime) -> str:
    return f"{moment.year:04d}-Q{(moment.month + 2) // 3}"


def year_label(moment: dt.datetime) -> str:
    return f"{moment.year:04d}"


def months_between(first: str, last: str) -> list[str]:
    """Every month label from ``first`` to ``last`` included (charts show empty months)."""
    start = dt.date(int(first[:4]), int(first[5:7]), 1)
    end = dt.date(int(last[:4]), int(last[5:7]), 1)
    labels = []
    while start <= end:
        labels.append(f"{start.year:04d}-{start.month:02d}")
        start = _add_months(start, 1)
    return labels
