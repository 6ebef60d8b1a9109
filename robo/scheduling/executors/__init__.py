"""Where scheduled runs execute: a local process pool, or Celery workers."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from robo.app import Robo
    from robo.scheduling.executors.base import Executor
    from robo.settings import Settings


def make_executor(settings: Settings, robo: Robo | None = None) -> Executor:
    """The executor the settings name (ROBO_EXECUTOR): 'local' or 'celery'."""
    if settings.executor == "celery":
        from robo.scheduling.executors.celery import CeleryExecutor, check_timeouts, longest_run

        if robo is not None:
            check_timeouts(settings, *longest_run(robo))
        return CeleryExecutor(settings, robo)
    from robo.scheduling.executors.local import LocalExecutor

    return LocalExecutor(settings.model_dump(mode="json"), settings.bot_slots)
