"""The report's SQL: one aggregation over the ledger, grouped by the chosen dimensions.

Shape (one statement): items are summed per run in a sub-select, and so is the
human work on queue items a human resolved; both are joined to their run, then
summed per group together with the run-level figures:

    SELECT <dimensions>, count(runs), sum(per_run.items), ..., sum(runs.run_minutes_saved),
           sum(human_work.resolved), sum(human_work.minutes)
    FROM runs
    LEFT JOIN (SELECT run_id, sum(counts), count(*), sum(attempts), ...
               FROM (SELECT items.*, <counts> FROM items [JOIN runs ... WHERE <scope>])
               GROUP BY run_id) per_run ON per_run.run_id = runs.id
    LEFT JOIN (SELECT run_id, count(*), sum(human_minutes) FROM queue_items
               WHERE status = 'resolved' GROUP BY run_id) human_work ON ...
    WHERE <scope> GROUP BY <dimensions>

``counts`` is 1 on the one row that counts a work item (see ``deciding``), so
items stay distinct and still add up across groups. Summing per run first keeps
run-level figures (per-run minutes, run counts) from being multiplied by the
number of items, without DISTINCT.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Select, and_, case, func, or_, select
from sqlalchemy.orm import aliased
from sqlalchemy.sql.elements import ColumnElement

from robo.reports.dimensions import Dimension, labelled
from robo.reports.figures import COUNTS, FIELDS, Figures, Row
from robo.storage.database import Database
from robo.storage.models import ItemRow, QueueItemRow, RunRow


@dataclass(frozen=True)
class Scope:
    """Which runs a report covers: by start time (UTC, half-open) and by labels."""

    since: dt.datetime | None = None
    until: dt.datetime | None = None
    processes: tuple[str, ...] = ()
    regions: tuple[str, ...] = ()
    applications: tuple[str, ...] = ()
    label: str = ""
    # Production runs only by default; () counts every run (test and demo ones too).
    purposes: tuple[str, ...] = ("production",)

    def conditions(
        self, runs: Any = RunRow, *, by_purpose: bool = True
    ) -> list[ColumnElement[bool]]:
        """The scope as SQL conditions on ``runs`` (the runs table or an alias of it);
        ``by_purpose=False`` leaves the purpose to the caller (the check filters it itself)."""
        where: list[ColumnElement[bool]] = []
        if by_purpose and self.purposes:
            where.append(runs.purpose.in_(self.purposes))
        if self.since is not None:
            where.append(runs.started_at >= self.since)
        if self.until is not None:
            where.append(runs.started_at < self.until)
        if self.processes:
            where.append(runs.process_id.in_(self.processes))
        if self.regions:
            where.append(runs.region.in_(self.regions))
        if self.applications:
            where.append(runs.application.in_(self.applications))
        return where

    def describe(self) -> str:
        """The scope in words, in the current locale (JSON carries the raw fields too)."""
        from robo.i18n import N_, _
        from robo.i18n.formats import date, period_label

        purposes = {"production": N_("production"), "test": N_("test"), "demo": N_("demo")}
        parts = []
        if self.label:
            parts.append(period_label(self.label))
        else:
            if self.since:
                parts.append(_("from %(date)s") % {"date": date(self.since)})
            if self.until:
                parts.append(_("before %(date)s") % {"date": date(self.until)})
        if self.processes:
            parts.append(_("process %(ids)s") % {"ids": ", ".join(self.processes)})
        if self.regions:
            parts.append(_("region %(ids)s") % {"ids": ", ".join(self.regions)})
        if self.applications:
            parts.append(_("application %(ids)s") % {"ids": ", ".join(self.applications)})
        if not self.purposes:
            parts.append(_("test and demo runs included"))
        elif self.purposes != ("production",):
            named = [_(purposes.get(p, p)) for p in self.purposes]
            parts.append(_("%(purposes)s runs") % {"purposes": _(" and ").join(named)})
        return " · ".join(parts) or _("all production runs")

    def includes(self, purpose: str) -> bool:
        """Whether runs of this purpose are in the scope."""
        return not self.purposes or purpose in self.purposes


def deciding(scope: Scope) -> ColumnElement[Any]:
    """1 on the item row that counts its work item in the scope, 0 on the others.

    A row outside queues is its own work item. A queue item counts once, with its
    credited success if that row is in the scope, else with its latest row there
    (the highest id: rows are written in the order outcomes happen).
    """
    other = aliased(ItemRow, name="other_item")
    later = select(other.id).where(
        other.queue_item_id == ItemRow.queue_item_id,
        or_(other.credited_queue_item_id.is_not(None), other.id > ItemRow.id),
    )
    other_run = aliased(RunRow, name="other_run")
    conditions = scope.conditions(other_run)
    if conditions:
        later = later.join(other_run, other_run.id == other.run_id).where(*conditions)
    return case(
        (ItemRow.queue_item_id.is_(None), 1),
        (ItemRow.credited_queue_item_id.is_not(None), 1),
        (~later.exists(), 1),
        else_=0,
    )


def _count(rows: Any, status: str) -> ColumnElement[Any]:
    return func.sum(case((and_(rows.c.counts == 1, rows.c.status == status), 1), else_=0))


def per_run(scope: Scope) -> Any:
    """Items summed per run, restricted to the scope's runs."""
    rows_query = select(
        ItemRow.run_id,
        ItemRow.status,
        ItemRow.attempts,
        ItemRow.minutes_saved,
        ItemRow.duration_seconds,
        deciding(scope).label("counts"),
    )
    conditions = scope.conditions()
    if conditions:
        rows_query = rows_query.join(RunRow, RunRow.id == ItemRow.run_id).where(*conditions)
    rows = rows_query.subquery("item_rows")
    query = select(
        rows.c.run_id.label("run_id"),
        func.sum(rows.c.counts).label("items"),
        func.count().label("item_rows"),
        func.sum(func.coalesce(rows.c.attempts, 0)).label("attempts"),
        _count(rows, "success").label("succeeded"),
        _count(rows, "business_exception").label("business"),
        _count(rows, "application_exception").label("application"),
        _count(rows, "skipped").label("skipped"),
        func.sum(rows.c.minutes_saved).label("minutes"),
        func.sum(func.coalesce(rows.c.duration_seconds, 0.0)).label("seconds"),
    ).group_by(rows.c.run_id)
    return query.subquery("per_run")


