"""A run's heartbeat: how a dead runner is told apart from a slow one."""

from __future__ import annotations

import contextlib
import threading
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
    ) -> None:
        super().__init__(name=f"robo-heartbeat-{run_id}", daemon=True)
        self.ledger, self.run_id, self.interval = ledger, run_id, interval
        self.renew_leases = renew_leases  # of the queue items the run holds
        self._stop_event = threading.Event()

    def run(self) -> None:
        while not self._stop_event.wait(self.interval):
            # A busy database must not kill the run; the next beat retries.
            with contextlib.suppress(Exception):
                self.ledger.heartbeat(self.run_id)
                self.renew_leases()

    def stop(self) -> None:
        self._stop_event.set()
        if self.is_alive():
            self.join()
