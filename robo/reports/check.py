"""``robo report --check``: recompute every figure from the item rows, in Python.

This path shares nothing with the SQL aggregation but the tables: it reads each
run and each item of the scope, labels groups with Python's own calendar, picks
each work item's deciding row itself, and sums. It also checks that every stored
saving follows from the baseline snapshot of its run and from the queue rules:

- a queue item earns minutes once: only its credited success (the row holding
  ``credited_queue_item_id``) records minutes, and at most one row per queue
  item records any;
- a credited row is a success of that very queue item;
- a skipped item ("nothing to do") records 0 minutes and is never credited;
- a queue item a human resolved is never credited robot minutes.

Any difference is a failure, listed. Rows from before queues are the one
exception: migration 0004 linked them to queue items and credited only the
first success of each; a later success of the same item keeps the minutes it
recorded then (history is not rewritten), so it is named in a warning, with its
minutes, rather than failed.
"""

from __future__ import annotations

import datetime as dt
import math
from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field, fields
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from robo.errors import ReportCheckFailed
from robo.reports.figures import Figures, Row
from robo.reports.report import Report
from robo.storage.database import Database
from robo.storage.models import ItemRow, QueueEventRow, QueueItemRow, RunRow

SHOWN = 20
BEFORE_QUEUES = "before queues"
"""``queue_items.source`` of the items migration 0004 made from existing item rows."""
STATUSES = ("success", "business_exception", "application_exception", "skipped")
_FIGURE = {
    "success": "succeeded",
    "business_exception": "business_exceptions",
    "application_exception": "application_exceptions",
    "skipped": "skipped",
}

# The sums of one group under Figures' own field names; each starts at 0.
_Sums = defaultdict[str, Any]


@dataclass(frozen=True)
class CheckResult:
    runs: int
    items: int
    groups: int
    problems: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    item_rows: int = 0
    attempts: int = 0
    resolved_by_human: int = 0

    @property
    def ok(self) -> bool:
        return not self.problems

    def as_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "runs": self.runs,
            "items": self.items,
            "item_rows": self.item_rows,
            "attempts": self.attempts,
            "resolved_by_human": self.resolved_by_human,
            "groups": self.groups,
            "problems": self.problems,
            "warnings": self.warnings,
        }

    @property
    def text(self) -> str:
        if self.ok:
            lines = [
                f"check passed: {self.groups} group(s) and the totals recomputed from "
                f"{self.runs:,} run(s) and {self.item_rows:,} item row(s) "
                f"({self.items:,} work item(s), {self.attempts:,} attempt(s); "
                f"{self.resolved_by_human:,} resolved by a human); every figure matches"
            ]
        else:
            lines = [f"check FAILED: {len(self.problems)} mismatch(es)"]
            lines += _shown(self.problems)
        if self.warnings:
            lines.append(f"{len(self.warnings)} warning(s):")
            lines += _shown(self.warnings)
        return "\n".join(lines)


def _shown(lines: list[str]) -> list[str]:
    shown = [f"  {line}" for line in lines[:SHOWN]]
    if len(lines) > SHOWN:
        shown.append(f"  ... and {len(lines) - SHOWN} more")
    return shown


def _close(a: float, b: float) -> bool:
    return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-6)


def _compare(where: str, expected: Figures, got: Figures, problems: list[str]) -> None:
    for f in fields(Figures):
        want, have = getattr(expected, f.name), getattr(got, f.name)
        if not _close(float(want), float(have)):
            problems.append(f"{where}: {f.name} is {have:g} in the report, {want:g} from item rows")


@dataclass(frozen=True)
class _Line:
    """What the check keeps of an item row linked to a queue item."""

    id: int
    run_id: int
    reference: str
    status: str
    minutes: float
    credited: bool


@dataclass
class _Ledger:
    """The scope's rows as the check reads them."""

    runs: dict[int, tuple[tuple[str, ...], RunRow]]
    groups: dict[tuple[str, ...], _Sums]
    problems: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    deciding: dict[int, _Line] = field(default_factory=dict)  # queue item -> its deciding row
    paid: dict[int, list[_Line]] = field(default_factory=dict)  # queue item -> rows with minutes
    successes: dict[int, int] = field(default_factory=dict)  # run -> success rows
    productive: set[int] = field(default_factory=set)  # runs with a deciding success
    item_rows: int = 0
    items: int = 0
    attempts: int = 0
    resolved: int = 0

    def count_item(self, run_id: int, status: str) -> None:
        """One work item, counted with its deciding row."""
        key, run = self.runs[run_id]
        sums = self.groups[key]
        sums["items"] += 1
        self.items += 1
        if status not in _FIGURE:
            return
        sums[_FIGURE[status]] += 1
        if status == "success":
            sums["human_minutes"] += run.residual_minutes_per_item
            self.productive.add(run_id)
        elif status != "skipped":
            sums["human_minutes"] += run.manual_minutes_per_item


