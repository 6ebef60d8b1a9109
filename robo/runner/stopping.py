"""Requests to stop a run: a drain's (process-wide flag) and an operator's (`robo cancel`).

A pool process holds one run, so a drain's request is process-wide: the executor's
signal handler sets it, and the run loop looks at it before it takes the next item. The
item in flight finishes; the run ends `interrupted`, its remaining items left in its
queue for the recovery the ledger then owes it.

An operator's cancel is a row change (``robo.cancellation``), read by the run wherever it
runs: before it takes each item (one primary-key read), and every few seconds by its
heartbeat thread, which, for ``--now``, cuts the item in flight at once (the watchdog
kills the browser; Python stuck in a bot gets ``Deadline``). The run ends `cancelled`
and is owed no recovery; the items it did not take stay in the queue.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable

from robo.cancellation import CancelRequest
from robo.errors import RunCancelled, StorageError

_requested = threading.Event()

# How often a running run's heartbeat thread reads its cancel request, at most.
CANCEL_POLL_SECONDS = 2.0


def request_stop() -> None:
    """Safe from a signal handler: it only sets a flag."""
    _requested.set()


def stop_requested() -> bool:
    return _requested.is_set()


class CancelWatch:
    """What this run knows of its cancel request, read from its row."""

    def __init__(
        self, read: Callable[[], CancelRequest | None], on_now: Callable[[], None]
    ) -> None:
        self._read = read
        self._on_now = on_now  # cuts the item in flight (Watchdog.cut)
        self.request: CancelRequest | None = None
        self._now = threading.Event()

    def poll(self) -> CancelRequest | None:
        """Read the request (a busy database keeps what was known); for ``now``, cut the
        item in flight once. Called by the run loop and by the heartbeat thread."""
        with contextlib.suppress(StorageError):
            found = self._read()
            if found is not None:
                self.request = found
        if self.request is not None and self.request.mode == "now" and not self._now.is_set():
            self._now.set()  # before the cut: the run loop checks it after arming a limit
            self._on_now()
        return self.request

    @property
    def now(self) -> bool:
        """``--now`` was seen: the item in flight is to be left at once."""
        return self._now.is_set()

    def check_now(self) -> None:
        """Raise RunCancelled if ``--now`` was seen (before and inside every bot call)."""
        if self._now.is_set():
            raise RunCancelled
