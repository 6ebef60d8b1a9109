"""The ledger: runs, items and the minutes they saved, on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

import robo.ledger
from robo.definition import Baseline
from robo.errors import DuplicateItem, RunNotFound
from robo.ledger import ItemOutcome, ItemStatus, Ledger
from robo.loader import load_process
from robo.redaction import Redactor
from robo.regional import RegionDefaults
from robo.registry import ProcessVersion, Registry
from robo.reports.hours import hours_by_process
from robo.storage.database import Database
from tests.conftest import definition

MakeProcess = Callable[..., Path]
T0 = dt.datetime(2026, 3, 2, 8, 0, tzinfo=dt.UTC)


@pytest.fixture
def db(database_url: str) -> Iterator[Database]:
    database = Database(database_url)
    yield database
    database.close()


@pytest.fixture
def registry(db: Database) -> Registry:
    return Registry(db, RegionDefaults("Europe/Paris", "FR"), actor="tester")


@pytest.fixture
def ledger(db: Database) -> Ledger:
    return Ledger(db)


@pytest.fixture
def deploy(registry: Registry, make_process: MakeProcess) -> Callable[..., ProcessVersion]:
    """Deploy a process with the given baseline; return its active version."""

    def run(
        process_id: str = "sample-process",
        version: str = "1.0.0",
        manual: float = 10,
        residual: float = 2,
        per_run: float = 0,
    ) -> ProcessVersion:
        spec = definition(id=process_id, version=version)
        spec["baseline"].update(
            manual_minutes_per_item=manual,
            residual_minutes_per_item=residual,
            manual_minutes_per_run=per_run,
        )
        registry.deploy(load_process(make_process(spec, name=f"{process_id}-{version}")))
        return registry.active(process_id)

    return run


def start(ledger: Ledger, version: ProcessVersion, **kwargs: Any) -> int:
    d = version.definition
    return ledger.start_run(
        process_id=d.id,
        version_id=version.version_id,
        version=d.version,
        baseline=d.baseline,
        region=kwargs.pop("region", "occitanie"),
        parameters=kwargs.pop("parameters", {}),
        **kwargs,
    )


def outcome(
    reference: str, status: ItemStatus = "success", position: int = 0, **kwargs: Any
) -> ItemOutcome:
    return ItemOutcome(
        position=position,
        reference=reference,
        status=status,
        attempts=kwargs.pop("attempts", 1),
        started_at=kwargs.pop("started_at", T0),
        finished_at=kwargs.pop("finished_at", T0 + dt.timedelta(seconds=3)),
        **kwargs,
    )


# --- minutes saved per item ----------------------------------------------------------


def test_a_successful_item_saves_manual_minus_residual_minutes(
    ledger: Ledger, deploy: Callable[..., ProcessVersion]
) -> None:
    run_id = start(ledger, deploy(manual=12.5, residual=2.25))
    assert ledger.record_item(run_id, outcome("A1")) == pytest.approx(10.25)
    (item,) = ledger.run_detail(run_id).items
    assert item.minutes_saved == pytest.approx(10.25)


@pytest.mark.parametrize("status", ["business_exception", "application_exception"])
def test_an_item_in_exception_saves_no_minutes(
    ledger: Ledger, deploy: Callable[..., ProcessVersion], status: ItemStatus
) -> None:
    run_id = start(ledger, deploy())
    assert ledger.record_item(run_id, outcome("A1", status, error="refused")) == 0
    summary = ledger.summary(run_id)
    assert summary.minutes_saved == 0
    assert summary.succeeded == 0


def test_run_counts_and_minutes_add_up_by_status(
    ledger: Ledger, deploy: Callable[..., ProcessVersion]
) -> None:
    run_id = start(ledger, deploy(manual=10, residual=2))
    statuses: list[ItemStatus] = [
        "success",
        "success",
        "business_exception",
        "application_exception",
        "application_exception",
        "success",
    ]
    for position, status in enumerate(statuses):
        ledger.record_item(run_id, outcome(f"R{position}", status, position=position))
    ledger.finish_run(run_id, "completed")
    summary = ledger.summary(run_id)
    assert (summary.succeeded, summary.business_exceptions, summary.application_exceptions) == (
        3,
        1,
        2,
    )
    assert summary.minutes_saved == pytest.approx(24)
    assert summary.status == "completed"


def test_the_baseline_is_the_one_snapshotted_when_the_run_started(
    ledger: Ledger, deploy: Callable[..., ProcessVersion]
) -> None:
    old_run = start(ledger, deploy(version="1.0.0", manual=10, residual=2, per_run=5))
    ledger.record_item(old_run, outcome("A1", position=0))
    new_version = deploy(version="2.0.0", manual=30, residual=5, per_run=50)
    new_run = start(ledger, new_version)
    # Items of the old run recorded after the new deploy still use the old baseline.
    assert ledger.record_item(old_run, outcome("A2", position=1)) == pytest.approx(8)
    assert ledger.record_item(new_run, outcome("A1")) == pytest.approx(25)
    ledger.finish_run(old_run, "completed")
    ledger.finish_run(new_run, "completed")
    assert ledger.summary(old_run).minutes_saved == pytest.approx(8 + 8 + 5)
    assert ledger.summary(new_run).minutes_saved == pytest.approx(25 + 50)
    assert ledger.run_detail(old_run).baseline["manual_minutes_per_item"] == 10
    assert ledger.run_detail(old_run).run.version == "1.0.0"


# --- minutes saved per run ----------------------------------------------------------


def test_per_run_minutes_count_when_an_item_succeeded(
    ledger: Ledger, deploy: Callable[..., ProcessVersion]
) -> None:
    run_id = start(ledger, deploy(manual=10, residual=2, per_run=15))
    ledger.record_item(run_id, outcome("A1", "success", position=0))
    ledger.record_item(run_id, outcome("A2", "business_exception", position=1))
    ledger.finish_run(run_id, "completed")
    assert ledger.summary(run_id).minutes_saved == pytest.approx(8 + 15)


def test_per_run_minutes_do_not_count_when_no_item_succeeded(
    ledger: Ledger, deploy: Callable[..., ProcessVersion]
) -> None:
    run_id = start(ledger, deploy(per_run=15))
    ledger.record_item(run_id, outcome("A1", "business_exception", position=0))
    ledger.record_item(run_id, outcome("A2", "application_exception", position=1))
    ledger.finish_run(run_id, "completed")
    assert ledger.summary(run_id).minutes_saved == 0


def test_per_run_minutes_do_not_count_for_an_empty_run(
    ledger: Ledger, deploy: Callable[..., ProcessVersion]
) -> None:
    run_id = start(ledger, deploy(per_run=15))
    ledger.finish_run(run_id, "failed", error="portal down")
    summary = ledger.summary(run_id)
    assert summary.minutes_saved == 0
    assert (summary.status, summary.error) == ("failed", "portal down")


def test_per_run_minutes_wait_for_the_run_to_finish(
    ledger: Ledger, deploy: Callable[..., ProcessVersion]
) -> None:
    run_id = start(ledger, deploy(manual=10, residual=2, per_run=15))
    ledger.record_item(run_id, outcome("A1"))
    assert ledger.summary(run_id).minutes_saved == pytest.approx(8)
    assert ledger.summary(run_id).finished_at is None


# --- each item once -------------------------------------------------------------------


def test_recording_the_same_reference_twice_raises_and_counts_once(
    ledger: Ledger, deploy: Callable[..., ProcessVersion]
) -> None:
    run_id = start(ledger, deploy(manual=10, residual=2))
    ledger.record_item(run_id, outcome("A1", position=0))
    with pytest.raises(DuplicateItem, match=f"item 'A1' is already recorded in run {run_id}"):
        ledger.record_item(run_id, outcome("A1", position=1))
    summary = ledger.summary(run_id)
    assert summary.succeeded == 1
    assert summary.minutes_saved == pytest.approx(8)
    assert [i.reference for i in ledger.run_detail(run_id).items] == ["A1"]
    # The ledger is still usable after the refused write.
    ledger.record_item(run_id, outcome("A2", position=1))
    assert ledger.recorded_references(run_id) == {"A1", "A2"}


def test_the_same_reference_may_appear_in_different_runs(
    ledger: Ledger, deploy: Callable[..., ProcessVersion]
) -> None:
    version = deploy()
    first, second = start(ledger, version), start(ledger, version)
    ledger.record_item(first, outcome("A1"))
    ledger.record_item(second, outcome("A1"))
    assert ledger.recorded_references(first) == ledger.recorded_references(second) == {"A1"}


def test_recording_into_an_unknown_run_is_refused(ledger: Ledger) -> None:
    with pytest.raises(RunNotFound, match="no run 999 in the ledger; `robo runs` lists"):
        ledger.record_item(999, outcome("A1"))
    with pytest.raises(RunNotFound):
        ledger.run_detail(999)


# --- reading runs -----------------------------------------------------------------


def test_runs_are_listed_newest_first(
    ledger: Ledger, deploy: Callable[..., ProcessVersion]
) -> None:
    version = deploy()
    ids = [start(ledger, version) for _ in range(3)]
    assert [r.id for r in ledger.runs()] == list(reversed(ids))
    assert [r.id for r in ledger.runs(limit=2)] == list(reversed(ids))[:2]


def test_runs_are_filtered_by_process_and_status(
    ledger: Ledger, deploy: Callable[..., ProcessVersion]
) -> None:
    alpha, beta = deploy("alpha"), deploy("beta")
    a1, a2, b1 = start(ledger, alpha), start(ledger, alpha), start(ledger, beta)
    ledger.finish_run(a1, "completed")
    ledger.finish_run(b1, "failed")
    assert [r.id for r in ledger.runs(process_id="alpha")] == [a2, a1]
    assert [r.id for r in ledger.runs(status="running")] == [a2]
    assert [r.id for r in ledger.runs(process_id="beta", status="failed")] == [b1]
    assert ledger.runs(process_id="beta", status="completed") == []
    assert ledger.runs(process_id="gamma") == []


def test_run_detail_tells_the_whole_story_of_a_run(
    ledger: Ledger, deploy: Callable[..., ProcessVersion]
) -> None:
    version = deploy(manual=10, residual=2, per_run=3)
    run_id = start(
        ledger,
        version,
        parameters={"portal_url": "http://portal"},
        trigger="schedule",
        input_name="items.csv",
        region="bretagne",
    )
    ledger.set_items_total(run_id, 2)
    ledger.record_item(
        run_id,
        outcome(
            "B2",
            "business_exception",
            position=1,
            attempts=1,
            error_type="BusinessException",
            error="amount exceeds commitment",
            evidence=["screens/B2.png"],
        ),
    )
    ledger.record_item(
        run_id,
        outcome("A1", position=0, attempts=2, output={"number": "N-1"}, data={"ref": "A1"}),
    )
    ledger.finish_run(run_id, "completed")
    detail = ledger.run_detail(run_id)
    assert detail.parameters == {"portal_url": "http://portal"}
    assert detail.input_name == "items.csv"
    assert detail.host
    assert detail.baseline == {
        "manual_minutes_per_item": 10,
        "residual_minutes_per_item": 2,
        "manual_minutes_per_run": 3,
        "measured_by": "Test team",
        "measured_on": "2026-01-15",
    }
    run = detail.run
    assert (run.process_id, run.version, run.region, run.trigger, run.status) == (
        "sample-process",
        "1.0.0",
        "bretagne",
        "schedule",
        "completed",
    )
    assert run.items_total == 2
    assert run.minutes_saved == pytest.approx(8 + 3)
    assert run.duration_seconds is not None and run.duration_seconds >= 0
    first, second = detail.items  # ordered by position, not by recording order
    assert (first.reference, first.status, first.attempts, first.output) == (
        "A1",
        "success",
        2,
        {"number": "N-1"},
    )
    assert first.minutes_saved == pytest.approx(8)
    assert first.duration_seconds == pytest.approx(3)
    assert (second.reference, second.error_type, second.error, second.evidence) == (
        "B2",
        "BusinessException",
        "amount exceeds commitment",
        ["screens/B2.png"],
    )
    assert second.minutes_saved == 0


def test_secret_values_are_masked_in_what_the_ledger_stores(
    db: Database, deploy: Callable[..., ProcessVersion]
) -> None:
    redactor = Redactor()
    redactor.add("hunter2-pw")
    ledger = Ledger(db, redactor)
    run_id = start(ledger, deploy(), parameters={"login": "agent:hunter2-pw"})
    ledger.record_item(
        run_id,
        outcome(
            "A1",
            "application_exception",
            error="login failed for hunter2-pw",
            output={"echo": "hunter2-pw"},
        ),
    )
    ledger.finish_run(run_id, "failed", error="bad password hunter2-pw")
    detail = ledger.run_detail(run_id)
    assert "hunter2-pw" not in repr(detail)
    assert detail.parameters == {"login": "agent:[secret]"}
    assert detail.items[0].error == "login failed for [secret]"


# --- hours by process -------------------------------------------------------------


@dataclass
class PlannedRun:
    process_id: str
    started_at: dt.datetime
    statuses: list[ItemStatus]
    finished: bool
    saved_per_item: float
    per_run: float
    expected_minutes: float = field(init=False)

    def __post_init__(self) -> None:
        successes = self.statuses.count("success")
        run_part = self.per_run if (self.finished and successes) else 0.0
        self.expected_minutes = successes * self.saved_per_item + run_part


def plan_runs(baselines: dict[str, Baseline], seed: int = 7) -> list[PlannedRun]:
    rng = random.Random(seed)
    choices: list[ItemStatus] = [
        "success",
        "success",
        "success",
        "business_exception",
        "application_exception",
    ]
    plans = []
    for day in range(10):
        for process_id, baseline in baselines.items():
            if rng.random() < 0.3:
                continue
            plans.append(
                PlannedRun(
                    process_id=process_id,
                    started_at=T0 + dt.timedelta(days=day, minutes=rng.randint(0, 600)),
                    statuses=[rng.choice(choices) for _ in range(rng.randint(0, 6))],
                    finished=rng.random() < 0.85,
                    saved_per_item=baseline.minutes_saved_per_item,
                    per_run=baseline.manual_minutes_per_run,
                )
            )
    return plans


def expected_hours(
    plans: list[PlannedRun], since: dt.datetime | None = None, until: dt.datetime | None = None
) -> dict[str, dict[str, float]]:
    result: dict[str, dict[str, float]] = {}
    for plan in plans:
        if since is not None and plan.started_at < since:
            continue
        if until is not None and plan.started_at >= until:
            continue
        row = result.setdefault(
            plan.process_id,
            {"runs": 0, "items": 0, "succeeded": 0, "business": 0, "application": 0, "minutes": 0},
        )
        row["runs"] += 1
        row["items"] += len(plan.statuses)
        row["succeeded"] += plan.statuses.count("success")
        row["business"] += plan.statuses.count("business_exception")
        row["application"] += plan.statuses.count("application_exception")
        row["minutes"] += plan.expected_minutes
    return result


@pytest.fixture
def planned(
    ledger: Ledger, deploy: Callable[..., ProcessVersion], monkeypatch: pytest.MonkeyPatch
) -> list[PlannedRun]:
    versions = {
        "alpha": deploy("alpha", manual=10, residual=2, per_run=5),
        "beta": deploy("beta", manual=7.5, residual=0.25, per_run=0),
        "gamma": deploy("gamma", manual=3, residual=3, per_run=12),
    }
    plans = plan_runs({pid: v.definition.baseline for pid, v in versions.items()})
    for plan in plans:
        monkeypatch.setattr(robo.ledger, "utcnow", lambda at=plan.started_at: at)
        run_id = start(ledger, versions[plan.process_id])
        for position, status in enumerate(plan.statuses):
            ledger.record_item(run_id, outcome(f"{plan.process_id}-{position}", status, position))
        if plan.finished:
            ledger.finish_run(run_id, "completed")
    monkeypatch.undo()
    return plans


def assert_hours_match(actual: list[Any], expected: dict[str, dict[str, float]]) -> None:
    got = {
        row.process_id: {
            "runs": row.runs,
            "items": row.items,
            "succeeded": row.succeeded,
            "business": row.business_exceptions,
            "application": row.application_exceptions,
            "minutes": pytest.approx(row.minutes_saved),
        }
        for row in actual
    }
    assert got == expected


def test_hours_by_process_match_an_independent_count(
    db: Database, planned: list[PlannedRun]
) -> None:
    rows = hours_by_process(db)
    expected = expected_hours(planned)
    assert set(expected) == {"alpha", "beta", "gamma"}
    assert_hours_match(rows, expected)
    assert [r.minutes_saved for r in rows] == sorted((r.minutes_saved for r in rows), reverse=True)
    gamma = next(r for r in rows if r.process_id == "gamma")
    assert gamma.hours_saved == pytest.approx(gamma.minutes_saved / 60)


def test_hours_by_process_respect_since_and_until(db: Database, planned: list[PlannedRun]) -> None:
    since, until = T0 + dt.timedelta(days=3), T0 + dt.timedelta(days=7)
    assert_hours_match(hours_by_process(db, since=since), expected_hours(planned, since=since))
    assert_hours_match(hours_by_process(db, until=until), expected_hours(planned, until=until))
    assert_hours_match(
        hours_by_process(db, since=since, until=until),
        expected_hours(planned, since=since, until=until),
    )


def test_hours_by_process_include_the_run_starting_exactly_at_since(
    db: Database, planned: list[PlannedRun]
) -> None:
    boundary = planned[len(planned) // 2].started_at
    rows = hours_by_process(db, since=boundary, until=boundary + dt.timedelta(microseconds=1))
    at_boundary = [p for p in planned if p.started_at == boundary]
    assert sum(r.runs for r in rows) == len(at_boundary)
    assert hours_by_process(db, since=boundary, until=boundary) == []


def test_hours_by_process_is_empty_without_runs(db: Database) -> None:
    assert hours_by_process(db) == []
