"""`robo cancel RUN`: the request on the run's row, refusals, and what a cancelled run is
owed (no per-run minutes, never a recovery). SQLite and PostgreSQL.

The runs that read the request (local executor, `robo run`, a Celery worker) are in
tests/integration/test_cancel.py.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from robo.app import Robo
from robo.cancellation import Cancellations
from robo.clock import utcnow
from robo.errors import RunNotFound, RunNotRunning
from robo.ledger import ItemOutcome
from robo.loader import load_process
from robo.queues import NewItem
from robo.settings import Settings
from robo.storage.models import QueueItemRow, RunRow
from tests.conftest import definition

PROCESS = "sample-process"


@pytest.fixture
def app(tmp_path: Path, database_url: str, make_process: Any) -> Iterator[Robo]:
    """An installation with one process (5 min per item, 4 per run) deployed."""
    robo = Robo(Settings(home=tmp_path / "home", database_url=database_url))
    robo.registry.actor = "agent.dupont"
    spec = definition()
    spec["baseline"].update(manual_minutes_per_item=7, residual_minutes_per_item=2)
    spec["baseline"]["manual_minutes_per_run"] = 4
    robo.registry.deploy(load_process(make_process(spec)))
    yield robo
    robo.close()


def start(app: Robo, trigger: str = "schedule") -> int:
    version = app.registry.active(PROCESS)
    d = version.definition
    return app.ledger.start_run(
        process_id=d.id, version_id=version.version_id, version=d.version, baseline=d.baseline,
        region="occitanie", parameters={}, trigger=trigger,
    )  # fmt: skip


def succeed(app: Robo, run_id: int, reference: str) -> None:
    now = utcnow()
    app.ledger.record_item(
        run_id, ItemOutcome(position=1, reference=reference, status="success", attempts=1,
                            started_at=now, finished_at=now + dt.timedelta(seconds=2)),
    )  # fmt: skip


def robo_cli(app: Robo, *args: str) -> Result:
    env = {
        "ROBO_HOME": str(app.settings.home),
        "ROBO_DATABASE_URL": app.settings.effective_database_url,
        "ROBO_CONFIG": os.devnull,
    }
    return CliRunner(env=env).invoke(_cli(), list(args), catch_exceptions=False)


def _cli() -> Any:
    from robo.cli.main import cli

    return cli


def run_row(app: Robo, run_id: int) -> RunRow:
    with app.db.session() as s:
        row = s.get(RunRow, run_id)
        assert row is not None
        s.expunge(row)
        return row


# --- the request ---------------------------------------------------------------------


def test_a_cancel_is_recorded_on_the_running_run_with_who_asked_and_how(app: Robo) -> None:
    run_id = start(app)

    result = robo_cli(app, "cancel", str(run_id), "--json")

    assert result.exit_code == 0, result.output
    shown = json.loads(result.output)
    assert (shown["run_id"], shown["mode"], shown["already"]) == (run_id, "after_item", False)
    row = run_row(app, run_id)
    assert (row.cancel_mode, row.status) == ("after_item", "running")  # the run ends it
    assert row.cancel_requested_by == shown["requested_by"] != ""
    assert row.cancel_requested_at is not None


def test_asking_again_changes_nothing_but_now_hurries_a_cancel_after_the_item(
    app: Robo,
) -> None:
    run_id = start(app)
    cancels = Cancellations(app.db, actor="first")
    first = cancels.request(run_id)

    again = Cancellations(app.db, actor="second").request(run_id)
    hurried = Cancellations(app.db, actor="third").request(run_id, "now")
    not_slowed = Cancellations(app.db, actor="fourth").request(run_id, "after_item")

    assert (first.mode, first.requested_by, first.already) == ("after_item", "first", False)
    assert (again.requested_by, again.already) == ("first", True)
    assert (hurried.mode, hurried.requested_by, hurried.already) == ("now", "third", False)
    assert (not_slowed.mode, not_slowed.requested_by, not_slowed.already) == ("now", "third", True)
    assert cancels.requested(run_id) == dataclass_without_already(hurried)


def dataclass_without_already(request: Any) -> Any:
    import dataclasses

    return dataclasses.replace(request, already=False)


def test_the_cli_says_a_cancel_already_requested_and_exits_0(app: Robo) -> None:
    run_id = start(app)
    robo_cli(app, "cancel", str(run_id), "--now")

    result = robo_cli(app, "cancel", str(run_id))

    assert result.exit_code == 0, result.output
    assert f"run {run_id} ({PROCESS}): cancel already requested by" in result.output
    assert "(at once)" in result.output


def test_cancelling_an_unknown_run_says_so_and_exits_1(app: Robo) -> None:
    result = robo_cli(app, "cancel", "999")

    assert result.exit_code == 1
    assert "no run 999 in the ledger" in result.output
    with pytest.raises(RunNotFound):
        app.cancellations.request(999)


@pytest.mark.parametrize("status", ["completed", "failed", "abandoned", "cancelled"])
def test_cancelling_a_run_that_is_not_running_says_its_status_and_exits_1(
    app: Robo, status: Any
) -> None:
    run_id = start(app)
    app.ledger.finish_run(run_id, status)

    result = robo_cli(app, "cancel", str(run_id), "--now")

    assert result.exit_code == 1
    assert f"run {run_id} ({PROCESS}) is {status}, finished " in result.output
    assert "only a running run can be cancelled" in result.output
    row = run_row(app, run_id)
    assert (row.cancel_mode, row.cancel_requested_at, row.status) == (None, None, status)
    with pytest.raises(RunNotRunning):
        app.cancellations.request(run_id)


def test_runs_lists_cancelled_runs(app: Robo) -> None:
    cancelled, completed = start(app), start(app)
    app.ledger.finish_run(cancelled, "cancelled", "cancelled by agent.dupont")
    app.ledger.finish_run(completed, "completed")

    result = robo_cli(app, "runs", "--status", "cancelled", "--json")

    assert result.exit_code == 0, result.output
    assert [r["id"] for r in json.loads(result.output)] == [cancelled]


# --- what a cancelled run is owed -------------------------------------------------------


def test_a_cancelled_run_keeps_its_items_minutes_but_earns_no_per_run_minutes(app: Robo) -> None:
    cancelled, completed = start(app), start(app)
    for run_id in (cancelled, completed):
        succeed(app, run_id, f"R{run_id}")
    app.cancellations.request(cancelled)
    app.ledger.finish_run(cancelled, "cancelled", "cancelled by agent.dupont")
    app.ledger.finish_run(completed, "completed")

    assert app.ledger.summary(cancelled).minutes_saved == 5  # its item: 7 - 2
    assert app.ledger.summary(completed).minutes_saved == 5 + 4  # and the run's 4
    assert run_row(app, cancelled).run_minutes_saved == 0
    check = robo_cli(app, "report", "--check", "--include-test")
    assert check.exit_code == 0, check.output


def test_a_cancelled_run_is_owed_no_recovery(app: Robo) -> None:
    run_id = start(app, trigger="schedule")
    app.cancellations.request(run_id)

    app.ledger.finish_run(run_id, "cancelled", "cancelled by agent.dupont")
    app.ledger.abandon_stale(utcnow() + dt.timedelta(hours=1), "elsewhere", lambda _pid: False)

    row = run_row(app, run_id)
    assert (row.status, row.recovery) == ("cancelled", None)
    assert app.ledger.recoveries_owed() == []


def test_a_cancelled_run_stopped_by_a_drain_as_well_is_not_recovered(app: Robo) -> None:
    """The drain's second SIGTERM ends a run `interrupted`: with a cancel requested, the
    operator's decision stands and no recovery is owed."""
    cancelled, drained = start(app), start(app)
    app.cancellations.request(cancelled)

    for run_id in (cancelled, drained):
        app.ledger.finish_run(run_id, "interrupted", "interrupted by the operator")

    assert run_row(app, cancelled).recovery is None
    assert run_row(app, drained).recovery == "due"
    assert [r.id for r in app.ledger.recoveries_owed()] == [drained]


