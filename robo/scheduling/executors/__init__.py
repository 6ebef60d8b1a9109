"""Where scheduled runs execute: a local process pool, or Celery workers."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from robo.ledger import Ledger
    from robo.registry import Registry
    from robo.scheduling.executors.base import Executor, JobFunction
    from robo.settings import Settings


def make_executor(
    settings: Settings,
    execute: JobFunction,
    registry: Registry | None = None,
    ledger: Ledger | None = None,
) -> Executor:
    """The executor the settings name (ROBO_EXECUTOR): 'local' or 'celery'.

    ``execute`` runs one job in the process that takes it; with ``registry`` the
    Celery timeouts are checked against the longest run, with ``ledger`` the
    Celery executor can tell whether a process has a run in flight.
    """
    if settings.executor == "celery":
        from robo.scheduling.executors.celery import CeleryExecutor, check_timeouts, longest_run

        if registry is not None:
            check_timeouts(settings, *longest_run(registry))
        return CeleryExecutor(settings, ledger)
    from robo.scheduling.executors.local import LocalExecutor

    return LocalExecutor(settings.model_dump(mode="json"), settings.bot_slots, execute)
