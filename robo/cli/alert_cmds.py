"""Alerts: what robo told operators (`robo alerts`), test messages, and `robo watch`."""

from __future__ import annotations

import datetime as dt
import signal
import threading
from typing import TYPE_CHECKING, Any

import click

from robo.cli.common import Context, json_option
from robo.cli.render import note, print_json, table

if TYPE_CHECKING:
    from robo.alerts import AlertMonitor


def _monitor(obj: Context) -> AlertMonitor:
    from robo.errors import ConfigurationError

    monitor = obj.robo.alerts
    if monitor is None:
        path = obj.robo.settings.effective_alerts_file
        raise ConfigurationError(
            f"no alert rules: {path} does not exist; write one (docs/alerts.md) or set "
            "ROBO_ALERTS_FILE"
        )
    return monitor


def _when(value: dt.datetime | None) -> str:
    return "-" if value is None else f"{value:%Y-%m-%d %H:%M}"


@click.group(invoke_without_command=True)
@click.option("--open", "open_only", is_flag=True, help="Only alerts still open.")
@click.option(
    "--limit", default=50, show_default=True, type=click.IntRange(1, 10_000), help="At most N."
)
@json_option
@click.pass_context
def alerts(ctx: click.Context, open_only: bool, limit: int, as_json: bool) -> None:
    """Alerts robo raised (newest first): rule, subject, state, messages sent.

    Rules and channels are read from ROBO_HOME/alerts.toml (or ROBO_ALERTS_FILE);
    see docs/alerts.md. A storm is one alert: one message when it opens, one
    when it resolves.

    \b
    Examples:
      robo alerts --open
      robo alerts --json | jq '.[] | select(.state == "open") | .summary'
      robo alerts show 12        # its delivery attempts
      robo alerts test           # a test message to every channel
    """
    if ctx.invoked_subcommand is not None:
        return
    from robo.alerts import AlertStore

    obj: Context = ctx.obj
    rows = AlertStore(obj.robo.db).alerts(open_only=open_only, limit=limit)
    if as_json:
        print_json(rows)
        return
    if not rows:
        note("no open alerts" if open_only else "no alerts yet")
        return
    table(
        None,
        [
            "id",
            "state",
            "rule",
            "subject",
            "opened (UTC)",
            "seen",
            "resolved (UTC)",
            "sent",
            "summary",
        ],
        [
            (
                a.id,
                a.state.upper() if a.state == "open" else a.state,
                a.rule,
                a.subject,
                _when(a.opened_at),
                a.occurrences,
                _when(a.resolved_at),
                f"{a.sent}" + (f" ({a.failed} failed)" if a.failed else ""),
                a.summary,
            )
            for a in rows
        ],
        right=["id", "seen"],
        optional=["resolved (UTC)", "sent"],
    )


@alerts.command("show")
@click.argument("alert_id", type=int)
@json_option
@click.pass_obj
def show(obj: Context, alert_id: int, as_json: bool) -> None:
    """Every delivery attempt of one alert: channel, attempt, result, error.

    \b
    Example:
      robo alerts show 12
    """
    from robo.alerts import AlertStore

    deliveries = AlertStore(obj.robo.db).deliveries(alert_id)
    if as_json:
        print_json(deliveries)
        return
    if not deliveries:
        note(f"no delivery recorded for alert {alert_id}")
        return
    table(
        f"alert {alert_id}",
        ["event", "channel", "attempt", "at (UTC)", "result", "error"],
        [
            (
                d.event,
                d.channel,
                d.attempt,
                f"{d.at:%Y-%m-%d %H:%M:%S}",
                "sent" if d.ok else "FAILED",
                d.error or "",
            )
            for d in deliveries
        ],
        right=["attempt"],
    )


@alerts.command("test")
@json_option
@click.pass_obj
def test(obj: Context, as_json: bool) -> None:
    """Send a test message to every channel; exit 1 if one did not get through.

    \b
    Example:
      robo alerts test
    """
    results = _monitor(obj).test()
    if as_json:
        print_json(results)
    else:
        for result in results:
            if result.ok:
                click.echo(f"sent   {result.channel} ({result.attempts} attempt(s))")
            else:
                click.echo(f"FAILED {result.channel}: {result.error}")
    if not results:
        note("no channel is defined in the rules file")
    if any(not r.ok for r in results):
        raise SystemExit(1)


@alerts.command("check")
@click.pass_obj
def check(obj: Context) -> None:
    """Validate the rules file: every problem with its line, field and what to do.

    \b
    Example:
      robo alerts check
    """
    monitor = _monitor(obj)
    config = monitor.config
    enabled = [name for name, rule in config.rules.items() if rule.enabled]
    click.echo(
        f"{config.source}: {len(config.channels)} channel(s) "
        f"({', '.join(config.channels) or 'none'}), rules on: {', '.join(enabled) or 'none'}"
        + (f"; overrides for {', '.join(config.overrides)}" if config.overrides else "")
    )


@click.command()
@click.option(
    "--every",
    "every",
    default=60.0,
    show_default=True,
    type=click.FloatRange(1, 86_400),
    help="Seconds between two checks.",
)
@click.option("--once", is_flag=True, help="Check once and exit (for cron or a systemd timer).")
@click.option(
    "--since-minutes",
    default=60.0,
    show_default=True,
    type=click.FloatRange(0, 10_080),
    help="With --once: evaluate the runs ended in the last N minutes too.",
)
@click.pass_obj
def watch(obj: Context, every: float, once: bool, since_minutes: float) -> None:
    """Evaluate the time-based alert rules every N seconds, until stopped.

    Notices what no run can report on its own: a scheduler leader that went
    silent (a dead scheduler cannot report its death), fires missed, items
    past their deadline, a worklist growing, runs abandoned. Run it on a
    machine other than the scheduler's, or from cron with --once.

    \b
    Examples:
      robo watch --every 60
      */5 * * * *  robo watch --once --since-minutes 10    # crontab
    """
    from robo.clock import utcnow

    monitor = _monitor(obj)
    if once:
        transitions = monitor.check(runs_since=utcnow() - dt.timedelta(minutes=since_minutes))
        for t in transitions:
            click.echo(f"{t.event}: {t.alert.key}: {t.alert.summary}")
        return
    stop = threading.Event()

    def request_stop(_signum: int, _frame: Any) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    note(f"watching {obj.robo.db.safe_url} every {every:g} s (Ctrl-C stops)")
    since = utcnow() - dt.timedelta(minutes=since_minutes)
    while not stop.is_set():
        checked = utcnow()
        for t in monitor.check(runs_since=since):
            click.echo(f"{t.event}: {t.alert.key}: {t.alert.summary}", err=False)
        since = checked - dt.timedelta(seconds=5)
        stop.wait(every)


COMMANDS = [alerts, watch]
