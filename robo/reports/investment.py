"""Money: what each robot cost (its definition's ``cost``), what it saved in euros
(minutes × the hour cost each run recorded), the net and the payback date.

Always over the whole production history of each process, whatever the report's
period: a build cost is paid once, so it is weighed against everything saved since
go-live. Running costs accrue day by day from go-live. The payback date is the first
run end at which the euros saved reach the build cost plus the running costs accrued
by then; a process that has not got there says how much of its cost is recovered.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select

from robo.reports.queries import as_utc
from robo.storage.database import Database
from robo.storage.models import ItemRow, ProcessRow, RunRow, VersionRow

DAYS_PER_YEAR = 365.25


@dataclass(frozen=True)
class Investment:
    """One process (or the programme, ``process_id`` None) weighed in euros."""

    process_id: str | None
    build_days: float
    build_eur: float
    run_eur_per_year: float
    go_live: dt.datetime | None
    euros_saved: float
    run_eur_so_far: float
    payback: dt.datetime | None
    as_of: dt.datetime
    costed: bool  # every production run recorded an hour cost

    @property
    def cost_so_far(self) -> float:
        return self.build_eur + self.run_eur_so_far

    @property
    def net(self) -> float:
        return self.euros_saved - self.cost_so_far

    @property
    def recovered(self) -> float | None:
        """Share of the cost so far that the savings cover (None: nothing to recover)."""
        return self.euros_saved / self.cost_so_far if self.cost_so_far else None

    def as_dict(self) -> dict[str, Any]:
        rate = self.recovered
        return {
            "process_id": self.process_id,
            "build_days": self.build_days,
            "build_eur": round(self.build_eur, 2),
            "run_eur_per_year": round(self.run_eur_per_year, 2),
            "go_live": self.go_live.isoformat(timespec="seconds") if self.go_live else None,
            "euros_saved": round(self.euros_saved, 2),
            "run_eur_so_far": round(self.run_eur_so_far, 2),
            "cost_so_far": round(self.cost_so_far, 2),
            "net": round(self.net, 2),
            "recovered": None if rate is None else round(rate, 4),
            "payback": self.payback.isoformat(timespec="seconds") if self.payback else None,
            "every_run_costed": self.costed,
        }


def costs(db: Database) -> dict[str, dict[str, float]]:
    """The ``cost`` block of each process's active version, where it has one."""
    query = select(ProcessRow.id, VersionRow.definition).join(
        VersionRow, VersionRow.id == ProcessRow.active_version_id
    )
    with db.session() as session:
        return {
            pid: definition["cost"]
            for pid, definition in session.execute(query)
            if isinstance(definition, dict) and definition.get("cost")
        }


def investments(
    db: Database, now: dt.datetime, processes: tuple[str, ...] = ()
) -> tuple[list[Investment], Investment | None]:
    """Each process with a cost (of ``processes``, if given), and the programme (those
    processes together)."""
    found = {p: c for p, c in costs(db).items() if not processes or p in processes}
    if not found:
        return [], None
    per_item = (
        select(ItemRow.run_id, func.sum(ItemRow.minutes_saved).label("minutes"))
        .group_by(ItemRow.run_id)
        .subquery()
    )
    query = (
        select(
            RunRow.process_id, RunRow.started_at, RunRow.finished_at, RunRow.hour_cost_eur,
            func.coalesce(per_item.c.minutes, 0.0) + RunRow.run_minutes_saved,
        )
        .outerjoin(per_item, per_item.c.run_id == RunRow.id)
        .where(RunRow.purpose == "production", RunRow.process_id.in_(found))
        .order_by(RunRow.started_at, RunRow.id)
    )  # fmt: skip
    runs: dict[str, list[tuple[dt.datetime, dt.datetime, float | None, float]]] = defaultdict(list)
    with db.session() as session:
        for pid, started, finished, cost, minutes in session.execute(query):
            start = as_utc(started)
            assert start is not None
            runs[pid].append((start, as_utc(finished) or start, cost, float(minutes)))
    each = [_weigh(pid, found[pid], runs.get(pid, []), now) for pid in sorted(found)]
    return each, _programme(each, runs, now)


def _accrued(per_year: float, since: dt.datetime | None, at: dt.datetime) -> float:
    if since is None or at <= since:
        return 0.0
    return per_year * (at - since).total_seconds() / 86400 / DAYS_PER_YEAR


def _weigh(
    pid: str | None,
    cost: dict[str, float],
    runs: list[tuple[dt.datetime, dt.datetime, float | None, float]],
    now: dt.datetime,
) -> Investment:
    build, per_year = float(cost.get("build_eur", 0)), float(cost.get("run_eur_per_year", 0))
    go_live = runs[0][0] if runs else None
    saved, payback = 0.0, None
    for _start, end, hour_cost, minutes in sorted(runs, key=lambda r: r[1]):
        saved += minutes / 60 * (hour_cost or 0.0)
        if payback is None and saved >= build + _accrued(per_year, go_live, end) and saved > 0:
            payback = end
    return Investment(
        process_id=pid, build_days=float(cost.get("build_days", 0)), build_eur=build,
        run_eur_per_year=per_year, go_live=go_live, euros_saved=saved,
        run_eur_so_far=_accrued(per_year, go_live, now), payback=payback, as_of=now,
        costed=all(r[2] is not None for r in runs),
    )  # fmt: skip


def _programme(
    each: list[Investment],
    runs: dict[str, list[tuple[dt.datetime, dt.datetime, float | None, float]]],
    now: dt.datetime,
) -> Investment:
    """All costed processes as one: builds added, running costs each from its go-live."""
    events = sorted((r[1], r[2], r[3]) for pid_runs in runs.values() for r in pid_runs)
    saved, payback = 0.0, None
    for end, hour_cost, minutes in events:
        saved += minutes / 60 * (hour_cost or 0.0)
        due = sum(
            i.build_eur + _accrued(i.run_eur_per_year, i.go_live, end)
            for i in each
            if i.go_live is not None and i.go_live <= end
        )
        if payback is None and saved > 0 and saved >= due:
            payback = end
    return Investment(
        process_id=None, build_days=sum(i.build_days for i in each),
        build_eur=sum(i.build_eur for i in each),
        run_eur_per_year=sum(i.run_eur_per_year for i in each),
        go_live=min((i.go_live for i in each if i.go_live), default=None),
        euros_saved=sum(i.euros_saved for i in each),
        run_eur_so_far=sum(i.run_eur_so_far for i in each), payback=payback, as_of=now,
        costed=all(i.costed for i in each),
    )  # fmt: skip
