"""robo's APScheduler job store: one pass over due jobs costs two transactions, not two a job.

APScheduler 3 processes due jobs one by one: hand the job to its executor, then
``update_job`` (a commit) with its next run time. robo's executor also records a
decision per fire (another commit). Here, between ``get_due_jobs`` and the end
of the pass (``get_next_run_time``, or a job's removal), the executor only
decides and the job updates wait; at the end the decisions are recorded (one
transaction) and the runs handed over, then the jobs' next run times are written
(one transaction). A decision is always written before its job moves on, as
before: a scheduler killed in between leaves the fire due, to be decided again
(its unique key makes that a no-op if it was recorded).
"""

from __future__ import annotations

import pickle
from collections.abc import Callable
from typing import Any

from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.util import datetime_to_utc_timestamp

from robo.logging import get_logger


class BatchingJobStore(SQLAlchemyJobStore):  # type: ignore[misc]  # APScheduler 3 is untyped
    def __init__(self, end_of_pass: Callable[[], Any], **options: Any) -> None:
        super().__init__(**options)
        self.end_of_pass = end_of_pass  # the dispatcher's flush
        self._updates: list[Any] | None = None  # None: not in a pass, updates write at once
        self.log = get_logger(component="jobstore")

    def get_due_jobs(self, now: Any) -> list[Any]:
        self._finish_pass()
        jobs: list[Any] = super().get_due_jobs(now)
        if jobs:
            self._updates = []
        return jobs

    def update_job(self, job: Any) -> None:
        if self._updates is None:
            super().update_job(job)
        else:
            self._updates.append(job)

    def remove_job(self, job_id: str) -> None:
        self._finish_pass()
        super().remove_job(job_id)

    def get_next_run_time(self) -> Any:
        self._finish_pass()
        return super().get_next_run_time()

    def _finish_pass(self) -> None:
        updates, self._updates = self._updates, None
        if updates is None:
            return
        try:
            self.end_of_pass()
        except Exception:  # as when a fire failed to dispatch: logged, the jobs move on
            self.log.exception("schedule.dispatch_failed")
        if not updates:
            return
        with self.engine.begin() as connection:
            for job in updates:
                done = connection.execute(
                    self.jobs_t.update()
                    .values(
                        next_run_time=datetime_to_utc_timestamp(job.next_run_time),
                        job_state=pickle.dumps(job.__getstate__(), self.pickle_protocol),
                    )
                    .where(self.jobs_t.c.id == job.id)
                )
                if done.rowcount == 0:  # removed meanwhile (a sync): nothing to move on
                    self.log.warning("scheduler.job_vanished", job=job.id)
