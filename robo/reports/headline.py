"""The headline, the way programmes report themselves.

"13 processes in production, 1,119 hours saved since go-live (2025-03-04),
across 3 regions."

- only production runs count, unless the scope includes test or demo runs (the
  text then says so instead of "in production");
- a process is *in production* in the scope when at least one of its items
  succeeded there (a process that only ever failed, or only ran empty, is not);
- a region counts when at least one item succeeded there;
- *go-live* is the start of the first run in the scope;
- the hours are the scope's hours saved (all of them, not only in production).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from sqlalchemy import case, func, select

from robo.i18n import _, formats, ngettext
from robo.reports.dimensions import DIMENSIONS
from robo.reports.figures import FTE_HOURS_PER_YEAR, Figures, Row
from robo.reports.queries import Scope, Sums, aggregate, as_utc, figures
from robo.storage.database import Database
from robo.storage.models import RunRow

TOP = 5
MIN_DAYS_TO_ANNUALISE = 28.0  # a shorter period says nothing about a year's pace
DAYS_PER_YEAR = 365.25


def annualised_fte(hours_saved: float, days: float | None, hours_per_year: float) -> float | None:
    """Full-time posts a year at the period's pace: the hours saved per day of the period,
    over a year, ÷ one post's yearly hours. None for a period under 28 days."""
    if days is None or days < MIN_DAYS_TO_ANNUALISE:
        return None
    return hours_saved / days * DAYS_PER_YEAR / hours_per_year


@dataclass(frozen=True)
class Headline:
    processes: int
    regions: int
    go_live: dt.datetime | None
    last_run: dt.datetime | None
    totals: Figures
    top: list[Row]
    scope: Scope
    fte_hours_per_year: float = FTE_HOURS_PER_YEAR
    now: dt.datetime | None = None  # when the report was made: the end of an open period

    @property
    def period(self) -> tuple[dt.datetime, dt.datetime] | None:
        """The stretch of time the figures cover: the scope's dates, else go-live; up to
        the scope's end, or now if that is sooner (a period still under way)."""
        start = self.scope.since or self.go_live
        if start is None:
            return None
        end = self.now or self.last_run or start
        if self.scope.until is not None:
            end = min(end, self.scope.until)
        return start, max(start, end)

    @property
    def period_days(self) -> float | None:
        period = self.period
        return None if period is None else (period[1] - period[0]).total_seconds() / 86400

    @property
    def fte_annualised(self) -> float | None:
        return annualised_fte(self.totals.hours_saved, self.period_days, self.fte_hours_per_year)

    @property
    def text(self) -> str:
        """The headline sentence in the current locale."""
        hours = hours_label(self.totals.hours_saved)
        if self.go_live is None:
            if self.scope.purposes == ("production",):
                return _(
                    "No production runs yet: nothing saved so far (test and demo runs count "
                    "with --include-test)."
                )
            return _("No runs yet: nothing saved so far.")
        if self.scope.since is None and self.scope.until is None:
            when = _("since go-live (%(date)s)") % {"date": formats.date(self.go_live)}
        elif self.scope.label:
            when = _("in %(period)s") % {"period": formats.period_label(self.scope.label)}
        else:
            start = formats.date(self.scope.since or self.go_live)
            when = (
                _("from %(start)s to before %(end)s")
                % {"start": start, "end": formats.date(self.scope.until)}
                if self.scope.until
                else _("from %(start)s") % {"start": start}
            )
        processes = ngettext(
            "%(n)s process %(counted)s", "%(n)s processes %(counted)s", self.processes
        ) % {"n": formats.number(self.processes), "counted": _counted(self.scope, self.processes)}
        regions = ngettext("%(n)s region", "%(n)s regions", self.regions) % {
            "n": formats.number(self.regions)
        }
        return _("%(processes)s, %(hours)s hours saved %(when)s, across %(regions)s.") % {
            "processes": processes, "hours": hours, "when": when, "regions": regions,
        }  # fmt: skip

    def as_dict(self) -> dict[str, Any]:
        return {
            "text": self.text,
            "processes_in_production": self.processes,
            "regions": self.regions,
            "go_live": self.go_live.isoformat(timespec="seconds") if self.go_live else None,
            "last_run": self.last_run.isoformat(timespec="seconds") if self.last_run else None,
            "scope": self.scope.describe(),
            "fte_hours_per_year": self.fte_hours_per_year,
            # totals.fte is the period's hours as a share of one post's year; this is the
            # period's pace over a whole year (None under 28 days).
            "period_start": None if self.period is None else self.period[0].isoformat(),
            "period_end": None if self.period is None else self.period[1].isoformat(),
            "period_days": None if self.period_days is None else round(self.period_days, 2),
            "fte_annualised": (
                None if self.fte_annualised is None else round(self.fte_annualised, 4)
            ),
            "totals": self.totals.as_dict(self.fte_hours_per_year),
            "top_processes": [r.as_dict(self.fte_hours_per_year) for r in self.top],
        }


def _counted(scope: Scope, n: int) -> str:
    """What the processes counted were: in production, unless the scope says otherwise
    (``n`` for languages whose participles agree with it)."""
    if scope.purposes == ("production",):
        return ngettext("in production", "in production", n)
    if scope.purposes == ():
        return ngettext("run (production, test and demo runs together)",
                        "run (production, test and demo runs together)", n)  # fmt: skip
    if scope.purposes == ("demo",):
        return ngettext("run by the demo (not production)", "run by the demo (not production)", n)
    if scope.purposes == ("test",):
        return ngettext("run in tests (not production)", "run in tests (not production)", n)
    return _("run in %(purposes)s runs (not production)") % {
        "purposes": _(" and ").join(scope.purposes)
    }


def headline(
    db: Database,
    scope: Scope,
    *,
    fte_hours_per_year: float = FTE_HOURS_PER_YEAR,
    by_process: list[Row] | None = None,
    top: int = TOP,
    now: dt.datetime | None = None,
) -> Headline:
    """Count, sum and rank in SQL; ``by_process`` reuses rows already aggregated."""
    sums = Sums.of(scope)
    productive = func.coalesce(sums.items.c.succeeded, 0) > 0
    query = sums.join(
        select(
            func.count(func.distinct(case((productive, RunRow.process_id)))),
            func.count(func.distinct(case((productive, RunRow.region)))),
            func.min(RunRow.started_at),
            func.max(RunRow.started_at),
            *sums.columns(),
        ).select_from(RunRow)
    ).where(*scope.conditions())
    with db.session() as session:
        values = session.execute(query).one()
    if by_process is None:
        by_process = aggregate(db, (DIMENSIONS["process"],), scope)
    ranked = sorted(by_process, key=lambda r: (-r.figures.minutes_saved, r.keys["process_id"]))
    return Headline(
        processes=int(values[0]),
        regions=int(values[1]),
        go_live=as_utc(values[2]),
        last_run=as_utc(values[3]),
        totals=figures(values[4:]),
        top=[r for r in ranked if r.figures.minutes_saved > 0][:top],
        scope=scope,
        fte_hours_per_year=fte_hours_per_year,
        now=now,
    )


def hours_label(hours: float) -> str:
    """Whole hours for a programme's totals; a decimal below 100, so a demo's 7.5
    hours read the same in the headline as in the table (in the current locale)."""
    return formats.hours(hours)
