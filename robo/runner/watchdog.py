"""Hard deadlines for bot code that may block anywhere.

Playwright's synchronous API cannot be interrupted from another thread, so at
the deadline the watchdog kills the session's Chromium: every pending page call
then fails at once. If the bot is stuck in plain Python instead (a loop, a
sleep), a signal delivered to the main thread raises ``Deadline`` there.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import FrameType

PYTHON_GRACE_SECONDS = 2.0


class Deadline(BaseException):
    """The time allowed for this work is over."""


class Watchdog:
    def __init__(self, kill_browser: Callable[[], None]) -> None:
        self._kill_browser = kill_browser
        self.expired = False

    @contextmanager
    def limit(self, seconds: float) -> Iterator[Watchdog]:
        self.expired = False
        in_main = threading.current_thread() is threading.main_thread()
        main_ident = threading.main_thread().ident
        done = threading.Event()
        previous = None

        def on_signal(_signum: int, _frame: FrameType | None) -> None:
            if not done.is_set():
                raise Deadline(f"still running after {seconds:g} s")

        def watch() -> None:
            if done.wait(seconds):
                return
            self.expired = True
            self._kill_browser()
            if in_main and main_ident is not None and not done.wait(PYTHON_GRACE_SECONDS):
                signal.pthread_kill(main_ident, signal.SIGUSR1)

        if in_main:
            previous = signal.signal(signal.SIGUSR1, on_signal)
        thread = threading.Thread(target=watch, name="robo-watchdog", daemon=True)
        thread.start()
        try:
            yield self
        finally:
            done.set()
            thread.join()
            if in_main:
                signal.signal(signal.SIGUSR1, previous or signal.SIG_DFL)