def recompute(db: Database, report: Report) -> CheckResult:
    """Recompute the report from rows; returns every mismatch found."""
    with db.session() as session:
        ledger = _read_runs(session, report)
        _read_items(session, report, ledger)
        for line in ledger.deciding.values():
            ledger.count_item(line.run_id, line.status)
        _check_credits(session, report, ledger)
        _read_human_work(session, report, ledger)
        _check_run_minutes(ledger)
    productive = [ledger.runs[run_id][1] for run_id in ledger.productive]
    for name, want, have in (
        (
            "processes in production",
            len({r.process_id for r in productive}),
            report.headline.processes,
        ),
        ("regions", len({r.region for r in productive}), report.headline.regions),
    ):
        if want != have:
            ledger.problems.append(f"headline: {have} {name} in the report, {want} from item rows")
    _compare_rows(report, ledger.groups, ledger.problems)
    _check_annualised(report, ledger)
    return CheckResult(
        runs=len(ledger.runs),
        items=ledger.items,
        groups=len(ledger.groups),
        problems=ledger.problems,
        warnings=ledger.warnings,
        item_rows=ledger.item_rows,
        attempts=ledger.attempts,
        resolved_by_human=ledger.resolved,
    )


def _read_runs(session: Session, report: Report) -> _Ledger:
    runs: dict[int, tuple[tuple[str, ...], RunRow]] = {}
    groups: dict[tuple[str, ...], _Sums] = {}
    # The purpose is filtered here, not in SQL: a report that counted a test run fails.
    query = select(RunRow).where(*report.scope.conditions(by_purpose=False))
    for run in session.scalars(query.execution_options(yield_per=2000)):
        if not report.scope.includes(run.purpose):
            continue
        key = tuple(d.label(run) for d in report.by)
        runs[run.id] = (key, run)
        sums = groups.setdefault(key, defaultdict(int))
        sums["runs"] += 1
        sums["run_minutes_saved"] += run.run_minutes_saved
        if run.hour_cost_eur is not None:  # euros at the cost this very run recorded
            sums["costed_runs"] += 1
            sums["euros_saved"] += run.run_minutes_saved / 60 * run.hour_cost_eur
    return _Ledger(runs, groups)


def _read_items(session: Session, report: Report, ledger: _Ledger) -> None:
    query = (
        select(
            ItemRow.id,
            ItemRow.run_id,
            ItemRow.reference,
            ItemRow.status,
            ItemRow.attempts,
            ItemRow.minutes_saved,
            ItemRow.duration_seconds,
            ItemRow.queue_item_id,
            ItemRow.credited_queue_item_id,
        )
        .join(RunRow, RunRow.id == ItemRow.run_id)
        .where(*report.scope.conditions(by_purpose=False))
    )
    problems = ledger.problems
    for (
        row_id,
        run_id,
        reference,
        status,
        attempts,
        minutes,
        seconds,
        queue_item,
        credit,
    ) in session.execute(query.execution_options(yield_per=10000)):
        if run_id not in ledger.runs:
            continue  # a run of another purpose
        key, run = ledger.runs[run_id]
        sums = ledger.groups[key]
        ledger.item_rows += 1
        ledger.attempts += attempts or 0
        sums["item_rows"] += 1
        sums["attempts"] += attempts or 0
        sums["item_minutes_saved"] += minutes
        sums["robot_seconds"] += seconds or 0.0
        if run.hour_cost_eur is not None:
            sums["euros_saved"] += minutes / 60 * run.hour_cost_eur
        where = f"run {run_id} item {reference}"
        if status not in STATUSES:
            problems.append(f"{where}: unknown status '{status}' (one of {', '.join(STATUSES)})")
        if status == "success":
            ledger.successes[run_id] = ledger.successes.get(run_id, 0) + 1
        if credit is not None and status != "success":
            problems.append(
                f"{where}: a {status} holds queue item {credit}'s credit; "
                "only a success earns an item its minutes"
            )
        if credit is not None and credit != queue_item:
            problems.append(
                f"{where}: holds queue item {credit}'s credit but is an outcome of "
                f"{'no queue item' if queue_item is None else f'queue item {queue_item}'}"
            )
        if queue_item is None:
            ledger.count_item(run_id, status)
        else:
            line = _Line(row_id, run_id, reference, status, minutes, credit is not None)
            best = ledger.deciding.get(queue_item)
            if best is None or line.credited or (not best.credited and line.id > best.id):
                ledger.deciding[queue_item] = line
            if minutes > 0:
                ledger.paid.setdefault(queue_item, []).append(line)
        earned = run.manual_minutes_per_item - run.residual_minutes_per_item
        if status == "skipped":
            if not _close(minutes, 0.0):
                problems.append(
                    f"{where}: skipped (nothing to do) but records {minutes:g} min saved; "
                    "a skipped item saves 0"
                )
        elif status != "success":
            _baseline(problems, where, minutes, 0.0, status)
        elif queue_item is None or credit is not None:
            _baseline(problems, where, minutes, earned, status)
        # An uncredited success of a queue item should record 0: _check_credits judges
        # those that record minutes, with the other rows of their queue item.


