"""Scheduling commands: the scheduler service, what runs next, pause and resume."""

from __future__ import annotations

import signal
import threading
from dataclasses import asdict
from typing import Any

import click

from robo.cli.common import Context, json_option
from robo.cli.completion import process_ids
from robo.cli.render import note, print_json, table


@click.group()
def scheduler() -> None:
    """Run the scheduler service (one active per database).

    \b
    Examples:
      robo scheduler start
      robo scheduler status
    """


@scheduler.command("start")
@click.option(
    "--standby/--no-standby",
    default=True,
    show_default=True,
    help="If another scheduler is active: wait and take over when it stops, or exit (code 3).",
)
@click.option(
    "--slots", type=click.IntRange(1, 64), help="Bots at once on this machine (ROBO_BOT_SLOTS)."
)
@click.option(
    "--drain-seconds",
    default=60.0,
    show_default=True,
    type=click.FloatRange(0),
    help="On SIGTERM/Ctrl-C, how long running bots may finish before they are interrupted.",
)
@click.pass_obj
def start(obj: Context, standby: bool, slots: int | None, drain_seconds: float) -> None:
    """Fire scheduled runs at each region's local time, until stopped.

    Only one scheduler may be active on a database: a second one stands by
    and takes over when the first stops or dies. Jobs follow the registry
    (deploy, disable, pause, rollback) without a restart. SIGTERM or Ctrl-C
    stop it cleanly.

    \b
    Examples:
      robo scheduler start
      ROBO_BOT_SLOTS=3 robo scheduler start --drain-seconds 300
      robo scheduler start --no-standby   # exit at once if another is active
    """
    from robo.scheduling.service import SchedulerService

    if slots is not None:
        obj.overrides["bot_slots"] = slots
    robo = obj.robo
    stop = threading.Event()

    def request_stop(signum: int, _frame: Any) -> None:
        note(
            f"received {signal.Signals(signum).name}: stopping (running bots get {drain_seconds:g} s)"
        )
        stop.set()

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    service = SchedulerService(
        robo.settings, robo.db, robo.registry, robo.ledger, robo.queues, robo.executor(),
        alerts=robo.alerts_or_none(),
    )  # fmt: skip
    note(f"scheduler {service.owner} on {robo.db.safe_url} ({robo.settings.bot_slots} bot slot(s), "
         f"region {robo.settings.region}, {robo.settings.effective_timezone})")  # fmt: skip
    service.run(stop, wait=standby, drain_seconds=drain_seconds)


@scheduler.command("status")
@json_option
@click.pass_obj
def status(obj: Context, as_json: bool) -> None:
    """Which scheduler holds the lease on this database, and until when.

    \b
    Examples:
      robo scheduler status
      robo scheduler status --json
    """
    from robo.scheduling.lock import LeaderLock

    holder = LeaderLock(obj.robo.db, owner="").holder()
    data = None if holder is None else {
        "owner": holder.owner,
        "acquired_at": holder.acquired_at.isoformat(timespec="seconds"),
        "expires_at": holder.expires_at.isoformat(timespec="seconds"),
    }  # fmt: skip
    if as_json:
        print_json({"leader": data})
    elif data is None:
        click.echo("no active scheduler (`robo scheduler start` starts one)")
    else:
        click.echo(
            f"active scheduler: {data['owner']} since {data['acquired_at']}, lease until {data['expires_at']} (UTC)"
        )


