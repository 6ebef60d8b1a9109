"""Exactly once, checked from the application's side.

`robo run` is killed with SIGKILL in the middle of an item (the sample portal
holds that item's request, so the kill lands at a known point: after the portal
applied the update, or before), then run again. The portal counts every update
per reference (``/api/updates``); the ledger and the queue are read through
`robo ... --json` and SQL. Real Chromium, the sample portal, SQLite and
PostgreSQL. Every wait is bounded here, generously for a slow machine.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import psutil
import pytest
import yaml
from sqlalchemy import func, select

from robo.app import Robo as Installation
from robo.loader import load_process
from robo.queues import NewItem, Queues
from robo.runner.run import RunRequest, run_process
from robo.settings import Settings
from robo.storage.database import Database
from robo.storage.models import ItemRow, QueueItemRow
from tests.conftest import PORTAL_PASSWORD
from tests.integration.permits_support import (
    DISPATCHER,
    EXIT_TIMEOUT,
    HOLD_SECONDS,
    INTERRUPTED,
    MINUTES_PER_PERMIT,
    PERFORMER,
    PERMITS,
    PROCESSES,
    REACH_TIMEOUT,
    REFERENCES,
    RUN_TIMEOUT,
    SHARED_QUEUE,
    Robo,
    assert_no_run_running,
    portal_api,
    updates_of,
)

pytestmark = pytest.mark.browser


def without_verify(tmp_path: Path) -> Path:
    """residence-permit-entry with its verify block removed, as another process."""
    folder = tmp_path / "permit-entry-no-verify"
    shutil.copytree(PROCESSES / PERMITS, folder)
    spec = yaml.safe_load((folder / "process.yaml").read_text(encoding="utf-8"))
    assert spec["bot"].pop("verify")
    spec["id"] = "permit-entry-no-verify"
    (folder / "process.yaml").write_text(
        yaml.safe_dump(spec, sort_keys=False, allow_unicode=True), encoding="utf-8"
    )
    return folder


def kill_while_held(
    proc: subprocess.Popen[bytes], portal: Any, reference: str, phase: str, log: Path
) -> None:
    """Hold ``reference``'s update in the portal, wait until the bot is waiting on it,
    then SIGKILL robo (only robo: its browser is orphaned as by a real crash) and make
    sure every process it started is gone."""
    deadline = time.monotonic() + REACH_TIMEOUT
    while reference not in portal_api(portal, "/api/faults")["holding"]:
        if proc.poll() is not None:
            output = log.read_text(encoding="utf-8", errors="replace")
            pytest.fail(f"robo run ended before reaching {reference} ({phase}):\n{output}")
        if time.monotonic() > deadline:
            proc.kill()
            proc.wait(timeout=EXIT_TIMEOUT)
            pytest.fail(f"robo run never reached {reference} ({phase}) in {REACH_TIMEOUT:g} s")
        time.sleep(0.05)
    started = psutil.Process(proc.pid).children(recursive=True)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=EXIT_TIMEOUT)  # reaped: its pid no longer exists
    assert proc.returncode == -signal.SIGKILL
    _, alive = psutil.wait_procs(started, timeout=EXIT_TIMEOUT)
    for child in alive:  # the Playwright driver normally takes Chromium down with it
        child.kill()
    _, alive = psutil.wait_procs(alive, timeout=EXIT_TIMEOUT)
    assert not alive, f"processes left by the killed run: {alive}"


def item_statuses(db: Database, queue: str) -> dict[str, str]:
    return {item.reference: item.status for item in Queues(db).items(queue, limit=None)}


def credited(db: Database) -> tuple[int, int, int]:
    """(item rows credited to a queue item, distinct successful references (per queue),
    success rows): equal when no item is counted twice."""
    with db.session() as session:
        credits = session.scalar(
            select(func.count()).where(ItemRow.credited_queue_item_id.is_not(None))
        )
        per_queue = session.execute(
            select(QueueItemRow.queue, func.count(func.distinct(ItemRow.reference)))
            .join(QueueItemRow, QueueItemRow.id == ItemRow.queue_item_id)
            .where(ItemRow.status == "success")
            .group_by(QueueItemRow.queue)
        ).all()
        successes = session.scalar(select(func.count()).where(ItemRow.status == "success"))
    references = sum(count for _, count in per_queue)
    return int(credits or 0), references, int(successes or 0)


def worklist(cli: Robo, db: Database) -> list[dict[str, Any]]:
    """`robo worklist --json` (the CLI, where it exists yet), else ``Queues.worklist()``."""
    done = cli("worklist", "--json")
    if done.returncode == 2 and "No such command" in done.stderr:
        return [
            {"reference": item.reference, "status": item.status, "queue": item.queue}
            for item in Queues(db).worklist()
        ]
    assert done.returncode == 0, done.stdout + done.stderr
    rows: list[dict[str, Any]] = json.loads(done.stdout)
    return rows


def report_row(cli: Robo, process_id: str) -> dict[str, Any]:
    rows = {row["process_id"]: row for row in cli.json("report")}
    found: dict[str, Any] = rows[process_id]
    return found


# --- kill -9 in the middle of an item ---------------------------------------------------


@pytest.mark.parametrize("phase", ["after", "before"])
def test_a_run_killed_mid_item_is_finished_by_the_next_run_and_each_file_is_recorded_once(
    cli: Robo, db: Database, app: Any, permits_csv: Path, phase: str
) -> None:
    """With a verify block: killed after the app recorded the file (verify finds it:
    success without redoing) or before (verify does not: entered now). Either way each
    file is recorded once, credited once, and no run is left running."""
    cli.ok("deploy", str(PROCESSES / PERMITS))
    hold = {"reference": INTERRUPTED, "seconds": HOLD_SECONDS, "phase": phase}
    portal_api(app, "/api/faults", {"hold": hold})

    killed = cli.start_run(PERMITS, app, "--input", str(permits_csv))
    kill_while_held(killed, app, INTERRUPTED, phase, cli.log)

    applied = {"permit_recorded": 1} if phase == "after" else {}
    assert updates_of(app, INTERRUPTED)["updates"] == applied
    statuses = item_statuses(db, PERMITS)
    assert statuses[INTERRUPTED] == "in_progress", "the kill came after robo recorded the item"
    assert [statuses[r] for r in REFERENCES[:2]] == ["successful", "successful"]
    portal_api(app, "/api/faults", {"release": True})  # a held 'before' request changes nothing

    again = cli.run(PERMITS, app, "--input", str(permits_csv))

    assert again["status"] == "completed", again
    assert again["added"] == 0
    assert sorted(r["reference"] for r in again["refused"]) == REFERENCES
    assert again["uncertain"] == []
    assert (again["succeeded"], again["business_exceptions"]) == (2, 0)
    for reference in REFERENCES:
        counts = updates_of(app, reference)
        assert counts["updates"] == {"permit_recorded": 1}, reference
        assert counts["attempts"] == {"permit_recorded": 1}, f"{reference} was submitted twice"
    assert set(item_statuses(db, PERMITS).values()) == {"successful"}
    verified = {item.reference: item for item in _items_of_run(db, again["run_id"])}
    if phase == "after":
        assert verified[INTERRUPTED].attempts == 0  # found done by verify, not entered again
        assert "verified" in verified[INTERRUPTED].output
    else:
        assert verified[INTERRUPTED].attempts == 1  # not found by verify: entered now

    assert credited(db) == (4, 4, 4)
    row = report_row(cli, PERMITS)
    assert (row["succeeded"], row["business_exceptions"], row["runs"]) == (4, 0, 2)
    assert row["item_minutes_saved"] == pytest.approx(4 * MINUTES_PER_PERMIT)
    runs = assert_no_run_running(cli)
    first = next(r for r in runs if r["id"] != again["run_id"])
    assert first["status"] == "abandoned"
    assert f"process {killed.pid}" in first["error"]


def test_without_verify_the_interrupted_item_becomes_uncertain_and_is_not_redone(
    cli: Robo, db: Database, app: Any, permits_csv: Path, tmp_path: Path
) -> None:
    folder = without_verify(tmp_path)
    cli.ok("deploy", str(folder))
    hold = {"reference": INTERRUPTED, "seconds": HOLD_SECONDS, "phase": "after"}
    portal_api(app, "/api/faults", {"hold": hold})

    killed = cli.start_run("permit-entry-no-verify", app, "--input", str(permits_csv))
    kill_while_held(killed, app, INTERRUPTED, "after", cli.log)
    assert updates_of(app, INTERRUPTED)["updates"] == {"permit_recorded": 1}
    portal_api(app, "/api/faults", {"release": True})

    again = cli.run("permit-entry-no-verify", app, "--input", str(permits_csv))

    assert again["status"] == "completed", again
    assert again["uncertain"] == [INTERRUPTED]
    assert (again["succeeded"], again["business_exceptions"]) == (1, 0)  # the fourth file
    counts = updates_of(app, INTERRUPTED)
    assert counts == {"reference": INTERRUPTED, "updates": {"permit_recorded": 1},
                      "attempts": {"permit_recorded": 1}}  # fmt: skip
    for reference in REFERENCES:
        assert updates_of(app, reference)["attempts"] == {"permit_recorded": 1}, reference
    statuses = item_statuses(db, "permit-entry-no-verify")
    assert statuses == {**dict.fromkeys(REFERENCES, "successful"), INTERRUPTED: "uncertain"}
    waiting = [row for row in worklist(cli, db) if row["reference"] == INTERRUPTED]
    assert [row["status"] for row in waiting] == ["uncertain"]

    third = cli.run("permit-entry-no-verify", app, "--input", str(permits_csv))

    assert (third["items_total"], third["uncertain"]) == (0, [])  # still the human's
    assert updates_of(app, INTERRUPTED)["attempts"] == {"permit_recorded": 1}
    assert credited(db) == (3, 3, 3)  # the uncertain file is not credited to the robot
    row = report_row(cli, "permit-entry-no-verify")
    assert row["succeeded"] == 3
    assert row["item_minutes_saved"] == pytest.approx(3 * MINUTES_PER_PERMIT)
    assert_no_run_running(cli)


# --- the same input twice --------------------------------------------------------------


def test_running_the_same_input_twice_enqueues_nothing_the_second_time(
    cli: Robo, db: Database, app: Any
) -> None:
    cli.ok("deploy", str(PROCESSES / PERMITS))
    first = cli.run(PERMITS, app)
    assert (first["added"], first["succeeded"], first["business_exceptions"]) == (10, 7, 3)

    second = cli(
        "run", PERMITS, "--param", f"portal_url={app.url}", "--no-progress",
        timeout=RUN_TIMEOUT,
    )  # fmt: skip

    assert second.returncode == 0, second.stdout + second.stderr
    assert "0 items: 0 ok" in second.stdout
    assert "10 reference(s) already queued, not added again:" in second.stderr
    assert "'2024-75-00201' is already queued as item" in second.stderr
    assert "(successful); not added again" in second.stderr
    assert "'2024-75-00117' is already queued as item" in second.stderr
    assert "(business_exception); not added again" in second.stderr
    updates = portal_api(app, "/api/updates")["permit_recorded"]
    assert len(updates) == 7
    assert set(updates.values()) == {1}
    assert credited(db) == (7, 7, 7)
    assert report_row(cli, PERMITS)["item_minutes_saved"] == pytest.approx(7 * MINUTES_PER_PERMIT)
    assert_no_run_running(cli)


# --- dispatcher -> performer -------------------------------------------------------------

INVOICES = [f"FAC-2024-{n:03d}" for n in range(1, 13)]
REJECTED = {"FAC-2024-004", "FAC-2024-005", "FAC-2024-009", "FAC-2024-010"}


def test_the_dispatcher_fills_the_shared_queue_and_the_performer_checks_each_invoice_once(
    cli: Robo, db: Database, app: Any
) -> None:
    cli.ok("deploy", str(PROCESSES / DISPATCHER), str(PROCESSES / PERFORMER))

    dispatched = cli.run(DISPATCHER, app)
    again = cli.run(DISPATCHER, app)

    assert (dispatched["status"], dispatched["added"], dispatched["succeeded"]) == (
        "completed", 12, 12,
    )  # fmt: skip
    assert (again["added"], again["items_total"]) == (0, 0)
    assert sorted(r["reference"] for r in again["refused"]) == INVOICES
    assert item_statuses(db, SHARED_QUEUE) == dict.fromkeys(INVOICES, "new")
    assert (
        portal_api(app, "/api/updates")["invoice_decided"] == {}
    )  # the dispatcher decides nothing

    performed = cli.run(PERFORMER, app)

    assert performed["status"] == "completed", performed
    assert (performed["succeeded"], performed["business_exceptions"]) == (8, 4)
    decided = portal_api(app, "/api/updates")["invoice_decided"]
    assert decided == dict.fromkeys(INVOICES, 1)
    assert item_statuses(db, SHARED_QUEUE) == {
        ref: "business_exception" if ref in REJECTED else "successful" for ref in INVOICES
    }
    drained = cli.run(PERFORMER, app)
    assert drained["items_total"] == 0
    assert portal_api(app, "/api/updates")["invoice_decided"] == decided
    assert report_row(cli, DISPATCHER)["item_minutes_saved"] == pytest.approx(12 * 1)
    assert report_row(cli, PERFORMER)["item_minutes_saved"] == pytest.approx(8 * 10)
    assert credited(db) == (20, 20, 20)
    assert_no_run_running(cli)


def test_a_performer_killed_after_approving_is_verified_in_the_portal_not_approved_again(
    cli: Robo, db: Database, app: Any
) -> None:
    """The Python verify of invoice-commitment-check: approved before robo died = done."""
    cli.ok("deploy", str(PROCESSES / DISPATCHER), str(PROCESSES / PERFORMER))
    cli.run(DISPATCHER, app)
    interrupted = "FAC-2024-002"  # the second invoice of the queue, covered by its commitment
    hold = {"reference": interrupted, "seconds": HOLD_SECONDS, "phase": "after"}
    portal_api(app, "/api/faults", {"hold": hold})

    killed = cli.start_run(PERFORMER, app)
    kill_while_held(killed, app, interrupted, "after", cli.log)
    assert item_statuses(db, SHARED_QUEUE)[interrupted] == "in_progress"
    portal_api(app, "/api/faults", {"release": True})

    again = cli.run(PERFORMER, app)

    assert again["status"] == "completed", again
    assert again["uncertain"] == []
    assert portal_api(app, "/api/updates")["invoice_decided"] == dict.fromkeys(INVOICES, 1)
    assert updates_of(app, interrupted)["attempts"] == {"invoice_decided": 1}
    verified = {item.reference: item for item in _items_of_run(db, again["run_id"])}
    assert (verified[interrupted].status, verified[interrupted].attempts) == ("success", 0)
    row = report_row(cli, PERFORMER)
    assert (row["succeeded"], row["business_exceptions"]) == (8, 4)
    assert row["item_minutes_saved"] == pytest.approx(8 * 10)
    assert_no_run_running(cli)


def _items_of_run(db: Database, run_id: int) -> list[ItemRow]:
    with db.session() as session:
        return list(session.scalars(select(ItemRow).where(ItemRow.run_id == run_id)))


def test_an_invoice_already_queued_for_the_performer_is_skipped_by_the_dispatcher(
    tmp_path: Path, database_url: str, db: Database, app: Any
) -> None:
    """Queued by hand before the dispatcher ran: nothing left to sort, 0 minutes for it.

    Run in-process (`robo run` is driven through the CLI everywhere else)."""
    robo = Installation(
        Settings(home=tmp_path / "home", database_url=database_url, region="occitanie"),
        env={"ROBO_SECRET_PORTAL_PASSWORD": PORTAL_PASSWORD},
    )
    try:
        for process_id in (DISPATCHER, PERFORMER):
            robo.registry.deploy(load_process(PROCESSES / process_id))
        robo.queues.ensure(SHARED_QUEUE)
        robo.queues.add(SHARED_QUEUE, [NewItem("FAC-2024-007", {"reference": "FAC-2024-007"})],
                        source="an operator")  # fmt: skip

        result = run_process(
            robo.run_environment(),
            robo.registry.active(DISPATCHER),
            RunRequest(DISPATCHER, params={"portal_url": app.url}),
        )
    finally:
        robo.close()

    assert result.status == "completed", result.error
    assert (result.succeeded, result.skipped, result.business_exceptions) == (11, 1, 0)
    assert item_statuses(db, DISPATCHER)["FAC-2024-007"] == "skipped"
    assert len(item_statuses(db, SHARED_QUEUE)) == 12
    assert result.minutes_saved == pytest.approx(11 * 1)
