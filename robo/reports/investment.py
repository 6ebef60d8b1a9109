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
    """One process, one region, or the programme (``process_id`` and ``region`` None)."""

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
    region: str | None = None

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
            "region": self.region,
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


@dataclass(frozen=True)
class _Run:
    start: dt.datetime
    end: dt.datetime
    hour_cost: float | None
    minutes: float

    @property
    def euros(self) -> float:
        return self.minutes / 60 * (self.hour_cost or 0.0)


@dataclass(frozen=True)
class _Share:
    """One process in one region: its runs, its running costs from its own go-live in
    that region, and the build cost if this region built it."""

    process_id: str
    region: str
    cost: dict[str, float]
    runs: list[_Run]
    builds: bool
    process_go_live: dt.datetime | None  # the build is due from the process's first run

    @property
    def per_year(self) -> float:
        return float(self.cost.get("run_eur_per_year", 0)) if self.runs else 0.0

    @property
    def build_eur(self) -> float:
        return float(self.cost.get("build_eur", 0)) if self.builds else 0.0

    @property
    def go_live(self) -> dt.datetime | None:
        return self.runs[0].start if self.runs else None

    def due(self, at: dt.datetime) -> float:
        """What this share has cost by ``at``: its build once the process is live, plus
        the running costs accrued in this region."""
        built = self.process_go_live is not None and self.process_go_live <= at
        return (self.build_eur if built else 0.0) + _accrued(self.per_year, self.go_live, at)


def investments(
    db: Database, now: dt.datetime, processes: tuple[str, ...] = ()
) -> tuple[list[Investment], Investment | None]:
    """Each process with a cost (of ``processes``, if given), and the programme (those
    processes together)."""
    shares = _shares(db, processes)
    if not shares:
        return [], None
    ids = sorted({s.process_id for s in shares})
    each = [_weigh([s for s in shares if s.process_id == pid], now, process_id=pid) for pid in ids]
    return each, _weigh(shares, now)


def investments_by_region(
    db: Database, now: dt.datetime, processes: tuple[str, ...] = ()
) -> list[Investment]:
    """Each region weighed the same way: what its runs saved, the running costs of the
    robots it runs, and the build of those it built (a replica's build is its origin's)."""
    shares = _shares(db, processes)
    regions = sorted({s.region for s in shares if s.region})  # "": a robot never run
    return [_weigh([s for s in shares if s.region == r], now, region=r) for r in regions]


def _shares(db: Database, processes: tuple[str, ...]) -> list[_Share]:
    found = {p: c for p, c in costs(db).items() if not processes or p in processes}
    if not found:
        return []
    per_item = (
        select(ItemRow.run_id, func.sum(ItemRow.minutes_saved).label("minutes"))
        .group_by(ItemRow.run_id)
        .subquery()
    )
    query = (
        select(
            RunRow.process_id, RunRow.region, RunRow.origin_region, RunRow.started_at,
            RunRow.finished_at, RunRow.hour_cost_eur,
            func.coalesce(per_item.c.minutes, 0.0) + RunRow.run_minutes_saved,
        )
        .outerjoin(per_item, per_item.c.run_id == RunRow.id)
        .where(RunRow.purpose == "production", RunRow.process_id.in_(found))
        .order_by(RunRow.started_at, RunRow.id)
    )  # fmt: skip
    runs: dict[tuple[str, str], list[_Run]] = defaultdict(list)
    builders: dict[str, str] = {}
    with db.session() as session:
        for pid, region, origin, started, finished, cost, minutes in session.execute(query):
            start = as_utc(started)
            assert start is not None
            runs[(pid, region)].append(_Run(start, as_utc(finished) or start, cost, float(minutes)))
            # The region that built it: a replica names its origin; else the first to run it.
            builders[pid] = origin or builders.get(pid) or region
    shares = []
    for pid in sorted(found):
        regions = {r for p, r in runs if p == pid}
        builder = builders.get(pid)
        first = min((runs[(pid, r)][0].start for r in regions), default=None)
        for region in sorted(regions | ({builder} if builder else set())):
            shares.append(_Share(pid, region, found[pid], runs.get((pid, region), []),
                                 builds=region == builder, process_go_live=first))  # fmt: skip
        if builder is None:  # never run: its build is the programme's, due from go-live
            shares.append(_Share(pid, "", found[pid], [], builds=True, process_go_live=None))
    return shares


def _accrued(per_year: float, since: dt.datetime | None, at: dt.datetime) -> float:
    if since is None or at <= since:
        return 0.0
    return per_year * (at - since).total_seconds() / 86400 / DAYS_PER_YEAR


def _weigh(
    shares: list[_Share],
    now: dt.datetime,
    *,
    process_id: str | None = None,
    region: str | None = None,
) -> Investment:
    """Shares weighed together; the payback is the first run end at which the euros saved
    so far reach everything due by then (builds of live processes, running costs)."""
    events = sorted((run.end, run.euros) for share in shares for run in share.runs)
    saved, payback = 0.0, None
    for end, euros in events:
        saved += euros
        if payback is None and saved > 0 and saved >= sum(s.due(end) for s in shares):
            payback = end
    every_run = [run for share in shares for run in share.runs]
    return Investment(
        process_id=process_id, region=region,
        build_days=sum(float(s.cost.get("build_days", 0)) for s in shares if s.builds),
        build_eur=sum(s.build_eur for s in shares),
        run_eur_per_year=sum(s.per_year for s in shares),
        go_live=min((s.go_live for s in shares if s.go_live), default=None),
        euros_saved=saved,
        run_eur_so_far=sum(_accrued(s.per_year, s.go_live, now) for s in shares),
        payback=payback, as_of=now,
        costed=all(run.hour_cost is not None for run in every_run),
    )  # fmt: skip
