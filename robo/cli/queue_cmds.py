"""``robo queue``: operators' view of queues and their items.

The status machine and every rule live in robo/queues.py; ``robo worklist``
(what waits for a human) is robo/cli/worklist_cmds.py.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from robo.cli.common import Context, json_option
from robo.cli.render import note, print_json, table

if TYPE_CHECKING:
    from robo.queues import QueueEvent, QueueItemView

#: Every queue status, in the order a table shows them.
STATUSES = (
    "new", "deferred", "in_progress", "successful", "skipped", "business_exception",
    "application_exception", "uncertain", "cancelled", "resolved",
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


def parse_duration(_ctx: click.Context, _param: click.Parameter, value: str | None) -> Any:
    if value is None:
        return None
    found = re.fullmatch(r"\s*(\d+)\s*([dhm])\s*", value)
    if not found:
        raise click.BadParameter(f"'{value}' is not a duration like 3d, 12h or 30m")
    unit = {"d": "days", "h": "hours", "m": "minutes"}[found.group(2)]
    return dt.timedelta(**{unit: int(found.group(1))})


def local_text(moment: dt.datetime, zone: str) -> str:
    from zoneinfo import ZoneInfo

    local = moment.astimezone(ZoneInfo(zone))
    return f"{local:%Y-%m-%d %H:%M} {zone} ({moment:%Y-%m-%d %H:%M} UTC)"


# --- rendering ----------------------------------------------------------------------------


def short_time(iso: str | None) -> str:
    """An ISO UTC time as a table shows it: 2026-03-02 08:00."""
    return iso[:16].replace("T", " ") if iso else "-"


def is_overdue(item: QueueItemView, now: dt.datetime) -> bool:
    return (
        item.status in ("new", "deferred")
        and item.deadline is not None
        and dt.datetime.fromisoformat(item.deadline) < now
    )


def age_text(iso: str, now: dt.datetime) -> str:
    seconds = max(0, int((now - dt.datetime.fromisoformat(iso)).total_seconds()))
    if seconds >= 86400:
        return f"{seconds // 86400}d"
    if seconds >= 3600:
        return f"{seconds // 3600}h"
    return f"{seconds // 60}m"


def said_text(item: QueueItemView) -> str:
    parts = [item.error or "", f"note: {item.note}" if item.note else ""]
    return " · ".join(p for p in parts if p)


def report_done(item: QueueItemView, what: str, as_json: bool) -> None:
    """What an action left: the item (JSON), or one line saying it."""
    if as_json:
        print_json(item)
    else:
        click.echo(f"item {item.id} '{item.reference}' ({item.queue}): {what}")


def _show_item(item: QueueItemView, events: Sequence[QueueEvent]) -> None:
    click.echo(f"item {item.id} · queue {item.queue} · reference {item.reference} · {item.status}")
    click.echo(f"  priority {item.priority} · deadline {short_time(item.deadline)} UTC"
               + (f" · deferred until {short_time(item.defer_until)} UTC" if item.status == "deferred"
                  else ""))  # fmt: skip
    click.echo(f"  added {short_time(item.created_at)} UTC by {item.source or '-'} · "
               f"updated {short_time(item.updated_at)} UTC")  # fmt: skip
    click.echo(f"  last run {item.run_id or '-'} · {item.attempts} attempt(s) · "
               f"{item.runs_failed} run(s) ended in an application exception"
               + (" · to verify before redoing" if item.needs_verify else ""))  # fmt: skip
    if item.error:
        click.echo(f"  error: {item.error}")
    if item.taken_by:
        click.echo(f"  taken by {item.taken_by} at {short_time(item.taken_at)} UTC")
    if item.resolved_by:
        click.echo(f"  resolved by {item.resolved_by}: {item.human_minutes or 0:g} min of human "
                   "work (never counted as robot savings)")  # fmt: skip
    if item.note:
        click.echo(f"  note: {item.note}")
    if item.data:
        click.echo("  data: " + ", ".join(f"{k}={v}" for k, v in item.data.items()))
    table("history", ["at (UTC)", "action", "status", "by", "run", "detail"], [
        (short_time(e.at), e.action, e.status, e.actor or "-", e.run_id or "", e.detail)
        for e in events
    ])  # fmt: skip


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
        (i.id, i.reference, i.status, i.priority, short_time(i.deadline), i.attempts, i.runs_failed,
         i.run_id or "", short_time(i.updated_at), said_text(i))
        for i in items
    ], right=["item", "priority", "attempts", "runs failed", "last run"],
       optional=["runs failed", "last run", "priority", "updated (UTC)", "deadline (UTC)", "attempts"])  # fmt: skip
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
    report_done(item, "cancelled; no run will take it", as_json)


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
    report_done(item, f"deferred until {local_text(moment, zone)}; no run takes it before", as_json)


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
    report_done(item, "back in its queue (new); the next run takes it", as_json)


COMMANDS = [queue]
