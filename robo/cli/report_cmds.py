"""``robo report``: hours saved, grouped and filtered, as a table, CSV, JSON, HTML or PDF."""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import Any

import click

from robo.cli.common import Context, locale_option, speaking
from robo.cli.render import hours, note, print_json, table
from robo.i18n import N_, _, pgettext
from robo.reports.labels import label, status_text

DIMENSION_NAMES = ["process", "region", "application", "origin", "year", "quarter", "month", "week"]
FORMATS = ["table", "csv", "json", "html", "pdf"]
SHORT = {
    "process_id": "process",
    "origin_region": "built by",
}


def _scope(
    since: str | None,
    until: str | None,
    period: str | None,
    month: str | None,
    processes: tuple[str, ...],
    regions: tuple[str, ...],
    applications: tuple[str, ...],
    include_test: bool = False,
) -> Any:
    from robo.errors import ReportError
    from robo.reports.periods import parse_period, parse_since, parse_until
    from robo.reports.queries import Scope

    def parse(option: str, value: str, parser: Any) -> Any:
        try:
            return parser(value)
        except ReportError as exc:
            raise click.BadParameter(exc.message, param_hint=option) from None

    if period and month:
        raise click.UsageError(
            "give --period or --month, not both (--month 2026-10 is --period 2026-10)"
        )
    named = period or month
    if named and (since or until):
        raise click.UsageError(
            f"--{'period' if period else 'month'} already sets the dates; drop --since/--until "
            "or drop the period"
        )
    if month and not re.fullmatch(r"\d{4}-\d{2}", month.strip()):
        raise click.BadParameter(
            f"'{month}' is not a month; use YYYY-MM (2026-10)", param_hint="--month"
        )
    purposes = () if include_test else ("production",)
    if named:
        found = parse("--period" if period else "--month", named, parse_period)
        return Scope(found.start, found.end, processes, regions, applications,
                     label=found.label, purposes=purposes)  # fmt: skip
    return Scope(
        parse("--since", since, parse_since) if since else None,
        parse("--until", until, parse_until) if until else None,
        processes,
        regions,
        applications,
        purposes=purposes,
    )


def _writable(output: Path) -> None:
    """Refuse an -o path that cannot be written before the report is built (creating
    only its folder: a report refused later leaves no empty file behind)."""
    import os

    from robo.errors import RoboError

    try:
        output.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        reason = exc.strerror or str(exc)
    else:
        target = output if output.exists() else output.parent
        reason = (
            "it is a folder" if output.is_dir()
            else "" if os.access(target, os.W_OK)
            else "permission denied"
        )  # fmt: skip
    if reason:
        raise RoboError(f"cannot write {output}: {reason}; choose a file you may write")


def _emit(text: str, output: Path | None) -> None:
    if output is None:
        click.echo(text, nl=not text.endswith("\n"))
    else:
        output.write_text(text, encoding="utf-8")
        note(f"wrote {output}")


COLUMNS = (
    "runs", "items", "attempts", "ok", "business", "app", "skipped", "success", "hours saved",
    "FTE", "robot h", "human h", "resolved", "resolving h",
)  # fmt: skip
"""The terminal table's figure columns (short: it must fit 80 columns as far as it can)."""


def _column(name: str) -> str:
    """A terminal column's header: short, in the reader's language."""
    short = {
        "runs": pgettext("column", "runs"), "items": pgettext("column", "items"),
        "attempts": pgettext("column", "attempts"), "ok": pgettext("column", "ok"),
        "business": pgettext("column", "business"), "app": pgettext("column", "app"),
        "skipped": pgettext("column", "skipped"), "success": pgettext("column", "success"),
        "hours saved": pgettext("column", "hours saved"), "FTE": pgettext("column", "FTE"),
        "robot h": pgettext("column", "robot h"), "human h": pgettext("column", "human h"),
        "resolved": pgettext("column", "resolved"),
        "resolving h": pgettext("column", "resolving h"),
    }  # fmt: skip
    return short[name]