def human_work(scope: Scope) -> Any:
    """Queue items a human resolved, summed per run that last held them (the scope's)."""
    query = (
        select(
            QueueItemRow.run_id.label("run_id"),
            func.count(QueueItemRow.id).label("resolved"),
            func.sum(func.coalesce(QueueItemRow.human_minutes, 0.0)).label("minutes"),
        )
        .where(QueueItemRow.status == "resolved", QueueItemRow.run_id.is_not(None))
        .group_by(QueueItemRow.run_id)
    )
    conditions = scope.conditions()
    if conditions:
        query = query.join(RunRow, RunRow.id == QueueItemRow.run_id).where(*conditions)
    return query.subquery("human_work")


@dataclass(frozen=True)
class Sums:
    """The per-run sub-selects a figure query joins to ``runs``."""

    items: Any
    human: Any

    @classmethod
    def of(cls, scope: Scope) -> Sums:
        return cls(per_run(scope), human_work(scope))

    def join(self, query: Select[Any]) -> Select[Any]:
        return query.outerjoin(self.items, self.items.c.run_id == RunRow.id).outerjoin(
            self.human, self.human.c.run_id == RunRow.id
        )

    def columns(self) -> list[ColumnElement[Any]]:
        """The sums of one group, in the order of ``Figures``' fields."""
        pr, hw = self.items, self.human

        def total(column: Any, zero: Any = 0) -> ColumnElement[Any]:
            return func.coalesce(func.sum(column), zero)

        ok = func.coalesce(pr.c.succeeded, 0)
        failed = func.coalesce(pr.c.business, 0) + func.coalesce(pr.c.application, 0)
        human = ok * RunRow.residual_minutes_per_item + failed * RunRow.manual_minutes_per_item
        saved = func.coalesce(pr.c.minutes, 0.0) + RunRow.run_minutes_saved
        euros = case(
            (RunRow.hour_cost_eur.is_not(None), saved * RunRow.hour_cost_eur / 60.0), else_=0.0
        )
        return [
            func.count(RunRow.id),
            total(pr.c["items"]),
            total(pr.c.item_rows),
            total(pr.c.attempts),
            total(pr.c.succeeded),
            total(pr.c.business),
            total(pr.c.application),
            total(pr.c.skipped),
            total(pr.c.minutes, 0.0),
            total(RunRow.run_minutes_saved, 0.0),
            total(pr.c.seconds, 0.0),
            total(human, 0.0),
            total(hw.c.resolved),
            total(hw.c.minutes, 0.0),
            total(euros, 0.0),
            func.count(RunRow.hour_cost_eur),
        ]


def figures(values: Any) -> Figures:
    """A Figures from the values ``Sums.columns()`` selected."""
    values = list(values)
    if len(values) != len(FIELDS):
        raise ValueError(f"{len(values)} values for {len(FIELDS)} figures")
    sums: dict[str, Any] = {
        f.name: int(v) if f.name in COUNTS else float(v)
        for f, v in zip(FIELDS, values, strict=True)
    }
    return Figures(**sums)


def aggregate_query(db: Database, by: tuple[Dimension, ...], scope: Scope) -> Select[Any]:
    dialect = db.engine.dialect.name
    keys = [labelled(d, dialect) for d in by]
    sums = Sums.of(scope)
    query = sums.join(select(*keys, *sums.columns()).select_from(RunRow)).where(*scope.conditions())
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
    sums = Sums.of(scope)
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
        sums.join(
            select(
                *keys,
                *snapshot,
                func.min(RunRow.started_at),
                func.max(RunRow.started_at),
                *sums.columns(),
            ).select_from(RunRow)
        )
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


def check_known_processes(db: Database, process_ids: tuple[str, ...]) -> None:
    """A --process filter naming no process anywhere is a typo, not an empty report.

    Known means in the registry or in the ledger (runs imported from another region count).
    """
    from difflib import get_close_matches

    from robo.errors import ReportError
    from robo.storage.models import ProcessRow

    if not process_ids:
        return
    with db.session() as session:
        known = set(session.scalars(select(ProcessRow.id))) | set(
            session.scalars(select(RunRow.process_id).distinct())
        )
    for process_id in process_ids:
        if process_id not in known:
            close = get_close_matches(process_id, sorted(known), n=3)
            hint = f"did you mean {', '.join(close)}?" if close else "`robo processes` lists them"
            raise ReportError(f"--process {process_id}: no such process here; {hint}")
