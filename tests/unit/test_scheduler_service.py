"""The scheduler service: what it fires, what it skips and why, on SQLite and PostgreSQL.

The real SchedulerService runs with its real APScheduler job store in the test
database, but without threads: a manual scheduler whose jobs are processed when
the test says so, a frozen clock the test moves, and a fake executor that
records the batches of runs it is handed (the real process pool is exercised
by an integration test).
"""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import time_machine
from apscheduler.schedulers.base import BaseScheduler
from sqlalchemy import update

from robo.app import Robo
from robo.errors import SchedulerBusy
from robo.ledger import ItemOutcome
from robo.loader import load_process
from robo.regional import EffectiveSchedule
from robo.scheduling.decisions import DecisionLog, ScheduleEvent
from robo.scheduling.dispatch import Dispatcher
from robo.scheduling.executors.base import RunJob
from robo.scheduling.service import SchedulerService
from robo.settings import Settings
from robo.storage.models import RunRow
from tests.conftest import definition

PROCESS = "sample-process"
UTC = dt.UTC
T0 = dt.datetime(2026, 3, 2, 8, 0, tzinfo=UTC)  # a Monday, winter time (Paris = UTC+1)


def utc(
    year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0
) -> dt.datetime:
    return dt.datetime(year, month, day, hour, minute, second, tzinfo=UTC)


class ManualScheduler(BaseScheduler):
    """APScheduler without a thread: jobs are processed when the test calls _process_jobs()."""

    def wakeup(self) -> None:
        pass

    def shutdown(self, wait: bool = True) -> None:
        super().shutdown(wait)


class FakeExecutor:
    """Records each batch of runs handed over; ``running`` makes the process look busy."""

    def __init__(self) -> None:
        self.batches: list[list[RunJob]] = []
        self.running = False

    def submit(self, jobs: list[RunJob]) -> None:
        self.batches.append(list(jobs))

    def busy(self, process_id: str) -> bool:
        return self.running

    def in_flight(self, process_id: str) -> set[str]:
        return set()

    def shutdown(self, drain_seconds: float = 60) -> None:
        self.running = False

    def jobs(self) -> list[list[tuple[str, str, str | None, int | None]]]:
        """Each batch as (process, trigger, scheduled_for, resumes_run_id) per job."""
        return [
            [(j.process_id, j.trigger, j.scheduled_for, j.resumes_run_id) for j in batch]
            for batch in self.batches
        ]

    def scheduled_times(self) -> list[list[dt.datetime]]:
        return [
            [dt.datetime.fromisoformat(job.scheduled_for or "").astimezone(UTC) for job in batch]
            for batch in self.batches
        ]


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
    """Deploy (a new version of) the process with this schedule."""

    def run(schedule: dict[str, Any] | None, version: str = "1.0.0", **overrides: Any) -> None:
        spec = definition(version=version, schedule=schedule, **overrides)
        app.registry.deploy(load_process(make_process(spec, name=f"{PROCESS}-{version}")))

    return run


@pytest.fixture
def service(app: Robo) -> Iterator[Callable[..., SchedulerService]]:
    """``service("A")``: a scheduler service on the test database, shut down afterwards."""
    made: list[SchedulerService] = []

    def make(owner: str = "A", executor: FakeExecutor | None = None) -> SchedulerService:
        svc = SchedulerService(
            app.settings,
            app.db,
            app.registry,
            app.ledger,
            app.queues,
            executor or FakeExecutor(),
            scheduler_factory=ManualScheduler,
            owner=owner,
        )
        made.append(svc)
        return svc

    yield make
    for svc in made:
        if svc.aps is not None and svc.aps.running:
            svc.aps.shutdown()


def fake(svc: SchedulerService) -> FakeExecutor:
    assert isinstance(svc.executor, FakeExecutor)
    return svc.executor


def process_at(clock: time_machine.Traveller, svc: SchedulerService, moment: dt.datetime) -> None:
    """The scheduler wakes up at ``moment`` and handles every job due by then."""
    clock.move_to(moment)
    svc.aps._process_jobs()


def decisions(app: Robo) -> list[ScheduleEvent]:
    """Every recorded decision about the process, oldest first."""
    return list(reversed(DecisionLog(app.db).events(PROCESS, limit=500)))


def table(app: Robo) -> list[tuple[str, str]]:
    """(scheduled time in UTC as HH:MM, decision) for each recorded decision."""
    return [
        (dt.datetime.fromisoformat(e.scheduled_for).astimezone(UTC).strftime("%H:%M"), e.decision)
        for e in decisions(app)
        if not e.trigger_key.startswith("recovery-of-")
    ]


