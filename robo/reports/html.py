"""The HTML report: one self-contained file (inline CSS and SVG, no script, no network)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from robo.reports.figures import FIGURE_COLUMNS
from robo.reports.report import Report

SERIES = ("month", "process", "region")
"""Groupings the charts need; pass them to ``build_report(series=...)``."""

LABELS = {
    "process_id": "process",
    "region": "region",
    "application": "application",
    "origin_region": "built by",
    "month": "month",
    "week": "week",
    "quarter": "quarter",
    "year": "year",
    "runs": "runs",
    "items": "items",
    "attempts": "attempts",
    "succeeded": "succeeded",
    "business_exceptions": "business exc.",
    "application_exceptions": "application exc.",
    "skipped": "skipped",
    "success_rate": "success rate",
    "hours_saved": "hours saved",
    "fte": "FTE",
    "robot_hours": "robot hours",
    "human_hours_needed": "human hours needed",
    "resolved_by_human": "resolved by hand",
    "human_hours_spent": "hours resolving",
    "euros_saved": "€ saved",
}
TABLE_COLUMNS = [c for c in FIGURE_COLUMNS if c in LABELS]


def fmt(column: str, value: Any) -> str:
    """How a figure is shown; the exact value goes in ``data-value`` beside it."""
    if value is None:
        return "–"
    if column == "success_rate":
        return f"{value * 100:.1f} %"
    if column == "fte":
        return f"{value:,.2f}"
    if column in ("euros_saved", "euros"):
        return f"{value:,.0f} €"
    if column in (
        "hours_saved",
        "robot_hours",
        "human_hours_needed",
        "human_hours_spent",
        "minutes_saved",
    ):
        return f"{value:,.1f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def render_html(report: Report) -> str:
    from jinja2 import Environment, PackageLoader, select_autoescape

    from robo.reports.charts import all_charts

    env = Environment(
        loader=PackageLoader("robo.reports", "templates"),
        autoescape=select_autoescape(["html"]),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["fmt"] = lambda value, column: fmt(column, value)
    series = {name: report.extra.get(name, []) for name in SERIES}
    data = report.as_dict()
    return env.get_template("report.html").render(
        report=data,
        headline=data["headline"],
        keys=report.keys,
        columns=TABLE_COLUMNS,
        labels=LABELS,
        charts=all_charts(series),
    )


def write_html(report: Report, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render_html(report), encoding="utf-8")
    return path
