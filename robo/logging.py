"""structlog set-up: one configuration, secrets masked before anything is rendered."""

from __future__ import annotations

import logging
import sys
from typing import Any

import structlog

from robo.redaction import Redactor

_LEVELS = {"debug": 10, "info": 20, "warning": 30, "error": 40}


def configure(level: str = "info", fmt: str = "console", redactor: Redactor | None = None) -> None:
    """Configure structlog for this process. Logs go to stderr; stdout is for command output."""
    processors: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    if redactor is not None:
        processors.append(redactor.structlog_processor)
    if fmt == "json":
        processors += [structlog.processors.format_exc_info, structlog.processors.JSONRenderer()]
    else:
        processors.append(structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty()))
    structlog.configure(
        processors=processors,
        wrapper_class=structlog.make_filtering_bound_logger(_LEVELS.get(level, logging.INFO)),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=False,
    )


def reset() -> None:
    structlog.reset_defaults()


def get_logger(**bound: Any) -> Any:
    return structlog.get_logger("robo").bind(**bound)