def _print_table(report: Any) -> None:
    from robo.i18n import formats as f

    if not report.rows:
        note(_("no runs in this period; nothing saved yet"))
        return
    click.echo(report.headline.text)
    if report.headline.top:
        tops = ", ".join(
            f"{report.name(r.keys['process_id'])} ({f.hours(r.figures.hours_saved)} h)"
            for r in report.headline.top
        )
        click.echo(_("Top processes: %(processes)s") % {"processes": tops})
    click.echo(_pace(report.headline))
    t = report.totals
    if t.costed_runs:
        click.echo(
            _("Euros: %(euros)s of agent time saved, at the hour cost each run recorded.")
            % {"euros": f.euros(t.euros_saved)}
            if t.costed_runs == t.runs
            else _("Euros: %(euros)s of agent time saved, at the hour cost each run recorded "
                   "(%(costed)s of %(runs)s runs recorded one).")
            % {"euros": f.euros(t.euros_saved), "costed": t.costed_runs, "runs": t.runs}
        )  # fmt: skip
    fte = report.fte_hours_per_year
    # Machine time means nothing to a manager when there is none (runs from before timing).
    robot = t.robot_hours >= 0.05

    def figures(g: Any) -> list[Any]:
        values = [
            f.number(g.runs), f.number(g.items), f.number(g.attempts), f.number(g.succeeded),
            f.number(g.business_exceptions), f.number(g.application_exceptions),
            f.number(g.skipped), f.percent(g.success_rate), f.number(g.hours_saved, 1),
            f.number(g.fte(fte), 2), f.number(g.robot_hours, 1), f.number(g.human_hours, 1),
            f.number(g.resolved_by_human), f.number(g.human_hours_spent, 1),
        ]  # fmt: skip
        return values if robot else values[:10] + values[11:]

    def key(k: str, value: Any) -> str:
        return f.key_text(k, value, report.name)

    keys = [label(k) for k in report.keys]
    numbers = [_column(c) for c in COLUMNS if robot or c != "robot h"]
    blank = [""] * (len(keys) - 1)
    table(
        _("Hours of agent work saved · %(scope)s") % {"scope": report.scope.describe()},
        [*keys, *numbers],
        [
            *[
                [*(key(k, r.keys[k]) for k in report.keys), *figures(r.figures)]
                for r in report.rows
            ],
            [_("total"), *blank, *figures(report.totals)],
        ],
        right=numbers,
    )
    by_hand, left, per_run, count, saved = (
        _("by hand"),
        _("left"),
        _("per run"),
        _("runs"),
        _("hours saved"),
    )
    table(_("Baselines used (minutes; each run keeps the one it started with)"), [_("process"), _("version"), by_hand, left, per_run, _("measured by"), _("on"), _("runs from"), _("to"), count, saved], [
        (report.name(u.process_id), u.version, f.number(u.manual_minutes_per_item, 1),
         f.number(u.residual_minutes_per_item, 1), f.number(u.manual_minutes_per_run, 1),
         u.measured_by, f.date(u.measured_on), f.date(u.first_run), f.date(u.last_run),
         f.number(u.figures.runs), f.number(u.figures.hours_saved, 1))
        for u in _distinct_uses(report)
    ], right=[by_hand, left, per_run, count, saved])  # fmt: skip
    if report.investments:
        regions = report.region_investments if len(report.region_investments) > 1 else []
        money = [*report.investments, *regions, report.programme]
        right = [
            _("build days"),
            _("build €"),
            _("running € / year"),
            _("€ saved"),
            _("cost so far"),
            _("net"),
            _("recovered"),
        ]
        table(_("Cost and payback (each process's whole production history, euros)"), [_("process"), *right[:4], _("go-live"), *right[4:], _("payback")], [
            (report.name(i.process_id) if i.process_id
             else _("region %(name)s") % {"name": f.key_text("region", i.region)} if i.region
             else _("programme"), f.number(i.build_days, 1),
             f.number(i.build_eur), f.number(i.run_eur_per_year), f.date(i.go_live),
             f.number(i.euros_saved), f.number(i.cost_so_far), f.number(i.net),
             f.percent(i.recovered, 0), f.date(i.payback) if i.payback else _("not yet"))
            for i in money if i is not None
        ], right=right)  # fmt: skip
    click.echo(
        _("Items: work items, each once (a queue item retried by several runs is one item, "
          "counted with its credited success or latest outcome); attempts: tries over every run; "
          "ok/business/app/skipped: items by that outcome. Success: ok / (items - skipped). "
          "FTE: the period's hours / %(fte)s h (one post's year; not annualised). Human h: "
          "checks left on successful items + exception items by hand (baseline). Resolved / "
          "resolving h: queue items a human resolved and the hours they recorded (never in "
          "hours saved). Months and weeks: UTC.") % {"fte": f.number(fte)}
        + ("" if not robot else " " + _("Robot h: time the robots spent on items (machine "
                                        "time, not agent time)."))
    )  # fmt: skip


