"""Queue triggers: a schedule entry `queue: {min_items, max_runs}` starts runs when items wait.

The real SchedulerService on the test database (SQLite and PostgreSQL), with a
manual APScheduler (no thread), a frozen clock the test moves, and a fake
executor that records the runs it is handed and keeps them "in flight" until
the test says they ended.
"""

from __future__ import annotations

import datetime as dt
import json
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import time_machine
from click.testing import CliRunner

from robo.app import Robo
from robo.cli.main import cli
from robo.loader import load_process
from robo.queues import NewItem
from robo.scheduling.decisions import DecisionLog, ScheduleEvent
from robo.scheduling.executors.base import RunJob
from robo.scheduling.plan import overview, upcoming
from robo.scheduling.service import SchedulerService
from robo.settings import Settings
from tests.conftest import definition
from tests.unit.test_scheduler_service import ManualScheduler

PROCESS = "sample-process"
UTC = dt.UTC
T0 = dt.datetime(2026, 3, 2, 8, 0, 2, tzinfo=UTC)  # Monday 09:00 in Paris, in the window
CHECK = 5  # seconds between queue checks (the service's queue_check_seconds)
WINDOW = {"start": "07:00", "end": "19:00"}


def queue_schedule(min_items: int = 3, max_runs: int = 1, **schedule: Any) -> dict[str, Any]:
    return {"triggers": [{"queue": {"min_items": min_items, "max_runs": max_runs}}], **schedule}


class QueueExecutor:
    """Records every job; a job stays in flight (queued or running) until ``end`` is called."""

    def __init__(self) -> None:
        self.jobs: list[RunJob] = []
        self.batches: list[list[RunJob]] = []
        self.ended: set[str] = set()

    def submit(self, jobs: list[RunJob]) -> None:
        self.batches.append(list(jobs))
        self.jobs += jobs

    def in_flight(self, process_id: str) -> set[str]:
        return {j.uid for j in self.jobs if j.process_id == process_id} - self.ended

    def busy(self, process_id: str) -> bool:
        return bool(self.in_flight(process_id))

    def end(self, count: int = 1) -> None:
        for job in [j for j in self.jobs if j.uid not in self.ended][:count]:
            self.ended.add(job.uid)

    def shutdown(self, drain_seconds: float = 60) -> None:
        pass


# --- fixtures -----------------------------------------------------------------------------


@pytest.fixture
def clock() -> Iterator[time_machine.Traveller]:
    with time_machine.travel(T0, tick=False) as traveller:
        yield traveller


@pytest.fixture
def app(tmp_path: Path, database_url: str, clock: time_machine.Traveller) -> Iterator[Robo]:
    robo = Robo(
        Settings(home=tmp_path / "home", database_url=database_url, region="occitanie"), env={}
    )
    robo.registry.actor = "tester"
    yield robo
    robo.close()


@pytest.fixture
def deploy(app: Robo, make_process: Callable[..., Path]) -> Callable[..., None]:
    """Deploy a performer (it takes only what others add to its queue) with this schedule."""

    def run(schedule: dict[str, Any], version: str = "1.0.0") -> None:
        spec = definition(
            version=version, schedule=schedule, items={"source": "queue", "reference": "ref"}
        )
        app.registry.deploy(load_process(make_process(spec, name=f"{PROCESS}-{version}")))
        app.queues.ensure(PROCESS)

    return run


@pytest.fixture
def service(app: Robo) -> Iterator[Callable[..., SchedulerService]]:
    made: list[SchedulerService] = []

    def make(owner: str = "A", executor: QueueExecutor | None = None) -> SchedulerService:
        svc = SchedulerService(
            app.settings, app.db, app.registry, app.ledger, app.queues,
            executor or QueueExecutor(), scheduler_factory=ManualScheduler, owner=owner,
            queue_check_seconds=CHECK,
        )  # fmt: skip
        made.append(svc)
        return svc

    yield make
    for svc in made:
        if svc.aps is not None and svc.aps.running:
            svc.aps.shutdown()


def started_service(service: Callable[..., SchedulerService], owner: str = "A") -> SchedulerService:
    svc = service(owner)
    svc.start()
    return svc


def fake(svc: SchedulerService) -> QueueExecutor:
    assert isinstance(svc.executor, QueueExecutor)
    return svc.executor


