"""A varied ledger written through the real Ledger API, and its facts kept aside.

The facts let report tests compute every expected total on their own, from the
baselines and outcomes generated here, never from what robo summed.
"""

from __future__ import annotations

import datetime as dt
import random
from dataclasses import dataclass, field
from typing import Any

import pytest
from sqlalchemy import insert, text

import robo.ledger
import robo.queues
from robo.definition import Baseline
from robo.ledger import ItemOutcome, ItemStatus, Ledger, RunPurpose
from robo.queues import NewItem, Queues, TakenItem
from robo.reports.periods import month_label, quarter_label, week_label, year_label
from robo.storage.database import Database
from robo.storage.models import ItemRow, VersionRow

BASELINE_A = Baseline(
    manual_minutes_per_item=30,
    residual_minutes_per_item=5,
    manual_minutes_per_run=5,
    measured_by="Bureau du séjour",
    measured_on=dt.date(2026, 1, 15),
)
BASELINE_B = Baseline(
    manual_minutes_per_item=22,
    residual_minutes_per_item=4,
    manual_minutes_per_run=0,
    measured_by="Mission d'audit",
    measured_on=dt.date(2026, 10, 10),
)
BASELINE_C = Baseline(
    manual_minutes_per_item=12.5,
    residual_minutes_per_item=0,
    manual_minutes_per_run=15,
    measured_by="Plateforme RH",
    measured_on=dt.date(2026, 5, 2),
)
NAMES = {
    "residence-permit": "Saisie des titres de séjour",
    "hr-claims": "Réclamations RH",
    "invoice-check": "Contrôle des factures",
}
"""What managers call the processes: their definitions' ``name`` (reports show it)."""
CHANGE = dt.datetime(2026, 10, 15, tzinfo=dt.UTC)
"""residence-permit switches from baseline A (1.0.0) to B (1.1.0) on this day."""

# process, application, region, origin region (None: built here)
PROCESSES = [
    ("residence-permit", "anef", "occitanie", None),
    ("residence-permit", "anef", "guyane", "occitanie"),
    ("hr-claims", "renoirh", "occitanie", None),
    ("hr-claims", "renoirh", "ile-de-france", "occitanie"),
    ("invoice-check", "chorus", "ile-de-france", None),
]


@dataclass
class RunFact:
    process_id: str
    application: str
    region: str
    origin: str
    version: str
    baseline: Baseline
    started_at: dt.datetime
    status: str | None  # None: still running
    items: list[tuple[str, int, float]] = field(default_factory=list)  # status, attempts, secs

    def labels(self) -> dict[str, str]:
        return {
            "process_id": self.process_id,
            "region": self.region,
            "application": self.application,
            "origin_region": self.origin,
            "month": month_label(self.started_at),
            "week": week_label(self.started_at),
            "quarter": quarter_label(self.started_at),
            "year": year_label(self.started_at),
        }

    def count(self, status: str) -> int:
        return sum(1 for s, _, _ in self.items if s == status)

    def expected(self) -> dict[str, float]:
        """This run's figures, from the baseline and outcomes generated (not from robo)."""
        b = self.baseline
        ok = self.count("success")
        business = self.count("business_exception")
        application = self.count("application_exception")
        # The ledger's rule: per-run minutes for a completed run with a success only.
        per_run = b.manual_minutes_per_run if ok and self.status == "completed" else 0.0
        minutes = ok * (b.manual_minutes_per_item - b.residual_minutes_per_item) + per_run
        return {
            "runs": 1,
            "items": len(self.items),
            "succeeded": ok,
            "business_exceptions": business,
            "application_exceptions": application,
            "minutes_saved": minutes,
            "robot_seconds": sum(secs for _, _, secs in self.items),
            "human_minutes": ok * b.residual_minutes_per_item
            + (business + application) * b.manual_minutes_per_item,
        }