def test_a_run_that_died_before_it_read_its_cancel_ends_cancelled_not_recovered(
    app: Robo,
) -> None:
    cancelled, died = start(app), start(app)
    app.cancellations.request(cancelled, "now")

    found = app.ledger.abandon_stale(
        utcnow() + dt.timedelta(hours=1), "elsewhere", lambda _pid: False
    )

    assert {r.id: r.status for r in found} == {cancelled: "cancelled", died: "abandoned"}
    row = run_row(app, cancelled)
    assert (row.recovery, row.run_minutes_saved) == (None, 0)
    assert row.error is not None and "cancel requested by agent.dupont" in row.error
    assert [r.id for r in app.ledger.recoveries_owed()] == [died]


# --- the item in flight when --now cuts it ------------------------------------------------


@pytest.mark.parametrize(
    ("touched", "verify", "status", "needs_verify"),
    [
        (False, False, "new", False),  # the bot had not started on it: as it was
        (True, True, "new", True),  # the next run asks the application first
        (True, False, "uncertain", False),  # no way to ask: a human decides
    ],
)
def test_the_item_in_flight_goes_back_to_the_queue_never_to_be_redone_blind(
    app: Robo, touched: bool, verify: bool, status: str, needs_verify: bool
) -> None:
    run_id = start(app)
    app.queues.ensure(PROCESS)
    app.queues.add(PROCESS, [NewItem("R1")], source="test")
    taken = app.queues.take(PROCESS, run_id, 60)
    assert taken is not None

    went = app.queues.hand_back(taken.id, run_id, touched=touched, verify=verify, reason="cut")
    again = app.queues.hand_back(taken.id, run_id, touched=touched, verify=verify, reason="cut")

    assert (went, again) == (status, None)  # once: a second hand-back finds it not held
    with app.db.session() as s:
        item = s.get(QueueItemRow, taken.id)
        assert item is not None
        assert (item.status, item.needs_verify, item.lease_until) == (status, needs_verify, None)
    _, events = app.queues.get(taken.id)
    assert [e.action for e in events] == ["added", "taken", "handed_back"]


def test_an_item_whose_outcome_was_recorded_is_kept_as_recorded(app: Robo) -> None:
    run_id = start(app)
    app.queues.ensure(PROCESS)
    app.queues.add(PROCESS, [NewItem("R1")], source="test")
    taken = app.queues.take(PROCESS, run_id, 60)
    assert taken is not None
    now = utcnow()
    app.ledger.record_item(
        run_id, ItemOutcome(position=1, reference="R1", status="success", attempts=1,
                            started_at=now, finished_at=now, queue_item_id=taken.id),
    )  # fmt: skip

    assert app.queues.hand_back(taken.id, run_id, touched=True, verify=True, reason="cut") is None
    assert app.queues.get(taken.id)[0].status == "successful"
