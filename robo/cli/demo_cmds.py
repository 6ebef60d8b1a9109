"""The sample portal and the demo."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

from robo.cli.common import Context, locale_option, speaking
from robo.cli.render import note, table
from robo.i18n import _


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
@locale_option
@click.pass_obj
def demo(obj: Context, processes_dir: Path, locale: str | None) -> None:
    """Start the sample portal, deploy the sample processes, run them all and
    print the hours saved, computed from the items actually processed, and
    the demo's headline; write the HTML report to ROBO_HOME/reports/. Its
    runs are recorded as demo runs, never production.

    Each sample drains its own work queue; invoice-inbox-dispatch fills the
    queue invoices-to-check and runs before invoice-commitment-check, which
    drains it (a dispatcher and its performer).

    The summary and the report are in the installation's language
    (French for French regions; --locale en for English).

    \b
    Example:
      robo demo && robo runs && robo report --include-test
      robo demo --locale en
    """
    from robo.cli.progress import ProgressBar
    from robo.demo.showcase import run_demo

    bars: list[ProgressBar] = []

    def progress(process_id: str) -> ProgressBar:
        for done in bars:  # the previous run is over: one live bar at a time
            done.stop()
        bar = ProgressBar(process_id, enabled=sys.stderr.isatty())
        bars.append(bar)
        return bar

    # The locale first: a --locale refused stops the demo before it runs anything.
    with speaking(obj, locale):
        try:
            robo = obj.robo
            result = run_demo(
                robo.settings, robo.db, robo.registry, robo.run_environment(), processes_dir,
                progress=progress, announce=note,
            )  # fmt: skip
        finally:
            for bar in bars:
                bar.stop()
        _summary(result)
    failed = [r for r in result.runs if r.status != "completed"]
    if failed:
        raise SystemExit(1)


def _summary(result: Any) -> None:
    """What the demo did, for a manager watching it: runs, hours saved, the headline."""
    from robo.i18n import formats as f
    from robo.reports.labels import status_text

    click.echo()
    for process_id, r in zip(result.order, result.runs, strict=True):
        click.echo(
            _("run %(run)4s  %(status)-10s %(process)-26s %(items)3s items: %(ok)s ok, "
              "%(skipped)s skipped, %(business)s business, %(app)s application exception(s)")
            % {"run": r.run_id, "status": status_text(r.status), "process": process_id, "items": r.items_total,
               "ok": r.succeeded, "skipped": r.skipped, "business": r.business_exceptions,
               "app": r.application_exceptions}
        )  # fmt: skip
    click.echo()
    rows = result.hours
    names = result.report.name
    total = sum(r.minutes_saved for r in rows) / 60
    right = [_("runs"), _("items"), _("ok"), _("business"), _("app"), _("hours saved")]
    table(_("Hours of agent work saved by this demo"), [_("process"), *right], [
        *[(names(r.process_id), r.runs, r.items, r.succeeded, r.business_exceptions,
           r.application_exceptions, f.number(r.hours_saved, 1)) for r in rows],
        (_("total"), sum(r.runs for r in rows), sum(r.items for r in rows), sum(r.succeeded for r in rows),
         sum(r.business_exceptions for r in rows), sum(r.application_exceptions for r in rows),
         f.number(total, 1)),
    ], right=right)  # fmt: skip
    click.echo()
    click.echo(
        _("%(processes)s processes, %(hours)s hours of agent work saved.")
        % {"processes": len(rows), "hours": f.number(total, 1)}
    )
    click.echo(f"\n{result.report.headline.text}")
    click.echo(_("HTML report (charts, opens offline): %(path)s") % {"path": result.report_path})
    click.echo(
        _("Next: `robo runs`, `robo run-show RUN_ID`, `robo queue list`, `robo worklist` (the "
          "business exceptions, waiting for an agent), `robo report --include-test` (demo runs "
          "are not production: plain `robo report` leaves them out), "
          "`robo report --include-test --format pdf -o report.pdf`.")
    )  # fmt: skip


COMMANDS = [portal, demo]
