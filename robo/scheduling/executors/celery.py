"""The Celery executor: runs go through a broker (Redis or RabbitMQ) to `robo worker`s.

Delivery is at least once (late acknowledgement; a task a dead worker held is
redelivered) and a job runs at most once: its uid becomes the run's unique
uid, so a second delivery finds the run and stops. What a dead worker's run
left undone is resumed by the scheduler's crash recovery, item by item.
"""

from __future__ import annotations

import os
import signal
import socket
import sys
import threading
from dataclasses import asdict
from typing import TYPE_CHECKING, Any

from robo.errors import ConfigurationError
from robo.logging import get_logger
from robo.scheduling.executors.base import JobFunction, RunJob

if TYPE_CHECKING:
    from celery import Celery

    from robo.ledger import Ledger
    from robo.registry import Registry
    from robo.settings import Settings
    from robo.storage.database import Database

TASK = "robo.run"
PR_SET_PDEATHSIG = 1

# In a worker: its settings, id and job function, inherited by its (forked) pool processes.
_worker: dict[str, Any] = {}


def celery_app(settings: Settings) -> Celery:
    from celery import Celery

    if not settings.broker_url:
        raise ConfigurationError(
            "executor 'celery' needs a broker: set ROBO_BROKER_URL "
            "(e.g. redis://127.0.0.1:6379/0 or amqp://guest:guest@127.0.0.1:5672//)"
        )
    app = Celery("robo", broker=settings.broker_url, set_as_current=False)
    app.conf.update(
        task_acks_late=True,  # a task is acknowledged when its run has ended
        task_reject_on_worker_lost=True,  # ... and requeued if its worker process dies
        worker_prefetch_multiplier=1,  # a worker holds no more runs than it has slots
        worker_max_tasks_per_child=1,  # a fresh process (and browser) for every run
        task_default_queue=settings.broker_queue,
        task_serializer="json",
        accept_content=["json"],
        task_ignore_result=True,
        broker_transport_options={"visibility_timeout": settings.broker_visibility_timeout},
        broker_connection_retry_on_startup=True,
        broker_connection_timeout=5,
        worker_hijack_root_logger=False,
        worker_send_task_events=False,
    )
    app.task(name=TASK, acks_late=True)(run_task)
    return app


def run_task(job: dict[str, Any]) -> dict[str, Any]:
    """The Celery task, in a worker's pool process."""
    if not _worker:
        raise ConfigurationError("robo tasks run only in `robo worker`")
    execute: JobFunction = _worker["execute"]
    return execute(job, _worker["settings"], _worker["id"])


def check_timeouts(settings: Settings, longest_run_seconds: float, longest_process: str) -> None:
    """Refuse settings under which the broker would redeliver runs still in progress,
    or under which a live run could be taken for a dead one."""
    problems = []
    if settings.broker_url.startswith(("redis", "rediss")) and (
        settings.broker_visibility_timeout <= longest_run_seconds
    ):
        problems.append(
            f"ROBO_BROKER_VISIBILITY_TIMEOUT ({settings.broker_visibility_timeout:g} s) must exceed "
            f"the longest run timeout ({longest_run_seconds:g} s, process {longest_process}): "
            "Redis would otherwise hand a run still in progress to a second worker"
        )
    if settings.abandon_after_seconds <= 2 * settings.heartbeat_seconds:
        problems.append(
            f"ROBO_ABANDON_AFTER_SECONDS ({settings.abandon_after_seconds:g}) must exceed twice "
            f"ROBO_HEARTBEAT_SECONDS ({settings.heartbeat_seconds:g}): live runs would be abandoned"
        )
    if problems:
        raise ConfigurationError("inconsistent timeouts:\n  " + "\n  ".join(problems))


