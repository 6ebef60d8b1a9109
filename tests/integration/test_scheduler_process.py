"""The scheduler as operators run it: real processes, real kills, real Chromium."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest
from sqlalchemy import select

from robo.app import Robo
from robo.loader import load_process
from robo.settings import Settings
from robo.storage.models import ItemRow, QueueItemRow, RunRow, ScheduleEventRow
from tests.conftest import definition

pytestmark = pytest.mark.browser

SLOW_BOT = """
def process(ctx):
    ctx.page.goto(ctx.params["portal_url"] + "/api/health")
    ctx.page.wait_for_timeout(int(ctx.params["pause_ms"]))
    ctx.output["ok"] = "yes"
"""


@pytest.fixture
def installation(tmp_path: Path) -> Iterator[tuple[Robo, dict[str, str]]]:
    home = tmp_path / "home"
    url = f"sqlite:///{tmp_path / 'robo.db'}"
    env = {
        **os.environ,
        "ROBO_HOME": str(home),
        "ROBO_DATABASE_URL": url,
        "ROBO_HEARTBEAT_SECONDS": "0.5",
        "ROBO_ABANDON_AFTER_SECONDS": "3",
        "ROBO_SCHEDULER_LEASE_SECONDS": "3",
        "ROBO_BOT_SLOTS": "1",
        "ROBO_LOG_LEVEL": "info",
    }
    robo = Robo(Settings(home=home, database_url=url))
    yield robo, env
    robo.close()


def deploy(robo: Robo, make_process: Any, portal_url: str, rows: int, pause_ms: int) -> None:
    spec = definition(
        bot={"entrypoint": "bot:process"},
        secrets=[],
        parameters={"portal_url": portal_url, "pause_ms": pause_ms},
        retry={"max_attempts": 1, "backoff_seconds": 0},
        schedule={
            "triggers": [{"every_minutes": 0.05}],
            "skip_holidays": False,
            "missed": "skip",
            "on_abandoned": "retry_remaining",
        },
    )
    refs = "ref\n" + "\n".join(f"R{i:02d}" for i in range(rows)) + "\n"
    folder = make_process(spec, files={"bot.py": SLOW_BOT, "input/items.csv": refs})
    robo.registry.deploy(load_process(folder))


def start_scheduler(env: dict[str, str], log: Path, *args: str) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "robo", "scheduler", "start", "--drain-seconds", "5", *args],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )


def wait_for(
    condition: Callable[[], Any], timeout: float, what: str, proc: Any = None, poll: float = 0.2
) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        if proc is not None and proc.poll() is not None:
            raise AssertionError(
                f"the scheduler exited ({proc.returncode}) while waiting for {what}"
            )
        time.sleep(poll)
    raise AssertionError(f"timed out waiting for {what}")


def chromium_under(pid: int) -> list[psutil.Process]:
    try:
        children = psutil.Process(pid).children(recursive=True)
    except psutil.NoSuchProcess:
        return []
    return [p for p in children if "chrom" in p.name().lower()]


def alive(processes: list[psutil.Process]) -> list[psutil.Process]:
    return [p for p in processes if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]


def stop(proc: subprocess.Popen[bytes]) -> int:
    proc.send_signal(signal.SIGTERM)
    return proc.wait(timeout=60)


def kill_mid_run(robo: Robo, env: dict[str, str], log: Path) -> int:
    """Start a scheduler, kill -9 it once its run has recorded two items; the run's id."""
    first = start_scheduler(env, log)
    try:

        def run_in_flight() -> Any:
            with robo.db.session() as s:
                run = s.scalars(select(RunRow).where(RunRow.status == "running")).first()
                if run is None:
                    return None
                done = s.scalar(
                    select(ItemRow.id).where(ItemRow.run_id == run.id).offset(1).limit(1)
                )
                return run.id if done else None

        run_id: int = wait_for(run_in_flight, 90, "a scheduled run with two items done", first)
        robo.registry.set_paused("sample-process", True)  # no new fires; recovery must still happen
        browsers = wait_for(lambda: chromium_under(first.pid), 10, "the run's Chromium")
        first.kill()
        first.wait(timeout=30)
        wait_for(lambda: not alive(browsers), 15, "the killed scheduler's Chromium to go")
        return run_id
    finally:
        if first.poll() is None:
            first.kill()
            first.wait()


def recover_with_a_new_scheduler(robo: Robo, env: dict[str, str], log: Path, run_id: int) -> int:
    """Start a scheduler, wait for the recovery of ``run_id`` to complete, stop it cleanly."""
    scheduler = start_scheduler(env, log)
    try:

        def recovered() -> Any:
            with robo.db.session() as s:
                return s.scalar(
                    select(RunRow.id).where(
                        RunRow.resumes_run_id == run_id, RunRow.status == "completed"
                    )
                )

        recovery: int = wait_for(recovered, 120, "the recovery run to complete", scheduler)
        browsers = chromium_under(scheduler.pid)
        assert stop(scheduler) == 0, log.read_text()
    finally:
        if scheduler.poll() is None:
            scheduler.kill()
            scheduler.wait()
    assert not alive(browsers)
    return recovery


