"""structlog set-up: one configuration, secrets masked before anything is rendered.

``configure`` only records the wanted set-up; structlog is imported and
configured when the first logger is asked for, so commands that log nothing
(listings, reports) do not pay for it. All of this module's state is here,
with ``reset`` for tests.

Each line goes to the current ``sys.stderr``, or to the sink ``redirect``
installed: the CLI's progress bar prints log lines through its own console, so
they appear above the bar instead of inside its line.
"""

from __future__ import annotations

import logging
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from robo.redaction import Redactor

_LEVELS = {"debug": 10, "info": 20, "warning": 30, "error": 40}
_wanted: dict[str, Any] = {"level": "info", "fmt": "console", "redactor": None}
_applied = False
_sink: list[Callable[[str], None]] = []  # the innermost redirect, if any
_lock = threading.RLock()  # a sink that logs does not deadlock


def configure(level: str = "info", fmt: str = "console", redactor: Redactor | None = None) -> None:
    """Set how this process logs. Logs go to stderr; stdout is for command output."""
    global _applied
    _wanted.update(level=level, fmt=fmt, redactor=redactor)
    _applied = False


def _apply() -> None:
    global _applied
    import structlog

    processors: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    redactor: Redactor | None = _wanted["redactor"]
    if redactor is not None:
        processors.append(redactor.structlog_processor)
    if _wanted["fmt"] == "json":
        processors += [structlog.processors.format_exc_info, structlog.processors.JSONRenderer()]
    else:
        processors.append(structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty()))
    structlog.configure(
        processors=processors,
        wrapper_class=structlog.make_filtering_bound_logger(
            _LEVELS.get(_wanted["level"], logging.INFO)
        ),
        logger_factory=_LineLogger,
        cache_logger_on_first_use=False,
    )
    _applied = True


class _LineLogger:
    """structlog's output: one rendered line to the sink, else to ``sys.stderr`` as it is
    now (not as it was when the logger was made: a redirected stream is followed)."""

    def __init__(self, *_args: Any) -> None:
        pass

    def msg(self, message: str) -> None:
        with _lock:
            if _sink:
                _sink[-1](message)
                return
            stream = sys.stderr
            stream.write(message + "\n")
            stream.flush()

    log = debug = info = warn = warning = error = err = critical = exception = fatal = msg


@contextmanager
def redirect(sink: Callable[[str], None]) -> Iterator[None]:
    """Send every log line to ``sink`` inside the block (a live progress bar's console)."""
    with _lock:
        _sink.append(sink)
    try:
        yield
    finally:
        with _lock:
            _sink.remove(sink)


def reset() -> None:
    global _applied
    import structlog

    structlog.reset_defaults()
    _wanted.update(level="info", fmt="console", redactor=None)
    _sink.clear()
    _applied = False


def get_logger(**bound: Any) -> Any:
    if not _applied:
        _apply()
    import structlog

    return structlog.get_logger("robo").bind(**bound)
