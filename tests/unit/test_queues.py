"""Work queues: one life per item across runs, on SQLite and PostgreSQL.

The queue decides who holds an item; the ledger records its outcome in the
same transaction, so minutes are earned once per queue item whatever happens
to the runs that tried it.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import time_machine
from sqlalchemy import func, select, text, update

from robo.clock import utcnow
from robo.errors import QueueError
from robo.ledger import ItemOutcome, ItemStatus, Ledger
from robo.loader import load_process
from robo.queues import TRANSITIONS, NewItem, Queues, check_transition, status_after
from robo.regional import RegionDefaults
from robo.registry import ProcessVersion, Registry
from robo.storage.database import Database
from robo.storage.models import ItemRow, QueueEventRow, QueueItemRow, RunRow
from tests.conftest import definition

QUEUE = "sample-process"
MINUTES = 8.0  # manual 10 - residual 2 (the factory's baseline)


@pytest.fixture
def db(database_url: str) -> Iterator[Database]:
    database = Database(database_url)
    yield database
    database.close()


@pytest.fixture
def queues(db: Database) -> Queues:
    q = Queues(db, actor="agent-durand")
    q.ensure(QUEUE)
    return q


@pytest.fixture
def ledger(db: Database) -> Ledger:
    return Ledger(db)


@pytest.fixture
def version(db: Database, make_process: Callable[..., Path]) -> ProcessVersion:
    registry = Registry(db, RegionDefaults("Europe/Paris", "FR"), actor="tester")
    registry.deploy(load_process(make_process(definition())))
    return registry.active("sample-process")


@pytest.fixture
def start(ledger: Ledger, version: ProcessVersion) -> Callable[[], int]:
    def run() -> int:
        d = version.definition
        return ledger.start_run(
            process_id=d.id, version_id=version.version_id, version=d.version,
            baseline=d.baseline, region="occitanie", parameters={},
        )  # fmt: skip

    return run


def finish(
    ledger: Ledger, run_id: int, item_id: int, reference: str, status: ItemStatus,
    max_runs: int = 3, attempts: int = 1,
) -> float:  # fmt: skip
    now = utcnow()
    return ledger.record_item(
        run_id,
        ItemOutcome(
            position=1, reference=reference, status=status, attempts=attempts, started_at=now,
            finished_at=now, error=None if status == "success" else "it went wrong",
            queue_item_id=item_id, max_runs=max_runs,
        ),
    )  # fmt: skip


def status_of(db: Database, item_id: int) -> str:
    with db.session() as session:
        return session.get(QueueItemRow, item_id).status  # type: ignore[union-attr]


def credited(db: Database, item_id: int) -> list[float]:
    with db.session() as session:
        return list(
            session.scalars(
                select(ItemRow.minutes_saved).where(ItemRow.credited_queue_item_id == item_id)
            )
        )


# --- adding -----------------------------------------------------------------------------------


def test_a_reference_already_queued_is_refused_and_named_the_rest_is_added(
    queues: Queues,
) -> None:
    first = queues.add(QUEUE, [NewItem("A"), NewItem("B")], source="file day1.csv")
    again = queues.add(QUEUE, [NewItem("B"), NewItem("C"), NewItem("C")], source="file day2.csv")

    assert len(first.added) == 2 and first.refused == []
    assert len(again.added) == 1
    assert [(r.reference, r.earlier_status) for r in again.refused] == [("B", "new"), ("C", "new")]
    assert again.refused[0].earlier_item_id == first.added[1]
    assert "'B' is already queued as item" in again.refused[0].render()
    assert [i.reference for i in queues.items(QUEUE)] == ["A", "B", "C"]


def test_two_runs_adding_the_same_references_at_once_queue_each_one_once(
    db: Database, queues: Queues
) -> None:
    """Two runs start together and both read their file: neither fails, R0 is queued once."""
    other_run_added = threading.Event()
    other = Queues(db, actor="run-2")

    def add_in_other_run() -> None:
        other.add(QUEUE, [NewItem("R0")], source="file items.csv", run_id=2)
        other_run_added.set()

    looked = Queues._held

    first_look = threading.Event()

    def held_then_the_other_run_commits(*args: Any) -> Any:
        seen = looked(*args)
        if not first_look.is_set():
            first_look.set()
            worker = threading.Thread(target=add_in_other_run)
            worker.start()
            worker.join(timeout=30)
        return seen

    Queues._held = staticmethod(held_then_the_other_run_commits)  # type: ignore[method-assign]
    try:
        result = queues.add(QUEUE, [NewItem("R0"), NewItem("R1")], source="file items.csv")
    finally:
        Queues._held = staticmethod(looked)  # type: ignore[method-assign]

    assert other_run_added.is_set()
    assert [r.reference for r in result.refused] == ["R0"]
    assert [i.reference for i in queues.items(QUEUE)] == ["R0", "R1"]


def test_adding_to_an_unknown_queue_is_refused_with_what_to_do(queues: Queues) -> None:
    with pytest.raises(QueueError, match="no queue 'nowhere'"):
        queues.add("nowhere", [NewItem("A")], source="cli")


def test_a_handed_back_reference_may_be_queued_again_only_if_the_policy_says_so(
    queues: Queues, ledger: Ledger, start: Callable[[], int]
) -> None:
    queues.ensure("second-chance", "after_business_exception")
    for name in (QUEUE, "second-chance"):
        queues.add(name, [NewItem("A")], source="first")
        run_id = start()
        taken = queues.take(name, run_id, 60)
        assert taken is not None
        finish(ledger, run_id, taken.id, "A", "business_exception")

    assert queues.add(QUEUE, [NewItem("A")], source="fixed").refused[0].earlier_status == (
        "business_exception"
    )
    assert len(queues.add("second-chance", [NewItem("A")], source="fixed").added) == 1


# --- taking -----------------------------------------------------------------------------------


def test_runs_take_items_by_priority_then_deadline_then_age(
    queues: Queues, start: Callable[[], int]
) -> None:
    soon = utcnow() + dt.timedelta(days=1)
    later = utcnow() + dt.timedelta(days=5)
    queues.add(QUEUE, [
        NewItem("old"), NewItem("late-deadline", deadline=later), NewItem("urgent", priority=5),
        NewItem("soon-deadline", deadline=soon),
    ], source="cli")  # fmt: skip
    run_id = start()

    order = []
    while (taken := queues.take(QUEUE, run_id, 60)) is not None:
        order.append(taken.reference)

    assert order == ["urgent", "soon-deadline", "late-deadline", "old"]


def test_a_deferred_item_is_not_taken_before_its_time(
    queues: Queues, start: Callable[[], int]
) -> None:
    at = utcnow() + dt.timedelta(hours=2)
    (item_id,) = queues.add(QUEUE, [NewItem("A", defer_until=at)], source="cli").added

    assert queues.take(QUEUE, start(), 60) is None
    with time_machine.travel(at + dt.timedelta(minutes=1)):
        taken = queues.take(QUEUE, start(), 60)
    assert taken is not None and taken.id == item_id


def test_a_cancelled_item_is_never_taken(queues: Queues, start: Callable[[], int]) -> None:
    (item_id,) = queues.add(QUEUE, [NewItem("A")], source="cli").added
    queues.cancel(item_id, note="dossier withdrawn")

    assert queues.take(QUEUE, start(), 60) is None
    view, events = queues.get(item_id)
    assert (view.status, view.note) == ("cancelled", "dossier withdrawn")
    assert [(e.action, e.actor) for e in events] == [
        ("added", "agent-durand"),
        ("cancel", "agent-durand"),
    ]


def test_concurrent_runs_never_take_the_same_item(
    queues: Queues, start: Callable[[], int], db: Database
) -> None:
    queues.add(QUEUE, [NewItem(f"R{i:03}") for i in range(60)], source="cli")
    runs = [start(), start(), start()]
    taken: dict[int, list[int]] = {r: [] for r in runs}
    errors: list[BaseException] = []

    def drain(run_id: int) -> None:
        try:
            while (item := queues.take(QUEUE, run_id, 60)) is not None:
                taken[run_id].append(item.id)
        except BaseException as exc:  # reported below, never lost in a thread
            errors.append(exc)

    threads = [threading.Thread(target=drain, args=(r,)) for r in runs]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not any(t.is_alive() for t in threads) and errors == []

    every = [i for ids in taken.values() for i in ids]
    assert sorted(every) == sorted(set(every)) and len(every) == 60
    with db.session() as session:
        takes = session.scalar(
            select(func.count()).select_from(QueueEventRow).where(QueueEventRow.action == "taken")
        )
    assert takes == 60


# --- outcomes through the ledger ------------------------------------------------------------


def test_a_success_earns_its_minutes_once(
    queues: Queues, ledger: Ledger, start: Callable[[], int], db: Database
) -> None:
    (item_id,) = queues.add(QUEUE, [NewItem("A")], source="cli").added
    run_id = start()
    assert queues.take(QUEUE, run_id, 60) is not None

    assert finish(ledger, run_id, item_id, "A", "success") == MINUTES
    assert status_of(db, item_id) == "successful"
    assert credited(db, item_id) == [MINUTES]


def test_a_run_that_lost_its_item_records_the_outcome_without_credit(
    queues: Queues, ledger: Ledger, start: Callable[[], int], db: Database
) -> None:
    (item_id,) = queues.add(QUEUE, [NewItem("A")], source="cli").added
    slow, fast = start(), start()
    assert queues.take(QUEUE, slow, 60) is not None
    with db.session() as session:  # the slow run's lease ran out and another run took it
        session.execute(update(QueueItemRow).where(QueueItemRow.id == item_id).values(run_id=fast))
    assert finish(ledger, fast, item_id, "A", "success") == MINUTES

    assert finish(ledger, slow, item_id, "A", "success") == 0.0
    assert credited(db, item_id) == [MINUTES]
    with db.session() as session:
        late = session.scalars(select(ItemRow).where(ItemRow.run_id == slow)).one()
    assert late.minutes_saved == 0 and "not credited" in (late.error or "")


def test_an_application_exception_is_retried_by_later_runs_up_to_max_runs(
    queues: Queues, ledger: Ledger, start: Callable[[], int], db: Database
) -> None:
    (item_id,) = queues.add(QUEUE, [NewItem("A")], source="cli").added
    statuses = []
    for _ in range(2):
        run_id = start()
        taken = queues.take(QUEUE, run_id, 60)
        assert taken is not None and queues.take(QUEUE, run_id, 60) is None  # not retaken
        finish(ledger, run_id, item_id, "A", "application_exception", max_runs=2, attempts=3)
        statuses.append(status_of(db, item_id))

    assert statuses == ["new", "application_exception"]
    view, _ = queues.get(item_id)
    assert (view.runs_failed, view.attempts) == (2, 6)
    assert [i.id for i in queues.worklist()] == [item_id]


def test_a_skipped_item_saves_no_minutes(
    queues: Queues, ledger: Ledger, start: Callable[[], int], db: Database
) -> None:
    (item_id,) = queues.add(QUEUE, [NewItem("A")], source="cli").added
    run_id = start()
    queues.take(QUEUE, run_id, 60)

    assert finish(ledger, run_id, item_id, "A", "skipped") == 0.0
    assert status_of(db, item_id) == "skipped" and credited(db, item_id) == []


# --- a run that died ------------------------------------------------------------------------


def _die(db: Database, run_id: int) -> None:
    with db.session() as session:
        session.execute(update(RunRow).where(RunRow.id == run_id).values(status="abandoned"))


@pytest.mark.parametrize(("verify", "expected"), [(True, "new"), (False, "uncertain")])
def test_an_item_left_in_progress_by_a_dead_run_is_verified_or_handed_to_a_human(
    queues: Queues, start: Callable[[], int], db: Database, verify: bool, expected: str
) -> None:
    (item_id,) = queues.add(QUEUE, [NewItem("A"), NewItem("B")], source="cli").added[:1]
    dead = start()
    assert queues.take(QUEUE, dead, 60) is not None
    assert queues.reclaim(QUEUE, verify=verify) == []  # its run is alive: left alone
    _die(db, dead)

    (reclaimed,) = queues.reclaim(QUEUE, verify=verify)

    assert (reclaimed.id, reclaimed.status, reclaimed.run_id) == (item_id, expected, dead)
    view, _ = queues.get(item_id)
    assert view.needs_verify is verify
    nxt = queues.take(QUEUE, start(), 60)
    assert nxt is not None
    assert (nxt.reference, nxt.needs_verify) == (("A", True) if verify else ("B", False))


def test_an_item_whose_lease_ran_out_is_reclaimed(queues: Queues, start: Callable[[], int]) -> None:
    queues.add(QUEUE, [NewItem("A")], source="cli")
    queues.take(QUEUE, start(), lease_seconds=30)
    assert queues.reclaim(QUEUE, verify=False) == []
    with time_machine.travel(utcnow() + dt.timedelta(seconds=31)):
        assert [r.status for r in queues.reclaim(QUEUE, verify=False)] == ["uncertain"]


def test_the_heartbeat_renews_the_leases_of_the_items_a_run_holds(
    queues: Queues, start: Callable[[], int]
) -> None:
    queues.add(QUEUE, [NewItem("A")], source="cli")
    run_id = start()
    queues.take(QUEUE, run_id, lease_seconds=30)
    with time_machine.travel(utcnow() + dt.timedelta(seconds=25)):
        assert queues.renew(run_id, 30) == 1
    with time_machine.travel(utcnow() + dt.timedelta(seconds=40)):
        assert queues.reclaim(QUEUE, verify=False) == []


# --- humans ---------------------------------------------------------------------------------


def test_the_worklist_round_trip_resolve_is_human_work_return_is_robot_credit_once(
    queues: Queues, ledger: Ledger, start: Callable[[], int], db: Database
) -> None:
    ids = queues.add(QUEUE, [NewItem("A"), NewItem("B")], source="cli").added
    run_id = start()
    for item_id, ref in zip(ids, ("A", "B"), strict=True):
        queues.take(QUEUE, run_id, 60)
        finish(ledger, run_id, item_id, ref, "business_exception")
    assert [i.reference for i in queues.worklist()] == ["A", "B"]

    queues.take_for_human(ids[0], note="calling the applicant")
    resolved = queues.resolve(ids[0], minutes=12, note="entered by hand")
    returned = queues.give_back(ids[1], note="date of birth fixed")

    assert (resolved.status, resolved.human_minutes, resolved.resolved_by) == (
        "resolved", 12, "agent-durand",
    )  # fmt: skip
    assert returned.status == "new" and [i.id for i in queues.worklist()] == []
    second = start()
    taken = queues.take(QUEUE, second, 60)
    assert taken is not None and taken.id == ids[1]
    finish(ledger, second, ids[1], "B", "success")
    assert credited(db, ids[0]) == [] and credited(db, ids[1]) == [MINUTES]


def test_an_item_taken_by_one_agent_cannot_be_taken_by_another(
    db: Database, queues: Queues
) -> None:
    (item_id,) = queues.add(QUEUE, [NewItem("A", deadline=utcnow())], source="cli").added
    queues.take_for_human(item_id)

    with pytest.raises(QueueError, match="taken by agent-durand"):
        Queues(db, actor="agent-martin").take_for_human(item_id)


def test_a_waiting_item_past_its_deadline_is_on_the_worklist(queues: Queues) -> None:
    past = utcnow() - dt.timedelta(days=1)
    (late,) = queues.add(QUEUE, [NewItem("late", deadline=past)], source="cli").added
    queues.add(QUEUE, [NewItem("on-time", deadline=utcnow() + dt.timedelta(days=3))], source="cli")

    assert [i.id for i in queues.worklist()] == [late]
    assert [i.id for i in queues.worklist(statuses=["overdue"])] == [late]
    assert queues.worklist(statuses=["uncertain"]) == []


@pytest.mark.parametrize(
    ("current", "target"),
    [
        ("successful", "new"),
        ("new", "uncertain"),
        ("cancelled", "new"),
        ("in_progress", "cancelled"),
    ],
)
def test_transitions_outside_the_status_machine_are_refused(current: str, target: str) -> None:
    with pytest.raises(QueueError, match=f"is {current}; it cannot become {target}"):
        check_transition(7, current, target)


def test_the_status_machine_names_every_status_and_final_ones_lead_nowhere() -> None:
    assert {t for targets in TRANSITIONS.values() for t in targets} <= set(TRANSITIONS)
    assert [s for s, targets in TRANSITIONS.items() if not targets] == [
        "successful", "skipped", "cancelled", "resolved",
    ]  # fmt: skip
    assert status_after("application_exception", 1, 3) == "new"
    assert status_after("application_exception", 3, 3) == "application_exception"


def test_resolving_a_successful_item_is_refused_and_changes_nothing(
    queues: Queues, ledger: Ledger, start: Callable[[], int], db: Database
) -> None:
    (item_id,) = queues.add(QUEUE, [NewItem("A")], source="cli").added
    run_id = start()
    queues.take(QUEUE, run_id, 60)
    finish(ledger, run_id, item_id, "A", "success")

    with pytest.raises(QueueError, match="is successful; it cannot become resolved"):
        queues.resolve(item_id, minutes=5)
    assert status_of(db, item_id) == "successful"


# --- before queues --------------------------------------------------------------------------


def test_items_recorded_before_queues_join_their_process_queue_credited_once(
    database_url: str,
) -> None:
    from alembic import command

    from robo.storage.database import _alembic_config, make_engine

    engine = make_engine(database_url)
    with engine.begin() as connection:
        command.upgrade(_alembic_config(connection), "0003")
    with engine.begin() as c:
        for run_id in (1, 2):  # the same file re-done by a second run: the old double count
            c.execute(text(
                "insert into runs (uid, process_id, version, region, trigger, status, started_at,"
                " parameters, input_name, manual_minutes_per_item, residual_minutes_per_item,"
                " manual_minutes_per_run, baseline_measured_by, baseline_measured_on,"
                " run_minutes_saved, host, application, worker) values (:uid, 'p', '1.0.0',"
                " 'occitanie', 'manual', 'completed', :at, '{}', '', 10, 2, 0, 'x', '2026-01-01',"
                " 0, 'h', '', '')"
            ), {"uid": f"u{run_id}", "at": dt.datetime(2026, 1, run_id)})  # fmt: skip
            c.execute(text(
                "insert into items (run_id, position, reference, status, attempts, evidence, data,"
                " output, minutes_saved) values (:run, 1, 'A', 'success', 1, '[]', '{}', '{}', 8),"
                " (:run, 2, 'B', :b, 1, '[]', '{}', '{}', 0)"
            ), {"run": run_id, "b": "business_exception" if run_id == 1 else "success"})  # fmt: skip
    engine.dispose()

    db = Database(database_url)  # migrates to the newest schema
    try:
        queues = Queues(db)
        assert [(i.reference, i.status) for i in queues.items("p")] == [
            ("A", "successful"), ("B", "successful"),
        ]  # fmt: skip
        with db.session() as session:
            rows: list[Any] = session.execute(
                select(ItemRow.run_id, ItemRow.reference, ItemRow.credited_queue_item_id)
                .order_by(ItemRow.id)
            ).all()  # fmt: skip
        a, b = (i.id for i in queues.items("p"))
        assert rows == [(1, "A", a), (1, "B", None), (2, "A", None), (2, "B", b)]
        assert queues.add("p", [NewItem("A")], source="again").refused[0].earlier_item_id == a
    finally:
        db.close()


def test_an_overdue_item_a_human_took_over_is_not_taken_by_a_bot_and_can_be_resolved(
    queues: Queues, start: Callable[[], int], db: Database
) -> None:
    (item_id,) = queues.add(QUEUE, [NewItem("late", deadline=utcnow())], source="cli").added
    with pytest.raises(QueueError, match="a bot will take it; to do it by hand, take it first"):
        queues.resolve(item_id, minutes=5)

    queues.take_for_human(item_id, note="urgent: doing it by phone")

    assert queues.take(QUEUE, start(), 60) is None
    with pytest.raises(QueueError, match="taken by agent-durand"):
        Queues(db, actor="agent-martin").resolve(item_id, minutes=5)
    assert queues.give_back(item_id).taken_by is None
    assert queues.take(QUEUE, start(), 60) is not None  # handed back: a bot takes it again


def test_an_overdue_item_taken_over_by_a_human_can_be_resolved_by_them(queues: Queues) -> None:
    (item_id,) = queues.add(QUEUE, [NewItem("late", deadline=utcnow())], source="cli").added
    queues.take_for_human(item_id)
    assert queues.resolve(item_id, minutes=5).status == "resolved"
