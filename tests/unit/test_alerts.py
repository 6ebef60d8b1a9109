"""Alerts over the real ledger, queues and scheduler tables (SQLite and PostgreSQL), with
fake channels: which rule opens, that a storm is one message, that it resolves once."""

from __future__ import annotations

import datetime as dt
import threading
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from robo.alerts import AlertMonitor, AlertStore, parse_config
from robo.alerts.channels import RecordingSender
from robo.scheduling.decisions import DecisionLog
from robo.storage.database import Database
from robo.storage.models import AlertDeliveryRow, AlertRow, SchedulerLockRow
from tests.ledger_factory import QueueWork

CHANNELS = """
[channels.mail]
type = "smtp"
host = "127.0.0.1"
from = "robo@example.org"
to = ["ops@example.org"]
backoff_seconds = 0

[channels.hook]
type = "webhook"
url = "http://127.0.0.1:9/hook"
backoff_seconds = 0
"""
PROCESS = "invoice-check"


class Fakes:
    def __init__(self, work: QueueWork, rules: str = "", **senders: RecordingSender) -> None:
        self.work = work
        self.mail = senders.get("mail", RecordingSender())
        self.hook = senders.get("hook", RecordingSender())
        self.monitor = AlertMonitor(
            work.db,
            parse_config(CHANNELS + rules),
            secret=lambda name: "unused",
            region="occitanie",
            clock=lambda: work.now,
            senders={"mail": self.mail, "hook": self.hook},
            sleep=lambda _s: None,
        )

    def titles(self) -> list[str]:
        assert [m.title for m in self.mail.sent] == [m.title for m in self.hook.sent]
        return [m.title for m in self.mail.sent]

    def run(self, status: str = "failed", items: tuple[str, ...] = (), error: str = "") -> int:
        """A run of PROCESS through the real Ledger; its items' outcomes; then after_run."""
        run_id = self.work.start(PROCESS)
        if items:
            refs = [f"R{run_id}-{n}" for n in range(len(items))]
            self.work.add(PROCESS, *refs)
            for outcome in items:
                self.work.work(run_id, PROCESS, outcome)  # type: ignore[arg-type]
        self.work.tick(seconds=5)
        self.work.ledger.finish_run(run_id, status, error or None)  # type: ignore[arg-type]
        self.monitor.after_run(run_id)
        return run_id


@pytest.fixture
def fakes(work: QueueWork) -> Fakes:
    return Fakes(work)


def alerts(db: Database) -> list[AlertRow]:
    with db.session() as session:
        rows = list(session.scalars(select(AlertRow).order_by(AlertRow.id)))
        session.expunge_all()
        return rows


def test_a_failed_run_opens_one_alert_and_sends_it_to_every_channel(fakes: Fakes) -> None:
    run_id = fakes.run("failed", error="the portal answered 503")
    assert fakes.titles() == [f"ALERT run failed: {PROCESS} (occitanie)"]
    message = fakes.mail.sent[0]
    assert f"run {run_id} of {PROCESS} failed: the portal answered 503" in message.text
    assert message.fields["run"] == str(run_id) and message.event == "opened"
    [alert] = alerts(fakes.work.db)
    assert (alert.state, alert.key, alert.open_key) == ("open", f"run_failed:{PROCESS}", alert.key)
    with fakes.work.db.session() as session:
        rows = session.execute(select(AlertDeliveryRow.channel, AlertDeliveryRow.ok)).all()
    assert sorted(rows) == [("hook", True), ("mail", True)]


def test_a_storm_of_twenty_failures_is_one_message_then_one_recovery(fakes: Fakes) -> None:
    for _ in range(20):
        fakes.run("failed", error="boom")
    assert len(fakes.titles()) == 1
    [alert] = alerts(fakes.work.db)
    assert alert.occurrences == 20
    fakes.run("completed")
    fakes.run("completed")
    assert fakes.titles() == [
        f"ALERT run failed: {PROCESS} (occitanie)",
        f"RESOLVED run failed: {PROCESS} (occitanie)",
    ]
    assert "seen 20 occurrence(s)" in fakes.mail.sent[1].text
    [alert] = alerts(fakes.work.db)
    assert (alert.state, alert.open_key) == ("resolved", None)
    # A new failure after the recovery is a new alert, with its own message.
    fakes.run("timed_out")
    assert len(fakes.titles()) == 3
    assert [a.state for a in alerts(fakes.work.db)] == ["resolved", "open"]


def test_an_interrupted_run_neither_opens_nor_resolves(fakes: Fakes) -> None:
    fakes.run("interrupted")
    assert fakes.titles() == []
    fakes.run("failed")
    fakes.run("interrupted")
    assert len(fakes.titles()) == 1