def start_run(app: Robo, trigger: str = "schedule", **kwargs: Any) -> int:
    version = app.registry.active(PROCESS)
    d = version.definition
    return app.ledger.start_run(
        process_id=PROCESS, version_id=version.version_id, version=d.version,
        baseline=d.baseline, region="occitanie", parameters={}, trigger=trigger, **kwargs,
    )  # fmt: skip


def started(app: Robo, svc: SchedulerService) -> None:
    """The runs handed to the fake executor really started (and ended): their rows exist."""
    for batch in fake(svc).batches:
        for job in batch:
            if app.ledger.find_run(job.uid) is None:
                app.ledger.finish_run(start_run(app, trigger=job.trigger, uid=job.uid), "completed")


def item(reference: str, position: int) -> ItemOutcome:
    return ItemOutcome(
        position=position, reference=reference, status="success", attempts=1,
        started_at=T0, finished_at=T0 + dt.timedelta(seconds=2),
    )  # fmt: skip


# --- missed runs: the scheduler was stopped while fires came due ----------------------


EVERY_TEN = {"triggers": [{"every_minutes": 10}]}


@pytest.fixture
def stopped_scheduler(
    app: Robo,
    deploy: Callable[..., None],
    service: Callable[..., SchedulerService],
    clock: time_machine.Traveller,
) -> Callable[..., SchedulerService]:
    """A scheduler fires at 08:10, stops, and another starts at 08:55:30.

    The fires due at 08:20, 08:30, 08:40 and 08:50 were missed meanwhile.
    """

    def run(**schedule: Any) -> SchedulerService:
        deploy({**EVERY_TEN, **schedule})
        first = service("A")
        first.start()  # 08:00: the interval's first fire is 08:10
        process_at(clock, first, utc(2026, 3, 2, 8, 10, 1))
        assert fake(first).scheduled_times() == [[utc(2026, 3, 2, 8, 10)]]
        started(app, first)
        first.aps.shutdown()

        clock.move_to(utc(2026, 3, 2, 8, 55, 30))
        second = service("B")
        second.start()
        second.aps._process_jobs()
        return second

    return run


def test_run_once_makes_one_late_run_and_records_the_others_as_coalesced(
    app: Robo, stopped_scheduler: Callable[..., SchedulerService]
) -> None:
    svc = stopped_scheduler(missed="run_once", grace_minutes=60)

    assert fake(svc).scheduled_times() == [[utc(2026, 3, 2, 8, 50)]]
    assert table(app) == [
        ("08:10", "fired"),
        ("08:20", "missed"), ("08:30", "missed"), ("08:40", "missed"),
        ("08:50", "fired"),
    ]  # fmt: skip
    for event in decisions(app)[1:4]:
        assert event.reason.startswith("missed while no scheduler ran; coalesced")
        assert "into the run due 2026-03-02 08:50 UTC" in event.reason
        assert event.scheduler == "B"


def test_each_runs_every_missed_fire_within_grace_in_order_as_one_batch(
    app: Robo, stopped_scheduler: Callable[..., SchedulerService]
) -> None:
    svc = stopped_scheduler(missed="each", grace_minutes=60)

    assert fake(svc).scheduled_times() == [
        [utc(2026, 3, 2, 8, minute) for minute in (20, 30, 40, 50)]
    ]
    assert {job.trigger for job in fake(svc).batches[0]} == {"schedule"}
    assert table(app)[1:] == [(f"08:{m}", "fired") for m in (20, 30, 40, 50)]


def test_skip_runs_none_of_the_missed_fires_and_records_each(
    app: Robo, stopped_scheduler: Callable[..., SchedulerService]
) -> None:
    svc = stopped_scheduler(missed="skip")

    assert fake(svc).batches == []
    assert table(app)[1:] == [(f"08:{m}", "missed") for m in (20, 30, 40, 50)]
    reasons = [e.reason for e in decisions(app)[1:]]
    assert reasons[0] == "missed while no scheduler ran (36 min late; missed: skip)"
    assert all(r.endswith("missed: skip)") for r in reasons)


def test_fires_beyond_the_grace_period_are_recorded_as_missed(
    app: Robo, stopped_scheduler: Callable[..., SchedulerService]
) -> None:
    svc = stopped_scheduler(missed="each", grace_minutes=20)

    assert fake(svc).scheduled_times() == [[utc(2026, 3, 2, 8, 40), utc(2026, 3, 2, 8, 50)]]
    assert table(app)[1:] == [
        ("08:20", "missed"), ("08:30", "missed"), ("08:40", "fired"), ("08:50", "fired"),
    ]  # fmt: skip
    beyond = [e.reason for e in decisions(app)[1:3]]
    assert beyond == [
        "missed while no scheduler ran (36 min late, beyond grace of 20 min)",
        "missed while no scheduler ran (26 min late, beyond grace of 20 min)",
    ]


