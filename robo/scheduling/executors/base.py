"""What every executor shares: the job, the interface, and the function that runs one job.

Executors run jobs in other processes (a local pool, Celery workers), each of
which opens its own installation: that function is built at the edge
(``robo.app.execute_job``) and handed in, so nothing here knows the installation.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

# (job as a dict, settings as a dict, worker name) -> {"run_id", "status", ...}; picklable.
JobFunction = Callable[[dict[str, Any], dict[str, Any], str], dict[str, Any]]


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

    def in_flight(self, process_id: str) -> set[str]:
        """The uids of this process's jobs handed over here and not yet seen finished
        (queued or running): queue triggers count them against ``max_runs``."""

    def shutdown(self, drain_seconds: float = 60) -> None: ...
