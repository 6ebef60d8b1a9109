"""Running the active version of a process: one browser, one context, draining its queue.

A run first puts its input (a file, or what the bot produces) into the
process's queue, then takes items one by one under a lease its heartbeat
renews. Each item ends as success, skipped (nothing to do), business exception
(not retried) or application exception (retried with a fresh page, per the
retry policy; then by later runs up to ``retry.max_runs``). A browser crash
ends the item as an application exception, restarts Chromium and goes on; the
item is not retried, since the application may already have taken it. An item
a dead run left in progress is verified first (``bot.verify``) or handed to a
human as uncertain: it is never redone silently (see ``robo.queues``).
"""

from __future__ import annotations

import datetime as dt
import socket
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from robo.cancellation import Cancellations
from robo.clock import utcnow
from robo.definition import ProcessDefinition, TracePolicy
from robo.errors import (
    ApplicationException,
    BusinessException,
    ConfigurationError,
    Deadline,
    InputError,
    ItemSkipped,
    RegistryError,
    RoboError,
    RunCancelled,
    SecretError,
    StorageError,
)
from robo.ledger import HourCost, ItemOutcome, Ledger, RunPurpose, RunStatus, process_alive
from robo.logging import get_logger
from robo.queues import NewItem, Queues, Refusal, TakenItem
from robo.redaction import Redactor
from robo.registry import ProcessVersion
from robo.runner import evidence
from robo.runner.browser import BrowserSession
from robo.runner.context import BotContext
from robo.runner.heartbeat import Heartbeat
from robo.runner.modules import load_bot_module
from robo.runner.steps import first_line, run_steps, scrape_table
from robo.runner.stopping import CANCEL_POLL_SECONDS, CancelWatch, stop_requested
from robo.runner.verify import Verdict, verify_item
from robo.runner.watchdog import Watchdog
from robo.runner.workitems import Item, check_references, read_items, reference_of

SETUP_ATTEMPTS_FLOOR = 1
# error_type recorded in the ledger for failures robo itself detects (not raised: stored
# in databases, so these strings never change).
BROWSER_CRASHED = "BrowserCrashed"  # Chromium went away during the item
ITEM_TIMEOUT = "ItemTimeout"  # the item took longer than timeouts.item_seconds
# How long one trace chunk may record successful items before it is cut and discarded.
TRACE_WINDOW_SECONDS = 1.0


class Progress(Protocol):
    def started(self, run_id: int, total: int | None) -> None: ...
    def item_started(self, reference: str, attempt: int, max_attempts: int) -> None: ...
    def item_done(self, outcome: ItemOutcome, minutes_saved: float) -> None: ...


class _NoProgress:
    def started(self, run_id: int, total: int | None) -> None:
        pass

    def item_started(self, reference: str, attempt: int, max_attempts: int) -> None:
        pass

    def item_done(self, outcome: ItemOutcome, minutes_saved: float) -> None:
        pass


@dataclass(frozen=True)
class RunRequest:
    process_id: str
    input_path: Path | None = None
    params: dict[str, str] = field(default_factory=dict)
    headed: bool = False
    trigger: str = "manual"
    scheduled_for: dt.datetime | None = None
    resumes_run_id: int | None = None
    worker: str = ""
    uid: str | None = None  # set by executors so that a job delivered twice runs once
    limit: int | None = None  # take at most this many items from the queue
    purpose: RunPurpose = "production"  # reports count production runs only


@dataclass(frozen=True)
class RunResult:
    run_id: int
    status: RunStatus
    items_total: int
    succeeded: int
    business_exceptions: int
    application_exceptions: int
    minutes_saved: float
    error: str | None = None
    skipped: int = 0
    added: int = 0  # items this run put into the queue
    refused: list[Refusal] = field(default_factory=list)  # references already queued
    uncertain: list[str] = field(default_factory=list)  # handed to a human, not redone


