"""Euros: minutes saved × the hour cost each run recorded (a change applies to later runs
only), weighed against the build and running costs in the definition; `--check`
recomputes the euros from the item rows.
"""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import text

from robo.errors import ReportCheckFailed
from robo.ledger import HourCost
from robo.reports.check import check
from robo.reports.report import build_report
from robo.storage.database import Database
from robo.storage.models import ProcessRow, VersionRow
from tests.ledger_factory import BASELINE_A, QueueWork

EARNED = BASELINE_A.manual_minutes_per_item - BASELINE_A.residual_minutes_per_item  # 25
PER_RUN = BASELINE_A.manual_minutes_per_run  # 5
START = dt.datetime(2026, 7, 1, 9, tzinfo=dt.UTC)


@pytest.fixture
def work_start() -> dt.datetime:
    return START


def run_of(
    work: QueueWork,
    cost: HourCost | None,
    files: int,
    region: str = "occitanie",
    origin: str | None = None,
) -> int:
    """A completed production run of ``files`` successes, at ``cost``, in ``region``
    (``origin``: the region that built the process, for a replica)."""
    references = [f"F-{region[:3]}-{work.now:%m%d%H%M%S}-{n}" for n in range(files)]
    work.add("permits", *references)
    run = work.ledger.start_run(
        process_id="permits", version_id=work.version_id, version="1.0.0",
        baseline=BASELINE_A, region=region, parameters={}, hour_cost=cost,
        origin_region=origin,
    )  # fmt: skip
    for _ in references:
        work.work(run, "permits", "success")
    work.finish(run)
    return run


def deploy_cost(db: Database, build_eur: float, run_eur_per_year: float = 0) -> None:
    """The process's active version, with a cost block (what the report reads)."""
    at = dt.datetime(2026, 6, 1, tzinfo=dt.UTC)
    with db.session() as session:
        version = VersionRow(
            process_id="permits", version="1.0.0", content_hash="1" * 64, definition_text="",
            definition={"cost": {"build_days": 15, "build_eur": build_eur,
                                 "run_eur_per_year": run_eur_per_year}},
            deployed_at=at,
        )  # fmt: skip
        session.add(version)
        session.flush()
        session.add(
            ProcessRow(id="permits", active_version_id=version.id, created_at=at, updated_at=at)
        )


def test_an_hour_cost_changed_mid_period_applies_each_cost_to_its_own_runs(
    db: Database, work: QueueWork
) -> None:
    run_of(work, HourCost(30.0, "DRH Occitanie", "2026-01-10"), files=2)
    work.tick(days=20)
    run_of(work, HourCost(40.0, "DRH Occitanie", "2026-07-15"), files=3)
    work.tick(days=1)
    run_of(work, None, files=1)  # before anyone set a cost: no euros, said so

    report = build_report(db)
    check(db, report)
    t = report.totals
    first = (2 * EARNED + PER_RUN) / 60 * 30
    second = (3 * EARNED + PER_RUN) / 60 * 40
    assert t.euros_saved == pytest.approx(first + second)
    assert (t.costed_runs, t.runs) == (2, 3)
    assert report.as_dict()["totals"]["euros_saved"] == pytest.approx(first + second, abs=0.01)
    with db.session() as session:
        set_by = session.execute(text("SELECT hour_cost_set_by, hour_cost_set_on FROM runs")).all()
    assert set_by[0] == ("DRH Occitanie", "2026-01-10")


def test_check_recomputes_the_euros_and_fails_an_edited_hour_cost(
    db: Database, work: QueueWork
) -> None:
    run_of(work, HourCost(30.0), files=2)
    report = build_report(db)
    check(db, report)
    with db.session() as session:
        session.execute(text("UPDATE runs SET hour_cost_eur = 45"))
    with pytest.raises(ReportCheckFailed, match="euros_saved"):
        check(db, report)


def test_a_robot_pays_back_on_the_run_whose_savings_reach_its_cost(
    db: Database, work: QueueWork
) -> None:
    deploy_cost(db, build_eur=100.0)
    cost = HourCost(30.0)  # one run of 3 files: (75 + 5) min = 40 €
    ends = []
    for _ in range(4):
        run_of(work, cost, files=3)
        ends.append(work.now)
        work.tick(days=7)

    report = build_report(db)
    (permits,) = report.investments
    assert permits.euros_saved == pytest.approx(160.0)
    assert permits.net == pytest.approx(60.0)
    assert permits.payback == ends[2]  # 40, 80, 120 ≥ 100: the third run
    programme = report.programme
    assert programme is not None and programme.payback == ends[2]
    assert report.as_dict()["investment"]["processes"][0]["payback"] == ends[2].isoformat()


def test_running_costs_accrue_and_a_robot_not_paid_back_says_how_far_it_is(
    db: Database, work: QueueWork
) -> None:
    deploy_cost(db, build_eur=1_000.0, run_eur_per_year=365.25)  # 1 € a day
    run_of(work, HourCost(30.0), files=3)  # 40 €
    report = build_report(db)
    (permits,) = report.investments
    days = (report.generated_at - START).total_seconds() / 86400
    assert permits.run_eur_so_far == pytest.approx(days, rel=1e-3)
    assert permits.payback is None
    assert permits.recovered == pytest.approx(40.0 / (1_000.0 + permits.run_eur_so_far))


def test_each_region_bears_its_running_costs_the_builder_its_build_and_they_add_up(
    db: Database, work: QueueWork
) -> None:
    deploy_cost(db, build_eur=100.0, run_eur_per_year=365.25)  # 1 € a day in each region
    run_of(work, HourCost(30.0), files=3)  # Occitanie built it: 40 €
    work.tick(days=10)
    run_of(work, HourCost(20.0), files=3, region="guyane", origin="occitanie")  # 80 min: 26.67 €

    report = build_report(db)
    regions = {i.region: i for i in report.region_investments}
    programme = report.programme
    assert programme is not None and set(regions) == {"occitanie", "guyane"}
    occitanie, guyane = regions["occitanie"], regions["guyane"]
    assert (occitanie.build_eur, guyane.build_eur) == (100.0, 0.0)  # a replica builds nothing
    assert occitanie.euros_saved == pytest.approx(40.0)
    assert guyane.euros_saved == pytest.approx(80 / 60 * 20)
    # Running costs from each region's own go-live: Guyane started 10 days later.
    assert occitanie.run_eur_so_far - guyane.run_eur_so_far == pytest.approx(10.0, rel=1e-3)
    for figure in ("build_eur", "euros_saved", "run_eur_so_far", "cost_so_far", "net"):
        assert getattr(occitanie, figure) + getattr(guyane, figure) == pytest.approx(
            getattr(programme, figure)
        ), figure
    (permits,) = report.investments
    assert permits.cost_so_far == pytest.approx(programme.cost_so_far)
    data = report.as_dict()["investment"]["regions"]
    assert [(r["region"], r["build_eur"]) for r in data] == [("guyane", 0.0), ("occitanie", 100.0)]