def add_items(app: Robo, count: int, first: int = 0) -> None:
    app.queues.add(PROCESS, [NewItem(f"R{i}") for i in range(first, first + count)], source="test")


def check_at(clock: time_machine.Traveller, svc: SchedulerService, moment: dt.datetime) -> None:
    clock.move_to(moment)
    svc.check_queues()


def later(seconds: float) -> dt.datetime:
    return T0 + dt.timedelta(seconds=seconds)


def decisions(app: Robo) -> list[ScheduleEvent]:
    return list(reversed(DecisionLog(app.db).events(PROCESS, limit=500)))


def start_manual_run(app: Robo) -> int:
    version = app.registry.active(PROCESS)
    d = version.definition
    return app.ledger.start_run(
        process_id=PROCESS, version_id=version.version_id, version=d.version,
        baseline=d.baseline, region="occitanie", parameters={}, trigger="manual",
    )  # fmt: skip


# --- firing --------------------------------------------------------------------------------


def test_nothing_fires_and_nothing_is_recorded_below_min_items(
    app: Robo, deploy: Callable[..., None], service: Callable[..., SchedulerService]
) -> None:
    deploy(queue_schedule(min_items=3))
    add_items(app, 2)
    svc = started_service(service)

    [check] = svc.check_queues()

    assert (check.decision, check.waiting) == ("not_due", 2)
    assert fake(svc).jobs == []
    assert decisions(app) == []


def test_a_run_fires_once_min_items_wait_and_the_decision_is_recorded(
    app: Robo,
    deploy: Callable[..., None],
    service: Callable[..., SchedulerService],
    clock: time_machine.Traveller,
) -> None:
    deploy(queue_schedule(min_items=3))
    add_items(app, 2)
    svc = started_service(service)
    svc.check_queues()
    add_items(app, 1, first=2)

    check_at(clock, svc, later(CHECK))

    [batch] = fake(svc).batches
    [job] = batch
    assert (job.process_id, job.trigger) == (PROCESS, "queue")
    [event] = decisions(app)
    assert (event.trigger_key, event.decision) == ("q0", "fired")
    assert event.reason == (
        f"3 items wait in {PROCESS} (min_items 3): started 1 run(s), 1 of max_runs 1 "
        "running or queued"
    )
    assert dt.datetime.fromisoformat(event.scheduled_for) == dt.datetime(
        2026, 3, 2, 8, 0, 5, tzinfo=UTC
    )  # the check time truncated to the 5 s interval
    assert dt.datetime.fromisoformat(job.scheduled_for or "") == dt.datetime(
        2026, 3, 2, 8, 0, 5, tzinfo=UTC
    )


def test_deferred_items_count_only_once_their_time_has_come(
    app: Robo,
    deploy: Callable[..., None],
    service: Callable[..., SchedulerService],
    clock: time_machine.Traveller,
) -> None:
    deploy(queue_schedule(min_items=3))
    add_items(app, 2)
    app.queues.add(PROCESS, [NewItem("D1", defer_until=later(60))], source="test")
    svc = started_service(service)

    assert svc.check_queues()[0].decision == "not_due"
    check_at(clock, svc, later(60))

    assert len(fake(svc).jobs) == 1


def test_a_big_queue_starts_up_to_max_runs_separate_runs_with_distinct_uids(
    app: Robo, deploy: Callable[..., None], service: Callable[..., SchedulerService]
) -> None:
    deploy(queue_schedule(min_items=3, max_runs=2))
    add_items(app, 10)
    svc = started_service(service)

    svc.check_queues()

    batches = fake(svc).batches
    assert [len(b) for b in batches] == [1, 1]  # two jobs, not a chain: they run at once
    assert len({j.uid for j in fake(svc).jobs}) == 2
    [event] = decisions(app)
    assert "started 2 run(s), 2 of max_runs 2" in event.reason


def test_a_few_items_over_min_items_start_one_run_even_if_more_are_allowed(
    app: Robo, deploy: Callable[..., None], service: Callable[..., SchedulerService]
) -> None:
    deploy(queue_schedule(min_items=3, max_runs=3))
    add_items(app, 5)  # one run's worth: 5 // 3 = 1
    svc = started_service(service)

    svc.check_queues()

    assert len(fake(svc).jobs) == 1


# --- max_runs -------------------------------------------------------------------------------


