"""A scheduler stopped while its bot is mid-item, by SIGTERM (it drains) or by kill -9
twice in a row around the recovery: nothing is lost, nothing is done twice.

The sample portal holds one file's update (after applying it), so the signal lands
at a known point: while that item is in flight. Each file's updates are then read
from the portal's own record (``/api/updates``), not only from robo's ledger.
Real scheduler processes, real Chromium, SQLite. Every wait is bounded here.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest
import yaml
from sqlalchemy import select

from robo.app import Robo
from robo.loader import load_process
from robo.settings import Settings
from robo.storage.models import QueueItemRow, RunRow
from tests.conftest import PORTAL_PASSWORD
from tests.integration.permits_support import (
    PERMITS,
    PROCESSES,
    REFERENCES,
    ROWS,
    portal_api,
    updates_of,
)

pytestmark = pytest.mark.browser

HELD = REFERENCES[1]  # the second file: one is done before it, two wait after it
EXIT_TIMEOUT = 120.0  # for a scheduler to stop after SIGTERM (drain time included)
REACH_TIMEOUT = 180.0  # for the bot to reach the held file
RECOVERY_TIMEOUT = 180.0  # for a restarted scheduler's recovery to complete


@pytest.fixture
def installation(tmp_path: Path, fresh_portal: Any) -> Iterator[tuple[Robo, dict[str, str]]]:
    """residence-permit-entry firing every 3 s on a fresh SQLite installation."""
    folder = tmp_path / PERMITS
    shutil.copytree(PROCESSES / PERMITS, folder)
    spec = yaml.safe_load((folder / "process.yaml").read_text(encoding="utf-8"))
    spec["parameters"]["portal_url"] = fresh_portal.url
    spec["schedule"] = {
        "triggers": [{"every_minutes": 0.05}],
        "skip_holidays": False,
        "missed": "skip",
        "on_abandoned": "retry_remaining",
    }
    (folder / "process.yaml").write_text(yaml.safe_dump(spec, allow_unicode=True), "utf-8")
    lines = ["file_number,last_name,first_name,birth_date,nationality,permit_type"]
    (folder / "input" / "permits.csv").write_text(
        "\n".join(lines + [",".join(row) for row in ROWS]) + "\n", encoding="utf-8"
    )
    home = tmp_path / "home"
    url = f"sqlite:///{tmp_path / 'robo.db'}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("ROBO_")}
    env |= {
        "ROBO_HOME": str(home),
        "ROBO_DATABASE_URL": url,
        "ROBO_SECRET_PORTAL_PASSWORD": PORTAL_PASSWORD,
        "ROBO_HEARTBEAT_SECONDS": "0.5",
        "ROBO_ABANDON_AFTER_SECONDS": "3",
        "ROBO_SCHEDULER_LEASE_SECONDS": "3",
        "ROBO_BOT_SLOTS": "1",
        "ROBO_LOG_LEVEL": "info",
    }
    robo = Robo(Settings(home=home, database_url=url))
    robo.registry.deploy(load_process(folder))
    yield robo, env
    portal_api(fresh_portal, "/api/faults", {"hold": None, "release": True})
    robo.close()


def start_scheduler(env: dict[str, str], log: Path, drain: float) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "robo", "scheduler", "start", "--drain-seconds", f"{drain:g}"],
            env=env, stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip


def wait_for(
    condition: Callable[[], Any], timeout: float, what: str, log: Path, poll: float = 0.1
) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(poll)
    raise AssertionError(f"timed out waiting for {what}\n{log.read_text()[-3000:]}")


def terminate_while_held(
    robo: Robo, scheduler: subprocess.Popen[bytes], portal: Any, log: Path
) -> tuple[int, list[psutil.Process]]:
    """SIGTERM the scheduler while the portal holds HELD's update; the run and the
    processes the scheduler had started."""
    wait_for(
        lambda: HELD in portal_api(portal, "/api/faults")["holding"],
        REACH_TIMEOUT, f"the bot to reach {HELD}", log,
    )  # fmt: skip
    robo.registry.set_paused(PERMITS, True)  # no new fires: what is left is the recovery's
    started = psutil.Process(scheduler.pid).children(recursive=True)
    scheduler.send_signal(signal.SIGTERM)
    try:
        assert scheduler.wait(timeout=EXIT_TIMEOUT) == 0, log.read_text()[-3000:]
    finally:
        if scheduler.poll() is None:
            scheduler.kill()
            scheduler.wait()
    _, alive = psutil.wait_procs(started, timeout=30)
    assert not alive, f"processes left by the stopped scheduler: {alive}"
    with robo.db.session() as s:
        run_id = s.scalars(select(RunRow.id).where(RunRow.trigger == "schedule")).one()
    return run_id, started


def recover(robo: Robo, env: dict[str, str], log: Path, run_id: int) -> RunRow:
    """A new scheduler completes the recovery of ``run_id`` and stops cleanly."""
    scheduler = start_scheduler(env, log, drain=30)
    try:

        def recovered() -> RunRow | None:
            with robo.db.session() as s:
                return s.scalars(
                    select(RunRow).where(
                        RunRow.resumes_run_id == run_id, RunRow.status == "completed"
                    )
                ).first()

        recovery: RunRow = wait_for(recovered, RECOVERY_TIMEOUT, "the recovery", log)
        scheduler.send_signal(signal.SIGTERM)
        assert scheduler.wait(timeout=EXIT_TIMEOUT) == 0, log.read_text()[-3000:]
    finally:
        if scheduler.poll() is None:
            scheduler.kill()
            scheduler.wait()
    return recovery


def assert_each_file_recorded_once(robo: Robo, portal: Any) -> None:
    for reference in REFERENCES:
        counts = updates_of(portal, reference)
        assert counts["updates"] == {"permit_recorded": 1}, reference
        assert counts["attempts"] == {"permit_recorded": 1}, f"{reference} was submitted twice"
    with robo.db.session() as s:
        statuses = dict(s.execute(select(QueueItemRow.reference, QueueItemRow.status)).all())
        running = s.scalars(select(RunRow.id).where(RunRow.status == "running")).all()
    assert statuses == dict.fromkeys(REFERENCES, "successful")
    assert running == []


def test_sigterm_lets_the_item_in_flight_finish_then_the_run_stops_and_is_resumed(
    installation: tuple[Robo, dict[str, str]], fresh_portal: Any, tmp_path: Path
) -> None:
    robo, env = installation
    log = tmp_path / "scheduler.log"
    hold = {"reference": HELD, "seconds": 4, "phase": "after"}
    portal_api(fresh_portal, "/api/faults", {"hold": hold})

    run_id, _ = terminate_while_held(robo, start_scheduler(env, log, drain=60), fresh_portal, log)

    with robo.db.session() as s:
        run = s.get(RunRow, run_id)
        assert run is not None
        statuses = dict(s.execute(select(QueueItemRow.reference, QueueItemRow.status)).all())
    assert run.status == "interrupted", run.error
    assert run.error is not None and "drain" in run.error
    assert run.recovery == "due"  # resumable: the next scheduler owes its recovery
    # The held item finished within the drain time; no item was taken after the signal.
    assert [statuses[r] for r in REFERENCES] == ["successful", "successful", "new", "new"]
    assert [updates_of(fresh_portal, r)["updates"] for r in REFERENCES[2:]] == [{}, {}]

    recovery = recover(robo, env, log, run_id)
    assert recovery.trigger == "recovery"
    assert_each_file_recorded_once(robo, fresh_portal)


def test_sigterm_past_the_drain_time_interrupts_the_item_and_its_recovery_verifies_it(
    installation: tuple[Robo, dict[str, str]], fresh_portal: Any, tmp_path: Path
) -> None:
    robo, env = installation
    log = tmp_path / "scheduler.log"
    hold = {"reference": HELD, "seconds": 60, "phase": "after"}
    portal_api(fresh_portal, "/api/faults", {"hold": hold})

    began = time.monotonic()
    run_id, _ = terminate_while_held(robo, start_scheduler(env, log, drain=2), fresh_portal, log)
    assert time.monotonic() - began < 50, "the drain time was not kept"  # the hold is 60 s
    portal_api(fresh_portal, "/api/faults", {"release": True})

    with robo.db.session() as s:
        run = s.get(RunRow, run_id)
        assert run is not None
        held = s.scalars(select(QueueItemRow).where(QueueItemRow.reference == HELD)).one()
    assert run.status == "interrupted", run.error
    assert run.recovery == "due"
    assert held.status == "in_progress"  # applied by the portal, its outcome never came back
    assert updates_of(fresh_portal, HELD)["updates"] == {"permit_recorded": 1}

    recover(robo, env, log, run_id)
    # The verify block found HELD done: credited once, not entered again.
    assert_each_file_recorded_once(robo, fresh_portal)


def test_a_scheduler_killed_twice_around_the_recovery_still_resumes_every_file_once(
    installation: tuple[Robo, dict[str, str]], fresh_portal: Any, tmp_path: Path
) -> None:
    robo, env = installation
    log = tmp_path / "scheduler.log"
    hold = {"reference": HELD, "seconds": 60, "phase": "after"}
    portal_api(fresh_portal, "/api/faults", {"hold": hold})

    first = start_scheduler(env, log, drain=5)
    try:
        wait_for(
            lambda: HELD in portal_api(fresh_portal, "/api/faults")["holding"],
            REACH_TIMEOUT, f"the bot to reach {HELD}", log,
        )  # fmt: skip
        robo.registry.set_paused(PERMITS, True)  # no new fires: what is left is the recovery's
        started = psutil.Process(first.pid).children(recursive=True)
        first.kill()  # kill -9: its pool process dies with it (PR_SET_PDEATHSIG), Chromium too
        first.wait(timeout=30)
    finally:
        if first.poll() is None:
            first.kill()
            first.wait()
    _, alive = psutil.wait_procs(started, timeout=30)
    assert not alive, f"processes left by the killed scheduler: {alive}"
    portal_api(fresh_portal, "/api/faults", {"release": True})
    with robo.db.session() as s:
        run_id = s.scalars(select(RunRow.id).where(RunRow.trigger == "schedule")).one()

    # The next scheduler abandons the dead run at start and submits its recovery;
    # killed again at once, before the recovery has written anything.
    second = start_scheduler(env, log, drain=5)
    try:

        def abandoned() -> bool:
            with robo.db.session() as s:
                run = s.get(RunRow, run_id)
                return run is not None and run.status == "abandoned"

        wait_for(abandoned, 60, "the restarted scheduler to abandon the run", log, poll=0.02)
        second.kill()
        second.wait(timeout=30)
    finally:
        if second.poll() is None:
            second.kill()
            second.wait()
    with robo.db.session() as s:
        run = s.get(RunRow, run_id)
        recovery_row = s.scalar(select(RunRow.id).where(RunRow.resumes_run_id == run_id))
    assert recovery_row is None, "the recovery started before the kill: the case was not reached"
    assert run is not None and run.recovery in ("due", "submitted")  # owed, durably

    recover(robo, env, log, run_id)
    # HELD was applied before the first kill: the recovery's verify block finds it done.
    assert_each_file_recorded_once(robo, fresh_portal)
