"""Report figures against totals computed independently from the generated item rows.

The ledger is written through the real Ledger API (exceptions, retries,
abandoned, empty and unfinished runs, several regions, a baseline change in
mid-October); expected totals come from the facts the factory kept, on
SQLite and PostgreSQL.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import pytest
from sqlalchemy import text

from robo.definition import Baseline
from robo.errors import ReportCheckFailed
from robo.reports.check import check, recompute
from robo.reports.drilldown import drill_down
from robo.reports.figures import Figures
from robo.reports.headline import hours_label
from robo.reports.hours import hours_by_process
from robo.reports.periods import parse_period
from robo.reports.queries import Scope
from robo.reports.report import build_report
from robo.storage.database import Database
from tests.ledger_factory import (
    BASELINE_A,
    BASELINE_B,
    CHANGE,
    RunFact,
    build_ledger,
    expected_totals,
)

GROUPINGS = [
    ("process",),
    ("region",),
    ("application",),
    ("origin",),
    ("year",),
    ("quarter",),
    ("month",),
    ("week",),
    ("region", "origin"),
    ("process", "month"),
    ("region", "quarter", "application"),
]
KEYS = {"process": "process_id", "origin": "origin_region"}


@pytest.fixture
def db(database_url: str) -> Iterator[Database]:
    database = Database(database_url)
    yield database
    database.close()


@pytest.fixture
def facts(db: Database, monkeypatch: pytest.MonkeyPatch) -> list[RunFact]:
    return build_ledger(db, monkeypatch)


def assert_same(got: Figures, want: dict[str, float], where: object) -> None:
    assert (
        got.runs,
        got.items,
        got.succeeded,
        got.business_exceptions,
        got.application_exceptions,
    ) == (
        want["runs"],
        want["items"],
        want["succeeded"],
        want["business_exceptions"],
        want["application_exceptions"],
    ), where
    assert got.minutes_saved == pytest.approx(want["minutes_saved"]), where
    assert got.robot_seconds == pytest.approx(want["robot_seconds"]), where
    assert got.human_minutes == pytest.approx(want["human_minutes"]), where


def compare(
    db: Database, facts: list[RunFact], by: tuple[str, ...], scope: Scope, only: object = None
) -> None:
    report = build_report(db, by, scope)
    keys = tuple(KEYS.get(name, name) for name in by)
    expected = expected_totals(facts, keys, only)
    got = {tuple(row.keys[k] for k in keys): row.figures for row in report.rows}
    assert set(got) == set(expected), by
    for group, want in expected.items():
        assert_same(got[group], want, (by, group))
    everything = expected_totals(facts, (), only).get((), None)
    if everything:
        assert_same(report.totals, everything, "total")
        assert_same(report.headline.totals, everything, "headline")


def test_every_grouping_matches_totals_computed_from_the_items(
    db: Database, facts: list[RunFact]
) -> None:
    assert any(f.status == "abandoned" for f in facts)
    assert any(f.status is None for f in facts)
    assert any(not f.items for f in facts)
    assert any(a > 1 for f in facts for _, a, _ in f.items)
    for by in GROUPINGS:
        compare(db, facts, by, Scope())


def test_time_groups_use_the_run_start_in_utc(db: Database, facts: list[RunFact]) -> None:
    months = {r.keys["month"] for r in build_report(db, ("month",)).rows}
    weeks = {r.keys["week"] for r in build_report(db, ("week",)).rows}
    quarters = {r.keys["quarter"] for r in build_report(db, ("quarter",)).rows}

    assert "2026-09" in months  # the run at 23:50 UTC on 30 September (already October in Paris)
    assert "2026-W53" in weeks and "2027-W53" not in weeks
    assert quarters == {"2026-Q3", "2026-Q4", "2027-Q1"}


def test_period_and_label_filters_keep_only_their_runs(db: Database, facts: list[RunFact]) -> None:
    october = parse_period("2026-10")
    scope = Scope(october.start, october.end, ("residence-permit",), ("occitanie", "guyane"))

    compare(
        db,
        facts,
        ("region",),
        scope,
        lambda f: (
            f.started_at in october
            and f.process_id == "residence-permit"
            and f.region in ("occitanie", "guyane")
        ),
    )
    compare(
        db,
        facts,
        ("process",),
        Scope(applications=("chorus",)),
        lambda f: f.application == "chorus",
    )
    assert build_report(db, ("process",), Scope(regions=("nowhere",))).rows == []


def test_a_baseline_change_applies_from_its_version_on(db: Database, facts: list[RunFact]) -> None:
    october = parse_period("2026-10")
    report = build_report(
        db, ("process",), Scope(october.start, october.end, ("residence-permit",))
    )

    [row] = report.row_dicts()
    uses = {b["version"]: b for b in row["baselines"]}
    assert set(uses) == {"1.0.0", "1.1.0"}
    assert uses["1.0.0"]["measured_by"] == BASELINE_A.measured_by
    assert uses["1.1.0"]["measured_on"] == BASELINE_B.measured_on.isoformat()
    assert uses["1.0.0"]["last_run"] < CHANGE.isoformat() <= uses["1.1.0"]["first_run"]
    for version in uses:
        mine = [
            f
            for f in facts
            if f.process_id == "residence-permit"
            and f.started_at in october
            and f.version == version
        ]
        assert uses[version]["runs"] == len(mine)
        assert uses[version]["hours_saved"] == pytest.approx(
            sum(f.expected()["minutes_saved"] for f in mine) / 60, abs=1e-4
        )


def test_a_new_baseline_never_rewrites_past_months(
    db: Database, facts: list[RunFact], monkeypatch: pytest.MonkeyPatch
) -> None:
    before = [r.as_dict() for r in build_report(db, ("process", "month")).rows]

    newer = Baseline(
        manual_minutes_per_item=45,
        residual_minutes_per_item=1,
        manual_minutes_per_run=30,
        measured_by="Nouvelle mesure",
        measured_on=dt.date(2027, 1, 20),
    )
    more = build_ledger(
        db,
        monkeypatch,
        seed=99,
        runs=15,
        start=dt.datetime(2027, 2, 1, tzinfo=dt.UTC),
        days=20,
        edge_cases=False,
        baselines={p: ("3.0.0", newer) for p in ("residence-permit", "hr-claims", "invoice-check")},
    )
    after = [r.as_dict() for r in build_report(db, ("process", "month")).rows]

    assert [r for r in after if r["month"] < "2027-02"] == before
    compare(db, facts + more, ("process", "month"), Scope())
    assert "3.0.0" in {b["version"] for r in build_report(db).row_dicts() for b in r["baselines"]}
    assert {b["version"] for r in build_report(db).row_dicts() for b in r["baselines"]} >= {"3.0.0"}


def test_the_headline_counts_processes_with_a_successful_item(
    db: Database, facts: list[RunFact]
) -> None:
    headline = build_report(db).headline
    productive = [f for f in facts if f.count("success")]

    assert headline.processes == len({f.process_id for f in productive}) == 3
    assert headline.regions == len({f.region for f in productive}) == 3
    assert headline.go_live == min(f.started_at for f in facts)
    assert headline.text.startswith("3 processes in production, ")
    assert (
        f"{hours_label(headline.totals.hours_saved)} hours saved since go-live "
        f"({headline.go_live.day} {headline.go_live:%B %Y})" in headline.text
    )
    assert [r.keys["process_id"] for r in headline.top] == sorted(
        {f.process_id for f in facts},
        key=lambda p: -sum(f.expected()["minutes_saved"] for f in facts if f.process_id == p),
    )


def test_fte_divides_hours_by_the_yearly_work_time(db: Database, facts: list[RunFact]) -> None:
    report = build_report(db, fte_hours_per_year=1600)
    data = report.totals.as_dict(1600)

    assert data["fte"] == pytest.approx(report.totals.hours_saved / 1600, abs=1e-4)
    assert report.row_dicts()[0]["fte"] == pytest.approx(
        report.rows[0].figures.hours_saved / 1600, abs=1e-4
    )


def test_the_check_recomputes_every_total_and_passes(db: Database, facts: list[RunFact]) -> None:
    for by in GROUPINGS:
        result = check(db, build_report(db, by))
        assert result.ok
        assert result.items == sum(len(f.items) for f in facts)


def test_the_check_fails_loudly_on_a_tampered_item(db: Database, facts: list[RunFact]) -> None:
    with db.engine.begin() as connection:
        connection.execute(text("UPDATE items SET minutes_saved = minutes_saved + 60 WHERE id = 3"))
        connection.execute(text("UPDATE runs SET run_minutes_saved = 999 WHERE id = 2"))

    result = recompute(db, build_report(db, ("month",)))
    with pytest.raises(ReportCheckFailed) as raised:
        check(db, build_report(db, ("month",)))

    assert len(result.problems) == 2
    assert "check FAILED: 2 mismatch(es)" in raised.value.message
    assert "run 2: records 999 per-run minutes saved" in raised.value.message
    assert "min saved, its run's baseline gives" in raised.value.message


def test_the_drill_down_adds_up_to_the_figure(db: Database, facts: list[RunFact]) -> None:
    scope = Scope(*(lambda p: (p.start, p.end))(parse_period("2026-10")), processes=("hr-claims",))
    [row] = build_report(db, ("process",), scope).rows
    drill = drill_down(db, scope)

    assert len(drill.runs) == row.figures.runs
    assert len(drill.items) == drill.items_total == row.figures.items
    assert sum(r.figures.minutes_saved for r in drill.runs) == pytest.approx(
        row.figures.minutes_saved
    )
    assert sum(line.item.minutes_saved for line in drill.items) == pytest.approx(
        row.figures.item_minutes_saved
    )
    assert len(drill_down(db, scope, limit=3).items) == min(3, row.figures.items)


def test_hours_by_process_is_the_report_grouped_by_process(
    db: Database, facts: list[RunFact]
) -> None:
    rows = hours_by_process(db)
    expected = expected_totals(facts, ("process_id",))

    assert {r.process_id: r.minutes_saved for r in rows} == pytest.approx(
        {k[0]: v["minutes_saved"] for k, v in expected.items()}
    )
    assert [r.minutes_saved for r in rows] == sorted((r.minutes_saved for r in rows), reverse=True)


def test_an_empty_ledger_gives_an_empty_report(db: Database) -> None:
    report = build_report(db, ("region", "month"))

    assert report.rows == []
    assert report.headline.text == (
        "No production runs yet: nothing saved so far (test and demo runs count with "
        "--include-test)."
    )
    assert check(db, report).ok
