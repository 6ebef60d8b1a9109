"""Hours saved by process: the report grouped by process, in the shape older callers use."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from robo.reports.dimensions import dimensions
from robo.reports.queries import Scope, aggregate
from robo.storage.database import Database


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
    db: Database,
    since: dt.datetime | None = None,
    until: dt.datetime | None = None,
    purposes: tuple[str, ...] = ("production",),
) -> list[ProcessHours]:
    """One row per process that ran in [since, until), by run start time, most hours first."""
    scope = Scope(since=since, until=until, purposes=purposes)
    rows = aggregate(db, dimensions(["process"]), scope)
    return [
        ProcessHours(
            process_id=r.keys["process_id"],
            runs=r.figures.runs,
            items=r.figures.items,
            succeeded=r.figures.succeeded,
            business_exceptions=r.figures.business_exceptions,
            application_exceptions=r.figures.application_exceptions,
            minutes_saved=r.figures.minutes_saved,
        )
        for r in rows
    ]
