"""Reports stay true with work queues: items, attempts and runs counted apart, minutes
credited once per queue item, skipped items at 0, human work never robot savings, and
`--check` catching every way a ledger could credit an item twice.

Ledgers are written through the real Ledger and Queues APIs, on SQLite and PostgreSQL.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from sqlalchemy import text

from robo.cli.main import cli
from robo.errors import ReportCheckFailed
from robo.reports.check import check, recompute
from robo.reports.drilldown import drill_down
from robo.reports.export import report_csv
from robo.reports.html import render_html
from robo.reports.periods import parse_period
from robo.reports.queries import Scope
from robo.reports.report import build_report
from robo.storage.database import Database
from tests.ledger_factory import BASELINE_B, QueueWork, before_queues_ledger

EARNED = BASELINE_B.manual_minutes_per_item - BASELINE_B.residual_minutes_per_item  # 18


def robo_report(database_url: str, home: Path, *args: str) -> Result:
    env: dict[str, str | None] = {k: None for k in os.environ if k.startswith("ROBO_")}
    env["ROBO_LOCALE"] = "en"
    return CliRunner(env=env).invoke(
        cli,
        ["--home", str(home), "--database-url", database_url, "report", *args],
        catch_exceptions=False,
    )


def retried_across_two_runs(work: QueueWork) -> tuple[int, int, int]:
    """INV-1: an application exception in run 1 (3 tries), a success in run 2, 40 days later."""
    [item] = work.add("invoice-check", "INV-1")
    first = work.start()
    assert work.work(first, "invoice-check", "application_exception", attempts=3) == (item, 0.0)
    work.finish(first)
    assert work.queues.get(item)[0].status == "new"  # back in the queue for a later run
    work.tick(days=40)
    second = work.start()
    assert work.work(second, "invoice-check", "success") == (item, EARNED)
    work.finish(second)
    return item, first, second


# --- items, attempts, runs ------------------------------------------------------------------


def test_an_item_retried_by_a_second_run_is_one_item_with_its_minutes_once(
    db: Database, work: QueueWork
) -> None:
    retried_across_two_runs(work)

    [row] = build_report(db).rows
    f = row.figures

    assert (f.runs, f.items, f.item_rows, f.attempts) == (2, 1, 2, 4)
    assert (f.succeeded, f.business_exceptions, f.application_exceptions, f.skipped) == (1, 0, 0, 0)
    assert f.item_minutes_saved == EARNED and f.minutes_saved == EARNED
    assert f.success_rate == 1.0
    assert f.human_minutes == BASELINE_B.residual_minutes_per_item  # its success, not both runs
    result = check(db, build_report(db))
    assert (result.runs, result.items, result.item_rows, result.attempts) == (2, 1, 2, 4)
    assert "2 run(s) and 2 item row(s) (1 work item(s), 4 attempt(s);" in result.text


def test_by_month_the_item_counts_in_the_month_of_its_success_and_once_in_the_total(
    db: Database, work: QueueWork
) -> None:
    retried_across_two_runs(work)

    report = build_report(db, ("month",))
    october, november = (r.figures for r in report.rows)

    assert [r.keys["month"] for r in report.rows] == ["2026-10", "2026-11"]
    assert (october.runs, october.items, october.item_rows, october.attempts) == (1, 0, 1, 3)
    assert (november.runs, november.items, november.item_rows, november.attempts) == (1, 1, 1, 1)
    assert (report.totals.items, report.totals.item_rows, report.totals.runs) == (1, 2, 2)
    assert report.totals.minutes_saved == november.minutes_saved == EARNED
    assert check(db, report).ok


def test_a_period_counts_the_item_with_its_latest_outcome_in_that_period(
    db: Database, work: QueueWork
) -> None:
    retried_across_two_runs(work)
    october = parse_period("2026-10")

    [row] = build_report(db, ("process",), Scope(october.start, october.end)).rows

    assert (row.figures.items, row.figures.application_exceptions, row.figures.succeeded) == (
        1,
        1,
        0,
    )
    assert row.figures.minutes_saved == 0 and row.figures.success_rate == 0.0
    assert check(db, build_report(db, ("process",), Scope(october.start, october.end))).ok


def test_the_drill_down_shows_which_row_holds_the_credit(db: Database, work: QueueWork) -> None:
    item, first, second = retried_across_two_runs(work)

    drill = drill_down(db, Scope())

    assert [(r.run_id, r.figures.items, r.figures.item_rows) for r in drill.runs] == [
        (first, 0, 1),
        (second, 1, 1),
    ]
    assert [(i.run_id, i.queue_item_id, i.credited, i.item.status) for i in drill.items] == [
        (first, item, False, "application_exception"),
        (second, item, True, "success"),
    ]


def test_a_skipped_item_is_an_item_with_no_minutes_and_outside_the_success_rate(
    db: Database, work: QueueWork
) -> None:
    work.add("invoice-check", "INV-1", "INV-2", "INV-3")
    run = work.start()
    assert work.work(run, "invoice-check", "success")[1] == EARNED
    assert work.work(run, "invoice-check", "skipped")[1] == 0.0
    assert work.work(run, "invoice-check", "business_exception")[1] == 0.0
    work.finish(run)

    report = build_report(db)
    f = report.totals

    assert (f.items, f.succeeded, f.skipped, f.business_exceptions) == (3, 1, 1, 1)
    assert f.item_minutes_saved == EARNED
    assert f.success_rate == 0.5  # 1 succeeded of the 2 items that had work to do
    # checks left on the success + the exception by hand; nothing for the skipped item
    assert (
        f.human_minutes == BASELINE_B.residual_minutes_per_item + BASELINE_B.manual_minutes_per_item
    )
    assert report.row_dicts()[0]["skipped"] == 1
    assert report_csv(report).splitlines()[0].split(",")[:9] == [
        "process",
        "runs",
        "items",
        "item rows",
        "attempts",
        "succeeded",
        "business exc.",
        "application exc.",
        "skipped",
    ]
    assert check(db, report).ok


def test_a_run_that_lost_its_item_records_its_success_uncredited(
    db: Database, work: QueueWork
) -> None:
    [item] = work.add("invoice-check", "INV-1")
    slow = work.start()
    taken = work.take(slow, "invoice-check", lease_seconds=60)
    work.tick(minutes=5)  # the lease ran out: the next run reclaims the item and verifies it
    fast = work.start()
    assert [r.id for r in work.queues.reclaim("invoice-check", verify=True)] == [item]
    assert work.work(fast, "invoice-check", "success") == (item, EARNED)
    assert work.record(slow, taken, "success") == 0.0  # too late: no credit
    work.finish(fast)
    work.finish(slow)

    f = build_report(db).totals

    assert (f.items, f.item_rows, f.succeeded, f.runs) == (1, 2, 1, 2)
    assert f.item_minutes_saved == EARNED
    assert check(db, build_report(db)).ok


# --- human work ----------------------------------------------------------------------------


def test_a_resolved_item_shows_human_minutes_and_no_robot_credit(
    db: Database, work: QueueWork, database_url: str, tmp_path: Path
) -> None:
    [done, handed] = work.add("invoice-check", "INV-1", "INV-2")
    run = work.start()
    work.work(run, "invoice-check", "success")
    work.work(run, "invoice-check", "business_exception")
    work.finish(run)
    work.queues.take_for_human(handed, "wrong supplier number")
    work.queues.resolve(handed, 35, "fixed by hand in Chorus")

    report = build_report(db)
    f = report.totals

    assert (f.items, f.succeeded, f.business_exceptions) == (2, 1, 1)
    assert (f.resolved_by_human, f.human_minutes_spent) == (1, 35.0)
    assert f.item_minutes_saved == EARNED  # INV-1 only: the human's work is not saved time
    assert report.row_dicts()[0]["human_minutes_spent"] == 35.0
    assert report.row_dicts()[0]["human_hours_spent"] == round(35 / 60, 4)
    assert 'id="human-work" data-resolved="1"' in render_html(report)
    result = check(db, report)
    assert result.resolved_by_human == 1

    table = robo_report(database_url, tmp_path)
    assert table.exit_code == 0, table.output
    assert "resolving h" in table.output and "0.6" in table.output
    [row] = json.loads(robo_report(database_url, tmp_path, "--json").stdout)
    assert (row["resolved_by_human"], row["human_minutes_spent"]) == (1, 35.0)
    assert done != handed


def test_human_work_on_a_shared_queue_goes_to_the_process_that_last_held_the_item(
    db: Database, work: QueueWork
) -> None:
    [item] = work.add("inbox", "MAIL-1")  # a dispatcher's queue, drained by invoice-check
    run = work.start("invoice-check")
    work.work(run, "inbox", "application_exception", max_runs=1)
    work.finish(run)
    work.queues.resolve(item, 12)

    rows = {r.keys["process_id"]: r.figures for r in build_report(db).rows}

    assert set(rows) == {"invoice-check"}
    assert (rows["invoice-check"].resolved_by_human, rows["invoice-check"].human_minutes_spent) == (
        1,
        12.0,
    )
    assert check(db, build_report(db, ("region", "month"))).ok


# --- --check -----------------------------------------------------------------------------------


def test_check_catches_a_second_credit_hand_edited_on_an_uncredited_success(
    db: Database, work: QueueWork
) -> None:
    [item] = work.add("invoice-check", "INV-1")
    slow = work.start()
    taken = work.take(slow, "invoice-check", lease_seconds=60)
    work.tick(minutes=5)
    fast = work.start()
    work.queues.reclaim("invoice-check", verify=True)
    work.work(fast, "invoice-check", "success")
    work.record(slow, taken, "success")
    work.finish(fast)
    work.finish(slow)
    assert check(db, build_report(db)).ok

    with db.engine.begin() as connection:
        connection.execute(
            text("UPDATE items SET minutes_saved = 18 WHERE run_id = :run"), {"run": slow}
        )
    result = recompute(db, build_report(db))

    assert not result.ok and not result.warnings
    assert result.problems == [
        f"queue item {item} (INV-1 in queue invoice-check): credited 2 times in this scope: "
        f"run {fast} (18 min), run {slow} (18 min); run {fast} holds its credit. A queue item "
        "earns its minutes once, on the one success that holds its credit"
    ]
    with pytest.raises(ReportCheckFailed, match="credited 2 times"):
        check(db, build_report(db))


def test_check_catches_minutes_on_an_uncredited_success_alone_in_its_scope(
    db: Database, work: QueueWork
) -> None:
    [item] = work.add("invoice-check", "INV-1")
    slow = work.start()
    taken = work.take(slow, "invoice-check", lease_seconds=60)
    work.tick(minutes=5)
    work.queues.reclaim("invoice-check", verify=True)
    work.record(slow, taken, "success")  # lost: nobody else finished it yet
    work.finish(slow)
    with db.engine.begin() as connection:
        connection.execute(text("UPDATE items SET minutes_saved = 18"))

    result = recompute(db, build_report(db))

    assert [p.split(";")[0] for p in result.problems] == [
        f"queue item {item} (INV-1 in queue invoice-check): run {slow} records 18 min saved "
        "on a success that does not hold the item's credit"
    ]
    assert "no row holds its credit" in result.problems[0]


@pytest.mark.parametrize(
    ("edit", "says"),
    [
        (
            "credited_queue_item_id = queue_item_id",
            "a skipped holds queue item {item}'s credit; only a success earns an item its minutes",
        ),
        (
            "minutes_saved = 18",
            "skipped (nothing to do) but records 18 min saved; a skipped item saves 0",
        ),
    ],
)
def test_check_catches_a_credited_skipped_row(
    db: Database, work: QueueWork, edit: str, says: str
) -> None:
    run = work.start()
    work.add("invoice-check", "INV-1")
    item, _ = work.work(run, "invoice-check", "skipped")
    work.finish(run)
    assert check(db, build_report(db)).ok

    with db.engine.begin() as connection:
        connection.execute(text(f"UPDATE items SET {edit} WHERE status = 'skipped'"))
    result = recompute(db, build_report(db))

    assert not result.ok
    assert f"run {run} item INV-1: {says.format(item=item)}" in result.problems


def test_check_catches_robot_minutes_credited_to_a_resolved_item(
    db: Database, work: QueueWork
) -> None:
    run = work.start()
    work.add("invoice-check", "INV-1")
    item, _ = work.work(run, "invoice-check", "business_exception")
    work.finish(run)
    work.queues.resolve(item, 20)
    with db.engine.begin() as connection:  # as if the bot's exception had been a success
        connection.execute(
            text(
                "UPDATE items SET status = 'success', minutes_saved = 18, "
                "credited_queue_item_id = queue_item_id"
            )
        )

    result = recompute(db, build_report(db))

    assert (
        f"queue item {item} (INV-1 in queue invoice-check): resolved by a human, yet run {run} "
        "holds its credit (18 min saved); human work is never robot savings"
    ) in result.problems


def test_check_json_lists_problems_and_exits_1(
    db: Database, work: QueueWork, database_url: str, tmp_path: Path
) -> None:
    retried_across_two_runs(work)
    good = robo_report(database_url, tmp_path, "--check", "--json")
    assert good.exit_code == 0, good.output
    assert {k: json.loads(good.stdout)[k] for k in ("ok", "items", "item_rows", "attempts")} == {
        "ok": True,
        "items": 1,
        "item_rows": 2,
        "attempts": 4,
    }

    with db.engine.begin() as connection:
        connection.execute(text("UPDATE items SET minutes_saved = 18"))
    bad = robo_report(database_url, tmp_path, "--check", "--json")

    assert bad.exit_code == 1
    assert json.loads(bad.stdout)["ok"] is False
    table = robo_report(database_url, tmp_path, "--check")
    assert table.exit_code == 1
    assert "its run's baseline gives 0 for a application_exception" in table.output


# --- rows from before queues ----------------------------------------------------------------------


def test_duplicate_successes_from_before_queues_are_a_warning_not_a_failure(
    database_url: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    first, second = before_queues_ledger(
        database_url,
        monkeypatch,
        [
            [("INV-1", "success"), ("INV-2", "business_exception")],
            [("INV-1", "success"), ("INV-2", "success")],  # INV-1 done twice, as before queues
        ],
    )
    db = Database(database_url)  # migration 0004 links the rows to queue items
    try:
        report = build_report(db)
        result = recompute(db, report)
        with db.engine.connect() as connection:
            inv1 = connection.execute(
                text("SELECT id FROM queue_items WHERE reference = 'INV-1'")
            ).scalar_one()
    finally:
        db.close()

    f = report.totals
    assert (f.runs, f.items, f.item_rows, f.succeeded, f.business_exceptions) == (2, 2, 4, 2, 0)
    assert f.item_minutes_saved == 3 * EARNED  # as recorded then: INV-1's second success too
    assert result.ok
    assert result.warnings == [
        f"queue item {inv1} (INV-1 in queue invoice-check): done again before queues by run "
        f"{second}; 18 min recorded then still count (migration 0004 credited only the first "
        f"success: run {first} holds its credit)"
    ]
    out = robo_report(database_url, tmp_path, "--check")
    assert out.exit_code == 0, out.output
    assert "check passed" in out.output and "1 warning(s):" in out.output
    assert (
        json.loads(robo_report(database_url, tmp_path, "--check", "--json").stdout)["warnings"]
        == result.warnings
    )


def test_a_hand_edited_credit_on_a_migrated_row_is_still_a_failure(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    before_queues_ledger(
        database_url, monkeypatch, [[("INV-1", "success")], [("INV-1", "success")]]
    )
    db = Database(database_url)
    try:
        with db.engine.begin() as connection:  # not what the run recorded then
            connection.execute(text("UPDATE items SET minutes_saved = 60 WHERE id = 2"))
        result = recompute(db, build_report(db))
    finally:
        db.close()

    assert not result.ok
    assert any("records 60 min saved, its run's baseline gives 18" in p for p in result.problems)
