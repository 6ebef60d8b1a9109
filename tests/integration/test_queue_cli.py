"""`robo queue` and `robo worklist`: operators feed and steer queues, agents take over
what the bots hand back. Runs are driven without a browser (take + record an outcome,
as the runner does), on SQLite and on PostgreSQL."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import os
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import time_machine
from click.testing import CliRunner, Result
from sqlalchemy import select

from robo.app import Robo
from robo.cli.main import cli
from robo.clock import utcnow
from robo.ledger import ItemOutcome, ItemStatus
from robo.queues import Queues
from robo.settings import Settings
from robo.storage.models import ItemRow
from tests.conftest import definition

PROCESS = "sample-process"  # its queue has its name; reference field 'ref'
MINUTES_PER_ITEM = 10 - 2  # the baseline of tests.conftest.definition: manual - residual
T0 = dt.datetime(2026, 3, 2, 8, 0, tzinfo=dt.UTC)


@pytest.fixture
def url(database_url: str) -> str:
    return database_url


@pytest.fixture
def robo(home: Path, url: str) -> Iterator[Callable[..., Result]]:
    """``robo(*args)``: the CLI on this installation."""

    def invoke(*args: str) -> Result:
        runner = CliRunner(env={"ROBO_CONFIG": os.devnull, "ROBO_REGION": None})
        return runner.invoke(
            cli,
            ["--home", str(home), "--database-url", url, "--region", "occitanie", *args],
            catch_exceptions=False,
        )

    yield invoke


@pytest.fixture
def app(home: Path, url: str) -> Iterator[Robo]:
    """The same installation as services, for what a run does (take, record an outcome)."""
    installation = Robo(Settings(home=home, database_url=url, region="occitanie"))
    yield installation
    installation.close()


@pytest.fixture
def deployed(robo: Callable[..., Result], make_process: Callable[..., Path]) -> Path:
    """The sample process deployed; returns a folder to write input files in."""
    folder = make_process(definition())
    assert robo("deploy", str(folder)).exit_code == 0
    return folder


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path


def items_of(robo: Callable[..., Result], queue: str = PROCESS) -> dict[str, dict[str, Any]]:
    result = robo("queue", "show", queue, "--json")
    assert result.exit_code == 0, result.output
    return {i["reference"]: i for i in json.loads(result.stdout)}


def start_run(app: Robo) -> int:
    version = app.registry.active(PROCESS)
    d = version.definition
    return app.ledger.start_run(
        process_id=d.id, version_id=version.version_id, version=d.version, baseline=d.baseline,
        region="occitanie", parameters={},
    )  # fmt: skip


def run_once(app: Robo, reference: str, status: ItemStatus, *, max_runs: int = 3) -> int:
    """A run takes the next item (which must be ``reference``) and ends it with ``status``,
    as the runner does: Queues.take, then Ledger.record_item. Returns the run id."""
    run_id = start_run(app)
    taken = app.queues.take(PROCESS, run_id, lease_seconds=300)
    assert taken is not None and taken.reference == reference
    now = utcnow()
    app.ledger.record_item(
        run_id,
        ItemOutcome(
            position=1, reference=reference, status=status, attempts=1, started_at=now,
            finished_at=now, queue_item_id=taken.id, max_runs=max_runs,
            error=None if status == "success" else f"{status} on {reference}",
        ),
    )  # fmt: skip
    app.ledger.finish_run(run_id, "completed")
    return run_id


def item_rows(app: Robo, queue_item_id: int) -> list[ItemRow]:
    with app.db.session() as session:
        return list(session.scalars(select(ItemRow).where(ItemRow.queue_item_id == queue_item_id)))


# --- adding a file ----------------------------------------------------------------------------


def test_add_queues_every_row_with_the_reference_field_of_the_process(
    robo: Callable[..., Result], deployed: Path
) -> None:
    file = write(deployed, "today.csv", "ref,name\nA1,first\nA2,second\n")

    result = robo("queue", "add", PROCESS, str(file))

    assert result.exit_code == 0, result.output
    assert "2 of 2 item(s) from today.csv added, 0 refused" in result.stdout
    assert "reference field 'ref'" in result.stdout
    items = items_of(robo)
    assert {r: (i["status"], i["data"]) for r, i in items.items()} == {
        "A1": ("new", {"ref": "A1", "name": "first"}),
        "A2": ("new", {"ref": "A2", "name": "second"}),
    }


def test_add_sets_priority_and_a_deadline_in_the_regions_time_zone(
    robo: Callable[..., Result], deployed: Path
) -> None:
    at_noon = write(deployed, "noon.csv", "ref\nA1\n")
    by_the_day = write(deployed, "day.json", json.dumps([{"ref": "A2"}]))

    assert robo("queue", "add", PROCESS, str(at_noon), "--priority", "5",
                "--deadline", "2026-01-15T12:00").exit_code == 0  # fmt: skip
    assert robo("queue", "add", PROCESS, str(by_the_day), "--deadline", "2026-01-15").exit_code == 0

    items = items_of(robo)
    assert items["A1"]["priority"] == 5
    assert items["A1"]["deadline"] == "2026-01-15T11:00:00+00:00"  # noon in Paris (CET)
    assert items["A2"]["priority"] == 0
    assert items["A2"]["deadline"] == "2026-01-15T22:59:59+00:00"  # the end of that day


def test_adding_the_same_file_again_refuses_every_reference_and_adds_nothing(
    robo: Callable[..., Result], deployed: Path
) -> None:
    file = write(deployed, "today.csv", "ref,name\nA1,first\nA2,second\n")
    robo("queue", "add", PROCESS, str(file))
    ids = {r: i["id"] for r, i in items_of(robo).items()}

    result = robo("queue", "add", PROCESS, str(file))

    assert result.exit_code == 1
    assert "0 of 2 item(s) from today.csv added, 2 refused" in result.stdout
    assert f"'A1' is already queued as item {ids['A1']} (new); not added again" in result.stdout
    assert f"'A2' is already queued as item {ids['A2']} (new); not added again" in result.stdout
    assert f"nothing added to queue '{PROCESS}': all 2 reference(s)" in result.stderr
    assert len(items_of(robo)) == 2


def test_a_file_with_one_new_and_one_known_reference_adds_the_new_one_and_names_the_other(
    robo: Callable[..., Result], app: Robo, deployed: Path
) -> None:
    robo("queue", "add", PROCESS, str(write(deployed, "monday.csv", "ref\nA1\n")))
    run_once(app, "A1", "success")
    known = items_of(robo)["A1"]["id"]

    result = robo("queue", "add", PROCESS, str(write(deployed, "tuesday.csv", "ref\nA1\nB7\n")),
                  "--json")  # fmt: skip

    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["read"] == 2 and len(report["added"]) == 1
    assert report["refused"] == [
        {"reference": "A1", "earlier_item_id": known, "earlier_status": "successful"}
    ]
    assert {r: i["status"] for r, i in items_of(robo).items()} == {"A1": "successful", "B7": "new"}


def test_a_performer_queue_reads_the_reference_field_of_the_process_that_drains_it(
    robo: Callable[..., Result], make_process: Callable[..., Path], tmp_path: Path
) -> None:
    performer = definition(
        id="invoice-check",
        items={"source": "queue", "reference": "invoice"},
        queue={"name": "invoices-to-check"},
    )
    robo("deploy", str(make_process(performer)))
    file = write(tmp_path, "inbox.json", json.dumps({"items": [{"invoice": "F-1", "amount": 12}]}))

    result = robo("queue", "add", "invoices-to-check", str(file))

    assert result.exit_code == 0, result.output
    assert items_of(robo, "invoices-to-check")["F-1"]["data"] == {"invoice": "F-1", "amount": 12}
    # the process id names the same queue
    again = robo("queue", "add", "invoice-check", str(file))
    assert "'F-1' is already queued" in again.stdout


def test_a_queue_no_process_takes_from_needs_the_reference_field(
    robo: Callable[..., Result], app: Robo, tmp_path: Path
) -> None:
    app.queues.ensure("loose-ends")
    file = write(tmp_path, "items.csv", "dossier,name\nD1,first\n")

    refused = robo("queue", "add", "loose-ends", str(file))
    added = robo("queue", "add", "loose-ends", str(file), "--reference", "dossier")

    assert refused.exit_code == 1
    assert "no process takes its items from queue 'loose-ends'" in refused.stderr
    assert "--reference FIELD" in refused.stderr
    assert added.exit_code == 0, added.output
    assert list(items_of(robo, "loose-ends")) == ["D1"]


def test_an_unknown_queue_is_refused(robo: Callable[..., Result], tmp_path: Path) -> None:
    file = write(tmp_path, "items.csv", "ref\nA1\n")

    result = robo("queue", "add", "no-such-queue", str(file), "--reference", "ref")

    assert result.exit_code == 1
    assert "no queue 'no-such-queue'" in result.stderr
    assert "robo queue list" in result.stderr


def test_a_file_with_an_unusable_row_adds_nothing(
    robo: Callable[..., Result], deployed: Path
) -> None:
    file = write(deployed, "bad.csv", "ref,name\nA1,first\n,no reference\n")

    result = robo("queue", "add", PROCESS, str(file))

    assert result.exit_code == 1
    assert "row 3: no value for reference field 'ref'" in result.stderr
    assert json.loads(robo("queue", "list", "--json").stdout) == []  # not even the queue


def test_queue_list_counts_items_per_status(
    robo: Callable[..., Result], app: Robo, deployed: Path
) -> None:
    robo("queue", "add", PROCESS, str(write(deployed, "in.csv", "ref\nA1\nA2\nA3\n")))
    run_once(app, "A1", "business_exception")

    listed = json.loads(robo("queue", "list", "--json").stdout)

    assert len(listed) == 1
    assert listed[0]["name"] == PROCESS and listed[0]["unique_references"] == "refuse"
    assert listed[0]["waiting"] == 2
    assert {s: n for s, n in listed[0]["counts"].items() if n} == {"new": 2,
                                                                   "business_exception": 1}  # fmt: skip
    shown = robo("queue", "show", PROCESS, "--status", "business_exception", "--json")
    assert [i["reference"] for i in json.loads(shown.stdout)] == ["A1"]


# --- operator actions ------------------------------------------------------------------------


def test_a_cancelled_item_is_never_taken(
    robo: Callable[..., Result], app: Robo, deployed: Path
) -> None:
    robo("queue", "add", PROCESS, str(write(deployed, "in.csv", "ref\nA1\nA2\n")))
    first = items_of(robo)["A1"]["id"]

    result = robo("queue", "cancel", str(first), "--note", "withdrawn by the applicant")

    assert result.exit_code == 0, result.output
    assert "cancelled; no run will take it" in result.stdout
    run_id = start_run(app)
    taken = app.queues.take(PROCESS, run_id, 300)
    assert taken is not None and taken.reference == "A2"
    assert app.queues.take(PROCESS, run_id, 300) is None
    item, events = app.queues.get(first)
    assert item.status == "cancelled" and item.note == "withdrawn by the applicant"
    assert events[-1].action == "cancel"


def test_cancel_needs_a_note(robo: Callable[..., Result], deployed: Path) -> None:
    robo("queue", "add", PROCESS, str(write(deployed, "in.csv", "ref\nA1\n")))

    result = robo("queue", "cancel", str(items_of(robo)["A1"]["id"]))

    assert result.exit_code == 2
    assert "--note" in result.output
    assert items_of(robo)["A1"]["status"] == "new"


def test_a_postponed_item_is_not_taken_before_its_time_and_is_after(
    robo: Callable[..., Result], app: Robo, deployed: Path
) -> None:
    with time_machine.travel(T0, tick=True) as clock:
        robo("queue", "add", PROCESS, str(write(deployed, "in.csv", "ref\nA1\n")))
        item = items_of(robo)["A1"]["id"]

        result = robo("queue", "postpone", str(item), "--until", "2026-03-03T09:00",
                      "--note", "applicant calls back")  # fmt: skip

        assert result.exit_code == 0, result.output
        assert (
            "deferred until 2026-03-03 09:00 Europe/Paris (2026-03-03 08:00 UTC)" in result.stdout
        )
        assert app.queues.take(PROCESS, start_run(app), 300) is None
        clock.move_to(dt.datetime(2026, 3, 3, 7, 59, tzinfo=dt.UTC))
        assert app.queues.take(PROCESS, start_run(app), 300) is None
        clock.move_to(dt.datetime(2026, 3, 3, 8, 1, tzinfo=dt.UTC))
        taken = app.queues.take(PROCESS, start_run(app), 300)
        assert taken is not None and taken.id == item


def test_postpone_refuses_a_time_in_the_past_and_an_item_not_waiting(
    robo: Callable[..., Result], app: Robo, deployed: Path
) -> None:
    robo("queue", "add", PROCESS, str(write(deployed, "in.csv", "ref\nA1\nA2\n")))
    ids = {r: i["id"] for r, i in items_of(robo).items()}
    run_once(app, "A1", "success")

    past = robo("queue", "postpone", str(ids["A2"]), "--until", "2020-01-01", "--note", "x")
    ended = robo("queue", "postpone", str(ids["A1"]), "--until", "2099-01-01", "--note", "x")
    garbled = robo("queue", "postpone", str(ids["A2"]), "--until", "next monday", "--note", "x")

    assert past.exit_code == 1 and "that is not later than now" in past.stderr
    assert ended.exit_code == 1
    assert f"queue item {ids['A1']} is successful; it cannot become deferred" in ended.stderr
    assert garbled.exit_code == 2 and "'next monday' is not a date" in garbled.output
    assert {r: i["status"] for r, i in items_of(robo).items()} == {"A1": "successful", "A2": "new"}


def test_retry_puts_an_application_exception_back_for_the_next_run(
    robo: Callable[..., Result], app: Robo, deployed: Path
) -> None:
    robo("queue", "add", PROCESS, str(write(deployed, "in.csv", "ref\nA1\n")))
    run_once(app, "A1", "application_exception", max_runs=1)  # its last run: final
    item = items_of(robo)["A1"]
    assert (item["status"], item["runs_failed"]) == ("application_exception", 1)

    result = robo("queue", "retry", str(item["id"]), "--note", "portal fixed", "--json")

    assert result.exit_code == 0, result.output
    retried = json.loads(result.stdout)
    assert (retried["status"], retried["runs_failed"], retried["error"]) == ("new", 0, None)
    taken = app.queues.take(PROCESS, start_run(app), 300)
    assert taken is not None and taken.id == item["id"]


def test_queue_item_shows_the_item_and_its_history(
    robo: Callable[..., Result], app: Robo, deployed: Path
) -> None:
    robo("queue", "add", PROCESS, str(write(deployed, "in.csv", "ref,name\nA1,first\n")))
    run_id = run_once(app, "A1", "business_exception")
    item = items_of(robo)["A1"]["id"]

    shown = json.loads(robo("queue", "item", str(item), "--json").stdout)
    text = robo("queue", "item", str(item)).stdout

    assert shown["item"]["status"] == "business_exception"
    assert shown["item"]["data"] == {"ref": "A1", "name": "first"}
    assert [(e["action"], e["status"], e["run_id"]) for e in shown["events"]] == [
        ("added", "new", None), ("taken", "in_progress", run_id),
        ("completed", "business_exception", run_id),
    ]  # fmt: skip
    assert f"item {item} · queue {PROCESS} · reference A1 · business_exception" in text
    assert "error: business_exception on A1" in text
    assert "data: ref=A1, name=first" in text


# --- the worklist -----------------------------------------------------------------------------


def test_worklist_round_trip_business_exception_taken_then_resolved_by_a_human(
    robo: Callable[..., Result], app: Robo, deployed: Path
) -> None:
    robo("queue", "add", PROCESS, str(write(deployed, "in.csv", "ref\nA1\n")))
    run_once(app, "A1", "business_exception")
    listed = json.loads(robo("worklist", "--json").stdout)
    assert [(i["reference"], i["status"]) for i in listed] == [("A1", "business_exception")]
    item = listed[0]["id"]

    took = robo("worklist", "take", str(item), "--note", "calling the applicant", "--json")
    resolved = robo("worklist", "resolve", str(item), "--minutes", "12", "--note", "by hand",
                    "--json")  # fmt: skip

    assert took.exit_code == 0, took.output
    assert json.loads(took.stdout)["taken_by"] == app.queues.actor
    assert resolved.exit_code == 0, resolved.output
    after = json.loads(resolved.stdout)
    assert (after["status"], after["human_minutes"]) == ("resolved", 12)
    rows = item_rows(app, item)
    assert [r.status for r in rows] == ["business_exception"]
    assert all(r.credited_queue_item_id is None and r.minutes_saved == 0 for r in rows)
    assert json.loads(robo("worklist", "--json").stdout) == []
    assert app.queues.take(PROCESS, start_run(app), 300) is None  # never run again


def test_worklist_return_then_the_bot_succeeds_and_the_item_is_credited_once(
    robo: Callable[..., Result], app: Robo, deployed: Path
) -> None:
    robo("queue", "add", PROCESS, str(write(deployed, "in.csv", "ref\nA2\n")))
    run_once(app, "A2", "business_exception")
    item = items_of(robo)["A2"]["id"]

    returned = robo("worklist", "return", str(item), "--note", "amount corrected")

    assert returned.exit_code == 0, returned.output
    assert f"back in queue {PROCESS} (new)" in returned.stdout
    assert items_of(robo)["A2"]["status"] == "new"
    run_once(app, "A2", "success")
    rows = item_rows(app, item)
    assert sorted(r.status for r in rows) == ["business_exception", "success"]
    assert [r.credited_queue_item_id for r in rows if r.credited_queue_item_id] == [item]
    assert sum(r.minutes_saved for r in rows) == MINUTES_PER_ITEM
    assert items_of(robo)["A2"]["status"] == "successful"


def test_worklist_shows_uncertain_items_and_overdue_ones_and_filters_them(
    robo: Callable[..., Result], app: Robo, deployed: Path
) -> None:
    with time_machine.travel(T0, tick=True) as clock:
        robo("queue", "add", PROCESS, str(write(deployed, "a.csv", "ref\nA1\n")))
        run_id = start_run(app)
        taken = app.queues.take(PROCESS, run_id, 300)
        assert taken is not None and taken.reference == "A1"
        app.ledger.finish_run(run_id, "abandoned", "killed while doing A1")
        assert [r.reference for r in app.queues.reclaim(PROCESS, verify=False)] == ["A1"]
        robo("queue", "add", PROCESS, str(write(deployed, "b.csv", "ref\nB1\n")),
             "--deadline", "2026-03-02")  # fmt: skip
        clock.move_to(T0 + dt.timedelta(days=2))

        every = json.loads(robo("worklist", "--json").stdout)
        overdue = json.loads(robo("worklist", "--status", "overdue", "--json").stdout)
        by_process = json.loads(robo("worklist", "--process", PROCESS, "--json").stdout)
        other_queue = json.loads(robo("worklist", "--queue", "elsewhere", "--json").stdout)
        old = json.loads(robo("worklist", "--older-than", "1d", "--json").stdout)
        older = json.loads(robo("worklist", "--older-than", "3d", "--json").stdout)
        table = robo("worklist").stdout

    assert sorted((i["reference"], i["status"]) for i in every) == [("A1", "uncertain"),
                                                                    ("B1", "new")]  # fmt: skip
    assert [i["reference"] for i in overdue] == ["B1"]
    assert len(by_process) == 2 and other_queue == [] and len(old) == 2 and older == []
    assert "overdue (new)" in table and "uncertain" in table


def test_worklist_as_csv_is_one_line_per_item_with_a_header_row(
    robo: Callable[..., Result], app: Robo, deployed: Path, tmp_path: Path
) -> None:
    robo("queue", "add", PROCESS, str(write(deployed, "in.csv", 'ref,name\nA1,Zoé; "Z"\nA2,x\n')))
    run_once(app, "A1", "business_exception")
    run_once(app, "A2", "business_exception")
    out = tmp_path / "worklist.csv"

    printed = robo("worklist", "--format", "csv")
    written = robo("worklist", "--format", "csv", "-o", str(out))

    assert printed.exit_code == 0 and written.exit_code == 0
    rows = list(csv.DictReader(io.StringIO(printed.stdout)))
    assert [(r["reference"], r["status"], r["data.name"]) for r in rows] == [
        ("A1", "business_exception", 'Zoé; "Z"'), ("A2", "business_exception", "x"),
    ]  # fmt: skip
    assert rows[0]["queue"] == PROCESS and rows[0]["error"] == "business_exception on A1"
    assert out.read_text(encoding="utf-8") == printed.stdout
    assert "2 item(s) written to" in written.stderr


def test_an_unknown_item_is_a_clear_error(robo: Callable[..., Result], deployed: Path) -> None:
    for command in (["queue", "item", "999"], ["worklist", "take", "999"],
                    ["worklist", "resolve", "999", "--minutes", "3", "--note", "x"]):  # fmt: skip
        result = robo(*command)

        assert result.exit_code == 1, command
        assert "no queue item 999; `robo queue show QUEUE` lists items" in result.stderr


def test_an_invalid_transition_names_the_status_and_changes_nothing(
    robo: Callable[..., Result], app: Robo, deployed: Path
) -> None:
    robo("queue", "add", PROCESS, str(write(deployed, "in.csv", "ref\nA1\n")))
    run_once(app, "A1", "success")
    item = items_of(robo)["A1"]["id"]
    _, events_before = app.queues.get(item)

    resolved = robo("worklist", "resolve", str(item), "--minutes", "3", "--note", "x")
    returned = robo("worklist", "return", str(item), "--note", "x")
    cancelled = robo("queue", "cancel", str(item), "--note", "x")

    assert resolved.exit_code == 1
    assert f"queue item {item} is successful; it cannot become resolved" in resolved.stderr
    assert "(it is final)" in resolved.stderr
    assert returned.exit_code == 1 and "it cannot become new" in returned.stderr
    assert cancelled.exit_code == 1 and "it cannot become cancelled" in cancelled.stderr
    after, events_after = app.queues.get(item)
    assert after.status == "successful" and after.human_minutes is None
    assert events_after == events_before
    assert sum(r.minutes_saved for r in item_rows(app, item)) == MINUTES_PER_ITEM


def test_an_item_another_agent_took_cannot_be_taken(
    robo: Callable[..., Result], app: Robo, deployed: Path
) -> None:
    robo("queue", "add", PROCESS, str(write(deployed, "in.csv", "ref\nA1\n")))
    run_once(app, "A1", "business_exception")
    item = items_of(robo)["A1"]["id"]
    Queues(app.db, actor="camille").take_for_human(item, "mine")

    result = robo("worklist", "take", str(item))

    assert result.exit_code == 1
    assert f"queue item {item} was taken by camille at " in result.stderr
    assert items_of(robo)["A1"]["taken_by"] == "camille"


def test_worklist_refuses_options_it_cannot_use(robo: Callable[..., Result]) -> None:
    duration = robo("worklist", "--older-than", "3 weeks")
    to_file = robo("worklist", "-o", "worklist.txt")
    both = robo("worklist", "--json", "--format", "csv")

    assert duration.exit_code == 2 and "'3 weeks' is not a duration like 3d" in duration.output
    assert to_file.exit_code == 2 and "-o FILE writes CSV or JSON" in to_file.output
    assert both.exit_code == 2 and "--json and --format csv: choose one" in both.output


def test_listing_options_before_a_worklist_subcommand_are_refused(
    robo: Callable[..., Result],
) -> None:
    result = robo("worklist", "--json", "take", "1")

    assert result.exit_code == 2
    assert "options before 'take' are for the listing" in result.output


@pytest.mark.parametrize(
    "command",
    [["queue"], ["queue", "list"], ["queue", "show"], ["queue", "item"], ["queue", "add"],
     ["queue", "cancel"], ["queue", "postpone"], ["queue", "retry"], ["worklist"],
     ["worklist", "take"], ["worklist", "resolve"], ["worklist", "return"]],
)  # fmt: skip
def test_every_queue_command_has_examples_in_its_help(command: list[str]) -> None:
    result = CliRunner().invoke(cli, [*command, "--help"])

    assert result.exit_code == 0
    assert re.search(r"Examples:\n +robo ", result.output)
