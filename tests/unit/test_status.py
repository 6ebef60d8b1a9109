"""`robo status` and the Prometheus collector, on ledgers written through the real Ledger,
Queues and scheduler-lock APIs (SQLite and PostgreSQL): the ETA, the item in progress,
the empty installation, leader and standby, dispatch lag, next fires.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.registry import CollectorRegistry

from robo.app import Robo
from robo.cli.main import cli
from robo.cli.status_cmds import render_status
from robo.exporter import RoboCollector
from robo.loader import load_process
from robo.queues import Queues
from robo.regional import RegionDefaults
from robo.registry import Registry
from robo.scheduling.lock import LeaderLock
from robo.scheduling.service import SchedulerService
from robo.status import eta_seconds, host_of, next_fires, status
from robo.storage.database import Database
from robo.storage.models import AlertRow
from tests.conftest import definition
from tests.ledger_factory import BASELINE_B, QueueWork
from tests.unit.test_scheduler_service import FakeExecutor, ManualScheduler

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def scrape(db: Database, *, alerts_configured: bool = False) -> Samples:
    """What Prometheus would read from the collector, parsed by prometheus_client."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(
        RoboCollector(db, Queues(db), heartbeat_seconds=10, alerts_configured=alerts_configured)
    )
    text = generate_latest(registry).decode()
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def sample(samples: Samples, name: str, **labels: str) -> float | None:
    return samples.get((name, frozenset(labels.items())))


def of_name(samples: Samples, name: str) -> dict[frozenset[tuple[str, str]], float]:
    return {labels: v for (n, labels), v in samples.items() if n == name}


def read(db: Database, now: dt.datetime | None = None, **kwargs: Any) -> Any:
    registry = Registry(db, RegionDefaults("Europe/Paris", "FR"))
    return status(db, registry, Queues(db), heartbeat_seconds=10, alerts_configured=False,
                  now=now, **kwargs)  # fmt: skip


def fits(text: str, width: int = 80) -> None:
    too_wide = [line for line in text.splitlines() if len(line) > width]
    assert too_wide == [], "\n".join(too_wide)


# --- the ETA --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("done", "total", "mean", "current", "expected"),
    [
        (2, 4, 10.0, 0.0, 20.0),  # two items left at 10 s each
        (2, 4, 10.0, 4.0, 16.0),  # the third has been going for 4 s
        (2, 4, 10.0, 25.0, 0.0),  # a slow current item: never below zero
        (4, 4, 10.0, 0.0, 0.0),  # all done
        (5, 4, 10.0, 0.0, 0.0),  # more recorded than planned (a recovery): nothing left
        (0, 4, None, 3.0, None),  # nothing recorded yet: no mean to go by
        (2, None, 10.0, 0.0, None),  # the total is not known yet
    ],
)
def test_the_eta_is_the_items_left_times_the_mean_item_time_less_the_current_one(
    done: int, total: int | None, mean: float | None, current: float, expected: float | None
) -> None:
    assert eta_seconds(done, total, mean, current) == expected


def test_the_host_of_a_scheduler_is_the_first_part_of_its_owner_id() -> None:
    assert host_of("bot-vm-1.example.internal:4242:ab12cd") == "bot-vm-1.example.internal"
    assert host_of("odd") == "odd"


# --- an empty installation ----------------------------------------------------------------


def test_an_empty_installation_has_no_scheduler_no_runs_and_no_queues(db: Database) -> None:
    found = read(db)

    assert found.scheduler.leader is None and found.scheduler.live is False
    assert found.scheduler.text == "no scheduler running"
    assert (found.runs, found.workers, found.queues, found.next_fires) == ([], [], [], [])
    assert (found.worklist, found.alerts_open) == (0, None)
    text = render_status(found)
    fits(text)
    for expected in ("no scheduler running", "no run in progress", "alerts     not configured",
                     "0 item(s) waiting for an agent"):  # fmt: skip
        assert expected in text, text


