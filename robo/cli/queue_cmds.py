"""``robo queue`` (operators: queues and their items) and ``robo worklist`` (agents: what
waits for a human). The status machine and every rule live in robo/queues.py."""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from robo.cli.common import Context, json_option
from robo.cli.render import note, print_json, table, to_plain

if TYPE_CHECKING:
    from robo.queues import QueueEvent, QueueItemView

#: Every queue status, in the order a table shows them.
STATUSES = (
    "new", "deferred", "in_progress", "successful", "skipped", "business_exception",
    "application_exception", "uncertain", "cancelled", "resolved",
)  # fmt: skip
#: What the worklist shows (robo.queues.NEEDS_HUMAN, and waiting items past their deadline).
WORKLIST_STATUSES = ("business_exception", "application_exception", "uncertain", "overdue")
CSV_COLUMNS = (
    "item", "queue", "reference", "status", "overdue", "deadline", "created_at", "updated_at",
    "region", "run_id", "attempts", "runs_failed", "error", "taken_by", "taken_at", "note",
)  # fmt: skip

item_argument = click.argument("item_id", metavar="ITEM", type=int)


F = TypeVar("F", bound=Callable[..., Any])


def note_option(required: bool, what: str) -> Callable[[F], F]:
    def check(_ctx: click.Context, _param: click.Parameter, value: str | None) -> str:
        if required and not (value or "").strip():
            raise click.BadParameter("say why: the note is kept in the item's history")
        return (value or "").strip()

    return click.option(
        "--note", "note_text", metavar="TEXT", required=required, callback=check, help=what
    )


# --- parsing ------------------------------------------------------------------------------


def _instant(value: str, option: str, zone: str, *, end_of_day: bool) -> dt.datetime:
    """``YYYY-MM-DD[THH:MM]`` in the region's time zone (or with its own offset) -> UTC."""
    from zoneinfo import ZoneInfo

    text = value.strip()
    try:
        if re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
            day = dt.date.fromisoformat(text)
            moment = dt.datetime.combine(day, dt.time(23, 59, 59) if end_of_day else dt.time())
        else:
            moment = dt.datetime.fromisoformat(text)
    except ValueError:
        raise click.BadParameter(
            f"'{value}' is not a date (YYYY-MM-DD) or a time (YYYY-MM-DDTHH:MM)",
            param_hint=option,
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=ZoneInfo(zone))
    return moment.astimezone(dt.UTC)


def _duration(_ctx: click.Context, _param: click.Parameter, value: str | None) -> Any:
    if value is None:
        return None
    found = re.fullmatch(r"\s*(\d+)\s*([dhm])\s*", value)
    if not found:
        raise click.BadParameter(f"'{value}' is not a duration like 3d, 12h or 30m")
    unit = {"d": "days", "h": "hours", "m": "minutes"}[found.group(2)]
    return dt.timedelta(**{unit: int(found.group(1))})


def _local(moment: dt.datetime, zone: str) -> str:
    from zoneinfo import ZoneInfo

    local = moment.astimezone(ZoneInfo(zone))
    return f"{local:%Y-%m-%d %H:%M} {zone} ({moment:%Y-%m-%d %H:%M} UTC)"


# --- rendering ----------------------------------------------------------------------------


def _short(iso: str | None) -> str:
    """An ISO UTC time as a table shows it: 2026-03-02 08:00."""
    return iso[:16].replace("T", " ") if iso else "-"


def _overdue(item: QueueItemView, now: dt.datetime) -> bool:
    return (
        item.status in ("new", "deferred")
        and item.deadline is not None
        and dt.datetime.fromisoformat(item.deadline) < now
    )


def _age(iso: str, now: dt.datetime) -> str:
    seconds = max(0, int((now - dt.datetime.fromisoformat(iso)).total_seconds()))
    if seconds >= 86400:
        return f"{seconds // 86400}d"
    if seconds >= 3600:
        return f"{seconds // 3600}h"
    return f"{seconds // 60}m"


def _said(item: QueueItemView) -> str:
    parts = [item.error or "", f"note: {item.note}" if item.note else ""]
    return " · ".join(p for p in parts if p)


