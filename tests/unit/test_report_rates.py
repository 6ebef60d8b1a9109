"""Rates a manager can read: FTE for the period and annualised at its pace, saying
which; chart labels with the headline's precision; `--check` recomputes the annualised FTE.
"""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import text

from robo.reports.charts import monthly
from robo.reports.check import recompute
from robo.reports.figures import Figures, Row
from robo.reports.periods import parse_period
from robo.reports.queries import Scope
from robo.reports.report import build_report
from robo.storage.database import Database
from tests.ledger_factory import BASELINE_A, QueueWork

EARNED = BASELINE_A.manual_minutes_per_item - BASELINE_A.residual_minutes_per_item  # 25


@pytest.fixture
def work_start() -> dt.datetime:
    return dt.datetime(2026, 7, 1, 9, tzinfo=dt.UTC)


def ninety_files_in_the_quarter(work: QueueWork) -> None:
    """One file a day from 1 July: 92 days, 92 × 25 minutes + 92 × 5 per run."""
    for day in range(92):
        work.add("permits", f"P-{day}")
        run = work.start("permits", baseline=BASELINE_A)
        work.work(run, "permits", "success")
        work.finish(run)
        work.tick(days=1)


def quarter() -> Scope:
    found = parse_period("2026-Q3")
    return Scope(found.start, found.end, label=found.label)


def test_a_quarter_shows_its_share_of_a_post_and_its_pace_over_a_year(
    db: Database, work: QueueWork
) -> None:
    ninety_files_in_the_quarter(work)
    report = build_report(db, scope=quarter())
    h = report.headline
    hours = 92 * (EARNED + 5) / 60  # 46 h

    assert h.totals.hours_saved == pytest.approx(hours)
    assert h.totals.fte() == pytest.approx(hours / 1607)  # the quarter's share of a post-year
    assert h.period_days == pytest.approx(92)  # 1 July to 1 October
    assert h.fte_annualised == pytest.approx(hours / 92 * 365.25 / 1607)  # about 4 times more
    assert h.as_dict()["fte_annualised"] == pytest.approx(h.fte_annualised, abs=1e-4)
    assert recompute(db, report).ok


def test_a_period_under_28_days_is_not_annualised(db: Database, work: QueueWork) -> None:
    work.add("permits", "P-1")
    run = work.start("permits", baseline=BASELINE_A)
    work.work(run, "permits", "success")
    work.finish(run)
    since = work.now - dt.timedelta(days=3)
    report = build_report(db, scope=Scope(since=since, until=since + dt.timedelta(days=4)))

    assert report.headline.fte_annualised is None
    assert report.headline.as_dict()["fte_annualised"] is None
    assert recompute(db, report).ok


def test_check_recomputes_the_annualised_fte_from_item_rows(db: Database, work: QueueWork) -> None:
    ninety_files_in_the_quarter(work)
    report = build_report(db, scope=quarter())
    with db.session() as session:
        session.execute(text("UPDATE items SET minutes_saved = minutes_saved * 2"))
    problems = recompute(db, report).problems
    assert any(p.startswith("headline: annualised FTE is") for p in problems), problems


def test_chart_labels_keep_the_headline_precision() -> None:
    rows = [Row({"month": "2026-10"}, Figures(item_minutes_saved=450.0))]  # 7.5 h
    chart = monthly(rows)
    assert chart is not None
    assert ">7.5<" in chart.svg and ">8<" not in chart.svg