def test_run_once_with_every_fire_beyond_grace_runs_nothing(
    app: Robo, stopped_scheduler: Callable[..., SchedulerService]
) -> None:
    svc = stopped_scheduler(missed="run_once", grace_minutes=2)

    assert fake(svc).batches == []
    assert [d for _, d in table(app)[1:]] == ["missed"] * 4
    assert all("beyond grace of 2 min" in e.reason for e in decisions(app)[1:])


def test_a_restart_keeps_the_next_fire_time_of_an_unchanged_job(
    app: Robo, deploy: Callable[..., None], service: Callable[..., SchedulerService],
    clock: time_machine.Traveller,
) -> None:  # fmt: skip
    deploy(EVERY_TEN)
    first = service("A")
    first.start()
    (job,) = first.aps.get_jobs()
    assert job.next_run_time == utc(2026, 3, 2, 8, 10)
    first.aps.shutdown()

    clock.move_to(utc(2026, 3, 2, 8, 5))
    second = service("B")
    second.start()
    (job,) = second.aps.get_jobs()
    assert job.next_run_time == utc(2026, 3, 2, 8, 10)  # not 08:15: the job was left alone


def test_a_warm_start_applies_changes_made_while_down_and_keeps_unchanged_jobs(
    app: Robo, deploy: Callable[..., None], service: Callable[..., SchedulerService],
    make_process: Callable[..., Path], clock: time_machine.Traveller,
) -> None:  # fmt: skip
    """The restart reads only what changed, yet every change made while down is honoured."""
    other = definition(id="other-process", schedule=EVERY_TEN)
    app.registry.deploy(load_process(make_process(other, name="other-1")))
    deploy(EVERY_TEN)
    first = service("A")
    first.start()
    assert {job.id.split("|")[0]: job.next_run_time for job in first.aps.get_jobs()} == {
        PROCESS: utc(2026, 3, 2, 8, 10), "other-process": utc(2026, 3, 2, 8, 10),
    }  # fmt: skip
    first.aps.shutdown()

    clock.move_to(utc(2026, 3, 2, 8, 5))
    deploy({"triggers": [{"every_minutes": 30}]}, version="1.1.0")  # while no scheduler runs
    second = service("B")
    second.start()
    assert sorted((job.name, job.next_run_time) for job in second.aps.get_jobs()) == [
        ("other-process (every 10 min)", utc(2026, 3, 2, 8, 10)),  # unchanged: its next fire
        (f"{PROCESS} (every 30 min)", utc(2026, 3, 2, 8, 35)),  # the new schedule
    ]
    second.aps.shutdown()

    clock.move_to(utc(2026, 3, 2, 8, 7))  # nothing changed: nothing is read, nothing moves
    third = service("C")
    third.start()
    assert not third._complete  # the warm path: no schedule was read at start
    assert sorted((job.name, job.next_run_time) for job in third.aps.get_jobs()) == [
        ("other-process (every 10 min)", utc(2026, 3, 2, 8, 10)),
        (f"{PROCESS} (every 30 min)", utc(2026, 3, 2, 8, 35)),
    ]
    process_at(clock, third, utc(2026, 3, 2, 8, 10, 1))  # schedules looked up as they fire
    assert [[job.process_id for job in batch] for batch in fake(third).batches] == [
        ["other-process"]
    ]


# --- every decision is a row, with its reason -----------------------------------------


def test_a_fire_on_a_public_holiday_is_skipped_and_recorded(
    app: Robo, deploy: Callable[..., None], service: Callable[..., SchedulerService],
    clock: time_machine.Traveller,
) -> None:  # fmt: skip
    deploy({"triggers": [{"cron": "0 9 * * *"}]})
    clock.move_to(utc(2026, 7, 13, 12))
    svc = service()
    svc.start()

    process_at(clock, svc, utc(2026, 7, 14, 7, 0, 5))  # 09:00 in Paris, Fête nationale
    assert fake(svc).batches == []
    (event,) = decisions(app)
    assert event.decision == "skipped"
    assert event.reason == "public holiday (Fête nationale, Tue 14 Jul 2026, calendar FR)"

    process_at(clock, svc, utc(2026, 7, 15, 7, 0, 5))
    assert fake(svc).scheduled_times() == [[utc(2026, 7, 15, 7)]]
    assert [e.decision for e in decisions(app)] == ["skipped", "fired"]


