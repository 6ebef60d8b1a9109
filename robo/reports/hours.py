"""Hours saved by process: a sum over item rows plus the per-run savings."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from sqlalchemy import case, func, select

from robo.storage.database import Database
from robo.storage.models import ItemRow, RunRow


@dataclass(frozen=True)
class ProcessHours:
    process_id: str
    runs: int
    items: int
    succeeded: int
    business_exceptions: int
    application_exceptions: int
    minutes_saved: float

    @property
    def hours_saved(self) -> float:
        return self.minutes_saved / 60


def hours_by_process(
    db: Database, since: dt.datetime | None = None, until: dt.datetime | None = None
) -> list[ProcessHours]:
    """One row per process that ran in [since, until), by run start time."""

    def window(query: Any) -> Any:
        if since is not None:
            query = query.where(RunRow.started_at >= since)
        if until is not None:
            query = query.where(RunRow.started_at < until)
        return query

    def count(status: str) -> Any:
        return func.sum(case((ItemRow.status == status, 1), else_=0))

    items_q = window(
        select(
            RunRow.process_id,
            func.count(ItemRow.id),
            count("success"),
            count("business_exception"),
            count("application_exception"),
            func.coalesce(func.sum(ItemRow.minutes_saved), 0.0),
        )
        .join(ItemRow, ItemRow.run_id == RunRow.id)
        .group_by(RunRow.process_id)
    )
    runs_q = window(
        select(
            RunRow.process_id, func.count(RunRow.id), func.sum(RunRow.run_minutes_saved)
        ).group_by(RunRow.process_id)
    )
    with db.session() as session:
        per_items = {row[0]: row[1:] for row in session.execute(items_q)}
        per_runs = {row[0]: row[1:] for row in session.execute(runs_q)}
    result = []
    for process_id in sorted(per_runs):
        runs, run_minutes = per_runs[process_id]
        items, ok, business, application, item_minutes = per_items.get(
            process_id, (0, 0, 0, 0, 0.0)
        )
        result.append(
            ProcessHours(
                process_id=process_id,
                runs=runs,
                items=items,
                succeeded=ok or 0,
                business_exceptions=business or 0,
                application_exceptions=application or 0,
                minutes_saved=float(item_minutes or 0) + float(run_minutes or 0),
            )
        )
    result.sort(key=lambda r: (-r.minutes_saved, r.process_id))
    return result
