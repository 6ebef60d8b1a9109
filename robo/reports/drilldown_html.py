"""Click-through drill-down in the HTML report, and the standalone ``--items`` page.

The runs and item rows behind the report's scope are embedded in the page as
JSON (``<script type="application/json" id="robo-drilldown">``); the page's
own script (``templates/drilldown.js``, inline) lists the rows behind any
figure clicked, filters, sorts and sums them. Nothing is computed here that the
report does not compute: each run carries the same group labels as the report's
SQL (``Dimension.sql``), each item row whether it is the row that counts its
work item (``queries.deciding``), and the sums are the report's rule, hours
saved = (Σ item rows' minutes as the ledger stores them + Σ per-run minutes) ÷ 60.

At most :data:`ITEM_CAP` item rows are embedded (the first, in run order); a
page that holds fewer than the scope says so and sums unfiltered selections
from the runs' own figures, so a figure still adds up; ``robo report --items
--format csv`` lists every row.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from markupsafe import Markup
from sqlalchemy import select

from robo.i18n import current_locale
from robo.i18n import formats as f
from robo.reports.dimensions import DIMENSIONS, Dimension, labelled
from robo.reports.drilldown import RunLine, drill_down
from robo.reports.names import process_names
from robo.reports.pseudonyms import Pseudonyms
from robo.reports.queries import Scope, deciding
from robo.reports.report import Report
from robo.storage.database import Database
from robo.storage.models import ItemRow, RunRow

FORMAT_VERSION = 1
ITEM_CAP = 20_000
"""Item rows embedded in one page (about 1.5 MB of JSON); the CSV has them all."""
ERROR_CHARS = 160
"""Error texts are cut to this length in the page."""
FILTERS = ("process_id", "month", "region")
"""The groups the panel always lets a reader filter by."""
ITEM_COLUMNS = (
    "run_id", "position", "reference", "status", "attempts", "minutes_saved", "error",
    "credited", "counts",
)  # fmt: skip
"""Each item row is a list in this order (the JSON stays small)."""


@dataclass(frozen=True)
class DrillData:
    """What the page embeds, and what its texts need to say about it."""

    payload: dict[str, Any]
    runs: list[RunLine]
    items_total: int
    items_listed: int
    pseudonymised: bool

    @property
    def capped(self) -> bool:
        return self.items_listed < self.items_total

    def json(self) -> Markup:
        """The payload for a ``<script type="application/json">``: ``<``, ``>`` and ``&``
        escaped, so no text in it (a reference, an error) can close the script."""
        text = json.dumps(self.payload, ensure_ascii=False, separators=(",", ":"))
        for char, escaped in (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026"),
                              ("\u2028", "\\u2028"), ("\u2029", "\\u2029")):  # fmt: skip
            text = text.replace(char, escaped)
        return Markup(text)  # escaped above: safe inside a script element


def run_keys(db: Database, scope: Scope, dims: tuple[Dimension, ...]) -> dict[int, dict[str, str]]:
    """Each run's group labels, from the very SQL expressions the report groups by."""
    dialect = db.engine.dialect.name
    query = select(RunRow.id, *(labelled(d, dialect) for d in dims)).where(*scope.conditions())
    with db.session() as session:
        return {
            row[0]: {d.key: str(row[i + 1]) for i, d in enumerate(dims)}
            for row in session.execute(query)
        }


def deciding_rows(db: Database, scope: Scope) -> dict[tuple[int, str], bool]:
    """(run id, reference) → whether that item row counts its work item in the scope
    (a reference is unique within a run)."""
    query = (
        select(ItemRow.run_id, ItemRow.reference, deciding(scope))
        .join(RunRow, RunRow.id == ItemRow.run_id)
        .where(*scope.conditions())
    )
    with db.session() as session:
        return {(run_id, ref): bool(counts) for run_id, ref, counts in session.execute(query)}


def _number_symbols() -> dict[str, str]:
    """The locale's group and decimal separators, read off ``formats.number`` itself so
    that the page's script writes numbers exactly as the report's cells do."""
    sample = f.number(1234.5, 1)  # "1,234.5" / "1 234,5"
    return {"group": sample[1], "decimal": sample[-2]}


def _key_text(key: str, value: str, names: dict[str, str]) -> str:
    """A group label as the report's table shows it (a process by name, a month in words)."""
    return f.key_text(key, value, lambda process_id: names.get(process_id, process_id))


