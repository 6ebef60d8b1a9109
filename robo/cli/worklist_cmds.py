"""``robo worklist``: what waits for a human, and the agents' take / resolve / return.

The rules live in robo/queues.py; options and item rendering are shared with
``robo queue`` (robo/cli/queue_cmds.py).
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from robo.cli.common import Context, json_option
from robo.cli.queue_cmds import (
    age_text,
    is_overdue,
    item_argument,
    note_option,
    parse_duration,
    report_done,
    said_text,
    short_time,
)
from robo.cli.render import note, table, to_plain

if TYPE_CHECKING:
    from robo.queues import QueueItemView

#: What the worklist shows (robo.queues.NEEDS_HUMAN, and waiting items past their deadline).
WORKLIST_STATUSES = ("business_exception", "application_exception", "uncertain", "overdue")
CSV_COLUMNS = (
    "item", "queue", "reference", "status", "overdue", "deadline", "created_at", "updated_at",
    "region", "run_id", "attempts", "runs_failed", "error", "taken_by", "taken_at", "note",
)  # fmt: skip


def _worklist_csv(items: Sequence[QueueItemView], now: dt.datetime) -> str:
    """One line per item and a header row; the item's own fields follow as data.FIELD."""
    fields: dict[str, None] = {}
    for item in items:
        fields.update(dict.fromkeys(item.data))
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow([*CSV_COLUMNS, *(f"data.{f}" for f in fields)])
    for i in items:
        writer.writerow([
            i.id, i.queue, i.reference, i.status, "yes" if is_overdue(i, now) else "",
            i.deadline or "", i.created_at, i.updated_at, i.region or "", i.run_id or "",
            i.attempts, i.runs_failed, i.error or "", i.taken_by or "", i.taken_at or "", i.note,
            *(_cell(i.data.get(f)) for f in fields),
        ])  # fmt: skip
    return out.getvalue()


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, dict | list):
        import json

        return json.dumps(value, ensure_ascii=False)
    return str(value)


# --- robo queue ----------------------------------------------------------------------------


@click.group("worklist", invoke_without_command=True)
@click.option(
    "--process", "process_ids", multiple=True, metavar="ID",
    help="Only the queue this process takes its items from; repeatable.",
)  # fmt: skip
@click.option("--queue", "queue_names", multiple=True, help="Only this queue; repeatable.")
@click.option("--region", help="Only items last held by a run of this region.")
@click.option(
    "--status", "statuses", multiple=True, type=click.Choice(WORKLIST_STATUSES),
    help="Only this kind (overdue: waiting past its deadline); repeatable.",
)  # fmt: skip
@click.option(
    "--older-than", callback=parse_duration, metavar="3d|12h|30m",
    help="Only items unchanged for at least this long.",
)  # fmt: skip
@click.option(
    "--format", "fmt", type=click.Choice(["table", "csv", "json"]), default="table",
    show_default=True, help="csv: one line per item with a header row, for a spreadsheet.",
)  # fmt: skip
@click.option(
    "-o", "--output", type=click.Path(path_type=Path, dir_okay=False),
    help="Write the CSV or JSON to this file instead of standard output.",
)  # fmt: skip
@json_option
@click.pass_context
def worklist(
    ctx: click.Context,
    process_ids: tuple[str, ...],
    queue_names: tuple[str, ...],
    region: str | None,
    statuses: tuple[str, ...],
    older_than: dt.timedelta | None,
    fmt: str,
    output: Path | None,
    as_json: bool,
) -> None:
    """What waits for a human, across queues: business exceptions, application exceptions
    after their last run, uncertain items (a run died while doing them, no verify block),
    and waiting items past their deadline (overdue). Deadlines first.

    An agent takes an item (`take`), does the work by hand and records the minutes it
    took (`resolve`: human work, never counted as robot savings), or fixes the cause and
    hands it back to the bot (`return`).

    \b
    Examples:
      robo worklist
      robo worklist --process residence-permit-entry --older-than 3d
      robo worklist --status uncertain --status overdue --json
      robo worklist --format csv -o worklist.csv
      robo worklist take 42 --note "calling the applicant"
      robo worklist resolve 42 --minutes 12 --note "entered by hand"
      robo worklist return 43 --note "amount corrected in the file"
    """
    filtered = process_ids or queue_names or region or statuses or older_than or output
    if ctx.invoked_subcommand is not None:
        if filtered or as_json or fmt != "table":
            raise click.UsageError(
                f"options before '{ctx.invoked_subcommand}' are for the listing; "
                f"put them after it (robo worklist {ctx.invoked_subcommand} --help)"
            )
        return
    if as_json:
        if fmt == "csv":
            raise click.UsageError("--json and --format csv: choose one")
        fmt = "json"
    if output is not None and fmt == "table":
        raise click.UsageError("-o FILE writes CSV or JSON: add --format csv or --json")
    from robo.clock import utcnow

    obj: Context = ctx.obj
    robo = obj.robo
    wanted = [*queue_names, *(robo.registry.active(p).definition.queue_name for p in process_ids)]
    items = robo.queues.worklist(
        list(dict.fromkeys(wanted)), statuses=statuses, region=region, older_than=older_than
    )
    now = utcnow()
    if fmt == "table":
        _worklist_table(items, now, bool(filtered))
        return
    if fmt == "csv":
        text = _worklist_csv(items, now)
    else:
        import json

        text = json.dumps(to_plain(items), indent=2, ensure_ascii=False, default=str) + "\n"
    if output is None:
        click.echo(text, nl=False)
    else:
        output.write_text(text, encoding="utf-8")
        note(f"{len(items)} item(s) written to {output}")