def expected_totals(
    facts: list[RunFact], keys: tuple[str, ...], only: Any = None
) -> dict[tuple[str, ...], dict[str, float]]:
    """Sum the facts per group, in plain Python."""
    groups: dict[tuple[str, ...], dict[str, float]] = {}
    for fact in facts:
        if only is not None and not only(fact):
            continue
        labels = fact.labels()
        group = groups.setdefault(tuple(labels[k] for k in keys), {})
        for name, value in fact.expected().items():
            group[name] = group.get(name, 0) + value
    return groups


def _version_id(db: Database, seed: int) -> int:
    """A version row for the runs' foreign key (the report never reads it)."""
    with db.session() as session:
        row = VersionRow(
            process_id="any",
            version=f"factory-{seed}",
            content_hash="0" * 64,
            definition={},
            definition_text="",
            deployed_at=dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
        )
        session.add(row)
        session.flush()
        for process_id, name in NAMES.items():
            if not session.query(VersionRow).filter_by(process_id=process_id).count():
                session.add(VersionRow(
                    process_id=process_id, version="1.0.0", content_hash="1" * 64,
                    definition={"id": process_id, "name": name}, definition_text="",
                    deployed_at=dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
                ))  # fmt: skip
        return row.id


def build_ledger(
    db: Database,
    monkeypatch: pytest.MonkeyPatch,
    *,
    seed: int = 7,
    runs: int = 120,
    start: dt.datetime = dt.datetime(2026, 8, 20, tzinfo=dt.UTC),
    days: int = 150,
    baselines: dict[str, tuple[str, Baseline]] | None = None,
    edge_cases: bool = True,
) -> list[RunFact]:
    """Runs spread over ``days``: exceptions, retries, abandoned, empty and unfinished
    runs, several regions, and a baseline change mid-period."""
    rng = random.Random(seed)
    ledger = Ledger(db)
    version_id = _version_id(db, seed)
    clock: dict[str, dt.datetime] = {"now": start}
    monkeypatch.setattr(robo.ledger, "utcnow", lambda: clock["now"])
    facts: list[RunFact] = []
    for n in range(runs):
        process_id, application, region, origin = rng.choice(PROCESSES)
        started = start + dt.timedelta(minutes=rng.randrange(days * 24 * 60))
        if edge_cases and n == 0:  # just before midnight UTC on the last day of a month and quarter
            started = dt.datetime(2026, 9, 30, 23, 50, tzinfo=dt.UTC)
        if edge_cases and n == 1:  # 1 January 2027 is in ISO week 2026-W53
            started = dt.datetime(2027, 1, 1, 10, 0, tzinfo=dt.UTC)
        if process_id == "residence-permit":
            version, baseline = ("1.0.0", BASELINE_A) if started < CHANGE else ("1.1.0", BASELINE_B)
        elif process_id == "hr-claims":
            version, baseline = "2.0.0", BASELINE_C
        else:
            version, baseline = "1.0.0", BASELINE_B
        if baselines and process_id in baselines:
            version, baseline = baselines[process_id]
        roll = rng.random()
        status = (
            "abandoned"
            if roll < 0.08
            else None
            if roll < 0.12
            else "failed"
            if roll < 0.17
            else "completed"
        )
        fact = RunFact(
            process_id, application, region, origin or region, version, baseline, started, status
        )
        clock["now"] = started
        run_id = ledger.start_run(
            process_id=process_id,
            version_id=version_id,
            version=version,
            baseline=baseline,
            region=region,
            parameters={},
            application=application,
            origin_region=origin,
            trigger="schedule",
        )
        count = 0 if rng.random() < 0.06 else rng.randrange(1, 15)
        moment = started
        for position in range(count):
            item_status: ItemStatus = rng.choices(
                ["success", "business_exception", "application_exception"], [0.75, 0.15, 0.10]
            )[0]
            attempts = rng.choice([1, 1, 1, 2, 3]) if item_status != "business_exception" else 1
            seconds = round(rng.uniform(2, 90), 3)
            finished = moment + dt.timedelta(seconds=seconds)
            ledger.record_item(
                run_id,
                ItemOutcome(
                    position=position,
                    reference=f"R{n}-{position}",
                    status=item_status,
                    attempts=attempts,
                    started_at=moment,
                    finished_at=finished,
                    error_type=None if item_status == "success" else "Boom",
                    error=None if item_status == "success" else "it failed",
                ),
            )
            fact.items.append((item_status, attempts, seconds))
            moment = finished
        if status is not None:
            clock["now"] = moment + dt.timedelta(seconds=rng.randrange(5, 600))
            ledger.finish_run(run_id, status)  # type: ignore[arg-type]
        facts.append(fact)
    return facts


