"""What a report can be grouped by, as SQL expressions on ``runs`` for each database.

Time dimensions come from ``runs.started_at`` in UTC: a run that starts at
23:30 UTC on 31 October counts in October even if it was already November in
Paris. Weeks are ISO 8601 weeks (``2026-W42``, Monday to Sunday, the week's
year being the year of its Thursday).

Each dimension also has a Python spelling of the same label, used by
``robo report --check`` to recompute every group independently of the SQL.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Integer, String, cast, func, literal_column
from sqlalchemy.sql.elements import ColumnElement

from robo.errors import ReportError
from robo.reports.periods import month_label, quarter_label, week_label, year_label
from robo.storage.models import RunRow

SqlBuilder = Callable[[str], ColumnElement[Any]]


def _lit(value: str) -> ColumnElement[Any]:
    """A constant written into the SQL, not bound: PostgreSQL only matches a
    GROUP BY expression to the selected one when their text is identical."""
    assert "'" not in value
    return literal_column(f"'{value}'", String)


def _int(value: int) -> ColumnElement[Any]:
    return literal_column(str(int(value)), Integer)


def _month(dialect: str) -> ColumnElement[Any]:
    if dialect == "postgresql":
        return func.to_char(RunRow.started_at, _lit("YYYY-MM"))
    return func.strftime(_lit("%Y-%m"), RunRow.started_at)


def _year(dialect: str) -> ColumnElement[Any]:
    if dialect == "postgresql":
        return func.to_char(RunRow.started_at, _lit("YYYY"))
    return func.strftime(_lit("%Y"), RunRow.started_at)


def _quarter(dialect: str) -> ColumnElement[Any]:
    if dialect == "postgresql":
        return func.to_char(RunRow.started_at, _lit('YYYY-"Q"Q'))
    month = cast(func.strftime(_lit("%m"), RunRow.started_at), Integer)
    quarter = cast((month + _int(2)) // _int(3), String)
    return func.strftime(_lit("%Y"), RunRow.started_at).concat(_lit("-Q")).concat(quarter)


def _week(dialect: str) -> ColumnElement[Any]:
    if dialect == "postgresql":
        return func.to_char(RunRow.started_at, _lit('IYYY-"W"IW'))
    # SQLite before 3.46 has no ISO week: take the Thursday of the run's week
    # (it gives the ISO year), and count weeks from that year's first day.
    thursday = func.date(RunRow.started_at, _lit("-3 days"), _lit("weekday 4"))
    day = cast(func.strftime(_lit("%j"), thursday), Integer)
    week = (day - _int(1)) // _int(7) + _int(1)
    return (
        func.strftime(_lit("%Y"), thursday)
        .concat(_lit("-W"))
        .concat(func.printf(_lit("%02d"), week))
    )


@dataclass(frozen=True)
class Dimension:
    name: str
    key: str  # the column name in rows, CSV and JSON
    help: str
    sql: SqlBuilder
    label: Callable[[Any], str]  # from a run row (RunRow-like), for --check
    is_time: bool = False


def _column(column: Any) -> SqlBuilder:
    return lambda _dialect: column


DIMENSIONS: dict[str, Dimension] = {
    d.name: d
    for d in (
        Dimension(
            "process",
            "process_id",
            "the process",
            _column(RunRow.process_id),
            lambda r: r.process_id,
        ),
        Dimension(
            "region", "region", "the region that ran it", _column(RunRow.region), lambda r: r.region
        ),
        Dimension(
            "application",
            "application",
            "the application automated",
            _column(RunRow.application),
            lambda r: r.application,
        ),
        Dimension(
            "origin",
            "origin_region",
            "the region that built the process (its own region when not adopted)",
            lambda _d: func.coalesce(RunRow.origin_region, RunRow.region),
            lambda r: r.origin_region or r.region,
        ),
        Dimension(
            "year", "year", "calendar year, UTC", _year, lambda r: year_label(r.started_at), True
        ),
        Dimension(
            "quarter",
            "quarter",
            "2026-Q3, UTC",
            _quarter,
            lambda r: quarter_label(r.started_at),
            True,
        ),
        Dimension(
            "month", "month", "2026-10, UTC", _month, lambda r: month_label(r.started_at), True
        ),
        Dimension(
            "week",
            "week",
            "ISO week 2026-W42, UTC",
            _week,
            lambda r: week_label(r.started_at),
            True,
        ),
    )
}


def dimensions(names: tuple[str, ...] | list[str]) -> tuple[Dimension, ...]:
    """The dimensions named, in order, without repeats; unknown names are refused."""
    result: list[Dimension] = []
    for name in names:
        if name not in DIMENSIONS:
            raise ReportError(
                f"cannot group by '{name}'; choose among {', '.join(DIMENSIONS)} "
                "(repeat --by for several)"
            )
        if DIMENSIONS[name] not in result:
            result.append(DIMENSIONS[name])
    return tuple(result)


def labelled(dimension: Dimension, dialect: str) -> ColumnElement[Any]:
    return dimension.sql(dialect).label(dimension.key)