def test_application_exceptions_in_a_row_across_runs(work: QueueWork) -> None:
    fakes = Fakes(work, "[rules.application_exceptions]\ncount = 4\n")
    fakes.run("completed", ("application_exception",) * 3)
    assert fakes.titles() == []
    fakes.run("completed", ("application_exception",) * 2)  # 5 in a row over two runs
    assert fakes.titles() == [f"ALERT application exceptions in a row: {PROCESS} (occitanie)"]
    assert "4 application exceptions in a row in the runs of" in fakes.mail.sent[0].text
    fakes.run("completed", ("application_exception", "success"))
    assert len(fakes.titles()) == 2 and fakes.titles()[1].startswith("RESOLVED")


def test_application_exceptions_in_one_run_only_when_scoped_to_the_run(work: QueueWork) -> None:
    fakes = Fakes(work, '[rules.application_exceptions]\ncount = 3\nscope = "run"\n')
    fakes.run("completed", ("application_exception",) * 2)
    fakes.run("completed", ("application_exception",) * 2)
    assert fakes.titles() == []
    fakes.run("completed", ("success",) + ("application_exception",) * 3)
    assert len(fakes.titles()) == 1


def test_a_business_exception_rate_above_the_threshold(work: QueueWork) -> None:
    rules = "[rules.business_exception_rate]\nthreshold = 0.3\nmin_items = 4\n"
    fakes = Fakes(work, rules)
    fakes.run("completed", ("business_exception", "business_exception", "success"))  # too few
    assert fakes.titles() == []
    fakes.run("completed", ("business_exception", "business_exception", "success", "success"))
    assert fakes.titles() == [f"ALERT business exception rate: {PROCESS} (occitanie)"]
    assert "2 of 4 items" in fakes.mail.sent[0].text and "(50%)" in fakes.mail.sent[0].text
    fakes.run("completed", ("business_exception",) + ("success",) * 4)
    assert fakes.titles()[-1].startswith("RESOLVED business exception rate")


def test_a_per_process_override_turns_a_rule_off_or_routes_it(work: QueueWork) -> None:
    fakes = Fakes(work, f'[processes.{PROCESS}.run_failed]\nchannels = ["hook"]\n')
    fakes.run("failed")
    assert len(fakes.hook.sent) == 1 and fakes.mail.sent == []
    quiet = Fakes(work, f"[processes.{PROCESS}.run_failed]\nenabled = false\n")
    quiet.run("failed")
    assert quiet.mail.sent == [] and quiet.hook.sent == []


def test_items_past_their_deadline_and_a_long_worklist(work: QueueWork) -> None:
    fakes = Fakes(work, "[rules.worklist_size]\nmax_items = 2\n")
    work.queues.ensure("claims")
    from robo.queues import NewItem

    due = work.now + dt.timedelta(hours=1)
    work.queues.add("claims", [NewItem("C1", {}, deadline=due)], source="test")
    assert fakes.monitor.check() == []
    work.tick(hours=2)
    [opened] = fakes.monitor.check()
    assert opened.event == "opened" and opened.alert.key == "items_overdue:claims"
    assert "1 item(s) of queue claims are past their deadline" in opened.alert.summary
    assert fakes.monitor.check() == []  # still overdue: no second message
    run_id = work.start(PROCESS)
    for ref in ("C2", "C3", "C4"):
        work.add("claims", ref)
    for _ in range(4):
        work.work(run_id, "claims", "business_exception")
    events = {(t.event, t.alert.rule) for t in fakes.monitor.check()}
    assert events == {("resolved", "items_overdue"), ("opened", "worklist_size")}
    assert len(fakes.titles()) == 3


def test_a_missed_fire_opens_until_the_process_fires_again(work: QueueWork) -> None:
    fakes = Fakes(work)
    log = DecisionLog(work.db, "sched-1")
    at = work.now - dt.timedelta(hours=1)
    log.record(
        PROCESS, "c0", at, "missed", "missed while no scheduler ran (60 min late; missed: skip)"
    )
    [opened] = fakes.monitor.check()
    assert opened.alert.key == f"missed_fire:{PROCESS}"
    assert "did not run (missed while no scheduler ran" in opened.alert.summary
    assert fakes.monitor.check() == []
    log.record(PROCESS, "c0", work.now, "fired", "")
    [resolved] = fakes.monitor.check()
    assert resolved.event == "resolved"


def test_missed_fires_coalesced_into_a_fire_are_not_reported(work: QueueWork) -> None:
    fakes = Fakes(work)
    log = DecisionLog(work.db, "sched-1")
    log.record(PROCESS, "c0", work.now - dt.timedelta(hours=2), "missed", "coalesced")
    log.record(PROCESS, "c0", work.now - dt.timedelta(hours=1), "fired", "")
    assert fakes.monitor.check() == []


def lease(db: Database, owner: str, renewed: dt.datetime) -> None:
    with db.session() as session:
        session.merge(
            SchedulerLockRow(
                name="scheduler",
                owner=owner,
                acquired_at=renewed,
                renewed_at=renewed,
                expires_at=renewed + dt.timedelta(seconds=15),
            )
        )


