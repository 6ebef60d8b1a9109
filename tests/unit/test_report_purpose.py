"""Only production counts: test and demo runs, failed runs and re-runs leave the
programme's figures alone, and `--check` recomputes the purpose filter itself.

Ledgers are written through the real Ledger and Queues APIs, on SQLite and PostgreSQL.
"""

from __future__ import annotations

import pytest
from sqlalchemy import text

from robo.errors import ReportCheckFailed
from robo.queues import NewItem
from robo.reports.check import check
from robo.reports.figures import Figures
from robo.reports.queries import Scope
from robo.reports.report import build_report
from robo.storage.database import Database
from tests.ledger_factory import BASELINE_A, QueueWork

EARNED = BASELINE_A.manual_minutes_per_item - BASELINE_A.residual_minutes_per_item  # 25
PER_RUN = BASELINE_A.manual_minutes_per_run  # 5


def production_run(work: QueueWork, *references: str) -> int:
    """A completed production run that entered ``references`` successfully."""
    work.add("permits", *references)
    run = work.start("permits", baseline=BASELINE_A)
    for _ in references:
        work.work(run, "permits", "success")
    work.finish(run)
    return run


def totals(db: Database, scope: Scope | None = None) -> Figures:
    report = build_report(db, scope=scope)
    check(db, report)  # every figure below also holds when recomputed from the rows
    return report.headline.totals


def test_a_test_run_changes_no_production_figure_and_include_test_shows_it(
    db: Database, work: QueueWork
) -> None:
    production_run(work, "P-1", "P-2")
    before = totals(db)
    assert before.minutes_saved == 2 * EARNED + PER_RUN

    work.add("permits", "T-1", "T-2")
    trial = work.start("permits", baseline=BASELINE_A, purpose="test")
    work.work(trial, "permits", "success")
    work.work(trial, "permits", "business_exception")
    work.finish(trial)

    assert totals(db) == before
    report = build_report(db)
    assert report.headline.text.startswith("1 process in production")
    everything = totals(db, Scope(purposes=()))
    assert everything.runs == 2 and everything.business_exceptions == 1
    assert everything.minutes_saved == before.minutes_saved + EARNED + PER_RUN
    assert "test and demo runs together" in build_report(db, scope=Scope(purposes=())).headline.text


def test_a_failed_run_is_credited_its_items_but_never_its_per_run_minutes(
    db: Database, work: QueueWork
) -> None:
    production_run(work, "P-1")
    before = totals(db)

    work.add("permits", "P-2", "P-3")
    failed = work.start("permits", baseline=BASELINE_A)
    work.work(failed, "permits", "application_exception")
    work.finish(failed, "failed")
    assert totals(db).minutes_saved == before.minutes_saved  # nothing done, nothing saved

    crashed = work.start("permits", baseline=BASELINE_A)
    work.work(crashed, "permits", "success")  # one file entered before the crash
    work.finish(crashed, "failed")
    after = totals(db)
    assert after.minutes_saved == before.minutes_saved + EARNED  # the item, not the run


def test_a_re_run_of_done_files_adds_no_business_exception_nor_human_hours(
    db: Database, work: QueueWork
) -> None:
    production_run(work, "P-1", "P-2")
    work.add("permits", "P-3")
    run = work.start("permits", baseline=BASELINE_A)
    work.work(run, "permits", "business_exception")
    work.finish(run)
    before = totals(db)

    # The same files again: with queues they are refused, not redone as exceptions.
    again_input = work.queues.add(
        "permits", [NewItem(r, {"ref": r}) for r in ("P-1", "P-2", "P-3")], source="file"
    )
    assert again_input.added == []
    assert sorted(r.reference for r in again_input.refused) == ["P-1", "P-2", "P-3"]
    again = work.start("permits", baseline=BASELINE_A)
    work.finish(again)

    after = totals(db)
    assert after.business_exceptions == before.business_exceptions == 1
    assert after.human_minutes == before.human_minutes
    assert after.minutes_saved == before.minutes_saved  # the empty run earns no per-run minutes


def test_check_counts_purposes_itself_and_fails_a_report_that_counted_a_test_run(
    db: Database, work: QueueWork
) -> None:
    production_run(work, "P-1")
    work.add("permits", "T-1")
    trial = work.start("permits", baseline=BASELINE_A, purpose="test")
    work.work(trial, "permits", "success")
    work.finish(trial)
    report = build_report(db)
    check(db, report)

    # Relabelled afterwards: the report's figures left the test run out, the rows now
    # say it was production, and the check (which filters purposes itself) notices.
    with db.session() as session:
        session.execute(text("UPDATE runs SET purpose = 'production'"))
    with pytest.raises(ReportCheckFailed):
        check(db, report)


def test_check_fails_a_failed_run_that_holds_per_run_minutes(db: Database, work: QueueWork) -> None:
    work.add("permits", "P-1")
    failed = work.start("permits", baseline=BASELINE_A)
    work.work(failed, "permits", "success")
    work.finish(failed, "failed")
    check(db, build_report(db))
    with db.session() as session:
        session.execute(
            text("UPDATE runs SET run_minutes_saved = :m WHERE id = :id"),
            {"m": PER_RUN, "id": failed},
        )
    with pytest.raises(ReportCheckFailed, match="per-run minutes"):
        check(db, build_report(db))