def test_max_runs_holds_further_runs_and_the_skip_is_recorded_once(
    app: Robo,
    deploy: Callable[..., None],
    service: Callable[..., SchedulerService],
    clock: time_machine.Traveller,
) -> None:
    deploy(queue_schedule(min_items=3, max_runs=2))
    add_items(app, 10)
    svc = started_service(service)
    svc.check_queues()  # two runs in flight

    check_at(clock, svc, later(CHECK))
    check_at(clock, svc, later(2 * CHECK))
    check_at(clock, svc, later(3 * CHECK))

    assert len(fake(svc).jobs) == 2
    assert [(e.decision, e.reason) for e in decisions(app)[1:]] == [
        (
            "skipped",
            "max_runs: 2 run(s) of this process running or queued (max_runs 2); "
            f"10 items wait in {PROCESS} (min_items 3)",
        )
    ]  # the same skip again is not a new row every five seconds


def test_a_slot_freed_by_an_ended_run_is_filled_at_the_next_check(
    app: Robo,
    deploy: Callable[..., None],
    service: Callable[..., SchedulerService],
    clock: time_machine.Traveller,
) -> None:
    deploy(queue_schedule(min_items=3, max_runs=2))
    add_items(app, 10)
    svc = started_service(service)
    svc.check_queues()
    check_at(clock, svc, later(CHECK))  # skipped: max_runs

    fake(svc).end(1)
    check_at(clock, svc, later(2 * CHECK))

    assert len(fake(svc).jobs) == 3
    assert [e.decision for e in decisions(app)] == ["fired", "skipped", "fired"]
    assert "started 1 run(s), 2 of max_runs 2" in decisions(app)[-1].reason


def test_runs_started_elsewhere_count_against_max_runs(
    app: Robo, deploy: Callable[..., None], service: Callable[..., SchedulerService]
) -> None:
    deploy(queue_schedule(min_items=3, max_runs=1))
    add_items(app, 10)
    start_manual_run(app)  # `robo run` by an operator, or another scheduler's run
    svc = started_service(service)

    svc.check_queues()

    assert fake(svc).jobs == []
    [event] = decisions(app)
    assert event.decision == "skipped"
    assert event.reason.startswith("max_runs: 1 run(s) of this process running or queued")


def test_a_run_in_the_ledger_and_in_the_executor_counts_once(
    app: Robo, deploy: Callable[..., None], service: Callable[..., SchedulerService]
) -> None:
    deploy(queue_schedule(min_items=3, max_runs=2))
    add_items(app, 10)
    executor = QueueExecutor()
    svc = service("A", executor)
    svc.start()
    version = app.registry.active(PROCESS)
    uid = "0" * 32
    executor.jobs.append(RunJob(PROCESS, "queue", uid=uid))  # handed over and now running:
    app.ledger.start_run(
        process_id=PROCESS, version_id=version.version_id, version="1.0.0",
        baseline=version.definition.baseline, region="occitanie", parameters={},
        trigger="queue", uid=uid,
    )  # fmt: skip

    svc.check_queues()

    assert len(executor.jobs) == 2  # one more run: 2 of max_runs 2


# --- calendar and window --------------------------------------------------------------------


def test_outside_the_run_window_nothing_fires_and_the_reason_is_recorded(
    app: Robo,
    deploy: Callable[..., None],
    service: Callable[..., SchedulerService],
    clock: time_machine.Traveller,
) -> None:
    deploy(queue_schedule(min_items=3, window=WINDOW))
    add_items(app, 5)
    svc = started_service(service)

    check_at(clock, svc, dt.datetime(2026, 3, 2, 18, 30, tzinfo=UTC))  # 19:30 in Paris
    check_at(clock, svc, dt.datetime(2026, 3, 2, 18, 30, 5, tzinfo=UTC))

    assert fake(svc).jobs == []
    [event] = decisions(app)
    assert event.decision == "skipped"
    assert event.reason == (
        "outside run window: 19:30 is not within 07:00-19:00 (Europe/Paris); "
        f"5 items wait in {PROCESS} (min_items 3)"
    )

    check_at(clock, svc, dt.datetime(2026, 3, 3, 6, 0, tzinfo=UTC))  # 07:00 on Tuesday
    assert len(fake(svc).jobs) == 1
    assert [e.decision for e in decisions(app)] == ["skipped", "fired"]