def _done(item: QueueItemView, what: str, as_json: bool) -> None:
    """What an action left: the item (JSON), or one line saying it."""
    if as_json:
        print_json(item)
    else:
        click.echo(f"item {item.id} '{item.reference}' ({item.queue}): {what}")


def _show_item(item: QueueItemView, events: Sequence[QueueEvent]) -> None:
    click.echo(f"item {item.id} · queue {item.queue} · reference {item.reference} · {item.status}")
    click.echo(f"  priority {item.priority} · deadline {_short(item.deadline)} UTC"
               + (f" · deferred until {_short(item.defer_until)} UTC" if item.status == "deferred"
                  else ""))  # fmt: skip
    click.echo(f"  added {_short(item.created_at)} UTC by {item.source or '-'} · "
               f"updated {_short(item.updated_at)} UTC")  # fmt: skip
    click.echo(f"  last run {item.run_id or '-'} · {item.attempts} attempt(s) · "
               f"{item.runs_failed} run(s) ended in an application exception"
               + (" · to verify before redoing" if item.needs_verify else ""))  # fmt: skip
    if item.error:
        click.echo(f"  error: {item.error}")
    if item.taken_by:
        click.echo(f"  taken by {item.taken_by} at {_short(item.taken_at)} UTC")
    if item.resolved_by:
        click.echo(f"  resolved by {item.resolved_by}: {item.human_minutes or 0:g} min of human "
                   "work (never counted as robot savings)")  # fmt: skip
    if item.note:
        click.echo(f"  note: {item.note}")
    if item.data:
        click.echo("  data: " + ", ".join(f"{k}={v}" for k, v in item.data.items()))
    table("history", ["at (UTC)", "action", "status", "by", "run", "detail"], [
        (_short(e.at), e.action, e.status, e.actor or "-", e.run_id or "", e.detail)
        for e in events
    ])  # fmt: skip


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
            i.id, i.queue, i.reference, i.status, "yes" if _overdue(i, now) else "",
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


@click.group("queue")
def queue() -> None:
    """Work queues: every item has one life across runs, crashes and machines.

    A process takes its items from its queue (named after it unless its
    definition says `queue: {name: ...}`). Items carry a unique reference, a
    status, a priority and a deadline; `robo worklist` shows those waiting for
    a human. docs/queues.md draws the status machine.

    \b
    Examples:
      robo queue list
      robo queue add residence-permit-entry today.csv
      robo queue show invoices-to-check --status business_exception
      robo queue item 42
    """


@queue.command("list")
@json_option
@click.pass_obj
def list_queues(obj: Context, as_json: bool) -> None:
    """List every queue: its unique-reference policy, its items per status, and how many
    wait for a run (waiting: new and deferred items).

    \b
    Examples:
      robo queue list
      robo queue list --json | jq '.[] | select(.waiting > 0) | .name'
    """
    summaries = obj.robo.queues.summaries()
    if as_json:
        print_json([
            {"name": s.name, "unique_references": s.unique_references, "waiting": s.waiting,
             "counts": {status: s.counts.get(status, 0) for status in STATUSES}}
            for s in summaries
        ])  # fmt: skip
        return
    if not summaries:
        note("no queues yet: a process's queue is made by its first run "
             "(`robo run PROCESS`) or by `robo queue add PROCESS FILE`")  # fmt: skip
        return
    table(None, ["queue", "unique references", "waiting", "items by status"], [
        (s.name, s.unique_references, s.waiting, _by_status(s.counts)) for s in summaries
    ], right=["waiting"])  # fmt: skip


def _by_status(counts: dict[str, int]) -> str:
    return ", ".join(f"{n} {s}" for s in STATUSES if (n := counts.get(s, 0))) or "no items"


