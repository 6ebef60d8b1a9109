"""The sample portal and the demo."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from robo.cli.common import Context
from robo.cli.render import hours, note, table


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8765, show_default=True, type=click.IntRange(0, 65535))
@click.option(
    "--password",
    envvar="ROBO_SECRET_PORTAL_PASSWORD",
    default="demo-password",
    show_default=True,
    help="Login password (default from ROBO_SECRET_PORTAL_PASSWORD).",
)
@click.option(
    "--latency-ms",
    default=0,
    show_default=True,
    type=click.IntRange(0, 60000),
    help="Delay added to every response.",
)
@click.option(
    "--failure-rate",
    default=0.0,
    show_default=True,
    type=click.FloatRange(0, 1),
    help="Share of form submissions answered with a 503.",
)
def portal(host: str, port: int, password: str, latency_ms: int, failure_rate: float) -> None:
    """Serve the sample portal that the sample processes automate.

    It imitates the applications agents re-key data into: login, residence
    permits, an invoice inbox, outstanding items, HR claims, exports.

    \b
    Example:
      robo portal --port 8765 --failure-rate 0.1 &
      ROBO_SECRET_PORTAL_PASSWORD=demo-password robo run residence-permit-entry
    """
    from robo.demo.portal import PortalConfig, serve_forever

    note(f"sample portal on http://{host}:{port} (user 'agent'); Ctrl-C to stop")
    serve_forever(
        PortalConfig(password=password, latency_ms=latency_ms, failure_rate=failure_rate),
        host,
        port,
    )


@click.command()
@click.option(
    "--processes",
    "processes_dir",
    default="processes",
    show_default=True,
    type=click.Path(path_type=Path),
    help="Folder of sample process folders.",
)
@click.pass_obj
def demo(obj: Context, processes_dir: Path) -> None:
    """Start the sample portal, deploy the sample processes, run them all and
    print the hours saved, computed from the items actually processed, and
    the demo's headline; write the HTML report to ROBO_HOME/reports/. Its
    runs are recorded as demo runs, never production.

    Each sample drains its own work queue; invoice-inbox-dispatch fills the
    queue invoices-to-check and runs before invoice-commitment-check, which
    drains it (a dispatcher and its performer).

    \b
    Example:
      robo demo && robo runs && robo report --include-test
    """
    from robo.cli.run_cmds import ProgressBar
    from robo.demo.showcase import run_demo

    bars: list[ProgressBar] = []

    def progress(process_id: str) -> ProgressBar:
        bar = ProgressBar(process_id, enabled=sys.stderr.isatty())
        bars.append(bar)
        return bar

    try:
        robo = obj.robo
        result = run_demo(
            robo.settings, robo.db, robo.registry, robo.run_environment(), processes_dir,
            progress=progress, announce=note,
        )  # fmt: skip
    finally:
        for bar in bars:
            bar.stop()
    click.echo()
    for process_id, r in zip(result.order, result.runs, strict=True):
        click.echo(
            f"run {r.run_id:>4}  {r.status:<10} {process_id:<26} {r.items_total:>3} items: "
            f"{r.succeeded} ok, {r.skipped} skipped, {r.business_exceptions} business, "
            f"{r.application_exceptions} application exception(s)"
        )
    click.echo()
    rows = result.hours
    total = sum(r.minutes_saved for r in rows)
    table("Hours of agent work saved by this demo", ["process", "runs", "items", "ok", "business", "app", "hours saved"], [
        *[(r.process_id, r.runs, r.items, r.succeeded, r.business_exceptions, r.application_exceptions,
           hours(r.minutes_saved)) for r in rows],
        ("total", sum(r.runs for r in rows), sum(r.items for r in rows), sum(r.succeeded for r in rows),
         sum(r.business_exceptions for r in rows), sum(r.application_exceptions for r in rows), hours(total)),
    ], right=["runs", "items", "ok", "business", "app", "hours saved"])  # fmt: skip
    click.echo(f"\n{len(rows)} processes, {hours(total)} hours of agent work saved.")
    click.echo(f"\n{result.report.headline.text}")
    click.echo(f"HTML report (charts, opens offline): {result.report_path}")
    click.echo(
        "Next: `robo runs`, `robo run-show RUN_ID`, `robo queue list`, `robo worklist` (the "
        "business exceptions, waiting for an agent), `robo report --include-test` (demo runs "
        "are not production: plain `robo report` leaves them out), "
        "`robo report --include-test --format pdf -o report.pdf`."
    )
    failed = [r for r in result.runs if r.status != "completed"]
    if failed:
        raise SystemExit(1)


COMMANDS = [portal, demo]
