"""`robo cancel RUN` reaching a real run wherever it runs: the scheduler's process pool
(`robo submit --wait`, the local executor), `robo run` in a terminal, a Celery worker.

residence-permit-entry enters 30 files into the sample portal. The portal holds the
4th file's update (after applying it), so the cancel lands while that item is in
flight. Then, read from the ledger, the queue and the portal's own record:

- after the item (default): the 4th file is finished and recorded; the run ends
  `cancelled`; the 26 files after it are still `new`, never taken, never sent;
- ``--now``: the run ends while the portal still holds the request (it did not wait
  for the item); the 4th file goes back to the queue marked to verify, unrecorded;
  a later run verifies it (done: credited once, not entered again) and enters the rest;
- no Chromium the run started outlives it; the run is owed no recovery.

Every wait is bounded here.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil
import pytest
import yaml
from sqlalchemy import select

from robo.app import Robo
from robo.loader import load_process
from robo.settings import Settings
from robo.storage.models import ItemRow, QueueEventRow, QueueItemRow, RunRow
from tests.conftest import PORTAL_PASSWORD, REDIS_URL
from tests.integration.permits_support import PERMITS, PROCESSES, portal_api, updates_of

pytestmark = pytest.mark.browser

NAMES = [("MARTIN", "Louise"), ("DIALLO", "Awa"), ("NGUYEN", "Bao"), ("SILVA", "Ana")]
KINDS = [("DZ", "salarie"), ("SN", "famille"), ("VN", "etudiant"), ("BR", "visiteur")]
ROWS = [
    (f"2026-75-2{i:04d}", *NAMES[i % 4], f"{1 + i % 28:02d}/0{1 + i % 9}/{1970 + i}", *KINDS[i % 4])
    for i in range(1, 31)
]
REFERENCES = [row[0] for row in ROWS]
HELD_AT = 4  # three files before it are done, 26 wait after it
HELD = REFERENCES[HELD_AT - 1]
BEFORE, AFTER = REFERENCES[: HELD_AT - 1], REFERENCES[HELD_AT:]

HOLD_SECONDS = 120  # the portal holds the 4th file's answer at most this long
REACH_TIMEOUT = 180.0  # for the bot to reach the held file (a worker starting included)
END_TIMEOUT = 60.0  # for a cancelled run to end
EXIT_TIMEOUT = 60.0  # for a process (and its browser) to be gone
COMMAND_TIMEOUT = 120.0  # one `robo` command
RUN_TIMEOUT = 240.0  # the follow-up `robo run` of 27 files


@dataclass
class Site:
    """An installation with the 30 files deployed, and robo processes run against it."""

    robo: Robo
    env: dict[str, str]
    log: Path
    started: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def cli(self, *args: str, timeout: float = COMMAND_TIMEOUT) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "robo", *args], env=self.env, capture_output=True,
            text=True, timeout=timeout, check=False,
        )  # fmt: skip

    def start(self, *args: str) -> subprocess.Popen[bytes]:
        with self.log.open("ab") as out:
            proc = subprocess.Popen(
                [sys.executable, "-m", "robo", *args], env=self.env, stdout=out,
                stderr=subprocess.STDOUT,
            )  # fmt: skip
        self.started.append(proc)
        return proc

    def tail(self) -> str:
        return (
            self.log.read_text(encoding="utf-8", errors="replace")[-4000:]
            if self.log.exists()
            else ""
        )

    def stop_all(self) -> None:
        for proc in self.started:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self.started:
            try:
                proc.wait(timeout=EXIT_TIMEOUT)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def wait_for(condition: Callable[[], Any], timeout: float, what: str, site: Site) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}\n{site.tail()}")


def make_site(tmp_path: Path, portal: Any, database_url: str, **env: str) -> Iterator[Site]:
    folder = tmp_path / PERMITS
    shutil.copytree(PROCESSES / PERMITS, folder)
    spec = yaml.safe_load((folder / "process.yaml").read_text(encoding="utf-8"))
    spec["parameters"]["portal_url"] = portal.url
    spec["timeouts"]["run_seconds"] = 300  # below the broker's visibility timeout
    (folder / "process.yaml").write_text(yaml.safe_dump(spec, allow_unicode=True), "utf-8")
    lines = ["file_number,last_name,first_name,birth_date,nationality,permit_type"]
    (folder / "input" / "permits.csv").write_text(
        "\n".join(lines + [",".join(row) for row in ROWS]) + "\n", encoding="utf-8"
    )
    home = tmp_path / "home"
    base = {k: v for k, v in os.environ.items() if not k.startswith("ROBO_")}
    site_env = (
        base
        | {
            "ROBO_HOME": str(home),
            "ROBO_DATABASE_URL": database_url,
            "ROBO_SECRET_PORTAL_PASSWORD": PORTAL_PASSWORD,
            "ROBO_HEARTBEAT_SECONDS": "0.5",
            "ROBO_ABANDON_AFTER_SECONDS": "5",
            "ROBO_BOT_SLOTS": "1",
            "ROBO_LOG_LEVEL": "info",
            "ROBO_LOCALE": "en",
            "ROBO_EXECUTOR": "local",
        }
        | env
    )
    robo = Robo(Settings(home=home, database_url=database_url))
    robo.registry.deploy(load_process(folder))
    # A little latency, so that every item takes a while, as in a real application.
    portal_api(portal, "/api/faults", {"latency_ms": 20})
    site = Site(robo, site_env, tmp_path / "robo.log")
    try:
        yield site
    finally:
        portal_api(portal, "/api/faults", {"hold": None, "release": True, "latency_ms": 0})
        site.stop_all()
        robo.close()


@pytest.fixture
def local_site(tmp_path: Path, fresh_portal: Any) -> Iterator[Site]:
    yield from make_site(tmp_path, fresh_portal, f"sqlite:///{tmp_path / 'robo.db'}")


@pytest.fixture
def celery_site(tmp_path: Path, fresh_portal: Any, postgres_url: str) -> Iterator[Site]:
    yield from make_site(
        tmp_path, fresh_portal, postgres_url,
        ROBO_EXECUTOR="celery", ROBO_BROKER_URL=REDIS_URL,
        ROBO_BROKER_QUEUE=f"robo-test-{uuid.uuid4().hex[:8]}",
        ROBO_BROKER_VISIBILITY_TIMEOUT="600",
    )  # fmt: skip


# --- what the tests share --------------------------------------------------------------


def is_chromium(proc: psutil.Process) -> bool:
    try:
        return "chrom" in proc.name().lower() and proc.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def chromium_under(pid: int) -> list[psutil.Process]:
    """Chromium processes whose parent chain leads to ``pid``."""
    try:
        return [p for p in psutil.Process(pid).children(recursive=True) if is_chromium(p)]
    except psutil.NoSuchProcess:
        return []


def running_run(site: Site) -> RunRow | None:
    with site.robo.db.session() as s:
        run = s.scalars(select(RunRow).where(RunRow.status == "running")).first()
        if run is not None:
            s.expunge(run)
        return run


def run_row(site: Site, run_id: int) -> RunRow:
    with site.robo.db.session() as s:
        run = s.get(RunRow, run_id)
        assert run is not None
        s.expunge(run)
        return run


def holding(portal: Any) -> list[str]:
    found: list[str] = portal_api(portal, "/api/faults")["holding"]
    return found


def reach_the_held_file(site: Site, portal: Any, alive: Callable[[], bool]) -> RunRow:
    """Until the portal holds the 4th file's request; the run doing it."""

    def held() -> bool:
        assert alive(), site.tail()
        return HELD in holding(portal)

    wait_for(held, REACH_TIMEOUT, f"the bot to reach {HELD}", site)
    run = running_run(site)
    assert run is not None and run.pid is not None
    return run


