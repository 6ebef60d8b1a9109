"""A run's heartbeat: how a dead runner is told apart from a slow one."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable

from robo.ledger import Ledger


class Heartbeat(threading.Thread):
    """Tells the ledger this run is alive, so a dead runner is noticed and its run abandoned."""

    def __init__(
        self,
        ledger: Ledger,
        run_id: int,
        interval: float,
        renew_leases: Callable[[], object] = lambda: None,
        watch: Callable[[], object] = lambda: None,
        watch_seconds: float | None = None,
    ) -> None:
        super().__init__(name=f"robo-heartbeat-{run_id}", daemon=True)
        self.ledger, self.run_id, self.interval = ledger, run_id, interval
        self.renew_leases = renew_leases  # of the queue items the run holds
        # Between beats too: reads the run's cancel request (robo cancel --now).
        self.watch = watch
        self.tick = min(interval, watch_seconds or interval)
        self._stop_event = threading.Event()

    def run(self) -> None:
        next_beat = time.monotonic() + self.interval
        while not self._stop_event.wait(self.tick):
            # A busy database must not kill the run; the next beat retries.
            with contextlib.suppress(Exception):
                self.watch()
            if time.monotonic() < next_beat - self.tick / 10:
                continue
            next_beat = time.monotonic() + self.interval
            with contextlib.suppress(Exception):
                self.ledger.heartbeat(self.run_id)
                self.renew_leases()

    def stop(self) -> None:
        self._stop_event.set()
        if self.is_alive():
            self.join()
