"""A report: the figures grouped as asked, their totals, the headline and the baselines used.

This is the one service function the CLI (and the demo) call; renderers only
format what it returns.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from robo.clock import utcnow
from robo.reports.dimensions import DIMENSIONS, Dimension, dimensions
from robo.reports.figures import FTE_HOURS_PER_YEAR, Figures, Row, total
from robo.reports.headline import Headline, headline
from robo.reports.investment import Investment, investments, investments_by_region
from robo.reports.names import process_names
from robo.reports.queries import BaselineUse, Scope, aggregate, baselines
from robo.storage.database import Database

DEFAULT_BY = ("process",)


@dataclass(frozen=True)
class Report:
    by: tuple[Dimension, ...]
    scope: Scope
    rows: list[Row]
    totals: Figures
    headline: Headline
    baselines: list[tuple[dict[str, str], BaselineUse]]
    fte_hours_per_year: float
    generated_at: dt.datetime
    database: str
    extra: dict[str, list[Row]] = field(default_factory=dict)
    investments: list[Investment] = field(default_factory=list)
    programme: Investment | None = None
    region_investments: list[Investment] = field(default_factory=list)
    names: dict[str, str] = field(default_factory=dict)
    """Process id → name, for readers (JSON keeps the ids)."""

    def name(self, process_id: str | None) -> str:
        return self.names.get(process_id or "", process_id or "")

    @property
    def keys(self) -> list[str]:
        return [d.key for d in self.by]

    def row_dicts(self) -> list[dict[str, Any]]:
        """The rows as ``robo report --json`` prints them, with the baselines each used."""
        result = []
        for row in self.rows:
            data = row.as_dict(self.fte_hours_per_year)
            data["baselines"] = [
                use.as_dict()
                for keys, use in self.baselines
                if all(keys.get(k) == v for k, v in row.keys.items())
            ]
            result.append(data)
        return result

    def as_dict(self) -> dict[str, Any]:
        """Everything in the report, for the HTML template and JSON consumers."""
        return {
            "format_version": 1,
            "generated_at": self.generated_at.isoformat(timespec="seconds"),
            "database": self.database,
            "scope": self.scope.describe(),
            "by": self.keys,
            "fte_hours_per_year": self.fte_hours_per_year,
            "headline": self.headline.as_dict(),
            "rows": self.row_dicts(),
            "totals": self.totals.as_dict(self.fte_hours_per_year),
            "baselines": [{**keys, **use.as_dict()} for keys, use in self.baselines],
            "process_names": self.names,
            # Over each process's whole production history, whatever the report's period.
            "investment": {
                "processes": [i.as_dict() for i in self.investments],
                "programme": self.programme.as_dict() if self.programme else None,
                "regions": [i.as_dict() for i in self.region_investments],
            },
        }


def build_report(
    db: Database,
    by: tuple[str, ...] | list[str] = DEFAULT_BY,
    scope: Scope | None = None,
    *,
    fte_hours_per_year: float = FTE_HOURS_PER_YEAR,
    series: tuple[str, ...] = (),
) -> Report:
    """Aggregate the ledger in SQL; ``series`` adds other groupings (for charts)."""
    scope = scope or Scope()
    dims = dimensions(list(by) or list(DEFAULT_BY))
    rows = aggregate(db, dims, scope)
    extra: dict[str, list[Row]] = {}
    for name in series:
        extra[name] = (
            rows if dims == (DIMENSIONS[name],) else aggregate(db, dimensions([name]), scope)
        )
    by_process = rows if dims == (DIMENSIONS["process"],) else extra.get("process")
    made = utcnow()
    top = headline(
        db, scope, fte_hours_per_year=fte_hours_per_year, by_process=by_process, now=made
    )
    baseline_dims = dims if DIMENSIONS["process"] in dims else (*dims, DIMENSIONS["process"])
    uses = baselines(db, scope, baseline_dims)
    each, programme = investments(db, made, scope.processes)
    by_region = investments_by_region(db, made, scope.processes) if each else []
    return Report(
        by=dims,
        scope=scope,
        rows=rows,
        totals=total(rows),
        headline=top,
        baselines=uses,
        fte_hours_per_year=fte_hours_per_year,
        generated_at=made,
        database=db.safe_url,
        extra=extra,
        investments=each,
        programme=programme,
        region_investments=by_region,
        names=process_names(db),
    )
