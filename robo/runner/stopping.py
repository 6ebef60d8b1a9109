"""A request to stop between items, for a runner shutting down gracefully (a drain).

A pool process holds one run, so the request is process-wide: the executor's signal
handler sets it, and the run loop looks at it before it takes the next item. The item
in flight finishes; the run ends `interrupted`, its remaining items left in its queue
for the recovery the ledger then owes it.
"""

from __future__ import annotations

import threading

_requested = threading.Event()


def request_stop() -> None:
    """Safe from a signal handler: it only sets a flag."""
    _requested.set()


def stop_requested() -> bool:
    return _requested.is_set()