def test_on_a_public_holiday_nothing_fires_and_the_holiday_is_recorded(
    app: Robo,
    deploy: Callable[..., None],
    service: Callable[..., SchedulerService],
    clock: time_machine.Traveller,
) -> None:
    deploy(queue_schedule(min_items=3, window=WINDOW))
    add_items(app, 5)
    clock.move_to(dt.datetime(2026, 7, 14, 8, 0, tzinfo=UTC))
    svc = started_service(service)

    svc.check_queues()

    assert fake(svc).jobs == []
    [event] = decisions(app)
    assert event.reason.startswith(
        "public holiday (Fête nationale, Tue 14 Jul 2026, calendar FR); 5 items wait"
    )


def test_a_skip_that_lasts_is_recorded_again_each_local_day(
    app: Robo,
    deploy: Callable[..., None],
    service: Callable[..., SchedulerService],
    clock: time_machine.Traveller,
) -> None:
    deploy(queue_schedule(min_items=3, window={**WINDOW, "days": ["mon"]}))
    add_items(app, 5)
    svc = started_service(service)

    check_at(clock, svc, dt.datetime(2026, 3, 3, 9, 0, tzinfo=UTC))  # Tuesday
    check_at(clock, svc, dt.datetime(2026, 3, 3, 15, 0, tzinfo=UTC))
    check_at(clock, svc, dt.datetime(2026, 3, 4, 9, 0, tzinfo=UTC))  # Wednesday

    assert [e.reason.split(";")[0] for e in decisions(app)] == [
        "outside run window: Tuesday is not a run day (mon)",
        "outside run window: Wednesday is not a run day (mon)",
    ]


def test_a_paused_process_is_not_checked(
    app: Robo, deploy: Callable[..., None], service: Callable[..., SchedulerService]
) -> None:
    deploy(queue_schedule(min_items=3))
    add_items(app, 5)
    app.registry.set_paused(PROCESS, True)
    svc = started_service(service)

    assert svc.check_queues() == []
    assert decisions(app) == []


# --- one decision per interval ------------------------------------------------------------


def test_two_schedulers_checking_in_one_interval_make_one_decision_and_one_run(
    app: Robo,
    deploy: Callable[..., None],
    service: Callable[..., SchedulerService],
    clock: time_machine.Traveller,
) -> None:
    deploy(queue_schedule(min_items=3, max_runs=1))
    add_items(app, 5)
    first = started_service(service, "A")
    second = started_service(service, "B")

    check_at(clock, first, later(1))
    [check] = second.check_queues()  # the same 5 s interval (08:00:00-08:00:05)

    assert check.decision == "duplicate"
    assert len(fake(first).jobs) == 1 and fake(second).jobs == []
    [event] = decisions(app)
    assert (event.decision, event.scheduler) == ("fired", "A")


def test_each_interval_is_decided_on_its_own(
    app: Robo,
    deploy: Callable[..., None],
    service: Callable[..., SchedulerService],
    clock: time_machine.Traveller,
) -> None:
    deploy(queue_schedule(min_items=3, max_runs=1))
    add_items(app, 5)
    svc = started_service(service)

    for step in range(3):
        check_at(clock, svc, later(step * CHECK))
        fake(svc).end()  # each run ends before the next check (with items left)

    events = decisions(app)
    assert [e.decision for e in events] == ["fired", "fired", "fired"]
    assert len({e.scheduled_for for e in events}) == 3
    assert len({j.uid for j in fake(svc).jobs}) == 3


# --- the service around it ------------------------------------------------------------------


def test_queue_entries_are_not_apscheduler_jobs_but_cron_entries_beside_them_are(
    app: Robo, deploy: Callable[..., None], service: Callable[..., SchedulerService]
) -> None:
    deploy({"triggers": [{"cron": "0 7 * * mon-fri"}, {"queue": {"min_items": 3, "max_runs": 1}}]})
    svc = started_service(service)

    assert [job.args[1].split("-")[0] for job in svc.aps.get_jobs()] == ["t0"]
    assert [(w.trigger_key, w.queue) for w in svc.queue_triggers.watches] == [("q1", PROCESS)]