@queue.command("show")
@click.argument("queue_name", metavar="QUEUE")
@click.option(
    "--status", "statuses", multiple=True, type=click.Choice(STATUSES),
    help="Only items in this status; repeatable.",
)  # fmt: skip
@click.option(
    "--limit", default=200, show_default=True, type=click.IntRange(1), help="At most N items."
)
@json_option
@click.pass_obj
def show_queue(
    obj: Context, queue_name: str, statuses: tuple[str, ...], limit: int, as_json: bool
) -> None:
    """Show a queue's items, oldest first: status, priority, deadline, runs, errors.

    \b
    Examples:
      robo queue show residence-permit-entry
      robo queue show invoices-to-check --status new --status deferred --limit 50
      robo queue show invoices-to-check --json | jq '.[] | .reference'
    """
    from robo.errors import QueueError

    queues = obj.robo.queues
    try:
        summary = queues.summary(queue_name)
    except QueueError as exc:
        hint = f" (`robo queue item {queue_name}` shows item {queue_name})"
        raise QueueError(exc.message + (hint if queue_name.isdigit() else "")) from None
    items = queues.items(queue_name, statuses, limit=limit)
    if as_json:
        print_json(items)
        return
    click.echo(f"queue {summary.name} · unique references: {summary.unique_references} · "
               f"{summary.waiting} waiting · {_by_status(summary.counts)}")  # fmt: skip
    if not items:
        note("no items" + (f" with status {', '.join(statuses)}" if statuses else ""))
        return
    table(None, ["item", "reference", "status", "priority", "deadline (UTC)", "attempts", "runs failed", "last run", "updated (UTC)", "error / note"], [
        (i.id, i.reference, i.status, i.priority, _short(i.deadline), i.attempts, i.runs_failed,
         i.run_id or "", _short(i.updated_at), _said(i))
        for i in items
    ], right=["item", "priority", "attempts", "runs failed", "last run"])  # fmt: skip
    shown = sum(summary.counts.get(s, 0) for s in (statuses or STATUSES))
    if shown > len(items):
        note(f"showing the first {len(items)} of {shown} item(s); --limit N shows more")


@queue.command("item")
@item_argument
@json_option
@click.pass_obj
def show_item(obj: Context, item_id: int, as_json: bool) -> None:
    """Show one queue item: its data, status, runs, who took or resolved it, and its
    history (every event: added, taken, reclaimed, outcomes, operator actions).

    \b
    Examples:
      robo queue item 42
      robo queue item 42 --json | jq '.events'
    """
    item, events = obj.robo.queues.get(item_id)
    if as_json:
        print_json({"item": item, "events": events})
        return
    _show_item(item, events)


@queue.command("add")
@click.argument("queue_name", metavar="QUEUE")
@click.argument("file", type=click.Path(path_type=Path, dir_okay=False))
@click.option(
    "--reference", "reference_field", metavar="FIELD",
    help="The file's field holding each item's reference (default: the items.reference of "
         "the process taking from this queue; required for a queue no process takes from).",
)  # fmt: skip
@click.option(
    "--priority", default=0, show_default=True, type=int,
    help="Priority of every item added (higher is taken first).",
)  # fmt: skip
@click.option(
    "--deadline", metavar="YYYY-MM-DD[THH:MM]",
    help="Deadline of every item added, in the region's time zone (a date alone: the end of "
         "that day). A waiting item past its deadline shows in `robo worklist` as overdue.",
)  # fmt: skip
@json_option
@click.pass_obj
def add(
    obj: Context,
    queue_name: str,
    file: Path,
    reference_field: str | None,
    priority: int,
    deadline: str | None,
    as_json: bool,
) -> None:
    """Add a file of work items (CSV, XLSX or JSON, read like a run's input) to a queue.

    QUEUE is a queue name or a process id (that process's queue). The format
    comes from the file's extension. Every row needs a unique, non-empty
    reference, or nothing is added. A reference the queue already holds is
    refused and listed with the earlier item and its status; the rest of the
    file is added. Exits 0 if anything was added, 1 if nothing was.

    \b
    Examples:
      robo queue add residence-permit-entry today.csv
      robo queue add invoices-to-check urgent.xlsx --priority 10 --deadline 2026-03-31
      robo queue add shared-queue items.json --reference dossier --deadline 2026-03-31T12:00
    """
    from robo.errors import QueueError
    from robo.queue_files import add_file

    robo = obj.robo
    due = None
    if deadline is not None:
        due = _instant(deadline, "--deadline", robo.settings.effective_timezone, end_of_day=True)
    result = add_file(
        robo.queues, robo.registry, queue_name, file,
        reference=reference_field, priority=priority, deadline=due,
    )  # fmt: skip
    if as_json:
        print_json(result)
    else:
        click.echo(f"queue {result.queue}: {len(result.added)} of {result.read} item(s) from "
                   f"{file.name} added, {len(result.refused)} refused (reference already "
                   f"queued), reference field '{result.reference_field}'")  # fmt: skip
        for refusal in result.refused:
            click.echo(f"  refused: {refusal.render()}")
    if not result.added:
        raise QueueError(
            f"nothing added to queue '{result.queue}': all {result.read} reference(s) in "
            f"{file} are already queued (listed above); `robo queue item ID` shows an earlier "
            "item"
        )


