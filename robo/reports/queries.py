"""The report's SQL: one aggregation over the ledger, grouped by the chosen dimensions.

Shape (one statement): items are summed per run in a sub-select, joined to
their run, then summed per group together with the run-level figures:

    SELECT <dimensions>, count(runs), sum(per_run.items), ..., sum(runs.run_minutes_saved)
    FROM runs LEFT JOIN (SELECT run_id, count(*), sum(status = 'success'), ...
                         FROM items [JOIN runs ... WHERE <scope>] GROUP BY run_id) per_run
    WHERE <scope> GROUP BY <dimensions>

Summing items per run first keeps run-level figures (per-run minutes, run
counts) from being multiplied by the number of items, without DISTINCT.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Select, case, func, select
from sqlalchemy.sql.elements import ColumnElement

from robo.reports.dimensions import Dimension, labelled
from robo.reports.figures import Figures, Row
from robo.storage.database import Database
from robo.storage.models import ItemRow, RunRow


@dataclass(frozen=True)
class Scope:
    """Which runs a report covers: by start time (UTC, half-open) and by labels."""

    since: dt.datetime | None = None
    until: dt.datetime | None = None
    processes: tuple[str, ...] = ()
    regions: tuple[str, ...] = ()
    applications: tuple[str, ...] = ()
    label: str = ""

    def conditions(self) -> list[ColumnElement[bool]]:
        where: list[ColumnElement[bool]] = []
        if self.since is not None:
            where.append(RunRow.started_at >= self.since)
        if self.until is not None:
            where.append(RunRow.started_at < self.until)
        if self.processes:
            where.append(RunRow.process_id.in_(self.processes))
        if self.regions:
            where.append(RunRow.region.in_(self.regions))
        if self.applications:
            where.append(RunRow.application.in_(self.applications))
        return where

    def describe(self) -> str:
        parts = []
        if self.label:
            parts.append(self.label)
        else:
            if self.since:
                parts.append(f"from {self.since.date().isoformat()}")
            if self.until:
                parts.append(f"before {self.until.date().isoformat()}")
        if self.processes:
            parts.append("process " + ", ".join(self.processes))
        if self.regions:
            parts.append("region " + ", ".join(self.regions))
        if self.applications:
            parts.append("application " + ", ".join(self.applications))
        return " · ".join(parts) or "all runs"


def _count(status: str) -> ColumnElement[Any]:
    return func.sum(case((ItemRow.status == status, 1), else_=0))


def per_run(scope: Scope) -> Any:
    """Items summed per run, restricted to the scope's runs."""
    query = select(
        ItemRow.run_id.label("run_id"),
        func.count(ItemRow.id).label("item_count"),
        _count("success").label("succeeded"),
        _count("business_exception").label("business"),
        _count("application_exception").label("application"),
        func.sum(ItemRow.minutes_saved).label("minutes"),
        func.sum(func.coalesce(ItemRow.duration_seconds, 0.0)).label("seconds"),
    ).group_by(ItemRow.run_id)
    conditions = scope.conditions()
    if conditions:
        query = query.join(RunRow, RunRow.id == ItemRow.run_id).where(*conditions)
    return query.subquery("per_run")


def figure_columns(pr: Any) -> list[ColumnElement[Any]]:
    """The sums of one group, in the order of ``Figures``' fields."""
    ok = func.coalesce(pr.c.succeeded, 0)
    failed = func.coalesce(pr.c.business, 0) + func.coalesce(pr.c.application, 0)
    human = ok * RunRow.residual_minutes_per_item + failed * RunRow.manual_minutes_per_item
    return [
        func.count(RunRow.id),
        func.coalesce(func.sum(pr.c.item_count), 0),
        func.coalesce(func.sum(pr.c.succeeded), 0),
        func.coalesce(func.sum(pr.c.business), 0),
        func.coalesce(func.sum(pr.c.application), 0),
        func.coalesce(func.sum(pr.c.minutes), 0.0),
        func.coalesce(func.sum(RunRow.run_minutes_saved), 0.0),
        func.coalesce(func.sum(pr.c.seconds), 0.0),
        func.coalesce(func.sum(human), 0.0),
    ]


def figures(values: Any) -> Figures:
    runs, items, ok, business, application, item_min, run_min, seconds, human = values
    return Figures(
        runs=int(runs),
        items=int(items),
        succeeded=int(ok),
        business_exceptions=int(business),
        application_exceptions=int(application),
        item_minutes_saved=float(item_min),
        run_minutes_saved=float(run_min),
        robot_seconds=float(seconds),
        human_minutes=float(human),
    )