def test_a_fire_outside_the_run_window_is_skipped_and_recorded(
    app: Robo, deploy: Callable[..., None], service: Callable[..., SchedulerService],
    clock: time_machine.Traveller,
) -> None:  # fmt: skip
    deploy({"triggers": [{"cron": "0 * * * *"}], "window": {"start": "07:00", "end": "19:00"}})
    clock.move_to(utc(2026, 3, 2, 16, 30))
    svc = service()
    svc.start()

    process_at(clock, svc, utc(2026, 3, 2, 17, 0, 5))  # 18:00 in Paris
    process_at(clock, svc, utc(2026, 3, 2, 18, 0, 5))  # 19:00 in Paris: the window has closed
    assert fake(svc).scheduled_times() == [[utc(2026, 3, 2, 17)]]
    assert table(app) == [("17:00", "fired"), ("18:00", "skipped")]
    assert decisions(app)[1].reason == (
        "outside run window: 19:00 is not within 07:00-19:00 (Europe/Paris)"
    )


def test_a_fire_while_the_process_still_runs_is_skipped_as_overlap(
    app: Robo, deploy: Callable[..., None], service: Callable[..., SchedulerService],
    clock: time_machine.Traveller,
) -> None:  # fmt: skip
    deploy({"triggers": [{"cron": "*/10 * * * *"}]})
    clock.move_to(utc(2026, 3, 2, 8, 1))
    svc = service()
    svc.start()

    fake(svc).running = True  # queued or running in this scheduler's executor
    process_at(clock, svc, utc(2026, 3, 2, 8, 10, 5))
    fake(svc).running = False
    run_id = start_run(app)  # running according to the ledger (e.g. started by hand)
    process_at(clock, svc, utc(2026, 3, 2, 8, 20, 5))
    app.ledger.finish_run(run_id, "completed")
    process_at(clock, svc, utc(2026, 3, 2, 8, 30, 5))

    assert table(app) == [("08:10", "skipped"), ("08:20", "skipped"), ("08:30", "fired")]
    reasons = [e.reason for e in decisions(app)]
    assert reasons[0] == "overlap: a run of this process is still queued or running"
    assert reasons[1] == f"overlap: run {run_id} of this process is still running"
    assert fake(svc).scheduled_times() == [[utc(2026, 3, 2, 8, 30)]]


def test_overlap_allow_fires_even_while_a_run_is_in_progress(
    app: Robo, deploy: Callable[..., None], service: Callable[..., SchedulerService],
    clock: time_machine.Traveller,
) -> None:  # fmt: skip
    deploy({"triggers": [{"cron": "*/10 * * * *"}], "overlap": "allow"})
    clock.move_to(utc(2026, 3, 2, 8, 1))
    svc = service()
    svc.start()
    fake(svc).running = True
    process_at(clock, svc, utc(2026, 3, 2, 8, 10, 5))
    assert table(app) == [("08:10", "fired")]


def test_autumn_dst_half_past_two_runs_once_and_the_repeat_is_recorded(
    app: Robo, deploy: Callable[..., None], service: Callable[..., SchedulerService],
    clock: time_machine.Traveller,
) -> None:  # fmt: skip
    deploy({"triggers": [{"cron": "30 2 * * *"}]})
    clock.move_to(utc(2026, 10, 24, 22))  # midnight in Paris, summer time
    svc = service()
    svc.start()

    process_at(clock, svc, utc(2026, 10, 25, 0, 30, 5))  # 02:30 CEST
    process_at(clock, svc, utc(2026, 10, 25, 1, 30, 5))  # 02:30 CET, an hour later
    process_at(clock, svc, utc(2026, 10, 25, 4))

    assert fake(svc).scheduled_times() == [[utc(2026, 10, 25, 0, 30)]]
    assert table(app) == [("00:30", "fired"), ("01:30", "skipped")]
    assert "comes twice" in decisions(app)[1].reason
    (job,) = svc.aps.get_jobs()
    assert job.next_run_time == utc(2026, 10, 26, 1, 30)


# --- registry changes reach the job store without a restart ---------------------------


def job_names(svc: SchedulerService) -> list[str]:
    return sorted(job.name for job in svc.aps.get_jobs())


