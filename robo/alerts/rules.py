"""The rules: each reads what the ledger, the queues and the scheduler already recorded,
and says, per subject, whether its condition holds now (a :class:`Finding`).

Nothing here writes or sends: :mod:`robo.alerts.monitor` turns findings into alerts.
Every rule is a handful of indexed queries, so evaluating after each run stays cheap.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from robo.alerts.config import (
    AlertConfig,
    ApplicationExceptionsRule,
    BusinessRateRule,
    ItemsOverdueRule,
    RunFailedRule,
    SchedulerSilentRule,
    WorklistRule,
)
from robo.alerts.store import Finding
from robo.queues import NEEDS_HUMAN, WAITING
from robo.storage.models import (
    ItemRow,
    QueueItemRow,
    RunRow,
    ScheduleEventRow,
    SchedulerLockRow,
)

LOCK_NAME = "scheduler"  # robo.scheduling.lock.LOCK_NAME (the layer above: not imported)
MISSED_LOOKBACK = dt.timedelta(days=7)


def _first_line(text: str | None, limit: int = 300) -> str:
    lines = (text or "").strip().splitlines()
    return lines[0][:limit] if lines else ""


def _latest_finished(session: Session, process_id: str) -> RunRow | None:
    return session.scalars(
        select(RunRow)
        .where(
            RunRow.process_id == process_id,
            RunRow.imported_from.is_(None),
            RunRow.status != "running",
        )
        .order_by(RunRow.id.desc())
        .limit(1)
    ).first()


# --- a process's runs ----------------------------------------------------------------------


def run_findings(session: Session, config: AlertConfig, process_id: str) -> list[Finding]:
    """run_failed, application_exceptions and business_exception_rate for one process."""
    latest = _latest_finished(session, process_id)
    if latest is None:
        return []
    findings: list[Finding] = []
    rule = config.rule("run_failed", process_id)
    if rule.enabled:
        assert isinstance(rule, RunFailedRule)
        findings.append(_run_failed(rule, latest))
    rule = config.rule("application_exceptions", process_id)
    if rule.enabled:
        assert isinstance(rule, ApplicationExceptionsRule)
        findings.append(_application_streak(session, rule, process_id, latest))
    rule = config.rule("business_exception_rate", process_id)
    if rule.enabled:
        assert isinstance(rule, BusinessRateRule)
        findings.append(_business_rate(session, rule, process_id, latest))
    return findings


def _run_failed(rule: RunFailedRule, run: RunRow) -> Finding:
    facts = {
        "run": run.id,
        "status": run.status,
        "process": run.process_id,
        "error": _first_line(run.error),
    }
    if run.status in rule.statuses:
        why = f": {facts['error']}" if facts["error"] else ""
        label = run.status.replace("_", " ")
        return Finding(
            "run_failed",
            run.process_id,
            True,
            f"run {run.id} of {run.process_id} {label}{why}",
            facts,
            run.id,
        )
    if run.status == "completed":
        return Finding(
            "run_failed",
            run.process_id,
            False,
            f"run {run.id} of {run.process_id} completed",
            facts,
            run.id,
        )
    # interrupted or cancelled by an operator: no proof either way
    return Finding("run_failed", run.process_id, None, "", facts, run.id)


def _application_streak(
    session: Session, rule: ApplicationExceptionsRule, process_id: str, latest: RunRow
) -> Finding:
    query = select(ItemRow.status, ItemRow.error_type, ItemRow.error, ItemRow.run_id)
    if rule.scope == "run":
        query = query.where(ItemRow.run_id == latest.id)
    else:
        query = query.join(RunRow, RunRow.id == ItemRow.run_id).where(
            RunRow.process_id == process_id, RunRow.imported_from.is_(None)
        )
    last = session.execute(query.order_by(ItemRow.id.desc()).limit(rule.count)).all()
    where = f"run {latest.id}" if rule.scope == "run" else f"the runs of {process_id}"
    facts = {"process": process_id, "count": rule.count, "scope": rule.scope, "run": latest.id}
    if len(last) == rule.count and all(s == "application_exception" for s, *_ in last):
        error_type, error = last[0][1], _first_line(last[0][2])
        facts |= {"error_type": error_type, "error": error}
        return Finding(
            "application_exceptions",
            process_id,
            True,
            f"{rule.count} application exceptions in a row in {where} (last: "
            f"{error_type}: {error})",
            facts,
            latest.id,
        )
    if not last:
        return Finding("application_exceptions", process_id, None, "", facts, latest.id)
    return Finding(
        "application_exceptions",
        process_id,
        False,
        f"{process_id}: items no longer fail with application exceptions "
        f"(last item: {last[0][0].replace('_', ' ')})",
        facts,
        latest.id,
    )


def _business_rate(
    session: Session, rule: BusinessRateRule, process_id: str, latest: RunRow
) -> Finding:
    query = select(ItemRow.status, func.count()).where(ItemRow.status != "skipped")
    if rule.scope == "run":
        query = query.where(ItemRow.run_id == latest.id)
        where = f"run {latest.id}"
    else:
        since = (latest.finished_at or latest.started_at) - dt.timedelta(
            minutes=rule.window_minutes
        )
        query = query.join(RunRow, RunRow.id == ItemRow.run_id).where(
            RunRow.process_id == process_id,
            RunRow.imported_from.is_(None),
            ItemRow.finished_at >= since,
        )
        where = f"the last {rule.window_minutes:g} min"
    counts = {status: int(n) for status, n in session.execute(query.group_by(ItemRow.status))}
    total = sum(counts.values())
    business = counts.get("business_exception", 0)
    facts = {
        "process": process_id,
        "items": total,
        "business_exceptions": business,
        "threshold": rule.threshold,
        "scope": rule.scope,
        "run": latest.id,
    }
    if total < rule.min_items:
        return Finding("business_exception_rate", process_id, None, "", facts, latest.id)
    rate = business / total
    facts["rate"] = round(rate, 4)
    if rate > rule.threshold:
        return Finding(
            "business_exception_rate",
            process_id,
            True,
            f"{business} of {total} items of {process_id} ({rate:.0%}) were business exceptions "
            f"in {where}, above {rule.threshold:.0%}",
            facts,
            latest.id,
        )
    return Finding(
        "business_exception_rate",
        process_id,
        False,
        f"business exceptions of {process_id} back to {rate:.0%} in {where}",
        facts,
        latest.id,
    )


def processes_with_runs_since(session: Session, since: dt.datetime) -> list[str]:
    """Processes with a run ended since ``since`` (abandoned ones included)."""
    return sorted(
        session.scalars(
            select(RunRow.process_id)
            .where(RunRow.finished_at >= since, RunRow.imported_from.is_(None))
            .distinct()
        )
    )


# --- queues ---------------------------------------------------------------------------------


def queue_findings(
    session: Session, config: AlertConfig, now: dt.datetime, queues: Iterable[str]
) -> list[Finding]:
    """items_overdue and worklist_size for every queue (overrides read by queue name)."""
    findings: list[Finding] = []
    overdue: dict[float, dict[str, tuple[int, dt.datetime | None]]] = {}  # per grace: one query
    sizes = _worklist_sizes(session)
    for queue in queues:
        rule = config.rule("items_overdue", queue)
        if rule.enabled:
            assert isinstance(rule, ItemsOverdueRule)
            if rule.grace_minutes not in overdue:
                cutoff = now - dt.timedelta(minutes=rule.grace_minutes)
                overdue[rule.grace_minutes] = _overdue(session, cutoff)
            late, oldest = overdue[rule.grace_minutes].get(queue, (0, None))
            facts: dict[str, object] = {"queue": queue, "overdue": late}
            if late >= rule.min_items and oldest is not None:
                facts["oldest_deadline"] = oldest.isoformat(timespec="minutes")
                summary = (
                    f"{late} item(s) of queue {queue} are past their deadline (the oldest was "
                    f"due {oldest:%Y-%m-%d %H:%M} UTC): `robo worklist --queue {queue}`"
                )
                findings.append(Finding("items_overdue", queue, True, summary, facts))
            else:
                summary = f"queue {queue}: {late} item(s) past their deadline now"
                findings.append(Finding("items_overdue", queue, False, summary, facts))
        rule = config.rule("worklist_size", queue)
        if rule.enabled:
            assert isinstance(rule, WorklistRule)
            waiting = sizes.get(queue, 0)
            facts = {"queue": queue, "worklist": waiting, "max_items": rule.max_items}
            if waiting > rule.max_items:
                summary = (
                    f"{waiting} item(s) of queue {queue} wait for a human, more than "
                    f"{rule.max_items}: `robo worklist --queue {queue}`"
                )
                findings.append(Finding("worklist_size", queue, True, summary, facts))
            else:
                summary = f"queue {queue}: the worklist is back to {waiting} item(s)"
                findings.append(Finding("worklist_size", queue, False, summary, facts))
    return findings


def _overdue(session: Session, cutoff: dt.datetime) -> dict[str, tuple[int, dt.datetime | None]]:
    """Queue name -> (how many waiting items were due before ``cutoff``, the oldest due)."""
    query = (
        select(QueueItemRow.queue, func.count(), func.min(QueueItemRow.deadline))
        .where(QueueItemRow.status.in_(WAITING), QueueItemRow.deadline < cutoff)
        .group_by(QueueItemRow.queue)
    )
    return {queue: (int(count), oldest) for queue, count, oldest in session.execute(query)}


def _worklist_sizes(session: Session) -> dict[str, int]:
    """Queue name -> how many of its items wait for a human."""
    query = (
        select(QueueItemRow.queue, func.count())
        .where(QueueItemRow.status.in_(NEEDS_HUMAN))
        .group_by(QueueItemRow.queue)
    )
    return {queue: int(count) for queue, count in session.execute(query)}


# --- the scheduler ----------------------------------------------------------------------------


def missed_findings(session: Session, config: AlertConfig, now: dt.datetime) -> list[Finding]:
    """A process whose latest fire-or-miss decision (last 7 days) is a miss: open, until a
    later fire. Fires missed and coalesced into a run that did fire are not reported."""
    rows = session.execute(
        select(
            ScheduleEventRow.process_id, ScheduleEventRow.decision, func.max(ScheduleEventRow.id)
        )
        .where(
            ScheduleEventRow.decision.in_(("fired", "missed")),
            ScheduleEventRow.decided_at >= now - MISSED_LOOKBACK,
        )
        .group_by(ScheduleEventRow.process_id, ScheduleEventRow.decision)
    ).all()
    latest: dict[str, dict[str, int]] = {}
    for process_id, decision, event_id in rows:
        latest.setdefault(process_id, {})[decision] = event_id
    findings = []
    for process_id, ids in sorted(latest.items()):
        if not config.rule("missed_fire", process_id).enabled:
            continue
        missed, fired = ids.get("missed", 0), ids.get("fired", 0)
        if missed > fired:
            event = session.get(ScheduleEventRow, missed)
            assert event is not None
            facts = {
                "process": process_id,
                "scheduled_for": event.scheduled_for.isoformat(),
                "reason": event.reason,
                "trigger": event.trigger_key,
            }
            findings.append(
                Finding(
                    "missed_fire",
                    process_id,
                    True,
                    f"{process_id}: the fire due {event.scheduled_for:%Y-%m-%d %H:%M} UTC did not "
                    f"run ({event.reason})",
                    facts,
                )
            )
        else:
            findings.append(
                Finding(
                    "missed_fire",
                    process_id,
                    False,
                    f"{process_id} fires again",
                    {"process": process_id},
                )
            )
    return findings


def scheduler_finding(session: Session, config: AlertConfig, now: dt.datetime) -> Finding | None:
    """The leader's lease renewed more than ``minutes`` ago (or, if asked, no leader)."""
    rule = config.rules["scheduler_silent"]
    if not rule.enabled:
        return None
    assert isinstance(rule, SchedulerSilentRule)
    lock = session.get(SchedulerLockRow, LOCK_NAME)
    if lock is None:
        if rule.when_stopped:
            return Finding(
                "scheduler_silent",
                "scheduler",
                True,
                "no scheduler is running (none holds the lease)",
                {},
            )
        return Finding(
            "scheduler_silent",
            "scheduler",
            False,
            "no scheduler holds the lease (stopped on purpose)",
            {},
        )
    silent = now - lock.renewed_at
    facts = {
        "leader": lock.owner,
        "renewed_at": lock.renewed_at.isoformat(timespec="seconds"),
        "silent_seconds": round(silent.total_seconds()),
    }
    if silent > dt.timedelta(minutes=rule.minutes):
        return Finding(
            "scheduler_silent",
            "scheduler",
            True,
            f"the scheduler leader {lock.owner} has been silent since "
            f"{lock.renewed_at:%Y-%m-%d %H:%M:%S} UTC ({silent.total_seconds() / 60:.1f} min, "
            f"more than {rule.minutes:g}): no fire happens; start `robo scheduler start`",
            facts,
        )
    return Finding(
        "scheduler_silent",
        "scheduler",
        False,
        f"the scheduler {lock.owner} renews its lease again",
        facts,
    )


def takeover_finding(
    previous_owner: str, renewed_at: dt.datetime, new_owner: str, now: dt.datetime
) -> Finding:
    """A standby took over an expired lease: the leader before it died or lost the database."""
    silent = now - renewed_at
    facts = {
        "leader": previous_owner,
        "renewed_at": renewed_at.isoformat(timespec="seconds"),
        "silent_seconds": round(silent.total_seconds()),
        "new_leader": new_owner,
    }
    return Finding(
        "scheduler_silent",
        "scheduler",
        True,
        f"the scheduler leader {previous_owner} stopped renewing its lease at "
        f"{renewed_at:%Y-%m-%d %H:%M:%S} UTC ({silent.total_seconds():.0f} s ago); the standby "
        f"{new_owner} took over",
        facts,
    )