def test_a_silent_scheduler_leader_is_reported_after_the_configured_minutes(
    work: QueueWork,
) -> None:
    fakes = Fakes(work, "[rules.scheduler_silent]\nminutes = 3\n")
    lease(work.db, "vm1:4242:abc", work.now)
    work.tick(minutes=2)
    assert fakes.monitor.check() == []
    work.tick(minutes=2)
    [opened] = fakes.monitor.check()
    assert opened.alert.key == "scheduler_silent:scheduler"
    assert "vm1:4242:abc has been silent since" in opened.alert.summary
    assert fakes.titles() == ["ALERT scheduler silent: scheduler (occitanie)"]
    assert fakes.monitor.check() == []
    lease(work.db, "vm2:77:def", work.now)  # a scheduler started again
    [resolved] = fakes.monitor.check()
    assert (
        resolved.event == "resolved" and "vm2:77:def renews its lease" in resolved.alert.resolution
    )


def test_a_standby_taking_over_reports_the_dead_leader(work: QueueWork) -> None:
    fakes = Fakes(work)
    [opened] = fakes.monitor.leader_taken_over(
        "vm1:1:a", work.now - dt.timedelta(seconds=20), "vm2:2:b"
    )
    assert "vm1:1:a stopped renewing its lease" in opened.alert.summary
    assert "the standby vm2:2:b took over" in opened.alert.summary


def test_a_channel_that_fails_is_retried_and_every_attempt_recorded(work: QueueWork) -> None:
    fakes = Fakes(work, mail=RecordingSender(fail_first=2), hook=RecordingSender(fail_first=5))
    fakes.run("failed")
    assert len(fakes.mail.sent) == 1 and fakes.hook.sent == []  # 3 attempts: the 3rd got through
    with work.db.session() as session:
        rows = session.execute(
            select(
                AlertDeliveryRow.channel, AlertDeliveryRow.attempt, AlertDeliveryRow.ok
            ).order_by(AlertDeliveryRow.id)
        ).all()
    assert [tuple(r) for r in rows] == [
        ("mail", 1, False),
        ("mail", 2, False),
        ("mail", 3, True),
        ("hook", 1, False),
        ("hook", 2, False),
        ("hook", 3, False),
    ]
    [view] = AlertStore(work.db).alerts()
    assert (view.sent, view.failed) == (1, 5)


def test_an_alert_that_cannot_be_evaluated_never_fails_the_caller(work: QueueWork) -> None:
    fakes = Fakes(work)

    def broken(*_args: Any) -> Any:
        raise RuntimeError("database on fire")

    fakes.monitor.store.apply = broken  # type: ignore[method-assign]
    run_id = work.start(PROCESS)
    work.ledger.finish_run(run_id, "failed")
    assert fakes.monitor.after_run(run_id) == []
    assert fakes.monitor.check() == []


def test_two_evaluators_at_once_open_the_alert_once(work: QueueWork) -> None:
    first, second = Fakes(work), Fakes(work)
    run_id = work.start(PROCESS)
    work.ledger.finish_run(run_id, "failed")
    barrier = threading.Barrier(2)

    def evaluate(fakes: Fakes) -> None:
        barrier.wait(timeout=5)
        fakes.monitor.after_run(run_id)

    threads = [threading.Thread(target=evaluate, args=(f,)) for f in (first, second)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)
    assert len(first.mail.sent) + len(second.mail.sent) == 1
    [alert] = alerts(work.db)
    assert alert.occurrences == 1  # the same run seen twice is one occurrence


def test_the_scheduler_reports_a_dead_leader_it_takes_over_and_abandoned_runs(
    work: QueueWork, tmp_path: Path
) -> None:
    """The seams in SchedulerService: a standby taking an expired lease, and its loop's
    check, which sees a run its dead runner never reported (abandoned by the scheduler)."""
    from robo.scheduling.service import SchedulerService
    from robo.settings import Settings

    fakes = Fakes(work)
    lease(work.db, "vm1:1:dead", work.now - dt.timedelta(seconds=40))  # expired long ago
    service = SchedulerService(
        Settings(home=tmp_path), work.db, None, work.ledger, work.queues, None,  # type: ignore[arg-type]
        owner="vm2:2:standby", clock=lambda: work.now, alerts=fakes.monitor,
    )  # fmt: skip
    assert service.wait_for_lease(threading.Event(), wait=False)
    assert fakes.titles() == ["ALERT scheduler silent: scheduler (occitanie)"]
    assert "vm1:1:dead stopped renewing its lease" in fakes.mail.sent[0].text
    assert "the standby vm2:2:standby took over" in fakes.mail.sent[0].text
    run_id = work.start(PROCESS)
    work.tick(minutes=5)
    [abandoned] = work.ledger.abandon_stale(work.now, "elsewhere", lambda _pid: True)
    assert abandoned.id == run_id
    service.check_alerts()
    assert fakes.titles()[1:] == [
        f"ALERT run failed: {PROCESS} (occitanie)",
        "RESOLVED scheduler silent: scheduler (occitanie)",  # the new leader renews
    ]
    assert f"run {run_id} of {PROCESS} abandoned: the runner stopped" in fakes.mail.sent[1].text