def test_deploy_disable_pause_and_resume_change_jobs_without_restart(
    app: Robo, deploy: Callable[..., None], service: Callable[..., SchedulerService],
    clock: time_machine.Traveller,
) -> None:  # fmt: skip
    deploy({"triggers": [{"cron": "0 7 * * mon-fri"}]})
    svc = service()
    svc.start()
    assert job_names(svc) == [f"{PROCESS} (cron 0 7 * * mon-fri)"]
    assert svc.sync_jobs() == (0, 0)  # nothing changed

    deploy({"triggers": [{"cron": "0 8 * * mon-fri"}, {"every_minutes": 30}]}, version="1.1.0")
    assert svc.sync_jobs() == (2, 1)
    assert job_names(svc) == [f"{PROCESS} (cron 0 8 * * mon-fri)", f"{PROCESS} (every 30 min)"]

    app.registry.set_enabled(PROCESS, False)
    assert svc.sync_jobs() == (0, 2)
    assert job_names(svc) == []
    app.registry.set_enabled(PROCESS, True)
    assert svc.sync_jobs() == (2, 0)

    app.registry.set_paused(PROCESS, True)
    assert svc.sync_jobs() == (0, 2)
    assert job_names(svc) == []
    assert app.registry.firing_schedule(PROCESS) is None
    app.registry.set_paused(PROCESS, False)
    assert svc.sync_jobs() == (2, 0)
    assert len(job_names(svc)) == 2

    deploy(None, version="1.2.0")  # a version without a schedule
    assert svc.sync_jobs() == (0, 2)
    assert job_names(svc) == []


def test_a_new_version_with_the_same_schedule_keeps_its_job(
    app: Robo, deploy: Callable[..., None], service: Callable[..., SchedulerService],
    clock: time_machine.Traveller,
) -> None:  # fmt: skip
    deploy({"triggers": [{"cron": "0 7 * * *"}]})
    svc = service()
    svc.start()
    (before,) = svc.aps.get_jobs()

    deploy({"triggers": [{"cron": "0 7 * * *"}]}, version="1.0.1", description="Changed.")
    assert svc.sync_jobs() == (0, 0)
    (after,) = svc.aps.get_jobs()
    assert (after.id, after.next_run_time) == (before.id, before.next_run_time)


def test_a_paused_process_fires_nothing_while_its_job_remains(
    app: Robo, deploy: Callable[..., None], service: Callable[..., SchedulerService],
    clock: time_machine.Traveller,
) -> None:  # fmt: skip
    """Paused between two syncs: the due fire is recorded as skipped, not run."""
    deploy({"triggers": [{"cron": "*/10 * * * *"}]})
    clock.move_to(utc(2026, 3, 2, 8, 1))
    svc = service()
    svc.start()
    app.registry.set_paused(PROCESS, True)
    svc._schedules[PROCESS] = app.registry.firing_schedule(PROCESS)  # what a sync would learn
    process_at(clock, svc, utc(2026, 3, 2, 8, 10, 5))
    assert fake(svc).batches == []
    (event,) = decisions(app)
    assert (event.decision, event.reason) == (
        "skipped", "process is disabled, paused or has no schedule",
    )  # fmt: skip


# --- a fire is decided once ---------------------------------------------------------------


def test_a_fire_is_recorded_once_whoever_decides_it(app: Robo) -> None:
    log = DecisionLog(app.db, "A")
    at = utc(2026, 3, 2, 9)
    assert log.record(PROCESS, "t0-abc", at, "fired") is True
    assert DecisionLog(app.db, "B").record(PROCESS, "t0-abc", at, "skipped", "x") is False
    assert log.record(PROCESS, "t1-def", at, "fired") is True  # another trigger, same time
    assert [(e.trigger_key, e.scheduler) for e in decisions(app)] == [
        ("t0-abc", "A"), ("t1-def", "A"),
    ]  # fmt: skip


def test_two_dispatchers_on_one_fire_start_one_run(app: Robo, deploy: Callable[..., None]) -> None:
    deploy({"triggers": [{"cron": "0 9 * * *"}]})
    schedule = app.registry.firing_schedule(PROCESS)
    assert isinstance(schedule, EffectiveSchedule)
    executors = [FakeExecutor(), FakeExecutor()]
    dispatchers = [
        Dispatcher(
            DecisionLog(app.db, owner),
            executor,
            schedules=lambda _pid: schedule,
            running=lambda _pid: None,
        )
        for owner, executor in zip("AB", executors, strict=True)
    ]
    at = utc(2026, 3, 2, 8)
    (first,) = dispatchers[0].due(PROCESS, "t0-abc", [at])
    (second,) = dispatchers[1].due(PROCESS, "t0-abc", [at])

    assert (first.decision, second.decision) == ("fired", "duplicate")
    assert second.reason == "already decided by a scheduler"
    assert [len(e.batches) for e in executors] == [1, 0]