# --- work queues ---------------------------------------------------------------------------


@dataclass
class QueueWork:
    """Runs that drain queues through the real Ledger and Queues, on a clock the test moves.

    ``take`` + ``record`` are what the runner does per item; ``work`` does both.
    """

    db: Database
    ledger: Ledger
    queues: Queues
    clock: dict[str, dt.datetime]
    version_id: int
    positions: dict[int, int] = field(default_factory=dict)

    @classmethod
    def open(
        cls,
        db: Database,
        monkeypatch: pytest.MonkeyPatch,
        start: dt.datetime = dt.datetime(2026, 10, 5, 9, 0, tzinfo=dt.UTC),
        actor: str = "agent.dupont",
    ) -> QueueWork:
        clock = {"now": start}
        monkeypatch.setattr(robo.ledger, "utcnow", lambda: clock["now"])
        monkeypatch.setattr(robo.queues, "utcnow", lambda: clock["now"])
        return cls(db, Ledger(db), Queues(db, actor), clock, _version_id(db, 0))

    @property
    def now(self) -> dt.datetime:
        return self.clock["now"]

    def tick(self, **delta: float) -> dt.datetime:
        """Move the clock on (``minutes=5``, ``days=40``...)."""
        self.clock["now"] += dt.timedelta(**delta)
        return self.clock["now"]

    def add(self, queue: str, *references: str) -> list[int]:
        self.queues.ensure(queue)
        result = self.queues.add(queue, [NewItem(r, {"ref": r}) for r in references], source="test")
        assert not result.refused, [r.render() for r in result.refused]
        return result.added

    def start(
        self,
        process_id: str = "invoice-check",
        *,
        region: str = "occitanie",
        baseline: Baseline = BASELINE_B,
        application: str = "chorus",
        purpose: RunPurpose = "production",
    ) -> int:
        return self.ledger.start_run(
            process_id=process_id,
            version_id=self.version_id,
            version="1.0.0",
            baseline=baseline,
            region=region,
            parameters={},
            application=application,
            purpose=purpose,
        )

    def take(self, run_id: int, queue: str, lease_seconds: float = 300) -> TakenItem:
        taken = self.queues.take(queue, run_id, lease_seconds)
        assert taken is not None, f"nothing to take in {queue} for run {run_id}"
        return taken

    def record(
        self,
        run_id: int,
        taken: TakenItem,
        status: ItemStatus = "success",
        *,
        attempts: int = 1,
        seconds: float = 10.0,
        max_runs: int = 3,
    ) -> float:
        """Record the outcome of an item this run took; returns the minutes credited."""
        position = self.positions.get(run_id, 0)
        self.positions[run_id] = position + 1
        started = self.now
        finished = self.tick(seconds=seconds)
        failed = status in ("business_exception", "application_exception")
        return self.ledger.record_item(
            run_id,
            ItemOutcome(
                position=position,
                reference=taken.reference,
                status=status,
                attempts=attempts,
                started_at=started,
                finished_at=finished,
                error_type="Boom" if failed else None,
                error="it failed" if failed else None,
                data=taken.data,
                queue_item_id=taken.id,
                max_runs=max_runs,
            ),
        )

    def work(
        self, run_id: int, queue: str, status: ItemStatus = "success", **kwargs: Any
    ) -> tuple[int, float]:
        """Take the next item of ``queue`` and record its outcome: (queue item id, minutes)."""
        taken = self.take(run_id, queue)
        return taken.id, self.record(run_id, taken, status, **kwargs)

    def finish(self, run_id: int, status: str = "completed") -> None:
        self.tick(seconds=5)
        self.ledger.finish_run(run_id, status)  # type: ignore[arg-type]