@click.command()
@click.argument("process_id", required=False, shell_complete=process_ids)
@click.option(
    "--count",
    default=5,
    show_default=True,
    type=click.IntRange(1, 100),
    help="Upcoming fires to show for one process.",
)
@json_option
@click.pass_obj
def schedule(obj: Context, process_id: str | None, count: int, as_json: bool) -> None:
    """When processes run next, in local time, and why a fire ahead will be skipped.

    Without PROCESS_ID: every process with a schedule and its next run. With
    it: the upcoming fires (skips included, with their reason), its queue
    triggers with the items waiting now, and the recent decisions: the answer
    to "why did this not run on Monday?".

    \b
    Examples:
      robo schedule
      robo schedule residence-permit-entry --count 10
      robo schedule invoice-check --json   # queue triggers: items waiting, runs in progress
    """
    from robo.clock import utcnow
    from robo.scheduling.decisions import DecisionLog
    from robo.scheduling.plan import overview, queue_plans, upcoming

    robo = obj.robo
    now = utcnow()
    if process_id is None:
        rows = [asdict(plan) for plan in overview(robo.registry, now, robo.queues)]
        if as_json:
            print_json(rows)
            return
        if not rows:
            note("no process has a schedule block")
            return
        table(None, ["process", "state", "next run (local)", "zone", "skipped before it"], [
            (r["process_id"], r["state"], _next_run(r), r["timezone"],
             "; ".join(f"{s['at_local']}: {s['reason']}" for s in r["skipped_before"][:2]) + (" ..." if len(r["skipped_before"]) > 2 else ""))
            for r in rows
        ])  # fmt: skip
        return
    robo.registry.require(process_id)
    plan = robo.registry.firing_schedule(process_id)
    events = DecisionLog(robo.db).events(process_id, limit=20)
    fires = upcoming(plan, now, count) if plan else []
    triggers = []
    if plan is not None and any(entry.is_queue for entry in plan.schedule.triggers):
        queue = robo.registry.active(process_id).definition.queue_name
        running = len(robo.ledger.runs(process_id=process_id, status="running", limit=1000))
        triggers = queue_plans(plan, queue, robo.queues.waiting(queue), now, running)
    if as_json:
        print_json({
            "process_id": process_id,
            "active": plan is not None,
            "upcoming": [{"at_local": f.at_local.isoformat(timespec="minutes"), "at_utc": f.at_utc.isoformat(timespec="minutes"),
                          "trigger": f.trigger, "skip_reason": f.skip_reason} for f in fires],
            "queue_triggers": triggers,
            "recent_decisions": events,
        })  # fmt: skip
        return
    if plan is None:
        click.echo(f"{process_id}: not scheduled (no schedule block, or disabled or paused)")
    else:
        if fires or not triggers:
            table(f"{process_id}: upcoming ({plan.timezone}, calendar {plan.calendar})", ["local time", "trigger", "will it run"], [
                (f"{f.at_local:%a %Y-%m-%d %H:%M}", f.trigger, f"skipped: {f.skip_reason}" if f.skip_reason else "runs")
                for f in fires
            ])  # fmt: skip
        if triggers:
            table(f"{process_id}: queue triggers ({plan.timezone}, calendar {plan.calendar})", ["trigger", "queue", "runs", "now"], [
                (t.trigger, t.queue, f"{t.running} running" if t.running is not None else "-", t.now)
                for t in triggers
            ])  # fmt: skip
    if events:
        table(f"{process_id}: recent decisions", ["scheduled for (UTC)", "decision", "reason", "by"], [
            (e.scheduled_for, e.decision, e.reason, e.scheduler) for e in events
        ])  # fmt: skip


def _next_run(row: dict[str, Any]) -> str:
    """The next timed fire, and/or each queue trigger ("when >= 20 items wait (12 now)")."""
    parts = [row["next_run_local"]] if row["next_run_local"] else []
    parts += [t["trigger"] for t in row["queue_triggers"]]
    return "; ".join(parts) or "-"


@click.command()
@click.argument("process_id", shell_complete=process_ids)
@click.pass_obj
def pause(obj: Context, process_id: str) -> None:
    """Stop firing a process's schedule (manual runs still work) until resumed.

    \b
    Examples:
      robo pause residence-permit-entry
      robo resume residence-permit-entry
    """
    changed = obj.robo.registry.set_paused(process_id, True)
    click.echo(f"{process_id}: schedule paused" if changed else f"{process_id} was already paused")


@click.command()
@click.argument("process_id", shell_complete=process_ids)
@click.pass_obj
def resume(obj: Context, process_id: str) -> None:
    """Fire a paused process's schedule again, from the next due time (no catch-up).

    \b
    Example:
      robo resume residence-permit-entry
    """
    changed = obj.robo.registry.set_paused(process_id, False)
    click.echo(f"{process_id}: schedule resumed" if changed else f"{process_id} was not paused")


COMMANDS = [scheduler, schedule, pause, resume]