def test_a_second_service_does_not_run_a_fire_the_first_decided(
    app: Robo, deploy: Callable[..., None], service: Callable[..., SchedulerService],
    clock: time_machine.Traveller,
) -> None:  # fmt: skip
    deploy({"triggers": [{"cron": "*/10 * * * *"}]})
    clock.move_to(utc(2026, 3, 2, 8, 1))
    first = service("A")
    first.start()
    process_at(clock, first, utc(2026, 3, 2, 8, 10, 5))
    (job,) = first.aps.get_jobs()
    started(app, first)
    first.aps.shutdown()

    second = service("B")
    second.start()
    (outcome,) = second.dispatcher.due(PROCESS, job.args[1], [utc(2026, 3, 2, 8, 10)])
    assert outcome.decision == "duplicate"
    assert fake(second).batches == []
    assert table(app) == [("08:10", "fired")]


def test_a_fire_that_never_started_runs_when_the_next_scheduler_starts(
    app: Robo, deploy: Callable[..., None], service: Callable[..., SchedulerService],
    clock: time_machine.Traveller,
) -> None:  # fmt: skip
    deploy({"triggers": [{"cron": "*/10 * * * *"}], "grace_minutes": 30})
    clock.move_to(utc(2026, 3, 2, 8, 1))
    first = service("A")
    first.start()
    process_at(clock, first, utc(2026, 3, 2, 8, 10, 5))  # fired, then A died before it ran
    (fired,) = fake(first).batches[0]
    first.aps.shutdown()

    clock.move_to(utc(2026, 3, 2, 8, 15))
    second = service("B")
    second.start()

    (again,) = fake(second).batches[0]
    assert again.uid == fired.uid  # the same fire keeps the same run uid
    assert dt.datetime.fromisoformat(again.scheduled_for or "") == dt.datetime.fromisoformat(
        fired.scheduled_for or ""
    )
    assert table(app) == [("08:10", "fired")]


def test_a_lost_fire_beyond_its_grace_period_is_not_started_late(
    app: Robo, deploy: Callable[..., None], service: Callable[..., SchedulerService],
    clock: time_machine.Traveller,
) -> None:  # fmt: skip
    deploy({"triggers": [{"cron": "0 8 * * *"}], "grace_minutes": 30, "skip_holidays": False})
    clock.move_to(utc(2026, 3, 2, 7, 59))
    first = service("A")
    first.start()
    process_at(clock, first, utc(2026, 3, 2, 8, 0, 5))
    first.aps.shutdown()

    clock.move_to(utc(2026, 3, 2, 9, 0))
    second = service("B")
    second.start()

    assert fake(second).batches == []


# --- one leader per database ----------------------------------------------------------------


def test_a_second_scheduler_is_refused_until_the_leader_lease_expires(
    app: Robo, service: Callable[..., SchedulerService], clock: time_machine.Traveller
) -> None:
    stop = threading.Event()
    leader, standby = service("A"), service("B")
    assert leader.wait_for_lease(stop, wait=False) is True

    with pytest.raises(SchedulerBusy) as refused:
        standby.wait_for_lease(stop, wait=False)
    assert refused.value.exit_code == 3
    assert "A (lease until 08:00:15 UTC) is the active scheduler" in str(refused.value)

    clock.move_to(T0 + dt.timedelta(seconds=10))
    assert leader.lock.renew() is True  # renewed: lease now until 08:00:25
    clock.move_to(T0 + dt.timedelta(seconds=20))
    with pytest.raises(SchedulerBusy):
        standby.wait_for_lease(stop, wait=False)

    clock.move_to(T0 + dt.timedelta(seconds=26))  # the leader stopped renewing
    assert standby.wait_for_lease(stop, wait=False) is True
    assert leader.lock.renew() is False
    holder = standby.lock.holder()
    assert holder is not None and holder.owner == "B"


def test_a_released_lease_is_free_at_once(
    app: Robo, service: Callable[..., SchedulerService]
) -> None:
    stop = threading.Event()
    leader, standby = service("A"), service("B")
    assert leader.wait_for_lease(stop, wait=False)
    leader.lock.release()
    assert standby.wait_for_lease(stop, wait=False)


def test_a_standby_that_is_stopped_gives_up_without_the_lease(
    app: Robo, service: Callable[..., SchedulerService]
) -> None:
    stop = threading.Event()
    assert service("A").wait_for_lease(stop, wait=False)
    stop.set()
    assert service("B").wait_for_lease(stop, wait=True, poll=0.001) is False


# --- crash recovery -------------------------------------------------------------------------