def _start_run_on_0003(
    db: Database, process_id: str, version_id: int, baseline: Baseline, now: dt.datetime
) -> int:
    """A running run as robo 0.1 wrote it: only the columns revision 0003 has."""
    import uuid

    from robo.storage.models import RunRow

    values = {
        "uid": uuid.uuid4().hex, "process_id": process_id, "version_id": version_id,
        "version": "0.9.0", "region": "occitanie", "application": "chorus", "worker": "",
        "trigger": "manual", "status": "running", "started_at": now, "heartbeat_at": now,
        "host": "vm", "pid": 1, "parameters": {}, "input_name": "",
        "manual_minutes_per_item": baseline.manual_minutes_per_item,
        "residual_minutes_per_item": baseline.residual_minutes_per_item,
        "manual_minutes_per_run": baseline.manual_minutes_per_run,
        "baseline_measured_by": baseline.measured_by,
        "baseline_measured_on": baseline.measured_on.isoformat(), "run_minutes_saved": 0.0,
    }  # fmt: skip
    with db.session() as session:
        return int(
            session.execute(insert(RunRow).values(**values).returning(RunRow.id)).scalar_one()
        )


def before_queues_ledger(
    database_url: str,
    monkeypatch: pytest.MonkeyPatch,
    runs: list[list[tuple[str, ItemStatus]]],
    *,
    process_id: str = "invoice-check",
    baseline: Baseline = BASELINE_B,
    start: dt.datetime = dt.datetime(2026, 6, 1, 9, 0, tzinfo=dt.UTC),
) -> list[int]:
    """A ledger as robo 0.1 wrote it on the schema before queues (revision 0003), one run
    per list of (reference, status); opening it afterwards runs migrations 0004 onwards."""
    from alembic import command

    from robo.storage.database import _alembic_config, make_engine

    engine = make_engine(database_url)
    with engine.begin() as connection:
        command.upgrade(_alembic_config(connection), "0003")
    engine.dispose()
    db = Database(database_url, migrate=False)
    clock = {"now": start}
    version_id = _version_id(db, 1)
    run_ids = []
    try:
        for n, items in enumerate(runs):
            clock["now"] = start + dt.timedelta(days=n)
            run_id = _start_run_on_0003(db, process_id, version_id, baseline, clock["now"])
            for position, (reference, status) in enumerate(items):
                moment = clock["now"]
                clock["now"] += dt.timedelta(seconds=30)
                earned = baseline.manual_minutes_per_item - baseline.residual_minutes_per_item
                with db.session() as session:
                    session.execute(insert(ItemRow).values(
                        run_id=run_id, position=position, reference=reference, status=status,
                        attempts=1, started_at=moment, finished_at=clock["now"],
                        duration_seconds=30.0, evidence=[], data={}, output={},
                        minutes_saved=earned if status == "success" else 0.0,
                    ))  # fmt: skip
            # Ended as robo 0.1 ended runs (today's ledger reads columns 0003 lacks).
            with db.session() as session:
                session.execute(
                    text(
                        "UPDATE runs SET status = 'completed', finished_at = :at, "
                        "run_minutes_saved = :per_run WHERE id = :id"
                    ),
                    {"at": clock["now"], "per_run": baseline.manual_minutes_per_run, "id": run_id},
                )
            run_ids.append(run_id)
    finally:
        db.close()
    return run_ids
