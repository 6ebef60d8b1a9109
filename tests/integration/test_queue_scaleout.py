"""Scale-out on one queue: two runs on two Celery workers drain one 200-item queue.

PostgreSQL + Redis (selected when ROBO_TEST_POSTGRES_URL and ROBO_TEST_REDIS_URL
are set). Each item must be taken once, recorded once, and credited once: the
total minutes equal what one run over the same items credits. The bot does no
page work per item (a short pause, so that the two runs really overlap); each
run still opens Chromium once.
"""

from __future__ import annotations

import json
import signal
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography.fernet import Fernet
from sqlalchemy import func, select

from robo.app import Robo
from robo.loader import load_process
from robo.queues import NewItem
from robo.runner.run import RunRequest, run_process
from robo.settings import Settings
from robo.storage.models import ItemRow, QueueEventRow, QueueItemRow, RunRow, ScheduleEventRow
from tests.conftest import REDIS_URL, definition
from tests.integration.test_scaleout import Cluster, wait_for

PROCESS = "sample-process"
ITEMS = 200
BOT = """
import time


def process(ctx):
    time.sleep(0.03)  # no page work: what is measured is taking and recording items
    ctx.output["done"] = ctx.reference
"""


def performer(schedule: dict[str, Any] | None = None) -> dict[str, Any]:
    """A process that takes only what is added to its queue; 8 minutes saved per item."""
    return definition(
        items={"source": "queue", "reference": "ref"},
        bot={"entrypoint": "bot:process"},
        secrets=[],
        retry={"max_attempts": 1, "backoff_seconds": 0},
        timeouts={"item_seconds": 10, "run_seconds": 90, "step_seconds": 5},
        schedule=schedule,
    )


def deploy_and_fill(robo: Robo, make_process: Any, schedule: dict[str, Any] | None = None) -> None:
    folder = make_process(performer(schedule), files={"bot.py": BOT}, name=f"p-{id(robo)}")
    robo.registry.deploy(load_process(folder))
    robo.queues.ensure(PROCESS)
    added = robo.queues.add(PROCESS, [NewItem(f"R{i:03d}") for i in range(ITEMS)], source="test")
    assert len(added.added) == ITEMS


def one_run_minutes_per_item(tmp_path: Path, make_process: Any) -> float:
    """The baseline: one run over the same items on the embedded default."""
    robo = Robo(
        Settings(home=tmp_path / "single", database_url=f"sqlite:///{tmp_path / 'single.db'}")
    )
    try:
        deploy_and_fill(robo, make_process)
        result = run_process(
            robo.run_environment(), robo.registry.active(PROCESS), RunRequest(PROCESS)
        )
        assert (result.status, result.succeeded) == ("completed", ITEMS), result
        return result.minutes_saved / ITEMS
    finally:
        robo.close()


@pytest.fixture
def cluster(tmp_path: Path, postgres_url: str) -> Iterator[Cluster]:
    cluster = Cluster(tmp_path, postgres_url, REDIS_URL)
    cluster.env["ROBO_BROKER_VISIBILITY_TIMEOUT"] = "120"  # > timeouts.run_seconds
    cluster.env["ROBO_LOG_LEVEL"] = "warning"  # a failure shows warnings, not 400 item lines
    # One key for every machine, as docs/scale-out.md says.
    cluster.env["ROBO_SECRET_KEY"] = Fernet.generate_key().decode()
    try:
        yield cluster
    finally:
        cluster.close()


def start_two_workers(cluster: Cluster) -> None:
    for name in ("w1", "w2"):
        cluster.start(name, "worker", "--slots", "1", "--name", name)
    wait_for(
        lambda: sum(w["alive"] for w in json.loads(cluster.robo_cli("workers", "--json"))) >= 2,
        60,
        "two live workers",
        cluster,
    )


def drained(cluster: Cluster, runs: int, timeout: float, what: str) -> None:
    """Wait until ``runs`` runs ended and no item waits or is in progress; on time-out,
    say what the runs and the queue looked like."""
    state: dict[str, Any] = {}

    def done() -> bool:
        with cluster.robo.db.session() as s:
            state["runs"] = [(r.id, r.trigger, r.status, r.worker, r.error) for r in
                             s.scalars(select(RunRow).order_by(RunRow.id))]  # fmt: skip
            state["items"] = {
                status: n
                for status, n in s.execute(
                    select(QueueItemRow.status, func.count()).group_by(QueueItemRow.status)
                )
            }
        statuses = [run[2] for run in state["runs"]]
        left = sum(n for status, n in state["items"].items() if status in ("new", "in_progress"))
        return len(statuses) >= runs and "running" not in statuses and left == 0

    try:
        wait_for(done, timeout, what, cluster)
    except AssertionError as exc:
        raise AssertionError(
            f"{exc}\nruns: {state.get('runs')}\nqueue: {state.get('items')}"
        ) from None