@dataclass(frozen=True)
class RunEnvironment:
    """What a run needs from the installation, assembled at the edge."""

    ledger: Ledger
    secret: Callable[[str], str]
    redactor: Redactor
    region: str
    chromium: str
    evidence_dir: Path
    versions_dir: Path
    queues: Queues
    heartbeat_seconds: float = 10.0
    # A run silent this long is dead: its items' leases last as long.
    abandon_after_seconds: float = 120.0
    tmp_dir: Path | None = None  # Playwright's temporary files (ROBO_HOME/tmp), 0700
    hour_cost: HourCost | None = None  # copied onto each run, for the euros in reports
    # Called with the run's id once it ended (robo.alerts evaluates its rules); must not raise.
    after_run: Callable[[int], object] | None = None
    # Trace policy (ROBO_TRACE) for definitions whose evidence block names none.
    trace: TracePolicy = "on-first-retry"


def resolve_params(definition: ProcessDefinition, overrides: dict[str, str]) -> dict[str, Any]:
    unknown = sorted(set(overrides) - set(definition.parameters))
    if unknown:
        known = ", ".join(sorted(definition.parameters)) or "none"
        raise InputError(
            f"unknown parameter(s) {', '.join(unknown)} for {definition.id}; known: {known}"
        )
    return {**definition.parameters, **overrides}


