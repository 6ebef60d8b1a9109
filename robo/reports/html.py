"""The HTML report: one self-contained file (inline CSS, SVG and script, no network),
in the reader's language (``robo.i18n``: the CLI sets it)."""

from __future__ import annotations

from typing import Any

from robo.i18n import _, current_locale, ngettext
from robo.i18n import formats as f
from robo.reports.figures import FIGURE_COLUMNS
from robo.reports.labels import SHOWN, label
from robo.reports.report import Report

SERIES = ("month", "process", "region")
"""Groupings the charts need; pass them to ``build_report(series=...)``."""

TABLE_COLUMNS = [c for c in FIGURE_COLUMNS if c in SHOWN]
HOURS = ("hours_saved", "robot_hours", "human_hours_needed", "human_hours_spent", "minutes_saved")


def fmt(column: str, value: Any) -> str:
    """How a figure is shown in the current locale; the exact value goes in ``data-value``."""
    if value is None:
        return "–"
    if column == "success_rate":
        return f.percent(value)
    if column == "fte":
        return f.number(value, 2)
    if column in ("euros_saved", "euros"):
        return f.euros(value)
    if column in HOURS:
        return f.number(value, 1)
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int | float):
        return f.number(value)
    return str(value)


def key_text(report: Report, key: str, value: Any) -> str:
    """A grouping key as a reader wants it: a process by name, a month in words."""
    return f.key_text(key, value, report.name)


def environment() -> Any:
    """The Jinja environment of robo's reports, with gettext and the locale's formats."""
    from jinja2 import Environment, PackageLoader, select_autoescape

    env = Environment(
        loader=PackageLoader("robo.reports", "templates"),
        autoescape=select_autoescape(["html"]),
        trim_blocks=True,
        lstrip_blocks=True,
        extensions=["jinja2.ext.i18n"],
    )
    env.install_gettext_callables(_, ngettext, newstyle=True)  # type: ignore[attr-defined]
    env.filters["fmt"] = lambda value, column: fmt(column, value)
    env.filters["number"] = f.number
    env.filters["hours"] = f.hours
    env.filters["date"] = f.date
    env.filters["moment"] = f.moment
    env.filters["percent"] = f.percent
    env.filters["euros"] = f.euros
    env.globals["label"] = label
    env.filters["label"] = label
    return env


def render_html(report: Report, *, for_print: bool = False, drilldown: Any = None) -> str:
    """The report page; ``for_print`` (the PDF): with a title page, in print only;
    ``drilldown`` (``drilldown_html.DrillData``): its figures clickable down to the items."""
    from robo.reports.charts import all_charts
    from robo.reports.title_page import title_page

    series = {name: report.extra.get(name, []) for name in SERIES}
    data = report.as_dict()
    return str(
        environment()
        .get_template("report.html")
        .render(
            lang=current_locale(),
            report=data,
            headline=data["headline"],
            keys=report.keys,
            columns=TABLE_COLUMNS,
            key_text=lambda key, value: key_text(report, key, value),
            name=report.name,
            charts=all_charts(series, report.name),
            for_print=for_print,
            title_page=title_page(report) if for_print else None,
            drilldown=drilldown,
        )
    )