def test_an_empty_installation_scrapes_as_no_leader_and_nothing_running(db: Database) -> None:
    samples = scrape(db)

    assert sample(samples, "robo_database_up") == 1
    assert sample(samples, "robo_scheduler_leader", host="", owner="") == 0
    assert sample(samples, "robo_scheduler_standbys") == 0
    assert sample(samples, "robo_workers_alive") == 0
    assert sample(samples, "robo_dispatch_lag_runs") == 0
    assert sample(samples, "robo_dispatch_lag_seconds") is None  # no scheduled run yet
    for family in ("robo_runs_running", "robo_runs_finished_total", "robo_items_total",
                   "robo_queue_items", "robo_alerts_open"):  # fmt: skip
        assert of_name(samples, family) == {}, family


def test_status_json_on_an_empty_installation(tmp_path: Path, database_url: str) -> None:
    result = robo_cli(tmp_path, database_url, "status", "--json")

    assert result.exit_code == 0, result.output
    found = json.loads(result.output)
    assert found["scheduler"]["leader"] is None
    assert (found["runs"], found["queues"], found["worklist"], found["alerts_open"]) == (
        [], [], 0, None,
    )  # fmt: skip


def test_status_watch_refreshes_until_ctrl_c_and_exits_0(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sleeps: list[float] = []

    def sleep(seconds: float) -> None:
        sleeps.append(seconds)
        if len(sleeps) == 2:
            raise KeyboardInterrupt

    monkeypatch.setattr("robo.cli.status_cmds.time.sleep", sleep)
    url = f"sqlite:///{tmp_path / 'robo.db'}"

    result = robo_cli(tmp_path, url, "status", "--watch", "3", "--json")

    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert len(lines) == 2 and sleeps == [3.0, 3.0]
    assert all(json.loads(line)["runs"] == [] for line in lines)


def robo_cli(tmp_path: Path, database_url: str, *args: str) -> Any:
    env: dict[str, str | None] = {k: None for k in os.environ if k.startswith("ROBO_")}
    env["ROBO_LOCALE"] = "en"
    home = tmp_path / "home"
    return CliRunner(env=env).invoke(
        cli, ["--home", str(home), "--database-url", database_url, *args], catch_exceptions=False
    )


# --- a run in progress --------------------------------------------------------------------


def held_open_run(work: QueueWork) -> int:
    """A run of 4 items: one success (10 s), one business exception (20 s), the third
    taken 5 s ago and not recorded yet, the fourth waiting."""
    work.add("invoice-check", "INV-1", "INV-2", "INV-3", "INV-4")
    run_id = work.start()
    work.ledger.set_items_total(run_id, 4)
    work.record(run_id, work.take(run_id, "invoice-check"), "success", seconds=10)
    work.record(run_id, work.take(run_id, "invoice-check"), "business_exception", seconds=20)
    work.take(run_id, "invoice-check")
    work.tick(seconds=5)
    return run_id


def test_a_running_run_shows_its_progress_current_item_and_eta(
    db: Database, work: QueueWork
) -> None:
    run_id = held_open_run(work)

    [run] = read(db, now=work.now).runs

    assert (run.id, run.process_id, run.done, run.total) == (run_id, "invoice-check", 2, 4)
    assert (run.succeeded, run.business_exceptions) == (1, 1)
    assert run.current is not None and run.current.reference == "INV-3"
    assert run.current.seconds == 5.0
    assert run.mean_item_seconds == 15.0
    assert run.eta_seconds == 2 * 15.0 - 5.0
    assert run.eta_at == (work.now + dt.timedelta(seconds=25)).isoformat(timespec="seconds")
    assert run.position == "item 3 of 4"
    found = read(db, now=work.now)
    [queue] = found.queues
    assert (queue.queue, queue.waiting, queue.in_progress, queue.needs_human) == (
        "invoice-check", 1, 1, 1,
    )  # fmt: skip
    assert found.worklist == 1  # the business exception waits for an agent
    text = render_status(found)
    fits(text)
    assert "item 3 of 4: INV-3 (5 s)" in text, text
    assert "25 s" in text and "2/4" in text, text


def test_between_two_items_the_run_is_shown_after_the_last_recorded(
    db: Database, work: QueueWork
) -> None:
    work.add("invoice-check", "INV-1", "INV-2")
    run_id = work.start()
    work.ledger.set_items_total(run_id, 2)
    work.record(run_id, work.take(run_id, "invoice-check"), "success", seconds=8)

    [run] = read(db, now=work.now).runs

    assert run.current is None
    assert run.position == "after item 1 of 2"
    assert run.eta_seconds == 8.0


def test_the_collector_counts_the_running_run_items_by_outcome_and_queue_depth(
    db: Database, work: QueueWork
) -> None:
    held_open_run(work)
    done = work.start("hr-claims", purpose="test")
    work.finish(done, "failed")

    samples = scrape(db)

    assert sample(samples, "robo_runs_running", process="invoice-check", purpose="production") == 1
    assert (
        sample(samples, "robo_runs_finished_total", process="hr-claims", status="failed",
               purpose="test") == 1
    )  # fmt: skip
    items = of_name(samples, "robo_items_total")
    assert items == {
        frozenset({"process": "invoice-check", "outcome": o, "purpose": "production"}.items()): 1
        for o in ("success", "business_exception")
    }
    depth = {dict(k)["status"]: v for k, v in of_name(samples, "robo_queue_items").items()}
    assert depth["new"] == 1 and depth["in_progress"] == 1
    assert depth["successful"] == 1 and depth["business_exception"] == 1
    assert depth["deferred"] == depth["uncertain"] == 0  # always there, so alerts can fire
    assert sample(samples, "robo_worklist_items", queue="invoice-check") == 1
    earned = BASELINE_B.manual_minutes_per_item - BASELINE_B.residual_minutes_per_item
    assert sample(samples, "robo_minutes_saved_total", process="invoice-check") == earned
    assert sample(samples, "robo_minutes_saved_total", process="hr-claims") is None  # a test run


def test_the_dispatch_lag_is_fire_time_to_run_start_of_the_last_scheduled_runs(
    db: Database, work: QueueWork
) -> None:
    for lag in (2.0, 6.0, 4.0):
        work.ledger.start_run(
            process_id="invoice-check", version_id=work.version_id, version="1.0.0",
            baseline=BASELINE_B, region="occitanie", parameters={}, trigger="schedule",
            scheduled_for=work.now - dt.timedelta(seconds=lag),
        )  # fmt: skip
        work.tick(minutes=1)
    work.start()  # a manual run has no fire time: not counted

    samples = scrape(db)

    assert sample(samples, "robo_dispatch_lag_runs") == 3
    assert sample(samples, "robo_dispatch_lag_seconds") == 4.0  # the latest
    assert sample(samples, "robo_dispatch_lag_mean_seconds") == 4.0
    assert sample(samples, "robo_dispatch_lag_max_seconds") == 6.0


# --- the scheduler ----------------------------------------------------------------------------


def test_the_leader_and_a_standby_are_shown_and_scraped(db: Database) -> None:
    leader = LeaderLock(db, "sched-a.example:101:aaaaaa", lease_seconds=30)
    standby = LeaderLock(db, "sched-b.example:202:bbbbbb", lease_seconds=30)
    assert leader.try_acquire() and not standby.try_acquire()
    standby.stand_by()
    standby.stand_by()  # renewing keeps one row

    found = read(db).scheduler
    samples = scrape(db)

    assert (found.leader, found.leader_host, found.live) == (
        "sched-a.example:101:aaaaaa", "sched-a.example", True,
    )  # fmt: skip
    assert found.standbys == ["sched-b.example:202:bbbbbb"]
    assert sample(samples, "robo_scheduler_leader", host="sched-a.example",
                  owner="sched-a.example:101:aaaaaa") == 1  # fmt: skip
    assert sample(samples, "robo_scheduler_standbys") == 1
    assert leader.holder() is not None and leader.holder().owner == leader.owner  # type: ignore[union-attr]

    standby.stop_standing_by()
    leader.release()
    assert read(db).scheduler.standbys == []
    assert read(db).scheduler.text == "no scheduler running"


def test_an_expired_lease_is_no_scheduler_running(db: Database) -> None:
    lock = LeaderLock(db, "gone.example:1:cccccc", lease_seconds=30)
    assert lock.try_acquire()

    later = dt.datetime.now(dt.UTC) + dt.timedelta(minutes=5)
    found = read(db, now=later).scheduler

    assert found.live is False
    assert found.text.startswith("no scheduler running (the lease of gone.example:1:cccccc")


def test_next_fires_skip_holidays_and_come_soonest_first(
    db: Database, make_process: Callable[..., Path]
) -> None:
    registry = Registry(db, RegionDefaults("Europe/Paris", "FR"))
    weekdays = {"triggers": [{"cron": "0 7 * * mon-fri"}], "timezone": "Europe/Paris"}
    hourly = {"triggers": [{"cron": "30 * * * *"}], "skip_holidays": False}
    registry.deploy(load_process(make_process(definition(id="weekday-run", schedule=weekdays))))
    registry.deploy(load_process(make_process(definition(id="hourly-run", schedule=hourly))))
    registry.deploy(load_process(make_process(definition(id="never-run"))))  # no schedule
    thursday = dt.datetime(2026, 4, 30, 8, 0, tzinfo=dt.UTC)  # Friday 1 May is a holiday

    fires = next_fires(registry, thursday)

    assert [(f.process_id, f.at_utc) for f in fires] == [
        ("hourly-run", "2026-04-30T08:30:00+00:00"),
        ("weekday-run", "2026-05-04T05:00:00+00:00"),  # Monday 07:00 in Paris
    ]
    assert fires[1].at_local == "2026-05-04T07:00:00+02:00"
    assert fires[1].timezone == "Europe/Paris"
    text = render_status(read(db, now=thursday))
    fits(text)
    assert "2026-05-04 07:00 Europe/Paris" in text, text


def test_a_waiting_standby_scheduler_is_listed_until_it_takes_over(robo: Robo) -> None:
    db = robo.db
    leader = LeaderLock(db, "sched-a:1:aaaaaa", lease_seconds=30)
    assert leader.try_acquire()
    standby = SchedulerService(
        robo.settings, db, robo.registry, robo.ledger, robo.queues, FakeExecutor(),
        scheduler_factory=ManualScheduler, owner="sched-b:2:bbbbbb",
    )  # fmt: skip
    stop, took = threading.Event(), list[bool]()
    waiting = threading.Thread(target=lambda: took.append(standby.wait_for_lease(stop, True, 0.05)))
    waiting.start()
    try:
        deadline = time.monotonic() + 20
        while read(db).scheduler.standbys != ["sched-b:2:bbbbbb"]:
            assert time.monotonic() < deadline, "the standby never showed"
            time.sleep(0.05)

        leader.release()  # the leader stops: the standby takes over and is no longer one
        waiting.join(20)
        assert took == [True]
        found = read(db).scheduler
        assert (found.leader, found.live, found.standbys) == ("sched-b:2:bbbbbb", True, [])
    finally:
        stop.set()
        waiting.join(20)


def test_open_alerts_are_counted_once_alert_rules_are_configured(db: Database) -> None:
    now = dt.datetime.now(dt.UTC)
    with db.session() as session:
        for key, state in (("run_failed:a", "open"), ("run_failed:b", "resolved")):
            session.add(
                AlertRow(
                    key=key, open_key=key if state == "open" else None, rule="run_failed",
                    subject="a", state=state, summary="a run failed", facts={}, opened_at=now,
                    last_seen_at=now,
                )
            )  # fmt: skip

    assert read(db).alerts_open is None  # no rules file: "not configured"
    registry = Registry(db, RegionDefaults("Europe/Paris", "FR"))
    found = status(db, registry, Queues(db), heartbeat_seconds=10, alerts_configured=True)
    assert found.alerts_open == 1
    assert "alerts     1 open" in render_status(found)
    assert sample(scrape(db, alerts_configured=True), "robo_alerts_open") == 1