@pytest.fixture
def crashed_run(
    app: Robo, deploy: Callable[..., None], clock: time_machine.Traveller
) -> Callable[..., int]:
    """A run that recorded 2 of its 5 items, then its runner stopped heartbeating."""

    def make(trigger: str = "schedule", on_abandoned: str = "retry_remaining") -> int:
        deploy({"triggers": [{"cron": "0 7 * * *"}], "on_abandoned": on_abandoned})
        run_id = start_run(app, trigger=trigger)
        app.ledger.set_items_total(run_id, 5)
        app.ledger.record_item(run_id, item("A1", 0))
        app.ledger.record_item(run_id, item("A2", 1))
        return run_id

    return make


def test_a_silent_run_is_abandoned_with_its_items_kept_and_its_remainder_retried(
    app: Robo, crashed_run: Callable[..., int], service: Callable[..., SchedulerService],
    clock: time_machine.Traveller,
) -> None:  # fmt: skip
    run_id = crashed_run()
    minutes = app.ledger.summary(run_id).minutes_saved
    assert minutes == pytest.approx(16)  # 2 items x (10 - 2) minutes
    svc = service()

    clock.move_to(T0 + dt.timedelta(seconds=30))
    assert svc.recover() == []  # heartbeat fresh and runner alive: left alone

    clock.move_to(T0 + dt.timedelta(minutes=5))
    assert svc.recover() == [run_id]
    run = app.ledger.summary(run_id)
    assert run.status == "abandoned"
    assert (run.succeeded, run.items_total) == (2, 5)
    assert run.minutes_saved == pytest.approx(minutes)
    assert run.error is not None and "2 of 5 items recorded" in run.error
    assert app.ledger.recorded_references(run_id) == {"A1", "A2"}

    assert fake(svc).jobs() == [[(PROCESS, "recovery", None, run_id)]]
    (event,) = [e for e in decisions(app) if e.trigger_key == f"recovery-of-{run_id}"]
    assert event.decision == "fired"
    assert "on_abandoned: retry_remaining" in event.reason

    assert svc.recover() == []  # once abandoned, never again
    assert len(fake(svc).batches) == 1


def test_start_recovers_abandoned_runs(
    app: Robo, crashed_run: Callable[..., int], service: Callable[..., SchedulerService],
    clock: time_machine.Traveller,
) -> None:  # fmt: skip
    run_id = crashed_run()
    clock.move_to(T0 + dt.timedelta(minutes=5))
    svc = service()
    svc.start()
    assert app.ledger.summary(run_id).status == "abandoned"
    assert fake(svc).jobs() == [[(PROCESS, "recovery", None, run_id)]]


@pytest.mark.parametrize(
    ("trigger", "on_abandoned"),
    [("schedule", "leave"), ("manual", "retry_remaining")],
)
def test_no_retry_for_on_abandoned_leave_or_a_manual_run(
    app: Robo, crashed_run: Callable[..., int], service: Callable[..., SchedulerService],
    clock: time_machine.Traveller, trigger: str, on_abandoned: str,
) -> None:  # fmt: skip
    run_id = crashed_run(trigger=trigger, on_abandoned=on_abandoned)
    svc = service()
    clock.move_to(T0 + dt.timedelta(minutes=5))
    assert svc.recover() == [run_id]
    assert app.ledger.summary(run_id).status == "abandoned"
    assert fake(svc).batches == []


def test_a_run_whose_process_is_dead_on_this_host_is_abandoned_at_once(
    app: Robo, crashed_run: Callable[..., int], service: Callable[..., SchedulerService]
) -> None:
    run_id = crashed_run()
    finished = subprocess.run([sys.executable, "-c", "pass"], check=True)
    assert finished.returncode == 0
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    with app.db.session() as session:
        session.execute(update(RunRow).where(RunRow.id == run_id).values(pid=dead.pid))

    svc = service()
    assert svc.recover() == [run_id]  # heartbeat is fresh (the clock has not moved)
    assert f"process {dead.pid}" in (app.ledger.summary(run_id).error or "")
    assert fake(svc).jobs() == [[(PROCESS, "recovery", None, run_id)]]


def test_a_recovery_run_resumes_the_chain_and_never_redoes_recorded_items(
    app: Robo, crashed_run: Callable[..., int], service: Callable[..., SchedulerService],
    clock: time_machine.Traveller,
) -> None:  # fmt: skip
    first = crashed_run()
    clock.move_to(T0 + dt.timedelta(minutes=5))
    service().recover()

    second = start_run(app, trigger="recovery", resumes_run_id=first)
    app.ledger.set_items_total(second, 5)
    app.ledger.record_item(second, item("A3", 2))
    clock.move_to(T0 + dt.timedelta(minutes=10))
    assert service("B").recover() == [second]  # the recovery run died too: retried again

    third = start_run(app, trigger="recovery", resumes_run_id=second)
    assert app.ledger.recorded_in_chain(third) == {"A1", "A2", "A3"}
    assert app.ledger.recorded_in_chain(second) == {"A1", "A2", "A3"}
    assert app.ledger.recorded_in_chain(first) == {"A1", "A2"}