def cancel_and_wait(site: Site, portal: Any, run: RunRow, now: bool) -> tuple[RunRow, bool]:
    """`robo cancel RUN [--now]`; after the item, the portal lets the held file go. The
    run's row once it ended, and whether the portal still held the file at that moment."""
    assert run.pid is not None
    browsers = chromium_under(run.pid)
    assert browsers, "the run's Chromium was not found"
    done = site.cli("cancel", str(run.id), *(["--now"] if now else []), "--json")
    assert done.returncode == 0, done.stdout + done.stderr
    request = json.loads(done.stdout)
    assert (request["mode"], request["already"]) == ("now" if now else "after_item", False)
    if not now:
        portal_api(portal, "/api/faults", {"release": True})
    ended = wait_for(
        lambda: (r := run_row(site, run.id)).status != "running" and r, END_TIMEOUT,
        f"run {run.id} to end after `robo cancel`", site,
    )  # fmt: skip
    still_held = HELD in holding(portal)
    portal_api(portal, "/api/faults", {"release": True})
    _, alive = psutil.wait_procs(browsers, timeout=EXIT_TIMEOUT)
    assert not [p for p in alive if is_chromium(p)], f"Chromium outlived the run: {alive}"
    assert chromium_under(run.pid) == []
    return ended, still_held


def assert_cancelled(site: Site, portal: Any, run: RunRow, now: bool) -> None:
    """The run's end, its queue and the portal's record, after the cancel."""
    assert run.status == "cancelled", run.error
    assert run.error is not None and "cancelled by " in run.error
    left = len(AFTER) + (1 if now else 0)
    assert f"{left} item(s) left waiting in the queue" in run.error
    assert run.recovery is None  # never resumed
    assert run.run_minutes_saved == 0  # per-run minutes: completed runs only
    with site.robo.db.session() as s:
        items = {i.reference: i.status for i in s.scalars(select(ItemRow))}
        queued = {q.reference: q for q in s.scalars(select(QueueItemRow))}
        taken = {
            queued_id
            for queued_id in s.scalars(
                select(QueueEventRow.item_id).where(QueueEventRow.action == "taken")
            )
        }
        resumed = s.scalars(select(RunRow.id).where(RunRow.resumes_run_id == run.id)).all()
    assert resumed == []
    done = BEFORE if now else [*BEFORE, HELD]
    assert items == dict.fromkeys(done, "success")
    assert {r: queued[r].status for r in done} == dict.fromkeys(done, "successful")
    if now:  # handed back, not counted; done in the application: the next run verifies it
        assert (queued[HELD].status, queued[HELD].needs_verify) == ("new", True)
    # The files after it: still waiting, never taken, never sent.
    assert {r: queued[r].status for r in AFTER} == dict.fromkeys(AFTER, "new")
    assert not {queued[r].id for r in AFTER} & taken
    for reference in [*BEFORE, HELD]:
        assert updates_of(portal, reference)["updates"] == {"permit_recorded": 1}, reference
    for reference in AFTER:
        assert updates_of(portal, reference) == {
            "reference": reference, "updates": {}, "attempts": {},
        }  # fmt: skip


