"""The local executor: scheduled runs in a pool of processes, one bot per slot.

Each run gets a fresh process (no state, memory or browser carried over) that
dies with the scheduler: if the scheduler is killed, its runs stop and are
later found abandoned, rather than running on unseen.
"""

from __future__ import annotations

import multiprocessing
import signal
import socket
import sys
import threading
from concurrent.futures import Future, ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import asdict
from typing import Any

from robo.logging import get_logger
from robo.runner.stopping import request_stop, stop_requested
from robo.scheduling.executors.base import JobFunction, RunJob

PR_SET_PDEATHSIG = 1


_running = threading.Event()  # in a pool process: a run is in progress


def _child_init() -> None:
    """In each pool process: die with the parent; the parent alone decides on shutdown.

    Ctrl-C reaches the whole process group, so pool processes ignore SIGINT and
    wait for the scheduler's decision. The scheduler's drain sends SIGTERM twice:
    at once (the run finishes the item in flight, takes no other and ends
    'interrupted'), then when the drain time is over (the item is interrupted too).
    An idle process ignores it (the pool shuts it down).
    """
    if sys.platform.startswith("linux"):
        import ctypes

        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)

    def interrupt(_signum: int, _frame: Any) -> None:
        if not _running.is_set():
            return
        if not stop_requested():
            request_stop()  # the first: stop between items
            return
        signal.signal(signal.SIGTERM, signal.SIG_IGN)  # let the run record its end
        raise KeyboardInterrupt

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, interrupt)


def _execute(execute: JobFunction, job: dict[str, Any], settings: dict[str, Any]) -> dict[str, Any]:
    _running.set()
    try:
        return execute(job, settings, f"local:{socket.gethostname()}")
    finally:
        _running.clear()


class LocalExecutor:
    """A process pool sized by ``bot_slots``: the global limit on concurrent bots."""

    def __init__(self, settings: dict[str, Any], slots: int, execute: JobFunction) -> None:
        self.settings = settings
        self.slots = slots
        self.execute = execute
        self._pool = ProcessPoolExecutor(
            max_workers=slots,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=_child_init,
            max_tasks_per_child=1,
        )
        # Pool processes die with the thread that spawned them (PR_SET_PDEATHSIG is per
        # thread), and the pool spawns them in the thread that submits: an APScheduler
        # worker thread, which ends when the scheduler stops, killing a draining bot.
        # Every submission goes through this thread instead, which outlives the pool.
        self._submitter = ThreadPoolExecutor(max_workers=1, thread_name_prefix="robo-submit")
        self._pending: dict[str, list[str]] = {}  # uids of queued or running runs, per process
        self._lock = threading.Lock()
        self.log = get_logger(component="executor")

    def submit(self, jobs: list[RunJob]) -> None:
        """Queue jobs of one process; each starts when the previous one has ended."""
        if not jobs:
            return
        process_id = jobs[0].process_id
        with self._lock:
            self._pending.setdefault(process_id, []).extend(job.uid for job in jobs)
        self._start(list(jobs))

    def _start(self, jobs: list[RunJob]) -> None:
        job, rest = jobs[0], jobs[1:]
        try:
            future = self._submitter.submit(
                self._pool.submit, _execute, self.execute, asdict(job), self.settings
            ).result()
        except RuntimeError:  # the pool is shutting down: these runs never start
            with self._lock:
                for lost in jobs:
                    self._forget(lost)
            return
        future.add_done_callback(lambda f: self._done(job, f, rest))

    def _done(self, job: RunJob, future: Future[dict[str, Any]], rest: list[RunJob]) -> None:
        with self._lock:
            self._forget(job)
        if future.cancelled():
            self.log.warning("run.cancelled", process=job.process_id)
        elif future.exception() is not None:
            self.log.error("run.crashed", process=job.process_id, error=str(future.exception()))
        if rest:
            self._start(rest)

    def _forget(self, job: RunJob) -> None:
        uids = self._pending.get(job.process_id, [])
        if job.uid in uids:
            uids.remove(job.uid)

    def busy(self, process_id: str) -> bool:
        with self._lock:
            return bool(self._pending.get(process_id))

    def in_flight(self, process_id: str) -> set[str]:
        with self._lock:
            return set(self._pending.get(process_id, ()))

    def active(self) -> int:
        with self._lock:
            return sum(len(uids) for uids in self._pending.values())

    def shutdown(self, drain_seconds: float = 60) -> None:
        """Queued runs are cancelled; running bots take no new item and get
        ``drain_seconds`` to finish the one in flight, then are interrupted. Either way
        the runner records the run as 'interrupted', its recovery owed."""
        self._signal_running()  # the first SIGTERM: stop between items
        timer = threading.Timer(drain_seconds, self._signal_running)
        timer.daemon = True
        timer.start()
        try:
            self._pool.shutdown(wait=True, cancel_futures=True)
        finally:
            timer.cancel()
            self._submitter.shutdown(wait=True)

    def _signal_running(self) -> None:
        for process in list(getattr(self._pool, "_processes", {}).values()):
            if process.is_alive():
                process.terminate()