def assert_each_item_taken_recorded_and_credited_once(
    cluster: Cluster, minutes_per_item: float
) -> None:
    with cluster.robo.db.session() as s:
        items = {row.id: row for row in s.scalars(select(QueueItemRow))}
        assert len(items) == ITEMS
        assert Counter(r.status for r in items.values()) == {"successful": ITEMS}
        taken = Counter(
            s.scalars(select(QueueEventRow.item_id).where(QueueEventRow.action == "taken"))
        )
        assert set(taken) == set(items) and set(taken.values()) == {1}, taken.most_common(3)
        rows = s.scalars(select(ItemRow)).all()
        outcomes = Counter(r.queue_item_id for r in rows if r.status != "application_exception")
        assert set(outcomes) == set(items) and set(outcomes.values()) == {1}
        credited = Counter(r.credited_queue_item_id for r in rows if r.minutes_saved)
        assert set(credited) == set(items) and set(credited.values()) == {1}
        total = sum(r.minutes_saved for r in rows)
    assert total == pytest.approx(ITEMS * minutes_per_item)


def assert_two_overlapping_runs_on_two_workers(cluster: Cluster, trigger: str) -> None:
    runs = cluster.runs()
    assert [(r.trigger, r.status) for r in runs] == [(trigger, "completed")] * 2
    assert {r.worker for r in runs} == {"w1", "w2"}
    with cluster.robo.db.session() as s:
        per_run = Counter(s.scalars(select(ItemRow.run_id)))
    assert set(per_run) == {r.id for r in runs}  # both runs took items...
    first, second = sorted(runs, key=lambda r: r.started_at)
    assert first.finished_at is not None and second.started_at < first.finished_at  # ...at once


@pytest.mark.redis
@pytest.mark.browser
def test_submit_runs_two_drains_one_queue_on_two_workers_each_item_once(
    tmp_path: Path, cluster: Cluster, make_process: Any
) -> None:
    minutes_per_item = one_run_minutes_per_item(tmp_path, make_process)
    deploy_and_fill(cluster.robo, make_process)
    start_two_workers(cluster)

    submitted = json.loads(cluster.robo_cli("submit", PROCESS, "--runs", "2", "--json"))

    assert [job["process_id"] for job in submitted] == [PROCESS, PROCESS]
    drained(cluster, 2, 90, "the queue drained by two runs")
    assert_two_overlapping_runs_on_two_workers(cluster, "submit")
    assert_each_item_taken_recorded_and_credited_once(cluster, minutes_per_item)


@pytest.mark.redis
@pytest.mark.browser
def test_a_queue_trigger_starts_two_runs_that_drain_the_queue_on_two_workers(
    tmp_path: Path, cluster: Cluster, make_process: Any
) -> None:
    minutes_per_item = one_run_minutes_per_item(tmp_path, make_process)
    start_two_workers(cluster)
    schedule = {"triggers": [{"queue": {"min_items": 20, "max_runs": 2}}], "skip_holidays": False}

    deploy_and_fill(cluster.robo, make_process, schedule)
    cluster.start("scheduler", "scheduler", "start", "--drain-seconds", "5")

    drained(cluster, 2, 90, "the queue trigger's runs to drain it")
    assert_two_overlapping_runs_on_two_workers(cluster, "queue")
    assert_each_item_taken_recorded_and_credited_once(cluster, minutes_per_item)
    with cluster.robo.db.session() as s:
        fired = s.scalars(
            select(ScheduleEventRow.reason).where(ScheduleEventRow.decision == "fired")
        ).all()
    assert len(fired) == 1 and "started 2 run(s)" in fired[0], fired
    for name in ("w1", "w2"):
        cluster.processes[name].send_signal(signal.SIGTERM)


@pytest.fixture(autouse=True)
def _no_leftover_chromium() -> Iterator[None]:
    yield
    from robo.runner.browser import chromium_descendants

    assert chromium_descendants() == []
