"""Another process holds SQLite's write lock for 45 s, then 75 s, while `robo run` works.

With the defaults (a write waits 30 s for the lock, then is retried for 60 s, then
journaled), no outcome is lost and none is counted twice: checked against the sample
portal's own record of each file and against the ledger. Real Chromium, real SQLite.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

import psutil
import pytest

from tests.integration.permits_support import (
    EXIT_TIMEOUT,
    PERMITS,
    PROCESSES,
    REFERENCES,
    Robo,
    assert_no_run_running,
    portal_api,
    updates_of,
    wait_until_held,
)

pytestmark = pytest.mark.browser

HELD = REFERENCES[1]


class ExclusiveLock(threading.Thread):
    """``BEGIN EXCLUSIVE`` on the database file from another connection, for ``seconds``."""

    def __init__(self, path: Path, seconds: float) -> None:
        super().__init__(daemon=True)
        self.path, self.seconds = path, seconds
        self.taken = threading.Event()

    def run(self) -> None:
        connection = sqlite3.connect(self.path, isolation_level=None, timeout=30)
        try:
            connection.execute("BEGIN EXCLUSIVE")
            self.taken.set()
            time.sleep(self.seconds)
            connection.execute("ROLLBACK")
        finally:
            connection.close()


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
@pytest.mark.parametrize("seconds", [45, 75])
def test_a_run_through_a_long_exclusive_lock_records_every_file_once(
    cli: Robo, app: Any, permits_csv: Path, database_url: str, seconds: int
) -> None:
    cli.ok("deploy", str(PROCESSES / PERMITS))
    # The portal holds the second file's answer (after applying it): the lock is taken
    # while the bot waits, so that file's outcome is the first write to meet it.
    portal_api(app, "/api/faults", {"hold": {"reference": HELD, "seconds": 3, "phase": "after"}})
    run = cli.start_run(PERMITS, app, "--input", str(permits_csv), "--json")
    lock = ExclusiveLock(Path(database_url.removeprefix("sqlite:///")), seconds)
    try:
        wait_until_held(app, HELD, run, cli.log)
        lock.start()
        assert lock.taken.wait(30), "the lock was never taken"
        started = psutil.Process(run.pid).children(recursive=True)
        code = run.wait(timeout=seconds + 240)
    finally:
        if run.poll() is None:
            run.kill()
            run.wait()
        lock.join(timeout=seconds + 30)
    output = cli.log.read_text()
    assert "Traceback" not in output, output
    assert code == 0, output
    _, alive = psutil.wait_procs(started, timeout=EXIT_TIMEOUT)
    assert not alive, f"processes left by the run: {alive}"

    # Any command replays what waited in the journal; then the ledger holds each file once.
    runs = assert_no_run_running(cli)
    assert [r["status"] for r in runs] == ["completed"]
    detail = cli.json("run-show", str(runs[0]["id"]))
    assert sorted(item["reference"] for item in detail["items"]) == sorted(REFERENCES)
    assert {item["status"] for item in detail["items"]} == {"success"}
    for reference in REFERENCES:
        counts = updates_of(app, reference)
        assert counts["updates"] == {"permit_recorded": 1}, reference
        assert counts["attempts"] == {"permit_recorded": 1}, f"{reference} was submitted twice"
    assert cli.json("report")[0]["succeeded"] == len(REFERENCES)