def _pace(headline: Any) -> str:
    """The FTE twice, saying which: the period's share of one post's year, and the
    period's pace over a whole year (or why it is not shown)."""
    from robo.i18n import formats as f

    t = headline.totals
    share = f.number(t.fte(headline.fte_hours_per_year), 2)
    days = headline.period_days
    if headline.fte_annualised is None:
        pace = (
            _("not annualised (under 28 days)") if days is not None
            else _("not annualised (no runs)")
        )  # fmt: skip
    else:
        pace = _("%(fte)s full-time posts a year at this pace") % {
            "fte": f.number(headline.fte_annualised, 2)
        }
    if days is None:
        return _("FTE: %(share)s of one post's year saved; %(pace)s.") % {
            "share": share,
            "pace": pace,
        }
    if days < 1:
        return _("FTE: %(share)s of one post's year saved within a day; %(pace)s.") % {
            "share": share, "pace": pace,
        }  # fmt: skip
    return _("FTE: %(share)s of one post's year saved over %(days)s days; %(pace)s.") % {
        "share": share, "days": f.number(days), "pace": pace,
    }  # fmt: skip


def _distinct_uses(report: Any) -> list[Any]:
    """Baselines per process and version, whatever the grouping (for the table)."""
    seen: dict[tuple[Any, ...], Any] = {}
    for _keys, use in report.baselines:
        key = (use.process_id, use.version, use.measured_by, use.measured_on,
               use.manual_minutes_per_item, use.residual_minutes_per_item, use.manual_minutes_per_run)  # fmt: skip
        if key in seen:
            old = seen[key]
            seen[key] = type(use)(**{**vars(old), "first_run": min(old.first_run, use.first_run),
                                     "last_run": max(old.last_run, use.last_run),
                                     "figures": old.figures + use.figures})  # fmt: skip
        else:
            seen[key] = use
    return sorted(seen.values(), key=lambda u: (u.process_id, u.first_run))


def _pseudonyms(obj: Context, pseudonymise: bool) -> Any:
    from robo.reports.pseudonyms import Pseudonyms

    return Pseudonyms.for_home(obj.robo.settings.home) if pseudonymise else None


