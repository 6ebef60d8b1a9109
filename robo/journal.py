"""The outcome journal: ledger writes that could not reach the database, kept on disk.

When the database stays locked or unreachable longer than the ledger's retries,
an item's outcome (or a run's end) is appended to
``ROBO_HOME/journal/ledger.jsonl`` (one JSON object a line, flushed and
fsynced, mode 0600) instead of being lost. The ledger replays the journal when
the database answers again; the items table's unique (run, reference) and the
queue item's single credit make a replay idempotent, so an entry replayed twice
(two processes, a crash mid-replay) still counts once.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

FILE = "ledger.jsonl"


class OutcomeJournal:
    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.path = folder / FILE

    def append(self, entry: dict[str, Any]) -> None:
        line = json.dumps(entry, ensure_ascii=False, default=str, allow_nan=False) + "\n"
        with self._locked():  # never between a replay's read and its rewrite
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            try:
                os.write(fd, line.encode())
                os.fsync(fd)
            finally:
                os.close(fd)

    def pending(self) -> bool:
        try:
            return self.path.stat().st_size > 0
        except OSError:
            return False

    def replay(self, apply: Callable[[dict[str, Any]], None]) -> int:
        """Apply every entry in order, under a lock; drop the file once all applied.

        ``apply`` must be idempotent. If it raises (the database is still away),
        the entries not yet applied stay for the next replay.
        """
        if not self.pending():
            return 0
        with self._locked():
            lines = self.path.read_text(encoding="utf-8").splitlines()
            done = 0
            try:
                for line in lines:
                    if line.strip():
                        apply(json.loads(line))
                    done += 1
            finally:
                rest = lines[done:]
                tmp = self.path.with_suffix(".tmp")
                fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
                with os.fdopen(fd, "w", encoding="utf-8") as handle:
                    handle.write("".join(f"{line}\n" for line in rest))
                    handle.flush()
                    os.fsync(handle.fileno())
                os.replace(tmp, self.path)
            return done

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        self.folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        lock = self.folder / f"{FILE}.lock"
        fd = os.open(lock, os.O_WRONLY | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)