def aggregate_query(db: Database, by: tuple[Dimension, ...], scope: Scope) -> Select[Any]:
    dialect = db.engine.dialect.name
    keys = [labelled(d, dialect) for d in by]
    pr = per_run(scope)
    query = (
        select(*keys, *figure_columns(pr))
        .select_from(RunRow)
        .outerjoin(pr, pr.c.run_id == RunRow.id)
        .where(*scope.conditions())
    )
    if keys:
        query = query.group_by(*(d.sql(dialect) for d in by))
    return query


def aggregate(db: Database, by: tuple[Dimension, ...], scope: Scope) -> list[Row]:
    """One row per group that has runs in the scope.

    Ordered by the time dimensions first (chronological) when there are any,
    then by hours saved (largest first), then by label.
    """
    with db.session() as session:
        result = session.execute(aggregate_query(db, by, scope)).all()
    rows = [
        Row({d.key: str(v[i]) for i, d in enumerate(by)}, figures(v[len(by) :]))
        for v in result
        if by or v[len(by)]  # with no dimension, an empty ledger gives no row
    ]
    time_keys = [d.key for d in by if d.is_time]
    other_keys = [d.key for d in by if not d.is_time]
    rows.sort(
        key=lambda r: (
            [r.keys[k] for k in time_keys],
            -r.figures.minutes_saved,
            [r.keys[k] for k in other_keys],
        )
    )
    return rows


@dataclass(frozen=True)
class BaselineUse:
    """One baseline snapshot and the runs that used it."""

    process_id: str
    version: str
    manual_minutes_per_item: float
    residual_minutes_per_item: float
    manual_minutes_per_run: float
    measured_by: str
    measured_on: str
    first_run: str
    last_run: str
    figures: Figures

    def as_dict(self) -> dict[str, Any]:
        return {
            "process_id": self.process_id,
            "version": self.version,
            "manual_minutes_per_item": self.manual_minutes_per_item,
            "residual_minutes_per_item": self.residual_minutes_per_item,
            "manual_minutes_per_run": self.manual_minutes_per_run,
            "measured_by": self.measured_by,
            "measured_on": self.measured_on,
            "first_run": self.first_run,
            "last_run": self.last_run,
            "runs": self.figures.runs,
            "succeeded": self.figures.succeeded,
            "hours_saved": round(self.figures.hours_saved, 4),
        }


def baselines(
    db: Database, scope: Scope, by: tuple[Dimension, ...] = ()
) -> list[tuple[dict[str, str], BaselineUse]]:
    """Which baseline each figure used: per group, process version and snapshot."""
    dialect = db.engine.dialect.name
    keys = [labelled(d, dialect) for d in by]
    pr = per_run(scope)
    snapshot = [
        RunRow.process_id,
        RunRow.version,
        RunRow.manual_minutes_per_item,
        RunRow.residual_minutes_per_item,
        RunRow.manual_minutes_per_run,
        RunRow.baseline_measured_by,
        RunRow.baseline_measured_on,
    ]
    query = (
        select(
            *keys,
            *snapshot,
            func.min(RunRow.started_at),
            func.max(RunRow.started_at),
            *figure_columns(pr),
        )
        .select_from(RunRow)
        .outerjoin(pr, pr.c.run_id == RunRow.id)
        .where(*scope.conditions())
        .group_by(*(d.sql(dialect) for d in by), *snapshot)
    )
    with db.session() as session:
        result = session.execute(query).all()
    uses = []
    n = len(keys)
    for v in result:
        first, last = (as_utc(x) for x in v[n + 7 : n + 9])
        use = BaselineUse(
            process_id=v[n],
            version=v[n + 1],
            manual_minutes_per_item=float(v[n + 2]),
            residual_minutes_per_item=float(v[n + 3]),
            manual_minutes_per_run=float(v[n + 4]),
            measured_by=v[n + 5],
            measured_on=v[n + 6],
            first_run=first.isoformat(timespec="seconds"),
            last_run=last.isoformat(timespec="seconds"),
            figures=figures(v[n + 9 :]),
        )
        uses.append(({d.key: str(v[i]) for i, d in enumerate(by)}, use))
    uses.sort(key=lambda u: (list(u[0].values()), u[1].process_id, u[1].first_run))
    return uses


def as_utc(value: Any) -> Any:
    """min()/max() lose the column type on SQLite: parse and mark as UTC (None stays)."""
    if value is None:
        return None
    if isinstance(value, str):
        value = dt.datetime.fromisoformat(value)
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)
