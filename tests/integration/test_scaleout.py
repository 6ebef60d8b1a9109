"""Scale-out on real services: PostgreSQL, Celery workers over Redis or RabbitMQ.

Selected when ROBO_TEST_POSTGRES_URL and a broker URL are set (CI sets them).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest
from sqlalchemy import select

from robo.app import Robo
from robo.loader import load_process
from robo.runner.run import RunRequest, run_process
from robo.settings import Settings
from robo.storage.models import ItemRow, QueueItemRow, RunRow
from tests.conftest import AMQP_URL, REDIS_URL, definition

ITEMS = 10
SLOW_BOT = """
def process(ctx):
    ctx.page.goto(ctx.params["portal_url"] + "/api/health")
    ctx.page.wait_for_timeout(600)
    ctx.output["ok"] = "yes"
"""


class Cluster:
    """A shared database and broker, with scheduler and worker processes around them."""

    def __init__(self, tmp_path: Path, database_url: str, broker_url: str) -> None:
        self.tmp_path = tmp_path
        self.env = {
            **os.environ,
            "ROBO_HOME": str(tmp_path / "home"),
            "ROBO_DATABASE_URL": database_url,
            "ROBO_EXECUTOR": "celery",
            "ROBO_BROKER_URL": broker_url,
            "ROBO_BROKER_QUEUE": f"robo-test-{uuid.uuid4().hex[:8]}",
            "ROBO_BROKER_VISIBILITY_TIMEOUT": "20",
            "ROBO_HEARTBEAT_SECONDS": "0.5",
            "ROBO_ABANDON_AFTER_SECONDS": "4",
            "ROBO_SCHEDULER_LEASE_SECONDS": "5",
            "ROBO_LOG_LEVEL": "info",
        }
        self.robo = Robo(Settings(home=tmp_path / "home", database_url=database_url))
        self.processes: dict[str, subprocess.Popen[bytes]] = {}
        self.log = tmp_path / "cluster.log"

    def start(self, name: str, *args: str) -> subprocess.Popen[bytes]:
        with self.log.open("ab") as out:
            proc = subprocess.Popen(
                [sys.executable, "-m", "robo", *args],
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        self.processes[name] = proc
        return proc

    def robo_cli(self, *args: str) -> str:
        done = subprocess.run(
            [sys.executable, "-m", "robo", *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 0, done.stderr
        return done.stdout

    def runs(self) -> list[RunRow]:
        with self.robo.db.session() as s:
            return list(s.scalars(select(RunRow).order_by(RunRow.id)))

    def close(self) -> None:
        for proc in self.processes.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self.processes.values():
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        self.robo.close()


def wait_for(condition: Callable[[], Any], timeout: float, what: str, cluster: Cluster) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.3)
    raise AssertionError(f"timed out waiting for {what}\n{cluster.log.read_text()[-4000:]}")


@pytest.fixture
def deploy(make_process: Any, fresh_portal: Any) -> Callable[[Robo], Path]:
    def deploy_to(robo: Robo) -> Path:
        spec = definition(
            bot={"entrypoint": "bot:process"},
            secrets=[],
            parameters={"portal_url": fresh_portal.url},
            retry={"max_attempts": 1, "backoff_seconds": 0},
            timeouts={"item_seconds": 10, "run_seconds": 15, "step_seconds": 5},
        )
        refs = "ref\n" + "\n".join(f"R{i}" for i in range(ITEMS)) + "\n"
        folder = make_process(spec, files={"bot.py": SLOW_BOT, "input/items.csv": refs})
        robo.registry.deploy(load_process(folder))
        return folder

    return deploy_to


def single_machine_minutes_per_item(tmp_path: Path, deploy: Callable[[Robo], Path]) -> float:
    """Minutes per item when the same inputs run once on the embedded default."""
    robo = Robo(
        Settings(home=tmp_path / "single", database_url=f"sqlite:///{tmp_path / 'single.db'}")
    )
    try:
        deploy(robo)
        result = run_process(
            robo.run_environment(),
            robo.registry.active("sample-process"),
            RunRequest("sample-process"),
        )
        assert result.status == "completed"
        return result.minutes_saved / ITEMS
    finally:
        robo.close()


def chains(cluster: Cluster) -> dict[int, list[RunRow]]:
    """Each submitted run with the recovery runs that resumed it."""
    runs = cluster.runs()
    by_id = {r.id: r for r in runs}
    result: dict[int, list[RunRow]] = {}
    for run in runs:
        root = run
        while root.resumes_run_id is not None:
            root = by_id[root.resumes_run_id]
        result.setdefault(root.id, []).append(run)
    return result


def run_batch(cluster: Cluster, deploy: Callable[[Robo], Path], batch: int, kill_one: bool) -> None:
    deploy(cluster.robo)
    cluster.start("scheduler", "scheduler", "start", "--drain-seconds", "5")
    workers = [
        cluster.start(f"worker{i}", "worker", "--slots", "1", "--name", f"w{i}") for i in (1, 2)
    ]
    wait_for(
        lambda: sum(w["alive"] for w in json.loads(cluster.robo_cli("workers", "--json"))) >= 2,
        60,
        "two live workers",
        cluster,
    )
    cluster.robo_cli("submit", *(["sample-process"] * batch))
    if kill_one:

        def in_flight() -> Any:
            with cluster.robo.db.session() as s:
                for run in s.scalars(
                    select(RunRow).where(RunRow.status == "running", RunRow.worker != "")
                ):
                    if s.scalar(
                        select(ItemRow.id).where(ItemRow.run_id == run.id).offset(1).limit(1)
                    ):
                        return run
            return None

        victim = wait_for(in_flight, 120, "a worker's run with two items done", cluster)
        worker = cluster.processes["worker1" if victim.worker == "w1" else "worker2"]
        children = psutil.Process(worker.pid).children(recursive=True)
        worker.kill()  # kill -9: the pool process dies with it (and so does its Chromium)
        worker.wait(timeout=30)
        wait_for(
            lambda: (
                not [p for p in children if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]
            ),
            20,
            "the killed worker's processes to go",
            cluster,
        )

    def all_done() -> bool:
        groups = chains(cluster)
        if len(groups) < batch:
            return False
        return all(
            group[-1].status == "completed" and not any(r.status == "running" for r in group)
            for group in groups.values()
        )

    wait_for(all_done, 240, f"{batch} runs (and any recovery) to complete", cluster)
    for proc in workers:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)


def assert_every_item_once(
    cluster: Cluster, batch: int, minutes_per_item: float, killed: int = 0
) -> None:
    """Runs of one process share its queue: together they do each reference once.

    A reference is credited at most once across the whole batch; one a killed
    worker held mid-item is `uncertain` (no verify block), never silently redone.
    """
    assert len(chains(cluster)) == batch
    with cluster.robo.db.session() as s:
        queue = dict(
            s.execute(
                select(QueueItemRow.reference, QueueItemRow.status).where(
                    QueueItemRow.queue == "sample-process"
                )
            ).all()
        )
        credited = s.scalars(
            select(ItemRow.reference).where(ItemRow.credited_queue_item_id.is_not(None))
        ).all()
        minutes = sum(s.scalars(select(ItemRow.minutes_saved)))
    references = {f"R{i}" for i in range(ITEMS)}
    assert set(queue) == references
    assert sorted(credited) == sorted(set(credited)), credited  # never credited twice
    assert set(credited) == {ref for ref, status in queue.items() if status == "successful"}
    assert {status for status in queue.values()} <= {"successful", "uncertain"}, queue
    assert list(queue.values()).count("uncertain") <= killed, queue  # one in flight per kill
    assert minutes == pytest.approx(len(credited) * minutes_per_item)


@pytest.mark.redis
@pytest.mark.browser
def test_two_workers_on_redis_finish_a_batch_and_a_killed_worker_loses_and_recounts_nothing(
    tmp_path: Path, postgres_url: str, deploy: Callable[[Robo], Path]
) -> None:
    expected = single_machine_minutes_per_item(tmp_path, deploy)
    cluster = Cluster(tmp_path, postgres_url, REDIS_URL)
    try:
        run_batch(cluster, deploy, batch=4, kill_one=True)
        assert_every_item_once(cluster, batch=4, minutes_per_item=expected, killed=1)
        statuses = [r.status for r in cluster.runs()]
        assert "abandoned" in statuses
        assert len({r.worker for r in cluster.runs() if r.worker}) == 2
    finally:
        cluster.close()


@pytest.mark.rabbitmq
@pytest.mark.browser
def test_the_same_batch_runs_with_rabbitmq_as_the_broker(
    tmp_path: Path, postgres_url: str, deploy: Callable[[Robo], Path]
) -> None:
    expected = single_machine_minutes_per_item(tmp_path, deploy)
    cluster = Cluster(tmp_path, postgres_url, AMQP_URL)
    try:
        run_batch(cluster, deploy, batch=2, kill_one=False)
        assert_every_item_once(cluster, batch=2, minutes_per_item=expected)
    finally:
        cluster.close()


@pytest.fixture(autouse=True)
def _no_leftover_chromium() -> Iterator[None]:
    yield
    from robo.runner.browser import chromium_descendants

    assert chromium_descendants() == []
