"""Drill-down: the runs and items behind a figure (``robo report ... --items``).

The scope is the same as the report's, so the runs listed here add up to the
figure the manager was looking at.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select

from robo.ledger import ItemDetail
from robo.reports.figures import Figures
from robo.reports.queries import Scope, Sums, figures
from robo.storage.database import Database
from robo.storage.models import ItemRow, RunRow


@dataclass(frozen=True)
class RunLine:
    run_id: int
    process_id: str
    version: str
    region: str
    application: str
    status: str
    started_at: str
    baseline: str
    figures: Figures

    def as_dict(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "process_id": self.process_id,
            "version": self.version,
            "region": self.region,
            "application": self.application,
            "status": self.status,
            "started_at": self.started_at,
            "baseline": self.baseline,
            **self.figures.as_dict(),
        }


@dataclass(frozen=True)
class ItemLine:
    """An item row as the ledger shows it, with the run and process it belongs to."""

    run_id: int
    process_id: str
    item: ItemDetail
    queue_item_id: int | None = None  # None: an item from outside queues (imported)
    credited: bool = False  # the queue item's one success that earns its minutes

    def as_dict(self) -> dict[str, Any]:
        i = self.item
        return {
            "run_id": self.run_id, "process_id": self.process_id, "position": i.position,
            "reference": i.reference, "queue_item_id": self.queue_item_id,
            "credited": self.credited, "status": i.status, "attempts": i.attempts,
            "started_at": i.started_at, "duration_seconds": i.duration_seconds,
            "minutes_saved": i.minutes_saved, "error": i.error,
        }  # fmt: skip


@dataclass(frozen=True)
class DrillDown:
    runs: list[RunLine]
    items: list[ItemLine]
    items_total: int

    def as_dict(self) -> dict[str, Any]:
        return {
            "runs": [r.as_dict() for r in self.runs],
            "items": [i.as_dict() for i in self.items],
            "items_total": self.items_total,
        }


def baseline_text(manual: float, residual: float, per_run: float, by: str, on: str) -> str:
    return f"{manual:g} - {residual:g} min/item + {per_run:g} min/run ({by}, {on})"


def drill_down(db: Database, scope: Scope, *, limit: int | None = None) -> DrillDown:
    """Every run of the scope with its figures, and its items (the first ``limit``)."""
    sums = Sums.of(scope)
    run_query = (
        sums.join(select(RunRow, *sums.columns()))
        .where(*scope.conditions())
        .group_by(RunRow.id)
        .order_by(RunRow.started_at, RunRow.id)
    )
    item_query = (
        select(ItemRow, RunRow.process_id)
        .join(RunRow, RunRow.id == ItemRow.run_id)
        .where(*scope.conditions())
        .order_by(RunRow.started_at, RunRow.id, ItemRow.position)
    )
    count_query = (
        select(func.count(ItemRow.id))
        .join(RunRow, RunRow.id == ItemRow.run_id)
        .where(*scope.conditions())
    )
    if limit is not None:
        item_query = item_query.limit(limit)
    with db.session() as session:
        runs = [
            RunLine(
                run_id=run.id,
                process_id=run.process_id,
                version=run.version,
                region=run.region,
                application=run.application,
                status=run.status,
                started_at=run.started_at.isoformat(timespec="seconds"),
                baseline=baseline_text(
                    run.manual_minutes_per_item,
                    run.residual_minutes_per_item,
                    run.manual_minutes_per_run,
                    run.baseline_measured_by,
                    run.baseline_measured_on,
                ),
                figures=figures(values),
            )
            for run, *values in session.execute(run_query)
        ]
        items = [
            ItemLine(
                item.run_id,
                process_id,
                ItemDetail.of(item),
                queue_item_id=item.queue_item_id,
                credited=item.credited_queue_item_id is not None,
            )
            for item, process_id in session.execute(item_query)
        ]
        total = int(session.scalar(count_query) or 0)
    return DrillDown(runs=runs, items=items, items_total=total)