def drill_data(
    db: Database,
    scope: Scope,
    *,
    by: tuple[Dimension, ...] = (),
    groups: list[dict[str, str]] | None = None,
    names: dict[str, str] | None = None,
    pseudonyms: Pseudonyms | None = None,
    cap: int = ITEM_CAP,
    open_on_load: bool = False,
) -> DrillData:
    """The scope's runs and (the first ``cap``) item rows, for the page's script.

    ``groups`` are the report's rows' keys in table order (``tr[data-row=i]``);
    ``open_on_load`` opens the panel on the whole scope (the ``--items`` page).
    """
    names = process_names(db) if names is None else names
    drill = drill_down(db, scope, limit=cap)
    dims = (
        *by,
        *(DIMENSIONS[n] for n in ("process", "region", "month") if DIMENSIONS[n] not in by),
    )
    keys = run_keys(db, scope, dims)
    counts = deciding_rows(db, scope)
    runs = []
    texts: dict[str, dict[str, str]] = {d.key: {} for d in dims}
    for line in drill.runs:
        labels = keys.get(line.run_id, {})
        for key, value in labels.items():
            if value not in texts[key]:
                texts[key][value] = _key_text(key, value, names)
        fig = line.figures
        runs.append({
            "id": line.run_id, "name": names.get(line.process_id, line.process_id),
            "status": line.status, "started_at": line.started_at, **labels,
            "run_minutes": fig.run_minutes_saved, "item_minutes": fig.item_minutes_saved,
            "items": fig.items, "item_rows": fig.item_rows, "attempts": fig.attempts,
            "succeeded": fig.succeeded, "business_exceptions": fig.business_exceptions,
            "application_exceptions": fig.application_exceptions, "skipped": fig.skipped,
        })  # fmt: skip
    items = []
    for item in drill.items:
        d = item.item
        counted = counts.get((item.run_id, d.reference), False)
        reference = pseudonyms.reference(d.reference) if pseudonyms else d.reference
        error = None if pseudonyms or not d.error else d.error[:ERROR_CHARS]
        items.append([item.run_id, d.position, reference, d.status, d.attempts,
                      d.minutes_saved, error, item.credited, counted])  # fmt: skip
    payload = {
        "format_version": FORMAT_VERSION,
        "lang": current_locale(),
        "number": _number_symbols(),
        "dims": [d.key for d in dims],
        "filters": list(FILTERS),
        "key_text": texts,
        "groups": groups or [],
        "runs": runs,
        "item_columns": list(ITEM_COLUMNS),
        "items": items,
        "items_total": drill.items_total,
        "capped": len(items) < drill.items_total,
        "pseudonymised": pseudonyms is not None,
        "open": open_on_load,
    }
    return DrillData(payload, drill.runs, drill.items_total, len(items), pseudonyms is not None)


def report_drill_data(
    db: Database, report: Report, *, pseudonyms: Pseudonyms | None = None, cap: int = ITEM_CAP
) -> DrillData:
    """The drill-down behind a report's table and headline cards."""
    return drill_data(
        db,
        report.scope,
        by=report.by,
        groups=[row.keys for row in report.rows],
        names=report.names,
        pseudonyms=pseudonyms,
        cap=cap,
    )


def write_report_html(
    db: Database, report: Report, path: Path, *, pseudonyms: Pseudonyms | None = None
) -> Path:
    """``robo report --format html``: the report, its figures clickable down to the items."""
    from robo.reports.html import render_html

    data = report_drill_data(db, report, pseudonyms=pseudonyms)
    return _write(path, render_html(report, drilldown=data))


def render_items_html(
    db: Database, scope: Scope, *, pseudonyms: Pseudonyms | None = None, cap: int = ITEM_CAP
) -> str:
    """``robo report --items --format html``: the runs and item rows of a scope, one page."""
    from robo.clock import utcnow
    from robo.reports.html import environment

    names = process_names(db)
    data = drill_data(db, scope, names=names, pseudonyms=pseudonyms, cap=cap, open_on_load=True)
    return str(
        environment()
        .get_template("items.html")
        .render(
            lang=current_locale(),
            scope=scope.describe(),
            generated_at=utcnow().isoformat(timespec="seconds"),
            database=db.safe_url,
            runs=data.runs,
            name=lambda pid: names.get(pid, pid),
            drilldown=data,
        )
    )


def write_items_html(
    db: Database, scope: Scope, path: Path, *, pseudonyms: Pseudonyms | None = None
) -> Path:
    return _write(path, render_items_html(db, scope, pseudonyms=pseudonyms))


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path