def _drill(
    obj: Context, scope: Any, fmt: str, output: Path | None, limit: int, pseudonymise: bool = False
) -> None:
    from robo.reports.drilldown import drill_down
    from robo.reports.export import drill_csv, drill_json

    if fmt == "pdf":
        raise click.UsageError("--items lists rows: use --format table, csv, json or html")
    pseudonyms = _pseudonyms(obj, pseudonymise)
    if fmt == "html":
        from robo.reports.drilldown_html import write_items_html

        assert output is not None
        write_items_html(obj.robo.db, scope, output, pseudonyms=pseudonyms)
        return note(f"wrote {output}")
    drill = drill_down(obj.robo.db, scope, limit=limit if fmt == "table" else None)
    drill = pseudonyms.drill(drill) if pseudonyms else drill
    if fmt == "json":
        return _emit(drill_json(drill), output)
    if fmt == "csv":
        return _emit(drill_csv(drill), output)
    if not drill.runs:
        note(_("no runs in this scope"))
        return None
    runs_right = [
        _(c)
        for c in (
            N_("run"),
            N_("items"),
            N_("rows"),
            N_("ok"),
            N_("business"),
            N_("app"),
            N_("skipped"),
            N_("h saved"),
        )
    ]
    table(_("Runs behind the figure · %(scope)s") % {"scope": scope.describe()}, [runs_right[0], _("process"), _("version"), _("region"), _("status"), _("started (UTC)"), *runs_right[1:], _("baseline")], [
        (r.run_id, r.process_id, r.version, r.region, status_text(r.status), r.started_at, r.figures.items,
         r.figures.item_rows, r.figures.succeeded, r.figures.business_exceptions,
         r.figures.application_exceptions, r.figures.skipped, hours(r.figures.minutes_saved),
         r.baseline)
        for r in drill.runs
    ], right=runs_right)  # fmt: skip
    items_right = [_(c) for c in (N_("run"), N_("#"), N_("tries"), N_("seconds"), N_("min saved"))]
    table(_("Items"), [*items_right[:2], _("reference"), _("queue item"), _("status"), *items_right[2:], _("error")], [
        (line.run_id, line.item.position, line.item.reference,
         "" if line.queue_item_id is None else f"{line.queue_item_id}{' ' + _('credited') if line.credited else ''}",
         status_text(line.item.status), line.item.attempts,
         "" if line.item.duration_seconds is None else f"{line.item.duration_seconds:.1f}",
         f"{line.item.minutes_saved:g}", line.item.error or "")
        for line in drill.items
    ], right=items_right)  # fmt: skip
    if drill.items_total > len(drill.items):
        note(
            _("showing %(shown)s of %(total)s items; --limit N for more, --format csv for all")
            % {"shown": len(drill.items), "total": drill.items_total}
        )
    return None


@click.command()
@click.option("--by", "by", multiple=True, type=click.Choice(DIMENSION_NAMES),
              help="Group by this; repeat for several (default: process). "
                   "Time groups use the run's start in UTC; origin is the region that built the process.")  # fmt: skip
@click.option("--since", help="Start: a date (included) or a period, e.g. 2026-10-01, 2026-Q3.")
@click.option("--until", help="End: a date (first day excluded) or a period (included whole).")
@click.option("--period", help="One period: 2026, 2026-Q3, 2026-10, 2026-W42 or 2026-10-05 (UTC).")
@click.option("--month", help="Shortcut for --period YYYY-MM.")
@click.option(
    "--process", "processes", multiple=True, metavar="ID", help="Only this process; repeatable."
)
@click.option("--region", "regions", multiple=True, help="Only runs in this region; repeatable.")
@click.option(
    "--application", "applications", multiple=True, help="Only this application; repeatable."
)
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="table", show_default=True)
@click.option("-o", "--output", type=click.Path(path_type=Path, dir_okay=False),
              help="Write to this file (required for html and pdf; stdout otherwise).")  # fmt: skip
@click.option("--items", "drill", is_flag=True, help="List the runs and items behind the figures.")
@click.option("--limit", default=500, show_default=True, type=click.IntRange(1),
              help="Items shown by --items in a table.")  # fmt: skip
@click.option(
    "--check",
    is_flag=True,
    help="Recompute every total from item rows and check each queue item is credited at "
    "most once; exit 1 on any mismatch (rows from before queues: warnings).",
)
@click.option(
    "--include-test",
    is_flag=True,
    help="Count test runs (robo run --test) and demo runs too; by default only production.",
)
@click.option("--headline", "headline_only", is_flag=True, help="Only the headline.")
@click.option("--json", "as_json", is_flag=True, help="Same as --format json.")
@click.option("--pseudonymise", is_flag=True,
              help="Replace item references with stable pseudonyms and leave error texts out "
                   "(--items and html), for a file to send outside.")  # fmt: skip
