"""Queue triggers: start runs when enough items wait in a process's queue.

A schedule entry ``queue: {min_items: N, max_runs: M}`` is not an APScheduler
job: the scheduler checks every queue trigger every few seconds
(``queue_check_seconds``). A check is *due* when at least N items wait (new,
or deferred past their time). A due check then

- is skipped on a holiday of the schedule's calendar or outside its run
  window (``EffectiveSchedule.skip_reason``, the rule cron fires follow), or
  while M runs of the process are running or queued (running runs in the
  ledger, whoever started them, plus the jobs this scheduler's executor has
  not seen finish);
- otherwise fires: it starts ``min(M - active, waiting // N)`` runs (at
  least one), each a separate job, so several worker slots drain the queue at
  once.

Each decision is one row of the schedule decision log, keyed by the trigger
(``q{index}``) and the check time truncated to the check interval: a check is
decided once however many schedulers make it. A check below ``min_items`` is
not a decision (nothing was due) and records nothing; a skip that repeats the
previous skip of the same trigger (still ``max_runs``, still outside the
window on the same local day) is not recorded again, so the log keeps the
reason without one row every few seconds.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

from robo.clock import utcnow
from robo.definition import QueueTrigger
from robo.ledger import Ledger
from robo.logging import get_logger
from robo.queues import Queues
from robo.regional import EffectiveSchedule
from robo.scheduling.decisions import DecisionLog
from robo.scheduling.dispatch import fire_uid
from robo.scheduling.executors.base import Executor, RunJob

#: The run's trigger, as the ledger records it.
QUEUE_RUN_TRIGGER = "queue"
_KEY = re.compile(r"q\d+")
# Running runs read for one check; more than this many at once is not a real installation.
_RUNNING_LIMIT = 10_000

CheckDecision = Literal["fired", "skipped", "not_due", "unchanged", "duplicate"]


def queue_trigger_key(index: int) -> str:
    """The decision log's key for the schedule's ``index``-th entry, a queue trigger."""
    return f"q{index}"


def is_queue_trigger_key(key: str) -> bool:
    return _KEY.fullmatch(key) is not None


def check_slot(moment: dt.datetime, seconds: float) -> dt.datetime:
    """The check time truncated to the check interval: one decision per interval."""
    step = max(1, int(seconds))
    epoch = int(moment.astimezone(dt.UTC).timestamp())
    return dt.datetime.fromtimestamp(epoch - epoch % step, dt.UTC)


def describe(trigger: QueueTrigger, waiting: int | None = None) -> str:
    now = f" ({waiting} now)" if waiting is not None else ""
    runs = f"at most {trigger.max_runs} run{'s' if trigger.max_runs > 1 else ''} at once"
    return f"when >= {trigger.min_items} items wait{now}, {runs}"


@dataclass(frozen=True)
class QueueWatch:
    """One queue trigger of one process, as the scheduler checks it."""

    process_id: str
    queue: str
    trigger_key: str
    trigger: QueueTrigger
    schedule: EffectiveSchedule


@dataclass(frozen=True)
class QueueCheck:
    """What one check of one queue trigger decided."""

    process_id: str
    trigger_key: str
    scheduled_for: dt.datetime
    decision: CheckDecision
    reason: str
    waiting: int
    started: list[str]  # uids of the runs handed to the executor


def watches_of(process_id: str, queue: str, schedule: EffectiveSchedule) -> list[QueueWatch]:
    return [
        QueueWatch(process_id, queue, queue_trigger_key(index), entry.queue, schedule)
        for index, entry in enumerate(schedule.schedule.triggers)
        if entry.queue is not None
    ]


class QueueTriggers:
    def __init__(
        self,
        decisions: DecisionLog,
        executor: Executor,
        queues: Queues,
        ledger: Ledger,
        interval_seconds: float = 5,
        clock: Callable[[], dt.datetime] = utcnow,
    ) -> None:
        self.decisions, self.executor, self.queues, self.ledger = (
            decisions,
            executor,
            queues,
            ledger,
        )
        self.interval_seconds = interval_seconds
        self.clock = clock
        self.watches: list[QueueWatch] = []
        self._last_skip: dict[tuple[str, str], str] = {}  # (process, key) -> kind of last skip
        self.log = get_logger(component="queue-trigger")

    def set_watches(self, watches: Sequence[QueueWatch]) -> None:
        self.watches = list(watches)
        keys = {(w.process_id, w.trigger_key) for w in self.watches}
        self._last_skip = {k: v for k, v in self._last_skip.items() if k in keys}

    def check(self) -> list[QueueCheck]:
        """Check every queue trigger once; returns what each check decided."""
        if not self.watches:
            return []
        now = self.clock()
        slot = check_slot(now, self.interval_seconds)
        waiting = self.queues.waiting_counts(sorted({w.queue for w in self.watches}), now)
        running: dict[str, set[str]] | None = None
        checks = []
        for watch in self.watches:
            count = waiting.get(watch.queue, 0)
            if count < watch.trigger.min_items:
                self._last_skip.pop((watch.process_id, watch.trigger_key), None)
                reason = f"{count} item(s) wait in {watch.queue}, fewer than min_items"
                checks.append(self._result(watch, slot, "not_due", reason, count))
                continue
            if running is None:
                running = self._running()
            checks.append(self._decide(watch, now, slot, count, running))
        return checks

    def _decide(
        self,
        watch: QueueWatch,
        now: dt.datetime,
        slot: dt.datetime,
        count: int,
        running: dict[str, set[str]],
    ) -> QueueCheck:
        trigger, pid = watch.trigger, watch.process_id
        waits = f"{count} items wait in {watch.queue} (min_items {trigger.min_items})"
        reason = watch.schedule.skip_reason(now)
        kind = f"calendar {watch.schedule.local(now).date()}"
        active: set[str] = set()
        if reason is None:
            active = running.get(pid, set()) | self.executor.in_flight(pid)
            if len(active) >= trigger.max_runs:
                reason = (
                    f"max_runs: {len(active)} run(s) of this process running or queued "
                    f"(max_runs {trigger.max_runs})"
                )
                kind = "max_runs"
        if reason is not None:
            text = f"{reason}; {waits}"
            if self._last_skip.get((pid, watch.trigger_key)) == kind:
                return self._result(watch, slot, "unchanged", text, count)
            return self._record(watch, slot, "skipped", text, count, kind=kind)
        runs = min(trigger.max_runs - len(active), max(1, count // trigger.min_items))
        text = (
            f"{waits}: started {runs} run(s), {len(active) + runs} of max_runs "
            f"{trigger.max_runs} running or queued"
        )
        fired = self._record(watch, slot, "fired", text, count, runs=runs)
        running.setdefault(pid, set()).update(fired.started)  # another entry of this process
        return fired

    def _record(
        self,
        watch: QueueWatch,
        slot: dt.datetime,
        decision: Literal["fired", "skipped"],
        reason: str,
        count: int,
        *,
        kind: str = "",
        runs: int = 0,
    ) -> QueueCheck:
        pid, key = watch.process_id, watch.trigger_key
        if not self.decisions.record(pid, key, slot, decision, reason):
            return self._result(watch, slot, "duplicate", "already decided by a scheduler", count)
        self.log.info(f"schedule.{decision}", process=pid, trigger=key,
                      scheduled_for=slot.isoformat(), reason=reason)  # fmt: skip
        if decision == "skipped":
            self._last_skip[(pid, key)] = kind
            return self._result(watch, slot, decision, reason, count)
        self._last_skip.pop((pid, key), None)
        started = []
        for number in range(runs):
            # One job per run (not a batch, which an executor runs one after another).
            uid = fire_uid(pid, key if number == 0 else f"{key}.{number}", slot)
            self.executor.submit([RunJob(pid, QUEUE_RUN_TRIGGER, slot.isoformat(), uid=uid)])
            started.append(uid)
        return self._result(watch, slot, decision, reason, count, started)

    def _running(self) -> dict[str, set[str]]:
        """Process id -> uids of its runs in progress (manual ones included)."""
        running: dict[str, set[str]] = {}
        for run in self.ledger.runs(status="running", limit=_RUNNING_LIMIT):
            running.setdefault(run.process_id, set()).add(run.uid)
        return running

    @staticmethod
    def _result(
        watch: QueueWatch,
        slot: dt.datetime,
        decision: CheckDecision,
        reason: str,
        count: int,
        started: list[str] | None = None,
    ) -> QueueCheck:
        return QueueCheck(
            watch.process_id, watch.trigger_key, slot, decision, reason, count, started or []
        )
