"""structlog set-up: one configuration, secrets masked before anything is rendered.

``configure`` only records the wanted set-up; structlog is imported and
configured when the first logger is asked for, so commands that log nothing
(listings, reports) do not pay for it. All of this module's state is here,
with ``reset`` for tests.
"""

from __future__ import annotations

import logging
import sys
from typing import Any

from robo.redaction import Redactor

_LEVELS = {"debug": 10, "info": 20, "warning": 30, "error": 40}
_wanted: dict[str, Any] = {"level": "info", "fmt": "console", "redactor": None}
_applied = False


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
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=False,
    )
    _applied = True


def reset() -> None:
    global _applied
    import structlog

    structlog.reset_defaults()
    _wanted.update(level="info", fmt="console", redactor=None)
    _applied = False


def get_logger(**bound: Any) -> Any:
    if not _applied:
        _apply()
    import structlog

    return structlog.get_logger("robo").bind(**bound)