def _worklist_table(items: Sequence[QueueItemView], now: dt.datetime, filtered: bool) -> None:
    if not items:
        note("nothing waits for a human" + (" with these filters" if filtered else ""))
        return
    table(None, ["item", "queue", "reference", "waits because", "since", "deadline (UTC)", "region", "taken by", "error / note"], [
        (i.id, i.queue, i.reference, f"overdue ({i.status})" if is_overdue(i, now) else i.status,
         age_text(i.updated_at, now), short_time(i.deadline), i.region or "-", i.taken_by or "-",
         said_text(i))
        for i in items
    ], right=["item"], optional=["region", "taken by", "deadline (UTC)", "since"])  # fmt: skip
    note(f"{len(items)} item(s); `robo worklist take ITEM` takes one, `robo queue item ITEM` "
         "shows its data and history")  # fmt: skip


@worklist.command("take")
@item_argument
@note_option(False, "What you are doing about it (kept in the item's history).")
@json_option
@click.pass_obj
def take(obj: Context, item_id: int, note_text: str, as_json: bool) -> None:
    """Take an item on the worklist: records that you (your user name) handle it, and
    when. Its status does not change; nobody else can take it while you hold it.

    \b
    Examples:
      robo worklist take 42
      robo worklist take 42 --note "calling the applicant"
    """
    item = obj.robo.queues.take_for_human(item_id, note_text)
    report_done(item, f"{item.status}, taken by {item.taken_by or '-'} at {short_time(item.taken_at)} "
                f"UTC; then `robo worklist resolve {item.id} --minutes N --note ...` or "
                f"`robo worklist return {item.id} --note ...`", as_json)  # fmt: skip


@worklist.command("resolve")
@item_argument
@click.option(
    "--minutes", required=True, type=float,
    help="Minutes of human work the item took (recorded as human work, never robot savings).",
)  # fmt: skip
@note_option(True, "What was done (kept in the item's history).")
@json_option
@click.pass_obj
def resolve(obj: Context, item_id: int, minutes: float, note_text: str, as_json: bool) -> None:
    """Close an exception or uncertain item that a human dealt with: status resolved,
    with the minutes of human work. The bot never runs it again and it earns no robot
    savings.

    \b
    Examples:
      robo worklist resolve 42 --minutes 12 --note "entered by hand after a call"
      robo worklist resolve 43 --minutes 0 --note "the work was already done"
    """
    item = obj.robo.queues.resolve(item_id, minutes, note_text)
    report_done(item, f"resolved by {item.resolved_by or '-'}, {item.human_minutes or 0:g} min of "
                "human work (no robot savings)", as_json)  # fmt: skip


@worklist.command("return")
@item_argument
@note_option(True, "What was fixed (kept in the item's history).")
@json_option
@click.pass_obj
def give_back(obj: Context, item_id: int, note_text: str, as_json: bool) -> None:
    """Hand an exception or uncertain item back to the bot: status new in its queue (its
    failed-runs count reset), taken by the next run, which does the work again without
    a verify first. Return an uncertain item only once you know its work was not done.

    \b
    Examples:
      robo worklist return 43 --note "amount corrected in the source file"
    """
    item = obj.robo.queues.give_back(item_id, note_text)
    report_done(item, f"back in queue {item.queue} (new); its next run takes it", as_json)


COMMANDS = [worklist]