def longest_run(registry: Registry) -> tuple[float, str]:
    longest, name = 0.0, "-"
    for process_id in registry.process_ids():
        try:
            seconds = registry.active(process_id).definition.timeouts.run_seconds
        except Exception:
            continue
        if seconds > longest:
            longest, name = seconds, process_id
    return longest, name


class CeleryExecutor:
    def __init__(self, settings: Settings, ledger: Ledger | None = None) -> None:
        self.settings = settings
        self.app = celery_app(settings)
        self._ledger = ledger  # None: busy() cannot tell, and says no
        self._sent: dict[str, list[str]] = {}  # process id -> job uids not yet seen finished
        self._lock = threading.Lock()
        self.log = get_logger(component="celery-executor")

    def submit(self, jobs: list[RunJob]) -> None:
        """Enqueue; several jobs of one process form a chain, so they never overlap."""
        from celery import chain

        if not jobs:
            return
        signatures = [
            self.app.signature(TASK, kwargs={"job": asdict(job)}, immutable=True) for job in jobs
        ]
        (signatures[0] if len(signatures) == 1 else chain(*signatures)).apply_async()
        with self._lock:
            self._sent.setdefault(jobs[0].process_id, []).extend(job.uid for job in jobs)

    def busy(self, process_id: str) -> bool:
        return bool(self.in_flight(process_id))

    def in_flight(self, process_id: str) -> set[str]:
        """Jobs sent and not yet seen finished in the ledger (empty without a ledger)."""
        if self._ledger is None:
            return set()
        with self._lock:
            uids = list(self._sent.get(process_id, []))
        finished = set()
        for uid in uids:
            run = self._ledger.find_run(uid)
            if run is not None and run.status != "running":
                finished.add(uid)
        with self._lock:  # keep what another thread sent meanwhile
            pending = [u for u in self._sent.get(process_id, []) if u not in finished]
            self._sent[process_id] = pending
        return set(pending)

    def shutdown(self, drain_seconds: float = 60) -> None:
        """Runs belong to the workers; the scheduler only lets go of its connection."""
        self.app.close()


def _die_with_parent(**_kwargs: Any) -> None:
    if sys.platform.startswith("linux"):
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


def run_worker(
    settings: Settings,
    db: Database,
    registry: Registry,
    execute: JobFunction,
    slots: int,
    name: str | None = None,
) -> str | None:
    """`robo worker`: consume runs with ``slots`` pool processes until stopped.

    Returns how it was stopped ("Warm shutdown on SIGINT"): a Ctrl-C or SIGTERM is a
    normal end, once the running bots finished (warm) or were interrupted (cold),
    even though Celery gives it a failure exit code.
    """
    from celery.signals import worker_process_init, worker_shutting_down

    from robo.scheduling.workers import WorkerHeartbeat

    check_timeouts(settings, *longest_run(registry))
    worker_id = name or f"{socket.gethostname()}:{os.getpid()}"
    _worker.update(settings=settings.model_dump(mode="json"), id=worker_id, execute=execute)
    app = celery_app(settings)
    worker_process_init.connect(_die_with_parent, weak=False)
    stopped: list[str] = []

    def shutting_down(sig: str = "", how: str = "", **_: Any) -> None:
        stopped.append(f"{how} shutdown on {sig}")

    worker_shutting_down.connect(shutting_down, weak=False)
    heartbeat = WorkerHeartbeat(db, worker_id, slots, settings.heartbeat_seconds)
    heartbeat.start()
    try:
        worker = app.Worker(
            hostname=f"robo@{worker_id}",
            queues=[settings.broker_queue],
            concurrency=slots,
            pool="prefork",
            loglevel="WARNING",
            quiet=True,
            without_mingle=True,
            without_gossip=True,
        )
        worker.start()
        if worker.exitcode and not stopped:
            raise ConfigurationError(f"the Celery worker stopped with exit code {worker.exitcode}")
        return stopped[-1] if stopped else None
    finally:
        worker_shutting_down.disconnect(shutting_down)
        heartbeat.stop()