def assert_done_once(robo: Robo, run_id: int, recovery: int, rows: int = 8) -> None:
    """Each reference done by the run or its recovery, never both; at most one uncertain."""
    with robo.db.session() as s:
        interrupted = s.get(RunRow, run_id)
        assert interrupted is not None and interrupted.status == "abandoned"
        before = set(s.scalars(select(ItemRow.reference).where(ItemRow.run_id == run_id)))
        after = set(s.scalars(select(ItemRow.reference).where(ItemRow.run_id == recovery)))
        minutes = s.scalars(
            select(ItemRow.minutes_saved).where(ItemRow.run_id.in_([run_id, recovery]))
        ).all()
        # The item in flight at the kill has no verify block to ask the application: it is
        # handed to a human as uncertain, never redone silently.
        uncertain = set(
            s.scalars(select(QueueItemRow.reference).where(QueueItemRow.status == "uncertain"))
        )
    assert len(before) >= 2 and len(uncertain) <= 1
    assert before.isdisjoint(after) and uncertain.isdisjoint(before | after)
    assert before | after | uncertain == {f"R{i:02d}" for i in range(rows)}
    done = len(before | after)
    assert sum(minutes) == done * 8  # every item done once: 10 manual - 2 residual minutes each


def test_a_scheduler_killed_mid_run_is_recovered_without_losing_or_recounting_items(
    installation: tuple[Robo, dict[str, str]], fresh_portal: Any, make_process: Any, tmp_path: Path
) -> None:
    robo, env = installation
    deploy(robo, make_process, fresh_portal.url, rows=8, pause_ms=700)
    log = tmp_path / "scheduler.log"
    run_id = kill_mid_run(robo, env, log)
    recovery = recover_with_a_new_scheduler(robo, env, log, run_id)
    assert_done_once(robo, run_id, recovery)


def test_two_schedulers_on_one_database_never_both_fire_and_the_standby_takes_over(
    installation: tuple[Robo, dict[str, str]], fresh_portal: Any, make_process: Any, tmp_path: Path
) -> None:
    robo, env = installation
    deploy(robo, make_process, fresh_portal.url, rows=1, pause_ms=0)
    log = tmp_path / "scheduler.log"
    leader = start_scheduler(env, log)
    standby = None
    try:
        owner_a = wait_for(lambda: leader_owner(robo), 30, "the first scheduler to lead", leader)
        standby = start_scheduler(env, log)
        wait_for(lambda: fired_by(robo, owner_a) >= 3, 60, "three fires by the leader", leader)
        assert standby.poll() is None, "the standby must wait, not exit"
        assert {e.scheduler for e in events(robo)} == {owner_a}
        leader.kill()
        leader.wait(timeout=30)
        owner_b = wait_for(
            lambda: (o := leader_owner(robo)) != owner_a and o,
            30,
            "the standby to take over",
            standby,
        )
        wait_for(lambda: fired_by(robo, owner_b) >= 2, 60, "two fires by the new leader", standby)
        assert stop(standby) == 0, log.read_text()
    finally:
        for proc in (leader, standby):
            if proc is not None and proc.poll() is None:
                proc.kill()
                proc.wait()

    decided = events(robo)
    owners = [e.scheduler for e in sorted(decided, key=lambda e: e.scheduled_for)]
    switch = owners.index(owner_b)
    assert set(owners[:switch]) == {owner_a} and set(owners[switch:]) == {owner_b}
    fires = [(e.trigger_key, e.scheduled_for) for e in decided]
    assert len(fires) == len(set(fires))
    with robo.db.session() as s:
        scheduled = s.scalars(
            select(RunRow.scheduled_for).where(RunRow.trigger == "schedule")
        ).all()
    assert len(scheduled) == len(set(scheduled))
    fired = {e.scheduled_for for e in decided if e.decision == "fired"}
    assert set(scheduled) <= fired


def leader_owner(robo: Robo) -> str | None:
    from robo.scheduling.lock import LeaderLock

    holder = LeaderLock(robo.db, owner="").holder()
    return holder.owner if holder else None


def events(robo: Robo) -> list[ScheduleEventRow]:
    with robo.db.session() as s:
        return list(s.scalars(select(ScheduleEventRow)))


def fired_by(robo: Robo, owner: str) -> int:
    return sum(1 for e in events(robo) if e.scheduler == owner and e.decision == "fired")