class ProcessRun:
    """One run of one version; ``execute`` never raises for item-level problems."""

    def __init__(
        self,
        env: RunEnvironment,
        version: ProcessVersion,
        request: RunRequest,
        progress: Progress | None = None,
    ) -> None:
        self.env = env
        self.version = version
        self.definition = version.definition
        self.request = request
        self.progress = progress or _NoProgress()
        self.phases: dict[str, float] = {}  # seconds per phase of the run, logged at its end
        self._phase_start = time.monotonic()
        self.folder = version.unpack(env.versions_dir)
        self.params = resolve_params(self.definition, request.params)
        self.process_fn = self._bot_function("entrypoint")
        self.items_fn = self._bot_function("items")
        self.setup_fn = self._bot_function("entrypoint", name="setup")
        ref = self.definition.bot.verify_ref
        self.verify_fn = self._bot_function("verify_ref") if ref else None
        self.input_path = self._input_path()
        # File items are read before the run exists: bad input costs nothing.
        self.items: list[Item] | None = (
            read_items(self.definition.items, self.input_path) if self.input_path else None
        )
        self.counts = {
            "success": 0, "business_exception": 0, "application_exception": 0, "skipped": 0,
        }  # fmt: skip
        self.queue = self.definition.queue_name
        self.added = 0
        self.refused: list[Refusal] = []
        self.uncertain: list[str] = []
        self._chunk: tuple[Any, float] | None = None  # (context, start) of the open trace chunk
        self.cancel = CancelWatch(lambda: None, lambda: None)  # robo cancel, once the run exists
        self._touched = False  # the bot started on the item in flight (robo cancel --now)
        # The definition's own choice wins over the installation's (docs/process-format.md).
        self.trace_policy: TracePolicy = self.definition.evidence.trace_policy or env.trace
        self._phase("prepare")

    def _phase(self, name: str) -> None:
        """Close the phase in progress as ``name`` (its seconds, added up if it recurs)."""
        now = time.monotonic()
        self.phases[name] = self.phases.get(name, 0.0) + now - self._phase_start
        self._phase_start = now

    # --- preparation -----------------------------------------------------------------

    def _bot_function(self, key: str, name: str | None = None) -> Callable[..., Any] | None:
        """The function a 'module:function' reference names (or ``name`` in that module)."""
        ref = getattr(self.definition.bot, key)
        if not ref:
            return None
        module_name, function = ref.split(":")
        module = load_bot_module(self.folder, module_name, self.version.content_hash)
        found = getattr(module, name or function, None)
        return found if callable(found) else None

    def _input_path(self) -> Path | None:
        source = self.definition.items.source
        if source in ("bot", "queue"):
            if self.request.input_path:
                what = "produces its own items" if source == "bot" else "takes items from its queue"
                raise InputError(
                    f"{self.definition.id} {what}; it takes no --input "
                    f"(`robo queue add {self.queue} FILE` adds items to a queue)"
                )
            return None
        if self.request.input_path:
            return self.request.input_path.resolve()
        if not self.definition.items.path:
            raise InputError(
                f"{self.definition.id} has no default input; give one with --input FILE"
            )
        return self.folder / self.definition.items.path

    # --- execution ----------------------------------------------------------------------

    def execute(self) -> RunResult:
        definition = self.definition
        ledger, queues = self.env.ledger, self.env.queues
        queues.ensure(self.queue, definition.queue.unique)
        self._end_dead_runs()
        run_id = ledger.start_run(
            process_id=definition.id,
            version_id=self.version.version_id,
            version=definition.version,
            baseline=definition.baseline,
            region=self.env.region,
            parameters=self.params,
            trigger=self.request.trigger,
            input_name=str(self.request.input_path or self.definition.items.path or "bot"),
            application=definition.applications[0],
            origin_region=self.version.origin_region,
            origin_version=self.version.origin_version,
            scheduled_for=self.request.scheduled_for,
            resumes_run_id=self.request.resumes_run_id,
            worker=self.request.worker,
            uid=self.request.uid,
            purpose=self.request.purpose,
            hour_cost=self.env.hour_cost,
        )
        self.run_id = run_id
        self.log = get_logger(
            run=run_id, process=definition.id, version=definition.version, region=self.env.region
        )
        self.run_dir = self.env.evidence_dir / str(run_id)
        self.downloads = self.run_dir / "downloads"
        self.deadline = time.monotonic() + definition.timeouts.run_seconds
        self.log.info("run.started", trigger=self.request.trigger)
        status: RunStatus = "completed"
        error: str | None = None
        self.session = BrowserSession(
            chromium=self.env.chromium,
            headless=not self.request.headed,
            step_timeout_ms=definition.timeouts.step_seconds * 1000,
            # Recording from the context's start: only where every attempt may be kept.
            trace=self.trace_policy in ("always", "retain-on-failure"),
            trace_snapshots=definition.evidence.trace_snapshots,
            tmp_dir=self.env.tmp_dir,
        )
        self.watchdog = Watchdog(self.session.kill)
        cancellations = Cancellations(ledger.db)
        self.cancel = CancelWatch(lambda: cancellations.requested(run_id), self.watchdog.cut)
        lease = self.env.abandon_after_seconds
        heartbeat = Heartbeat(
            ledger, run_id, self.env.heartbeat_seconds, lambda: queues.renew(run_id, lease),
            watch=self.cancel.poll, watch_seconds=CANCEL_POLL_SECONDS,
        )  # fmt: skip
        try:
            heartbeat.start()
            self._check_secrets()  # before a browser starts: a missing one fails at once
            self._reclaim()
            if self.items is not None:
                assert self.input_path is not None
                self._enqueue(self.items, f"file {self.input_path.name}")
            self._phase("open")
            self.session.start()
            self._phase("browser")
            self._open_context()
            self._phase("setup")
            if definition.items.source == "bot":
                self._enqueue(self._produce_items(), f"produced by {definition.id}")
            total = queues.waiting(self.queue)
            limit = self.request.limit
            total = total if limit is None else min(total, limit)
            ledger.set_items_total(run_id, total)
            self.progress.started(run_id, total)
            position = 0
            while limit is None or position < limit:
                if time.monotonic() >= self.deadline:
                    status, error = "timed_out", self._run_timeout_message()
                    break
                if self.cancel.poll() is not None:  # robo cancel: no new item
                    raise RunCancelled
                if stop_requested():
                    status, error = (
                        "interrupted",
                        (
                            "stopped between items by a drain (the scheduler or worker is shutting "
                            "down); the items left wait in the queue for the recovery"
                        ),
                    )
                    break
                taken = queues.take(self.queue, run_id, lease)
                if taken is None:
                    break
                position += 1
                try:
                    self._process_item(position, taken)
                except RunCancelled:
                    self._hand_back(taken)
                    raise
        except RunCancelled:
            status, error = "cancelled", self._cancel_message()
        except KeyboardInterrupt:
            status, error = "interrupted", "interrupted by the operator (Ctrl-C or SIGTERM)"
        except Deadline:
            status, error = (
                "timed_out",
                f"run exceeded timeouts.run_seconds ({definition.timeouts.run_seconds:g} s)",
            )
        except RoboError as exc:
            status, error = "failed", exc.message
        except Exception as exc:
            status, error = "failed", f"{type(exc).__name__}: {exc}"
        finally:
            if self.cancel.now and status in ("failed", "timed_out"):  # cut by --now
                status, error = "cancelled", self._cancel_message()
            self._phase("items")
            self.watchdog.close()
            self.session.close()
            self._phase("close")
            heartbeat.stop()
            ledger.finish_run(run_id, status, error)
            self._phase("finish")
            phases = {name: round(seconds, 3) for name, seconds in self.phases.items()}
            self.log.info("run.finished", status=status, error=error, phases=phases, **self.counts)
        try:
            summary = ledger.summary(run_id)  # figures come from the ledger rows, nowhere else
        except StorageError as exc:  # the database is away: its outcomes wait in the journal
            return self._unconfirmed_result(run_id, status, exc)
        return RunResult(
            run_id=run_id,
            status=status,
            items_total=summary.succeeded
            + summary.business_exceptions
            + summary.application_exceptions
            + summary.skipped,
            succeeded=summary.succeeded,
            business_exceptions=summary.business_exceptions,
            application_exceptions=summary.application_exceptions,
            minutes_saved=summary.minutes_saved,
            error=summary.error,
            skipped=summary.skipped,
            added=self.added,
            refused=self.refused,
            uncertain=self.uncertain,
        )

    def _unconfirmed_result(self, run_id: int, status: RunStatus, exc: StorageError) -> RunResult:
        """What this run did, as it counted it, while the ledger cannot be read back."""
        counts = self.counts
        return RunResult(
            run_id=run_id, status=status, items_total=sum(counts.values()),
            succeeded=counts["success"], business_exceptions=counts["business_exception"],
            application_exceptions=counts["application_exception"], minutes_saved=0.0,
            error=(f"{exc.message.splitlines()[0]}; the outcomes are kept in ROBO_HOME/journal "
                   "and written when the database answers (any robo command replays them)"),
            skipped=counts["skipped"], added=self.added, refused=self.refused,
            uncertain=self.uncertain,
        )  # fmt: skip

    # --- the queue ----------------------------------------------------------------------

    def _end_dead_runs(self) -> None:
        """Runs of this process whose robo died (kill -9, a lost machine) end as abandoned,
        so their items can be reclaimed: no run stays 'running' after its process is gone."""
        cutoff = utcnow() - dt.timedelta(seconds=self.env.abandon_after_seconds)
        self.env.ledger.abandon_stale(
            cutoff, socket.gethostname(), process_alive, process_id=self.definition.id
        )

    def _reclaim(self) -> None:
        verify = self.definition.bot.verify is not None
        for item in self.env.queues.reclaim(self.queue, verify=verify):
            self.log.warning("item.reclaimed", item=item.reference, run_left=item.run_id,
                             status=item.status)  # fmt: skip
            if item.status == "uncertain":
                self.uncertain.append(item.reference)

    def _enqueue(self, items: Iterable[Item], source: str) -> None:
        field = self.definition.items.reference
        result = self.env.queues.add(
            self.queue,
            [NewItem(reference_of(item, field), dict(item)) for item in items],
            source=source,
            run_id=self.run_id,
        )
        self.added += len(result.added)
        self.refused += result.refused
        if result.refused:
            self.log.warning(
                "items.refused", count=len(result.refused), first=result.refused[0].render()
            )

    def _cancel_message(self) -> str:
        request = self.cancel.request
        what = request.describe() if request is not None else "cancelled"
        try:
            left = self.env.queues.waiting(self.queue)
        except StorageError:
            return what
        return f"{what}; {left} item(s) left waiting in the queue"

    def _hand_back(self, taken: TakenItem) -> None:
        """The item in flight when `robo cancel --now` cut it: back to the queue, not
        counted (unless its outcome was recorded already: then it stays as recorded)."""
        reason = f"run {self.run_id} was cancelled at once (robo cancel --now) during this item"
        try:
            went = self.env.queues.hand_back(
                taken.id, self.run_id, touched=self._touched,
                verify=self.definition.bot.verify is not None, reason=reason,
            )  # fmt: skip
        except StorageError:  # left in progress: the next run of the queue reclaims it
            return
        if went is not None:
            self.log.warning("item.handed_back", item=taken.reference, status=went)
        if went == "uncertain":
            self.uncertain.append(taken.reference)

    def _run_timeout_message(self) -> str:
        left = self.env.queues.waiting(self.queue)
        return (
            f"run exceeded timeouts.run_seconds ({self.definition.timeouts.run_seconds:g} s); "
            f"{left} item(s) not processed"
        )

    def _remaining(self, limit: float) -> float:
        return max(0.1, min(limit, self.deadline - time.monotonic()))

    def _context(self, item: Item | None = None, reference: str = "") -> BotContext:
        page = self.page
        return BotContext(
            page=page,
            params=self.params,
            log=self.log.bind(item=reference) if reference else self.log,
            downloads=self.downloads,
            input_dir=(self.input_path.parent if self.input_path else self.folder),
            item=dict(item or {}),
            reference=reference,
            _secret=self._secret,
            _allowed_secrets=frozenset(self.definition.secrets),
            _queues=self.env.queues,
            _run_id=getattr(self, "run_id", None),
        )

    def _check_secrets(self) -> None:
        """Every secret the definition lists resolves (SecretError names the first that
        does not); their values are then known to the redactor before anything runs."""
        for name in self.definition.secrets:
            self._secret(name)

    def _secret(self, name: str) -> str:
        """A secret by the definition's name, under the local name the overlay maps it to."""
        return self.env.secret(self.version.secret_names.get(name, name))

    def _open_context(self, restart: bool = False) -> None:
        """A fresh context, then the bot's setup (log in), retried per policy."""
        policy = self.definition.retry
        last: BaseException | None = None
        for attempt in range(1, max(policy.max_attempts, SETUP_ATTEMPTS_FLOOR) + 1):
            self.cancel.check_now()
            if restart or attempt > 1 or not self.session.alive:
                self.session.restart(self.downloads)
            else:
                self.session.new_context(self.downloads)
            self.page = self.session.new_page()
            try:
                with self.watchdog.limit(self._remaining(self.definition.timeouts.item_seconds)):
                    self.cancel.check_now()  # after the limit is armed: a cut cannot be missed
                    self._setup(self._context())
                return
            except (SecretError, ConfigurationError):
                raise
            except BusinessException as exc:
                raise RoboError(f"setup failed: {exc.message}") from exc
            except (Exception, Deadline) as exc:
                last = exc
                self.cancel.check_now()  # the setup failed because --now cut it
                self.log.warning("setup.failed", attempt=attempt, error=str(exc).splitlines()[0])
                time.sleep(policy.backoff_seconds)
        raise ApplicationException(f"setup failed after {policy.max_attempts} attempt(s): {last}")

    def _setup(self, ctx: BotContext) -> None:
        if self.definition.bot.setup:
            run_steps(list(self.definition.bot.setup), ctx, self.run_dir)
        elif self.setup_fn is not None:
            self.setup_fn(ctx)

    def _produce_items(self) -> list[Item]:
        ctx = self._context()
        with self.watchdog.limit(self._remaining(self.definition.timeouts.run_seconds)):
            if self.items_fn is not None:
                produced: Iterable[Item] = self.items_fn(ctx)
            else:
                assert self.definition.bot.scrape is not None
                produced = scrape_table(self.definition.bot.scrape, ctx)
            items = [dict(item) for item in produced]
        check_references(
            items, self.definition.items.reference, f"items produced by {self.definition.id}"
        )
        self.log.info("items.produced", count=len(items))
        return items

    def _process_item(self, position: int, taken: TakenItem) -> None:
        item, reference = taken.data, taken.reference
        policy = self.definition.retry
        started = utcnow()
        self._touched = False
        if taken.needs_verify and not self._verified_undone(position, taken, started):
            return
        evidence_paths: list[str] = []
        status = "success"
        error_type: str | None = None
        error: str | None = None
        output: dict[str, Any] = {}
        attempt = 0
        log = self.log.bind(item=reference)
        while True:
            attempt += 1
            self.progress.item_started(reference, attempt, policy.max_attempts)
            self.cancel.check_now()
            if not self.session.alive:
                self._open_context(restart=True)
            ctx = self._context(item, reference)
            tracing = self._trace_chunk(reference, taken.attempts + attempt)
            try:
                with self.watchdog.limit(self._remaining(self.definition.timeouts.item_seconds)):
                    self.cancel.check_now()  # after the limit is armed: a cut cannot be missed
                    self._touched = True
                    self._call_bot(ctx)
                status, error_type, error, output = "success", None, None, ctx.output
                break
            except ItemSkipped as exc:
                status, error_type, error, output = "skipped", None, exc.message, ctx.output
                break
            except BusinessException as exc:
                status, error_type, error = "business_exception", type(exc).__name__, exc.message
            except (SecretError, ConfigurationError):
                raise
            except (Exception, Deadline) as exc:
                status, error_type, error = "application_exception", *self._classify(exc)
            self.cancel.check_now()  # it failed because --now cut it: handed back, not recorded
            output = ctx.output
            evidence_paths += self._keep_evidence(ctx, reference, attempt, tracing)
            retry = (
                status == "application_exception"
                and error_type != BROWSER_CRASHED
                and attempt < policy.max_attempts
                and time.monotonic() + policy.backoff_seconds < self.deadline
            )
            # A business exception is an expected outcome; an application one needs a look.
            report = log.info if status == "business_exception" else log.warning
            report("item.failed", attempt=attempt, status=status, error=error, retry=retry)
            if error_type in (BROWSER_CRASHED, ITEM_TIMEOUT) or not self.session.alive:
                self._open_context(restart=True)
            if not retry:
                break
            time.sleep(policy.backoff_seconds)
            self.page = self.session.new_page()  # a fresh page for the next attempt
        if tracing and status in ("success", "skipped"):
            evidence_paths += self._end_trace(reference, attempt)
        outcome = ItemOutcome(
            position=position,
            reference=reference,
            status=status,  # type: ignore[arg-type]
            attempts=attempt,
            started_at=started,
            finished_at=utcnow(),
            error_type=error_type,
            error=error,
            evidence=evidence_paths,
            data=item,
            output=output,
            queue_item_id=taken.id,
            max_runs=policy.max_runs,
        )
        self._record(outcome)

    def _record(self, outcome: ItemOutcome) -> None:
        saved = self.env.ledger.record_item(self.run_id, outcome)
        self.counts[outcome.status] += 1
        self.log.info("item.done", item=outcome.reference, status=outcome.status,
                      attempts=outcome.attempts, minutes_saved=saved)  # fmt: skip
        self.progress.item_done(outcome, saved)

    def _verified_undone(self, position: int, taken: TakenItem, started: dt.datetime) -> bool:
        """An item a dead run left in progress: True if its work must be done (again).

        The verify block asks the application. Done: recorded as the success it was
        (its minutes, once). Cannot tell: uncertain, for a human.
        """
        if not self.session.alive:
            self._open_context(restart=True)
        ctx = self._context(taken.data, taken.reference)
        with self.watchdog.limit(self._remaining(self.definition.timeouts.item_seconds)):
            verdict: Verdict = verify_item(self.definition.bot, self.verify_fn, ctx, self.run_dir)
        self.cancel.check_now()  # an answer cut short by --now says nothing
        self.log.info("item.verified", item=taken.reference, verdict=verdict.state,
                      detail=verdict.detail)  # fmt: skip
        if verdict.state == "not_done":
            self.page = self.session.new_page()
            return True
        if verdict.state == "done":
            self._record(ItemOutcome(
                position=position, reference=taken.reference, status="success", attempts=0,
                started_at=started, finished_at=utcnow(), data=taken.data,
                output={**ctx.output, "verified": verdict.detail}, queue_item_id=taken.id,
                max_runs=self.definition.retry.max_runs,
            ))  # fmt: skip
            return False
        self.env.queues.mark_uncertain(taken.id, self.run_id, verdict.detail)
        self.uncertain.append(taken.reference)
        return False

    def _trace_chunk(self, title: str, attempt: int) -> bool:
        """Make sure a trace records the attempt (the item's ``attempt``-th) if the trace
        policy asks for it; True if one does.

        ``on-first-retry`` records the item's second attempt only (its first retry, in this
        run or a later one): tracing starts for that attempt and stops after it. Otherwise
        the context records from its start (``BrowserSession.trace``) and:
        A chunk is cut (and discarded) at most every TRACE_WINDOW_SECONDS rather than
        around every item: two driver round trips per item cost more than the 5%
        overhead budget on fast items. A failed attempt saves the open chunk and closes
        it, so every failed attempt still gets its own trace and the next starts afresh;
        what the chunk recorded before the attempt began (the window's other items, and
        Playwright's network log since the context opened) is dropped from the saved
        file, which holds this attempt only (``evidence.scrub_trace``). Under ``always``
        every attempt is saved, so each starts its own chunk.
        """
        self._attempt_since = time.time()  # the saved trace starts here
        context = self.session.context
        if self.trace_policy == "off" or context is None:
            return False
        if self.trace_policy == "on-first-retry":
            if attempt != 2:
                return False
            self._chunk = None
            return evidence.begin_trace(context, title, self.definition.evidence.trace_snapshots)
        now = time.monotonic()
        if self._chunk is not None and self._chunk[0] is context:
            if now - self._chunk[1] < TRACE_WINDOW_SECONDS:
                return True
            evidence.discard_trace(context)
        started = evidence.start_trace(context, title)
        self._chunk = (context, now) if started else None
        return started

    def _call_bot(self, ctx: BotContext) -> None:
        if self.process_fn is not None:
            self.process_fn(ctx)
        else:
            run_steps(list(self.definition.bot.steps or []), ctx, self.run_dir)

    def _classify(self, exc: BaseException) -> tuple[str, str]:
        if self.watchdog.expired:
            limit = min(self.definition.timeouts.item_seconds, self.definition.timeouts.run_seconds)
            return ITEM_TIMEOUT, f"item exceeded its time limit ({limit:g} s)"
        if not self.session.alive:
            return (
                BROWSER_CRASHED,
                f"the browser stopped during the item: {first_line(exc)}",
            )
        if isinstance(exc, ApplicationException):
            return type(exc).__name__, exc.message
        return type(exc).__name__, first_line(exc)

    def _keep_evidence(
        self, ctx: BotContext, reference: str, attempt: int, tracing: bool
    ) -> list[str]:
        kept: list[str] = []
        if not self.session.alive:
            return kept
        self.run_dir.mkdir(parents=True, exist_ok=True)
        # Not Path.with_suffix: a reference may hold a dot ('A.1').
        stem = f"{_safe_name(reference)}-attempt{attempt}"
        trace = None
        if tracing and self.session.context is not None:
            # Saved first, so that it ends with the failure, not with the screenshot's
            # masking. Saved (or lost with a dead context): the next attempt starts a chunk.
            self._chunk = None
            trace = self._save_trace(stem)
        if self.definition.evidence.screenshot_on_failure:
            secrets = list(dict.fromkeys([*self.env.redactor.forms(), *ctx.secret_forms()]))
            shot = evidence.screenshot(ctx.page, self.run_dir / f"{stem}.png", secrets)
            if shot:
                kept.append(str(shot))
        if trace:
            kept.append(str(trace))
        return kept

    def _save_trace(self, stem: str) -> Path | None:
        """The attempt's trace, saved and scrubbed (a trace started for it alone is stopped)."""
        context = self.session.context
        assert context is not None
        trace = evidence.save_trace(
            context,
            self.run_dir / f"{stem}.trace.zip",
            self.env.redactor,
            since=self._attempt_since,
            scratch=self.session.scratch_dir,
        )
        if self.trace_policy == "on-first-retry":
            evidence.end_trace(context)
        return trace

    def _end_trace(self, reference: str, attempt: int) -> list[str]:
        """After an attempt that did not fail: its trace kept (``always``), stopped
        (``on-first-retry``), or left recording its window (``retain-on-failure``)."""
        context = self.session.context
        if context is None or not self.session.alive:
            return []
        if self.trace_policy == "on-first-retry":
            evidence.end_trace(context)
        elif self.trace_policy == "always":
            self._chunk = None
            self.run_dir.mkdir(parents=True, exist_ok=True)
            trace = self._save_trace(f"{_safe_name(reference)}-attempt{attempt}")
            return [str(trace)] if trace else []
        return []


def _safe_name(reference: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in reference)[:80] or "item"


def run_process(
    env: RunEnvironment,
    version: ProcessVersion,
    request: RunRequest,
    progress: Progress | None = None,
) -> RunResult:
    if not version.enabled:
        raise RegistryError(
            f"{version.definition.id} is disabled; `robo enable {version.definition.id}` first"
        )
    result = ProcessRun(env, version, request, progress).execute()
    if env.after_run is not None:
        try:
            env.after_run(result.run_id)
        except Exception as exc:  # an alert that cannot be raised never fails the run
            get_logger(run=result.run_id).warning("run.after_run_failed", error=str(exc))
    return result