@locale_option
@click.pass_obj
def report(
    obj: Context,
    by: tuple[str, ...],
    since: str | None,
    until: str | None,
    period: str | None,
    month: str | None,
    processes: tuple[str, ...],
    regions: tuple[str, ...],
    applications: tuple[str, ...],
    fmt: str,
    output: Path | None,
    drill: bool,
    limit: int,
    check: bool,
    include_test: bool,
    headline_only: bool,
    as_json: bool,
    locale: str | None,
    pseudonymise: bool = False,
) -> None:
    """Hours of agent work saved, summed from the ledger's item rows.

    Figures: runs; items (work items, each once: a queue item retried by
    several runs is one item), attempts (tries over every run); items
    succeeded, business and application exceptions, skipped (nothing to do,
    0 minutes); success rate (succeeded / items with work to do); hours saved
    (minutes credited once per queue item, on its one success); FTE (hours /
    fte_hours_per_year, 1,607 by default); robot hours (item processing
    time); human hours still needed (checks left on successful items +
    exception items by hand); queue items a human resolved and the hours
    they recorded (never counted as saved). Only production runs count unless
    --include-test (test runs and the demo's are recorded all the same); the
    per-run minutes go to completed runs with at least one success. Each
    figure uses the baseline its
    run started with; the baselines used are listed. Months, weeks (ISO) and
    quarters come from each run's start time in UTC.

    What managers read (the table and headline, CSV headers, HTML, PDF) is
    in the installation's language: French for French regions, or
    ROBO_LOCALE / --locale (fr, en). JSON keeps ids and raw numbers.

    \b
    Examples:
      robo report                                   # by process, all time
      robo report --by region --by month --period 2026-Q3
      robo report --by region --by origin --json    # who built, who runs
      robo report --since 2026-01-01 --format csv -o hours.csv
      robo report --format html -o report.html      # charts, opens offline
      robo report --format pdf -o report.pdf
      robo report --process residence-permit-entry --month 2026-10 --items
      robo report --month 2026-10 --items --format html -o items.html
      robo report --items --format csv --pseudonymise -o items.csv  # to send outside
      robo report --check                           # recompute from item rows
      robo report --include-test --since 2026-12-01 # with test and demo runs
      robo report --locale en --format html -o report-en.html
    """
    fmt = "json" if as_json else fmt
    click.get_current_context().with_resource(speaking(obj, locale))
    if fmt in ("html", "pdf") and output is None:
        raise click.UsageError(f"--format {fmt} writes a file: add -o report.{fmt}")
    scope = _scope(since, until, period, month, processes, regions, applications, include_test)
    from robo.reports.queries import check_known_processes

    check_known_processes(obj.robo.db, processes)
    if output is not None and (fmt != "table" or drill):
        _writable(output)
    if drill:
        return _drill(obj, scope, fmt, output, limit, pseudonymise)
    from robo.reports.html import SERIES
    from robo.reports.report import build_report

    robo = obj.robo
    result = build_report(
        robo.db,
        by or ("process",),
        scope,
        fte_hours_per_year=robo.settings.fte_hours_per_year,
        series=SERIES if fmt in ("html", "pdf") else (),
    )
    if check:
        return _check(robo.db, result, fmt)
    if headline_only:
        if fmt == "json":
            return print_json(result.headline.as_dict())
        return click.echo(result.headline.text)
    if fmt == "json":
        from robo.reports.export import report_json

        return _emit(report_json(result), output)
    if fmt == "csv":
        from robo.reports.export import report_csv

        return _emit(report_csv(result), output)
    if fmt == "html":
        from robo.reports.drilldown_html import write_report_html

        assert output is not None
        write_report_html(robo.db, result, output, pseudonyms=_pseudonyms(obj, pseudonymise))
        click.echo(result.headline.text)
        note(f"wrote {output}")
        return None
    if fmt == "pdf":
        from robo.reports.pdf import write_pdf

        assert output is not None
        write_pdf(result, output, chromium=robo.settings.chromium)
        click.echo(result.headline.text)
        note(f"wrote {output}")
        return None
    if output is not None:
        raise click.UsageError("a table goes to the terminal; use --format csv or json with -o")
    return _print_table(result)


def _check(db: Any, result: Any, fmt: str) -> None:
    from robo.errors import ReportCheckFailed
    from robo.reports.check import recompute

    outcome = recompute(db, result)
    if fmt == "json":
        print_json(outcome.as_dict())
        if not outcome.ok:
            sys.exit(1)
        return
    if not outcome.ok:
        raise ReportCheckFailed(outcome.text)
    click.echo(outcome.text)


COMMANDS: list[click.Command] = [report]
