"""Hard deadlines for bot code that may block anywhere.

Playwright's synchronous API cannot be interrupted from another thread, so at
the deadline the watchdog kills the session's Chromium: every pending page call
then fails at once. If the bot is stuck in plain Python instead (a loop, a
sleep), a signal delivered to the main thread raises ``Deadline`` there.

One watcher thread serves every limit of a run (it sleeps until the current
deadline and is re-armed by the next ``limit``): starting and joining a thread
per item cost more than the rest of the bookkeeping.
"""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import FrameType

from robo.errors import Deadline

PYTHON_GRACE_SECONDS = 2.0


class Watchdog:
    def __init__(self, kill_browser: Callable[[], None]) -> None:
        self._kill_browser = kill_browser
        self.expired = False
        self._cond = threading.Condition()
        self._token = 0  # one per limit
        self._active: int | None = None  # the limit in progress
        self._deadline = 0.0
        self._target: int | None = None  # thread to signal if Python itself is stuck
        self._firing: int | None = None  # the limit being expired right now
        self._expired_token: int | None = None  # the last limit expired (never twice)
        self._closed = False
        self._thread: threading.Thread | None = None

    @contextmanager
    def limit(self, seconds: float) -> Iterator[Watchdog]:
        self.expired = False
        in_main = threading.current_thread() is threading.main_thread()
        previous = None
        with self._cond:
            self._token += 1
            token = self._token
            self._active, self._deadline = token, time.monotonic() + seconds
            self._target = threading.main_thread().ident if in_main else None
            if self._thread is None:
                self._closed = False
                self._thread = threading.Thread(
                    target=self._watch, name="robo-watchdog", daemon=True
                )
                self._thread.start()
            self._cond.notify_all()

        def on_signal(_signum: int, _frame: FrameType | None) -> None:
            if self._active == token:  # no lock: this runs in the main thread, maybe inside one
                raise Deadline(f"still running after {seconds:g} s")

        if in_main:
            previous = signal.signal(signal.SIGUSR1, on_signal)
        try:
            yield self
        finally:
            with self._cond:
                if self._active == token:
                    self._active = None
                self._cond.notify_all()
                while self._firing == token:  # the kill must be over before the caller goes on
                    self._cond.wait()
            if in_main:
                signal.signal(signal.SIGUSR1, previous or signal.SIG_DFL)

    def cut(self) -> None:
        """End the limit in progress now, as if its deadline had passed (`robo cancel
        --now`): the browser is killed, then Python still stuck gets ``Deadline``. Safe
        from any thread; nothing happens between limits."""
        with self._cond:
            if self._active is not None:
                self._deadline = time.monotonic()
                self._cond.notify_all()

    def close(self) -> None:
        """Stop the watcher thread (a later ``limit`` starts a new one)."""
        with self._cond:
            thread, self._thread = self._thread, None
            self._closed = True
            self._cond.notify_all()
        if thread is not None and thread is not threading.current_thread():
            thread.join()

    def _watch(self) -> None:
        with self._cond:
            while not self._closed:
                if self._active is None or self._active == self._expired_token:
                    self._cond.wait()
                    continue
                remaining = self._deadline - time.monotonic()
                if remaining > 0:
                    self._cond.wait(remaining)
                    continue
                token, target = self._active, self._target
                self._firing = self._expired_token = token
                self.expired = True
                self._cond.release()
                try:
                    self._kill_browser()
                finally:
                    self._cond.acquire()
                grace_end = time.monotonic() + PYTHON_GRACE_SECONDS
                while self._active == token and time.monotonic() < grace_end:
                    self._cond.wait(grace_end - time.monotonic())
                if self._active == token and target is not None:
                    signal.pthread_kill(target, signal.SIGUSR1)
                self._firing = None
                self._cond.notify_all()