def _baseline(problems: list[str], where: str, minutes: float, due: float, status: str) -> None:
    if not _close(minutes, due):
        problems.append(
            f"{where}: records {minutes:g} min saved, "
            f"its run's baseline gives {due:g} for a {status}"
        )


def _chunks(values: Iterable[int], size: int = 500) -> Iterator[list[int]]:
    ordered = sorted(set(values))
    for start in range(0, len(ordered), size):
        yield ordered[start : start + size]


@dataclass(frozen=True)
class _QueueItem:
    queue: str
    reference: str
    status: str
    before_queues: bool  # made by migration 0004 from the item rows of that time

    def label(self, qi: int) -> str:
        return f"queue item {qi} ({self.reference} in queue {self.queue})"


def _check_credits(session: Session, report: Report, ledger: _Ledger) -> None:
    """Minutes once per queue item, on its credited success; none for human work."""
    resolved = set(
        session.scalars(
            select(QueueItemRow.id)
            .distinct()
            .join(ItemRow, ItemRow.queue_item_id == QueueItemRow.id)
            .join(RunRow, RunRow.id == ItemRow.run_id)
            .where(
                QueueItemRow.status == "resolved",
                or_(ItemRow.minutes_saved > 0, ItemRow.credited_queue_item_id.is_not(None)),
                *report.scope.conditions(),
            )
        )
    )
    suspects = resolved | {ledger_qi for ledger_qi, _ in _extras(ledger)}
    items: dict[int, _QueueItem] = {}
    events: set[tuple[int, int]] = set()  # (queue item, run): that run took or ended it
    holders: dict[int, int] = {}  # queue item -> the run whose row holds its credit
    for chunk in _chunks(suspects):
        for qi, queue, reference, status, source in session.execute(
            select(
                QueueItemRow.id,
                QueueItemRow.queue,
                QueueItemRow.reference,
                QueueItemRow.status,
                QueueItemRow.source,
            ).where(QueueItemRow.id.in_(chunk))
        ):
            items[qi] = _QueueItem(queue, reference, status, source == BEFORE_QUEUES)
        events |= {
            (item_id, run_id)
            for item_id, run_id in session.execute(
                select(QueueEventRow.item_id, QueueEventRow.run_id).where(
                    QueueEventRow.item_id.in_(chunk), QueueEventRow.run_id.is_not(None)
                )
            )
            if run_id is not None
        }
        holders.update(
            (qi, run_id)
            for qi, run_id in session.execute(
                select(ItemRow.credited_queue_item_id, ItemRow.run_id).where(
                    ItemRow.credited_queue_item_id.in_(chunk)
                )
            )
            if qi is not None
        )
    unknown = _QueueItem("?", "?", "?", False)

    def before_queues(qi: int, line: _Line) -> bool:
        """A row migration 0004 linked: no run ever took or ended this item under a queue."""
        return items.get(qi, unknown).before_queues and (qi, line.run_id) not in events

    def holder(qi: int) -> str:
        run = holders.get(qi)
        if run is None:
            return "no row holds its credit"
        return f"run {run} holds its credit" + (
            "" if run in ledger.runs else " (outside this report's scope)"
        )

    for qi, again in _extras(ledger):
        item = items.get(qi, unknown)
        old = [line for line in again if before_queues(qi, line)]
        new = [line for line in again if line not in old]
        for line in old:  # the minutes it recorded then must still follow from its baseline
            run = ledger.runs[line.run_id][1]
            earned = run.manual_minutes_per_item - run.residual_minutes_per_item
            _baseline(ledger.problems, f"run {line.run_id} item {line.reference}",
                      line.minutes, earned, "success")  # fmt: skip
        if new:
            paid = ledger.paid[qi]
            listed = ", ".join(f"run {line.run_id} ({line.minutes:g} min)" for line in paid)
            said = (
                f"credited {len(paid)} times in this scope: {listed}"
                if len(paid) > 1
                else f"run {new[0].run_id} records {new[0].minutes:g} min saved on a success "
                "that does not hold the item's credit"
            )
            ledger.problems.append(
                f"{item.label(qi)}: {said}; {holder(qi)}. A queue item earns its minutes "
                "once, on the one success that holds its credit"
            )
        if old:
            runs = ", ".join(f"run {line.run_id}" for line in old)
            ledger.warnings.append(
                f"{item.label(qi)}: done again before queues by {runs}; "
                f"{sum(line.minutes for line in old):g} min recorded then still count "
                f"(migration 0004 credited only the first success: {holder(qi)})"
            )
    for qi in sorted(resolved):
        item = items.get(qi, unknown)
        lines = list(ledger.paid.get(qi, []))
        deciding = ledger.deciding.get(qi)
        if deciding is not None and deciding.credited and deciding not in lines:
            lines.append(deciding)
        for line in lines:
            text = (
                f"{item.label(qi)}: resolved by a human, yet run {line.run_id} "
                f"{'holds its credit' if line.credited else 'records'} "
                f"({line.minutes:g} min saved)"
            )
            if before_queues(qi, line):
                ledger.warnings.append(
                    f"{text}, recorded before queues: the robot's success then and the human's "
                    "work now each count in their own figure"
                )
            else:
                ledger.problems.append(f"{text}; human work is never robot savings")


