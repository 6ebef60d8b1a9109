"""What every executor shares: the job, the interface, and running one job."""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass, field
from typing import Any, Protocol

from robo.errors import RoboError


def new_job_uid() -> str:
    return uuid.uuid4().hex


@dataclass(frozen=True)
class RunJob:
    """One run to execute; ``uid`` becomes the run's uid, so a job runs at most once."""

    process_id: str
    trigger: str
    scheduled_for: str | None = None
    resumes_run_id: int | None = None
    uid: str = field(default_factory=new_job_uid)


class Executor(Protocol):
    def submit(self, jobs: list[RunJob]) -> Any:
        """Run these jobs one after another (a batch of catch-up runs never overlaps)."""

    def busy(self, process_id: str) -> bool:
        """True while a run of this process is queued or running here."""

    def shutdown(self, drain_seconds: float = 60) -> None: ...


def execute_job(job: dict[str, Any], settings: dict[str, Any], worker: str = "") -> dict[str, Any]:
    """Run one job with this machine's installation; idempotent on the job's uid.

    A job delivered twice (a broker redelivers what a killed worker held) finds
    its run row: it then does nothing, since the scheduler abandons a dead run
    and resumes its remaining items itself.
    """
    from robo.app import Robo
    from robo.ledger import DuplicateRun
    from robo.logging import configure
    from robo.runner.run import RunRequest, run_process
    from robo.settings import Settings

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
