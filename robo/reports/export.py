"""CSV and JSON renderings of a report (strings; the CLI decides where they go)."""

from __future__ import annotations

import csv
import io
import json
from typing import Any

from robo.i18n import _
from robo.reports.drilldown import DrillDown
from robo.reports.figures import FIGURE_COLUMNS
from robo.reports.labels import label
from robo.reports.report import Report


def _json(data: Any) -> str:
    return json.dumps(data, indent=2, ensure_ascii=False, default=str)


def report_json(report: Report) -> str:
    """A list of rows, one per group (``robo report --json``), with the baselines used."""
    return _json(report.row_dicts())


def report_csv(report: Report) -> str:
    """One line per group, then a ``total`` line; baselines are in JSON and HTML."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    # Headers in the reader's language; values stay machine-readable (ids, YYYY-MM, 7.5).
    writer.writerow([label(c) for c in (*report.keys, *FIGURE_COLUMNS)])
    fte = report.fte_hours_per_year
    for row in report.rows:
        data = row.as_dict(fte)
        writer.writerow([*(row.keys[k] for k in report.keys), *(data[c] for c in FIGURE_COLUMNS)])
    totals = report.totals.as_dict(fte)
    first = [_("total"), *([""] * (len(report.keys) - 1))]
    writer.writerow([*first, *(totals[c] for c in FIGURE_COLUMNS)])
    return out.getvalue()


def drill_json(drill: DrillDown) -> str:
    return _json(drill.as_dict())


ITEM_COLUMNS = (
    "run_id",
    "process_id",
    "position",
    "reference",
    "queue_item_id",
    "credited",
    "status",
    "attempts",
    "started_at",
    "duration_seconds",
    "minutes_saved",
    "error",
)


def drill_csv(drill: DrillDown) -> str:
    """The item rows behind the figure, one line each."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow([label(c) for c in ITEM_COLUMNS])
    for item in drill.items:
        data = item.as_dict()
        writer.writerow(["" if data[c] is None else data[c] for c in ITEM_COLUMNS])
    return out.getvalue()
