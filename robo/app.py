"""The installation as one object: settings, database and services, built once at the edge.

``Robo`` is the composition root: it builds each collaborator (database,
registry, ledger, secret store, key store, executor) once and hands them to the
service functions the CLI calls. Nothing below ``robo.app`` and ``robo.cli``
imports it; services take only what they use.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Mapping
from functools import cached_property
from typing import TYPE_CHECKING, Any

from robo.redaction import Redactor
from robo.settings import Settings

# Services are imported where first used: `robo runs` must not pay for Playwright,
# Jinja2 or cryptography, and `robo --help` for nothing at all.
if TYPE_CHECKING:
    from robo.alerts import AlertMonitor
    from robo.cancellation import Cancellations
    from robo.ledger import HourCost, Ledger
    from robo.queues import Queues
    from robo.registry import Registry
    from robo.replication.signing import KeyStore
    from robo.runner.run import RunEnvironment
    from robo.scheduling.executors.base import Executor
    from robo.secrets import SecretStore
    from robo.storage.database import Database


class Robo:
    def __init__(self, settings: Settings, env: Mapping[str, str] | None = None) -> None:
        self.settings = settings
        self.env = dict(os.environ if env is None else env)
        self.redactor = Redactor()

    @cached_property
    def db(self) -> Database:
        from robo.storage.database import Database

        self.settings.ensure_home()
        return Database(
            self.settings.effective_database_url,
            busy_timeout_seconds=self.settings.database_busy_seconds,
        )

    @cached_property
    def registry(self) -> Registry:
        from robo.regional import RegionDefaults
        from robo.registry import Registry

        defaults = RegionDefaults(
            self.settings.effective_timezone, self.settings.effective_calendar
        )
        return Registry(self.db, defaults)

    @cached_property
    def ledger(self) -> Ledger:
        from robo.journal import OutcomeJournal
        from robo.ledger import Ledger

        ledger = Ledger(
            self.db,
            self.redactor,
            journal=OutcomeJournal(self.settings.home / "journal"),
            retry_seconds=self.settings.ledger_retry_seconds,
        )
        ledger.replay_journal()  # outcomes kept while the database was away go in first
        return ledger

    @cached_property
    def queues(self) -> Queues:
        from robo.queues import Queues

        return Queues(self.db, self.registry.actor)

    @cached_property
    def cancellations(self) -> Cancellations:
        from robo.cancellation import Cancellations

        return Cancellations(self.db, self.registry.actor)

    @cached_property
    def secrets(self) -> SecretStore:
        from robo.secrets import SecretStore, load_or_create_key

        key = load_or_create_key(self.settings.secret_key_file, self.settings.secret_key)
        return SecretStore(self.db, key, env=self.env, redactor=self.redactor)

    @cached_property
    def keys(self) -> KeyStore:
        from robo.replication.signing import KeyStore

        return KeyStore(self.db, self.settings.home, self.settings.region)

    @cached_property
    def alerts(self) -> AlertMonitor | None:
        """Alerts from the rules file (``alerts_file``, else ROBO_HOME/alerts.toml); None if
        there is none. An invalid file raises AlertRulesInvalid, naming every problem."""
        path = self.settings.effective_alerts_file
        if self.settings.alerts_file is None and not path.exists():
            return None  # before the import: a run without alerts never loads them
        from robo.alerts import AlertMonitor, load_config

        return AlertMonitor(
            self.db,
            load_config(path),
            secret=lambda name: self.secrets.get(name),
            redactor=self.redactor,
            region=self.settings.region,
        )

    def alerts_or_none(self) -> AlertMonitor | None:
        """``alerts`` for services that must go on without them (runs, the scheduler): an
        invalid rules file is logged, never fatal there."""
        from robo.errors import RoboError
        from robo.logging import get_logger

        try:
            return self.alerts
        except RoboError as exc:
            get_logger(component="alerts").error("alerts.disabled", error=exc.message)
            return None

    def run_environment(self) -> RunEnvironment:
        from robo.runner.run import RunEnvironment

        return RunEnvironment(
            ledger=self.ledger,
            secret=self.secrets.get,
            redactor=self.redactor,
            region=self.settings.region,
            chromium=self.settings.chromium,
            trace=self.settings.trace,
            evidence_dir=self.settings.evidence_dir,
            versions_dir=self.settings.versions_dir,
            queues=self.queues,
            heartbeat_seconds=self.settings.heartbeat_seconds,
            abandon_after_seconds=self.settings.abandon_after_seconds,
            tmp_dir=self.settings.home / "tmp",
            hour_cost=self._hour_cost(),
            after_run=alerts.after_run if (alerts := self.alerts_or_none()) else None,
        )

    def _hour_cost(self) -> HourCost | None:
        from robo.ledger import HourCost

        s = self.settings
        if s.hour_cost_eur is None:
            return None
        on = s.hour_cost_set_on.isoformat() if s.hour_cost_set_on else ""
        return HourCost(s.hour_cost_eur, s.hour_cost_set_by, on)

    def executor(self) -> Executor:
        """The executor ROBO_EXECUTOR names, running jobs with :func:`execute_job`."""
        from robo.scheduling.executors import make_executor

        return make_executor(self.settings, execute_job, self.registry, self.ledger)

    def close(self) -> None:
        if "db" in self.__dict__:
            self.db.close()


def execute_job(job: dict[str, Any], settings: dict[str, Any], worker: str = "") -> dict[str, Any]:
    """Run one job in this process with its own installation; idempotent on the job's uid.

    Executors call it in a pool process or a Celery worker. A job delivered
    twice (a broker redelivers what a killed worker held) finds its run row: it
    then does nothing, since the scheduler abandons a dead run and resumes its
    remaining items itself.
    """
    from robo.errors import DuplicateRun, RoboError
    from robo.logging import configure
    from robo.runner.run import RunRequest, run_process

    config = Settings(**settings)
    robo = Robo(config)
    configure(config.log_level, config.log_format, robo.redactor)
    try:
        existing = robo.ledger.find_run(job["uid"])
        if existing is not None:
            return {"run_id": existing.id, "status": existing.status, "duplicate": True}
        try:
            version = robo.registry.active(job["process_id"])
        except RoboError as exc:
            return {"run_id": None, "status": "failed", "error": exc.message}
        scheduled = job.get("scheduled_for")
        request = RunRequest(
            process_id=job["process_id"],
            trigger=job["trigger"],
            scheduled_for=dt.datetime.fromisoformat(scheduled) if scheduled else None,
            resumes_run_id=job.get("resumes_run_id"),
            worker=worker,
            uid=job["uid"],
        )
        try:
            result = run_process(robo.run_environment(), version, request)
        except DuplicateRun:  # the other delivery got there first
            return {"run_id": None, "status": "duplicate", "duplicate": True}
        return {"run_id": result.run_id, "status": result.status}
    finally:
        robo.close()