def test_a_deploy_that_adds_or_drops_a_queue_trigger_is_followed_without_restart(
    app: Robo,
    deploy: Callable[..., None],
    service: Callable[..., SchedulerService],
) -> None:
    deploy({"triggers": [{"cron": "0 7 * * mon-fri"}]})
    svc = started_service(service)
    assert svc.queue_triggers.watches == []

    deploy(queue_schedule(min_items=3), version="1.1.0")
    svc.sync_jobs()
    assert [w.trigger_key for w in svc.queue_triggers.watches] == ["q0"]
    assert svc.aps.get_jobs() == []

    deploy({"triggers": [{"every_minutes": 30}]}, version="1.2.0")
    svc.sync_jobs()
    assert svc.queue_triggers.watches == []


def test_a_queue_fire_lost_with_its_scheduler_is_not_resubmitted_the_next_check_decides(
    app: Robo,
    deploy: Callable[..., None],
    service: Callable[..., SchedulerService],
    clock: time_machine.Traveller,
) -> None:
    deploy(queue_schedule(min_items=3, max_runs=1))
    add_items(app, 5)
    first = started_service(service, "A")
    first.check_queues()  # fired, but the run never started: the scheduler died
    first.aps.shutdown()

    clock.move_to(later(60))
    second = started_service(service, "B")
    assert fake(second).jobs == []  # start() resubmits lost cron fires, not queue fires
    second.check_queues()
    assert len(fake(second).jobs) == 1


def test_the_service_loop_checks_queues_every_few_seconds(
    app: Robo, deploy: Callable[..., None]
) -> None:
    deploy(queue_schedule(min_items=3))
    add_items(app, 3)
    executor = QueueExecutor()
    svc = SchedulerService(
        app.settings, app.db, app.registry, app.ledger, app.queues, executor,
        scheduler_factory=ManualScheduler, owner="loop", queue_check_seconds=0.2,
    )  # fmt: skip
    stop = threading.Event()
    loop = threading.Thread(target=svc.run, args=(stop,), kwargs={"drain_seconds": 0})
    loop.start()
    try:
        deadline = time.monotonic() + 20
        while not executor.jobs and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        stop.set()
        loop.join(timeout=20)
    assert not loop.is_alive()
    assert [j.trigger for j in executor.jobs] == ["queue"]


def test_a_failing_check_is_logged_and_the_next_one_runs(
    app: Robo,
    deploy: Callable[..., None],
    service: Callable[..., SchedulerService],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    deploy(queue_schedule(min_items=3))
    add_items(app, 3)
    svc = started_service(service)

    def unreachable(*_args: Any, **_kwargs: Any) -> dict[str, int]:
        raise ConnectionError("database unreachable")

    with monkeypatch.context() as patch:
        patch.setattr(svc.queues, "waiting_counts", unreachable)
        assert svc.check_queues() == []
    assert len([c for c in svc.check_queues() if c.decision == "fired"]) == 1


# --- robo schedule -------------------------------------------------------------------------


def test_the_overview_shows_a_queue_trigger_with_the_items_waiting_now(
    app: Robo, deploy: Callable[..., None]
) -> None:
    deploy(queue_schedule(min_items=20, max_runs=2, window=WINDOW))
    add_items(app, 12)

    [plan] = overview(app.registry, T0, app.queues)

    assert plan.next_run_local is None
    [trigger] = plan.queue_triggers
    assert trigger.trigger == "when >= 20 items wait (12 now), at most 2 runs at once"
    assert trigger.now == "waits for 8 more item(s)"
    assert upcoming(app.registry.active(PROCESS).schedule or pytest.fail(), T0) == []


def test_robo_schedule_shows_queue_triggers_in_the_table_and_in_json(
    app: Robo, deploy: Callable[..., None], database_url: str
) -> None:
    deploy(queue_schedule(min_items=20, max_runs=2, window=WINDOW))
    add_items(app, 12)
    runner = CliRunner(env={"COLUMNS": "200"})
    base = ["--home", str(app.settings.home), "--database-url", database_url]

    listing = runner.invoke(cli, [*base, "schedule"], catch_exceptions=False)
    detail = runner.invoke(cli, [*base, "schedule", PROCESS, "--json"], catch_exceptions=False)

    assert listing.exit_code == 0, listing.output
    assert "when >= 20 items wait (12 now), at most 2 runs at once" in listing.output
    data = json.loads(detail.stdout)
    assert data["upcoming"] == []
    [trigger] = data["queue_triggers"]
    assert (trigger["waiting"], trigger["running"], trigger["now"]) == (
        12,
        0,
        "waits for 8 more item(s)",
    )
