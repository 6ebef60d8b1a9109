"""Evaluating the rules and telling operators: the one entry point of alerts.

``AlertMonitor`` is called at three places: after each run ends
(:meth:`after_run`, from the runner), in the scheduler's loop and by
``robo watch`` (:meth:`check`: time-based rules, runs ended meanwhile, abandoned
ones included), and by a standby scheduler taking over a dead leader's lease
(:meth:`leader_taken_over`). Each finding opens, counts or resolves its alert
(:mod:`robo.alerts.store`); only an opening or a resolution sends a message,
so a storm of failures is one message, then one recovery.

Messages, stored summaries and delivery errors go through the redactor: a
secret value (the SMTP password, a webhook token, anything a bot used) is
masked everywhere. Nothing here ever raises into its caller's work: a run
never fails because an alert could not be sent.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select

from robo.alerts.channels import (
    Attempt,
    Message,
    Sender,
    SmtpSender,
    WebhookSender,
    deliver,
)
from robo.alerts.config import RUN_RULES, AlertConfig, SmtpChannel, WebhookChannel
from robo.alerts.rules import (
    missed_findings,
    processes_with_runs_since,
    queue_findings,
    run_findings,
    scheduler_finding,
    takeover_finding,
)
from robo.alerts.store import AlertStore, AlertView, Event, Finding, Transition
from robo.clock import utcnow
from robo.logging import get_logger
from robo.redaction import Redactor
from robo.storage.database import Database
from robo.storage.models import QueueRow, RunRow

RULE_TITLES = {
    "run_failed": "run failed",
    "application_exceptions": "application exceptions in a row",
    "business_exception_rate": "business exception rate",
    "items_overdue": "items past their deadline",
    "worklist_size": "worklist too long",
    "missed_fire": "scheduled fire missed",
    "scheduler_silent": "scheduler silent",
    "test": "test message",
}


@dataclass(frozen=True)
class ChannelResult:
    channel: str
    ok: bool
    attempts: int
    error: str | None


class AlertMonitor:
    def __init__(
        self,
        db: Database,
        config: AlertConfig,
        *,
        secret: Callable[[str], str],
        redactor: Redactor | None = None,
        region: str = "",
        clock: Callable[[], dt.datetime] = utcnow,
        senders: Mapping[str, Sender] | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.db = db
        self.config = config
        self.store = AlertStore(db)
        self.secret = secret
        self.redactor = redactor or Redactor()
        self.region = region
        self.clock = clock
        self.sleep = sleep
        self.senders: dict[str, Sender] = dict(senders or {})
        for name, channel in config.channels.items():
            self.senders.setdefault(name, self._sender(channel))
        self.log = get_logger(component="alerts")
        self._primed = False

    @property
    def check_seconds(self) -> float:
        return self.config.check_seconds

    def _sender(self, channel: SmtpChannel | WebhookChannel) -> Sender:
        if isinstance(channel, SmtpChannel):
            name = channel.password_secret
            return SmtpSender(channel, lambda: self.secret(name) if name else None)
        url_secret = channel.url_secret
        return WebhookSender(
            channel, lambda: self.secret(url_secret) if url_secret else channel.url or ""
        )

    # --- the three places alerts are evaluated -------------------------------------------

    def after_run(self, run_id: int) -> list[Transition]:
        """The run rules for the process of ``run_id``, which just ended. Never raises."""
        try:
            with self.db.session() as session:
                process_id = session.scalar(select(RunRow.process_id).where(RunRow.id == run_id))
            if process_id is None:
                return []
            return self._evaluate(lambda session: run_findings(session, self.config, process_id))
        except Exception as exc:
            self.log.warning("alerts.failed", run=run_id, error=f"{type(exc).__name__}: {exc}")
            return []

    def check(self, runs_since: dt.datetime | None = None) -> list[Transition]:
        """Time-based rules (queues, missed fires, scheduler silence), plus the run rules of
        every process with a run ended since ``runs_since`` or an open run alert. Never
        raises."""
        try:
            return self._check(runs_since)
        except Exception as exc:
            self.log.warning("alerts.check_failed", error=f"{type(exc).__name__}: {exc}")
            return []

    def _check(self, runs_since: dt.datetime | None) -> list[Transition]:
        now = self.clock()
        open_keys = self.store.open_keys()

        def findings(session: Any) -> list[Finding]:
            found: list[Finding] = []
            processes = set(processes_with_runs_since(session, runs_since)) if runs_since else set()
            processes |= {
                key.split(":", 1)[1] for key in open_keys if key.split(":", 1)[0] in RUN_RULES
            }
            for process_id in sorted(processes):
                found += run_findings(session, self.config, process_id)
            queues = session.scalars(select(QueueRow.name)).all()
            found += queue_findings(session, self.config, now, queues)
            found += missed_findings(session, self.config, now)
            silent = scheduler_finding(session, self.config, now)
            if silent is not None:
                found.append(silent)
            return found

        return self._evaluate(findings, open_keys)

    def leader_taken_over(
        self, previous_owner: str, renewed_at: dt.datetime, new_owner: str
    ) -> list[Transition]:
        """A standby took the lease of a leader that stopped renewing it. Never raises."""
        try:
            if not self.config.rules["scheduler_silent"].enabled:
                return []
            finding = takeover_finding(previous_owner, renewed_at, new_owner, self.clock())
            return self._evaluate(lambda _session: [finding])
        except Exception as exc:
            self.log.warning("alerts.failed", error=f"{type(exc).__name__}: {exc}")
            return []

    # --- findings -> alerts -> messages -----------------------------------------------------

    def _evaluate(
        self, find: Callable[[Any], list[Finding]], open_keys: set[str] | None = None
    ) -> list[Transition]:
        with self.db.session() as session:
            findings = find(session)
        if open_keys is None and any(f.active is False for f in findings):
            open_keys = self.store.open_keys()
        # Only findings that may change an alert: an inactive one with nothing open to
        # resolve, or an undecided one, costs no write.
        findings = [
            f for f in findings
            if f.active is True or (f.active is False and f.key in (open_keys or set()))
        ]  # fmt: skip
        if not findings:
            return []
        self._prime_secrets()  # before anything is redacted, stored or sent
        now = self.clock()
        transitions = []
        for finding in findings:
            finding = Finding(
                finding.rule,
                finding.subject,
                finding.active,
                self.redactor.redact(finding.summary),
                self.redactor.redact(finding.facts),
                finding.run_id,
            )
            transition = self.store.apply(finding, now)
            if transition is not None:
                transitions.append(transition)
                self.log.warning(
                    f"alert.{transition.event}", key=finding.key, summary=finding.summary
                )
                self._send(transition)
        return transitions

    def _prime_secrets(self) -> None:
        """Look the channels' secrets up once before the first message is built, so that the
        redactor knows their values (the store registers every value it returns)."""
        if self._primed:
            return
        self._primed = True
        for channel in self.config.channels.values():
            name = (
                channel.password_secret if isinstance(channel, SmtpChannel) else channel.url_secret
            )
            if name:
                try:
                    self.secret(name)
                except Exception as exc:  # reported by the delivery that needs it
                    self.log.warning(
                        "alert.secret_missing", secret=name, error=f"{type(exc).__name__}: {exc}"
                    )

    def _send(self, transition: Transition) -> list[ChannelResult]:
        alert = transition.alert
        names = self.config.channels_for(alert.rule, alert.subject)
        message = self.message(transition.event, alert)
        return [self._deliver(name, alert.id, transition.event, message) for name in names]

    def _deliver(self, name: str, alert_id: int, event: Event, message: Message) -> ChannelResult:
        channel = self.config.channels.get(name)
        sender = self.senders.get(name)
        attempts: list[Attempt] = []

        def record(attempt: Attempt) -> None:
            error = None if attempt.error is None else self.redactor.redact(attempt.error)
            attempts.append(Attempt(attempt.number, attempt.ok, error))
            self.store.record_attempt(
                alert_id, event, name, attempt.number, attempt.ok, error, self.clock()
            )
            if not attempt.ok:
                self.log.warning(
                    "alert.delivery_failed", channel=name, attempt=attempt.number, error=error
                )

        if sender is None or channel is None:
            record(Attempt(1, False, f"no channel named {name!r}"))
            return ChannelResult(name, False, 1, attempts[-1].error)
        ok = deliver(
            sender,
            message,
            attempts=channel.attempts,
            backoff_seconds=channel.backoff_seconds,
            on_attempt=record,
            sleep=self.sleep,
        )
        last = attempts[-1] if attempts else None
        return ChannelResult(name, ok, len(attempts), None if ok or last is None else last.error)

    def message(self, event: Event, alert: AlertView) -> Message:
        what = RULE_TITLES.get(alert.rule, alert.rule)
        where = f" ({self.region})" if self.region else ""
        if event == "opened":
            title = f"ALERT {what}: {alert.subject}{where}"
            text = alert.summary
        elif event == "resolved":
            title = f"RESOLVED {what}: {alert.subject}{where}"
            seen = f"{alert.occurrences} occurrence(s)" if alert.occurrences > 1 else "once"
            text = (
                f"{alert.resolution}\nopen since {alert.opened_at:%Y-%m-%d %H:%M} UTC, seen {seen}"
            )
        else:
            title = f"test message from robo{where}"
            text = alert.summary
        fields = {
            "rule": alert.rule,
            "subject": alert.subject,
            "state": alert.state,
            "opened": f"{alert.opened_at:%Y-%m-%d %H:%M:%S} UTC",
            "occurrences": str(alert.occurrences),
        }
        if self.region:
            fields["region"] = self.region
        for name in ("run", "status", "error", "queue", "leader", "scheduled_for"):
            if name in alert.facts and alert.facts[name] not in (None, ""):
                fields[name] = str(alert.facts[name])
        text += f"\n`robo alerts --open` lists open alerts (alert {alert.id})."
        return Message(
            event,
            self.redactor.redact(title),
            self.redactor.redact(text),
            {k: self.redactor.redact(v) for k, v in fields.items()},
            alert.key,
        )

    def test(self) -> list[ChannelResult]:
        """A test message to every channel, recorded like an alert; one result per channel."""
        alert = self.store.record_test(
            "This is a test message from robo: alerts reach this channel.", self.clock()
        )
        self._prime_secrets()
        message = self.message("test", alert)
        return [self._deliver(name, alert.id, "test", message) for name in self.config.channels]
