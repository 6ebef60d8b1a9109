"""``robo report --check``: recompute every figure from the item rows, in Python.

This path shares nothing with the SQL aggregation but the tables: it reads each
run and each item of the scope, labels groups with Python's own calendar, and
sums. It also checks that every stored saving follows from the baseline
snapshot of its run. Any difference is a failure, listed.
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass, field, fields
from typing import Any

from sqlalchemy import select

from robo.errors import ReportCheckFailed
from robo.reports.figures import Figures, Row
from robo.reports.report import Report
from robo.storage.database import Database
from robo.storage.models import ItemRow, RunRow

SHOWN = 20


# The sums of one group under Figures' own field names; each starts at 0.
_Sums = defaultdict[str, Any]


@dataclass(frozen=True)
class CheckResult:
    runs: int
    items: int
    groups: int
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def text(self) -> str:
        if self.ok:
            return (
                f"check passed: {self.groups} group(s) and the totals recomputed from "
                f"{self.runs:,} run(s) and {self.items:,} item row(s); every figure matches"
            )
        shown = self.problems[:SHOWN]
        more = len(self.problems) - len(shown)
        lines = [f"check FAILED: {len(self.problems)} mismatch(es)", *(f"  {p}" for p in shown)]
        if more:
            lines.append(f"  ... and {more} more")
        return "\n".join(lines)


def _close(a: float, b: float) -> bool:
    return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-6)


def _compare(where: str, expected: Figures, got: Figures, problems: list[str]) -> None:
    for f in fields(Figures):
        want, have = getattr(expected, f.name), getattr(got, f.name)
        if not _close(float(want), float(have)):
            problems.append(f"{where}: {f.name} is {have:g} in the report, {want:g} from item rows")


def recompute(db: Database, report: Report) -> CheckResult:
    """Recompute the report from rows; returns every mismatch found."""
    problems: list[str] = []
    runs: dict[int, tuple[tuple[str, ...], RunRow]] = {}
    groups: dict[tuple[str, ...], _Sums] = {}
    with db.session() as session:
        query = select(RunRow).where(*report.scope.conditions())
        for run in session.scalars(query.execution_options(yield_per=2000)):
            key = tuple(d.label(run) for d in report.by)
            runs[run.id] = (key, run)
            sums = groups.setdefault(key, defaultdict(int))
            sums["runs"] += 1
            sums["run_minutes_saved"] += run.run_minutes_saved
        items_query = (
            select(
                ItemRow.run_id,
                ItemRow.reference,
                ItemRow.status,
                ItemRow.minutes_saved,
                ItemRow.duration_seconds,
            )
            .join(RunRow, RunRow.id == ItemRow.run_id)
            .where(*report.scope.conditions())
        )
        successes: dict[int, int] = {}
        item_count = 0
        for run_id, reference, status, minutes, seconds in session.execute(
            items_query.execution_options(yield_per=10000)
        ):
            item_count += 1
            key, run = runs[run_id]
            sums = groups[key]
            sums["items"] += 1
            sums["item_minutes_saved"] += minutes
            sums["robot_seconds"] += seconds or 0.0
            if status == "success":
                sums["succeeded"] += 1
                successes[run_id] = successes.get(run_id, 0) + 1
                sums["human_minutes"] += run.residual_minutes_per_item
                due = run.manual_minutes_per_item - run.residual_minutes_per_item
            else:
                if status == "business_exception":
                    sums["business_exceptions"] += 1
                else:
                    sums["application_exceptions"] += 1
                sums["human_minutes"] += run.manual_minutes_per_item
                due = 0.0
            if not _close(minutes, due):
                problems.append(
                    f"run {run_id} item {reference}: records {minutes:g} min saved, "
                    f"its run's baseline gives {due:g} for a {status}"
                )
        for run_id, (_key, run) in runs.items():
            due = run.manual_minutes_per_run if run.finished_at and successes.get(run_id) else 0.0
            if not _close(run.run_minutes_saved, due):
                problems.append(
                    f"run {run_id}: records {run.run_minutes_saved:g} per-run minutes saved, "
                    f"its baseline gives {due:g}"
                )
        productive = [runs[run_id][1] for run_id in successes]
    for name, want, have in (
        (
            "processes in production",
            len({r.process_id for r in productive}),
            report.headline.processes,
        ),
        ("regions", len({r.region for r in productive}), report.headline.regions),
    ):
        if want != have:
            problems.append(f"headline: {have} {name} in the report, {want} from item rows")
    _compare_rows(report, groups, problems)
    return CheckResult(runs=len(runs), items=item_count, groups=len(groups), problems=problems)


def _compare_rows(
    report: Report, groups: dict[tuple[str, ...], _Sums], problems: list[str]
) -> None:
    reported: dict[tuple[str, ...], Row] = {
        tuple(row.keys[d.key] for d in report.by): row for row in report.rows
    }
    for key in sorted(set(groups) | set(reported)):
        where = ", ".join(f"{d.key}={v}" for d, v in zip(report.by, key, strict=True))
        if key not in reported:
            problems.append(f"{where}: missing from the report")
        elif key not in groups:
            problems.append(f"{where}: in the report but no run of the scope belongs to it")
        else:
            _compare(where, Figures(**groups[key]), reported[key].figures, problems)
    everything = sum((Figures(**sums) for sums in groups.values()), Figures())
    _compare("total", everything, report.totals, problems)
    _compare("headline", everything, report.headline.totals, problems)


def check(db: Database, report: Report) -> CheckResult:
    """Like ``recompute`` but raises ReportCheckFailed on the first sign of a mismatch."""
    result = recompute(db, report)
    if not result.ok:
        raise ReportCheckFailed(result.text)
    return result