def _extras(ledger: _Ledger) -> list[tuple[int, list[_Line]]]:
    """Per queue item, its uncredited successes that record minutes."""
    again: dict[int, list[_Line]] = {}
    for qi, lines in ledger.paid.items():
        found = [line for line in lines if line.status == "success" and not line.credited]
        if found:
            again[qi] = found
    return sorted(again.items())


def _read_human_work(session: Session, report: Report, ledger: _Ledger) -> None:
    query = (
        select(RunRow.id, QueueItemRow.human_minutes)
        .join(RunRow, RunRow.id == QueueItemRow.run_id)
        .where(QueueItemRow.status == "resolved", *report.scope.conditions())
    )
    for run_id, minutes in session.execute(query):
        sums = ledger.groups[ledger.runs[run_id][0]]
        sums["resolved_by_human"] += 1
        sums["human_minutes_spent"] += minutes or 0.0
        ledger.resolved += 1


def _check_annualised(report: Report, ledger: _Ledger) -> None:
    """The annualised FTE, from the check's own hours and the period's own length."""
    h = report.headline
    starts = [run.started_at for _key, run in ledger.runs.values()]
    start = report.scope.since or (min(starts) if starts else None)
    if start is None or h.now is None:
        want = None
    else:
        start = start if start.tzinfo else start.replace(tzinfo=dt.UTC)
        end = min(h.now, report.scope.until) if report.scope.until else h.now
        days = max(0.0, (end - start).total_seconds() / 86400)
        minutes = sum(
            s["item_minutes_saved"] + s["run_minutes_saved"] for s in ledger.groups.values()
        )
        want = None if days < 28 else minutes / 60 / days * 365.25 / h.fte_hours_per_year
    have = h.fte_annualised
    if (want is None) != (have is None) or (
        want is not None and have is not None and not _close(have, want)
    ):
        ledger.problems.append(
            f"headline: annualised FTE is {have} in the report, {want} from item rows"
        )


def _check_run_minutes(ledger: _Ledger) -> None:
    for run_id, (_key, run) in ledger.runs.items():
        # Completed with at least one success: the ledger's rule (run_minutes_due).
        completed = run.status == "completed"
        due = run.manual_minutes_per_run if completed and ledger.successes.get(run_id) else 0.0
        if not _close(run.run_minutes_saved, due):
            ledger.problems.append(
                f"run {run_id}: records {run.run_minutes_saved:g} per-run minutes saved, "
                f"its baseline gives {due:g}"
            )


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