@queue.command("cancel")
@item_argument
@note_option(True, "Why it is cancelled (kept in the item's history).")
@json_option
@click.pass_obj
def cancel(obj: Context, item_id: int, note_text: str, as_json: bool) -> None:
    """Cancel an item: no run will ever take it. Its reference is released, so the same
    reference can be queued again. Only a waiting item or one waiting for a human can be
    cancelled (not one in progress or ended).

    \b
    Examples:
      robo queue cancel 42 --note "withdrawn by the applicant"
    """
    item = obj.robo.queues.cancel(item_id, note_text)
    _done(item, "cancelled; no run will take it", as_json)


@queue.command("postpone")
@item_argument
@click.option(
    "--until", "until", required=True, metavar="YYYY-MM-DD[THH:MM]",
    help="No run takes the item before then; region's time zone (a date alone: its midnight).",
)  # fmt: skip
@note_option(True, "Why it waits (kept in the item's history).")
@json_option
@click.pass_obj
def postpone(obj: Context, item_id: int, until: str, note_text: str, as_json: bool) -> None:
    """Postpone a waiting item (new or deferred): it becomes deferred, and no run takes it
    before the given time.

    \b
    Examples:
      robo queue postpone 42 --until 2026-04-01 --note "portal closed for the migration"
      robo queue postpone 42 --until 2026-03-10T14:30 --note "applicant calls back"
    """
    robo = obj.robo
    zone = robo.settings.effective_timezone
    moment = _instant(until, "--until", zone, end_of_day=False)
    item = robo.queues.postpone(item_id, moment, note_text)
    _done(item, f"deferred until {_local(moment, zone)}; no run takes it before", as_json)


@queue.command("retry")
@item_argument
@note_option(True, "What changed since it failed (kept in the item's history).")
@json_option
@click.pass_obj
def retry(obj: Context, item_id: int, note_text: str, as_json: bool) -> None:
    """Put an item that ended as an exception or uncertain back in its queue (status new,
    its failed-runs count reset): the next run does it again, without a verify first.
    Retry an uncertain item only once you know its work was not done.

    \b
    Examples:
      robo queue retry 42 --note "portal fixed, INC-1234 closed"
    """
    item = obj.robo.queues.retry(item_id, note_text)
    _done(item, "back in its queue (new); the next run takes it", as_json)


# --- robo worklist -------------------------------------------------------------------------


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
    "--older-than", callback=_duration, metavar="3d|12h|30m",
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
        (i.id, i.queue, i.reference, f"overdue ({i.status})" if _overdue(i, now) else i.status,
         _age(i.updated_at, now), _short(i.deadline), i.region or "-", i.taken_by or "-",
         _said(i))
        for i in items
    ], right=["item"])  # fmt: skip
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
    _done(item, f"{item.status}, taken by {item.taken_by or '-'} at {_short(item.taken_at)} "
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
    _done(item, f"resolved by {item.resolved_by or '-'}, {item.human_minutes or 0:g} min of "
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
    _done(item, f"back in queue {item.queue} (new); its next run takes it", as_json)


COMMANDS = [queue, worklist]