def assert_each_file_entered_once(site: Site, portal: Any) -> None:
    for reference in REFERENCES:
        counts = updates_of(portal, reference)
        assert counts["updates"] == {"permit_recorded": 1}, reference
        assert counts["attempts"] == {"permit_recorded": 1}, f"{reference} was submitted twice"
    with site.robo.db.session() as s:
        statuses = dict(s.execute(select(QueueItemRow.reference, QueueItemRow.status)).all())
    assert statuses == dict.fromkeys(REFERENCES, "successful")


# --- the local executor: the scheduler's process pool ------------------------------------


@pytest.mark.parametrize("now", [False, True], ids=["after-item", "now"])
def test_a_run_in_the_local_pool_is_cancelled_and_leaves_the_files_after_it_queued(
    local_site: Site, fresh_portal: Any, now: bool
) -> None:
    site = local_site
    portal_api(
        fresh_portal, "/api/faults",
        {"hold": {"reference": HELD, "seconds": HOLD_SECONDS, "phase": "after"}},
    )  # fmt: skip
    submit = site.start("submit", PERMITS, "--wait")  # the local executor's pool, here
    run = reach_the_held_file(site, fresh_portal, lambda: submit.poll() is None)
    assert run.pid != submit.pid  # a pool process runs it

    ended, still_held = cancel_and_wait(site, fresh_portal, run, now)

    assert submit.wait(timeout=EXIT_TIMEOUT) == 0, site.tail()
    assert_cancelled(site, fresh_portal, ended, now)
    if now:
        assert still_held, "--now waited for the item in flight to end"
        # The next run verifies the file handed back (done: credited, not entered again)
        # and enters the 26 others: each file entered once in all.
        follow = site.cli("run", PERMITS, "--no-progress", "--json", timeout=RUN_TIMEOUT)
        assert follow.returncode == 0, follow.stdout + follow.stderr
        result = json.loads(follow.stdout)
        assert (result["status"], result["succeeded"]) == ("completed", 1 + len(AFTER)), result
        assert_each_file_entered_once(site, fresh_portal)


# --- `robo run` in a terminal, cancelled from another ------------------------------------


def test_robo_run_in_a_terminal_is_cancelled_at_once_from_another(
    local_site: Site, fresh_portal: Any
) -> None:
    site = local_site
    portal_api(
        fresh_portal, "/api/faults",
        {"hold": {"reference": HELD, "seconds": HOLD_SECONDS, "phase": "after"}},
    )  # fmt: skip
    terminal = site.start("run", PERMITS, "--no-progress")
    run = reach_the_held_file(site, fresh_portal, lambda: terminal.poll() is None)
    assert run.pid == terminal.pid

    ended, still_held = cancel_and_wait(site, fresh_portal, run, now=True)

    assert terminal.wait(timeout=EXIT_TIMEOUT) == 1, site.tail()  # not completed
    assert still_held, "--now waited for the item in flight to end"
    assert f"run {run.id} {PERMITS}: cancelled" in site.tail()
    assert_cancelled(site, fresh_portal, ended, now=True)


# --- a Celery worker (PostgreSQL + Redis) --------------------------------------------------


@pytest.mark.redis
@pytest.mark.parametrize("now", [False, True], ids=["after-item", "now"])
def test_a_run_on_a_celery_worker_is_cancelled_through_the_database(
    celery_site: Site, fresh_portal: Any, now: bool
) -> None:
    site = celery_site
    portal_api(
        fresh_portal, "/api/faults",
        {"hold": {"reference": HELD, "seconds": HOLD_SECONDS, "phase": "after"}},
    )  # fmt: skip
    worker = site.start("worker", "--slots", "1", "--name", "w1")
    wait_for(
        lambda: any(w["alive"] for w in json.loads(site.cli("workers", "--json").stdout or "[]")),
        REACH_TIMEOUT, "the worker", site,
    )  # fmt: skip
    submitted = site.cli("submit", PERMITS)
    assert submitted.returncode == 0, submitted.stdout + submitted.stderr
    run = reach_the_held_file(site, fresh_portal, lambda: worker.poll() is None)
    assert run.worker == "w1" and run.pid != worker.pid  # one of the worker's pool processes

    ended, still_held = cancel_and_wait(site, fresh_portal, run, now)

    assert worker.poll() is None, site.tail()  # the worker itself goes on
    if now:
        assert still_held, "--now waited for the item in flight to end"
    assert_cancelled(site, fresh_portal, ended, now)