class BrokerAway(FakeExecutor):
    def submit(self, jobs: list[RunJob]) -> None:
        raise ConnectionError("[Errno 111] Connection refused")


def test_a_recovery_owed_by_a_scheduler_killed_before_submitting_it_is_submitted_by_the_next(
    app: Robo, crashed_run: Callable[..., int], service: Callable[..., SchedulerService],
    clock: time_machine.Traveller,
) -> None:  # fmt: skip
    run_id = crashed_run()
    clock.move_to(T0 + dt.timedelta(minutes=5))
    # The first scheduler abandoned the run and was killed before it submitted anything:
    # the intent is in the abandoning transaction, so the next scheduler owes it.
    (abandoned,) = app.ledger.abandon_stale(T0 + dt.timedelta(minutes=4), "elsewhere", bool)
    assert abandoned.id == run_id
    svc = service("B")
    assert svc.recover() == []  # nothing newly abandoned ...
    assert fake(svc).jobs() == [[(PROCESS, "recovery", None, run_id)]]  # ... one recovery owed
    assert svc.recover() == [] and len(fake(svc).batches) == 1  # submitted once per lifetime


def test_a_recovery_submitted_by_a_dead_scheduler_is_submitted_again_until_its_run_starts(
    app: Robo, crashed_run: Callable[..., int], service: Callable[..., SchedulerService],
    clock: time_machine.Traveller,
) -> None:  # fmt: skip
    run_id = crashed_run()
    clock.move_to(T0 + dt.timedelta(minutes=5))
    service("A").recover()  # submitted; then A was killed and its pool with it
    again = service("B")
    again.recover()
    assert fake(again).jobs() == [[(PROCESS, "recovery", None, run_id)]]
    start_run(app, trigger="recovery", resumes_run_id=run_id)  # the recovery's run row exists
    third = service("C")
    third.recover()
    assert fake(third).batches == []  # started: owed no more


def test_a_recovery_whose_broker_is_away_stays_owed_and_goes_when_the_broker_is_back(
    app: Robo, crashed_run: Callable[..., int], service: Callable[..., SchedulerService],
    clock: time_machine.Traveller,
) -> None:  # fmt: skip
    run_id = crashed_run()
    clock.move_to(T0 + dt.timedelta(minutes=5))
    away = service("A", executor=BrokerAway())
    assert away.recover() == [run_id]  # no exception: the scheduler keeps running
    assert [r.id for r in app.ledger.recoveries_owed()] == [run_id]
    back = FakeExecutor()
    away.executor = back
    away.recover()
    assert back.jobs() == [[(PROCESS, "recovery", None, run_id)]]


def test_a_run_abandoned_by_another_run_of_its_process_is_recovered_by_the_scheduler(
    app: Robo, crashed_run: Callable[..., int], service: Callable[..., SchedulerService],
    clock: time_machine.Traveller,
) -> None:  # fmt: skip
    run_id = crashed_run(trigger="submit")
    clock.move_to(T0 + dt.timedelta(minutes=5))
    # A new run of the process ends dead runs before it reclaims their items.
    app.ledger.abandon_stale(T0 + dt.timedelta(minutes=4), "elsewhere", bool, process_id=PROCESS)
    svc = service()
    svc.recover()
    assert fake(svc).jobs() == [[(PROCESS, "recovery", None, run_id)]]


def test_a_recovery_declined_by_on_abandoned_leave_is_not_owed_again(
    app: Robo, crashed_run: Callable[..., int], service: Callable[..., SchedulerService],
    clock: time_machine.Traveller,
) -> None:  # fmt: skip
    crashed_run(on_abandoned="leave")
    clock.move_to(T0 + dt.timedelta(minutes=5))
    service("A").recover()
    assert app.ledger.recoveries_owed() == []


def test_a_run_that_recorded_every_item_is_not_retried(
    app: Robo, crashed_run: Callable[..., int], service: Callable[..., SchedulerService],
    clock: time_machine.Traveller,
) -> None:  # fmt: skip
    run_id = crashed_run()
    for position, reference in enumerate(["A3", "A4", "A5"], start=2):
        app.ledger.record_item(run_id, item(reference, position))
    svc = service()
    clock.move_to(T0 + dt.timedelta(minutes=5))
    assert svc.recover() == [run_id]
    assert fake(svc).batches == []
