"""What a Python bot receives for each item."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

from robo.errors import BusinessException, ItemSkipped, QueueError, SecretError
from robo.queues import NewItem, Queues
from robo.redaction import Redactor

if TYPE_CHECKING:
    from playwright.sync_api import Page


@dataclass(frozen=True)
class QueueHandle:
    """``ctx.queue("name")``: add items to a queue (this process's, or another's)."""

    name: str
    _queues: Queues
    _run_id: int | None

    def add(
        self,
        reference: str,
        data: dict[str, Any] | None = None,
        *,
        priority: int = 0,
        deadline: dt.datetime | None = None,
        defer_until: dt.datetime | None = None,
    ) -> int | None:
        """Queue one item; returns its id, or None if the queue already holds the reference.

        ``deadline`` and ``defer_until`` are aware datetimes (e.g. with ``tzinfo=ZoneInfo(...)``).
        """
        for label, moment in (("deadline", deadline), ("defer_until", defer_until)):
            if moment is not None and moment.tzinfo is None:
                raise QueueError(
                    f"ctx.queue({self.name!r}).add: {label} {moment:%Y-%m-%d %H:%M} has no time "
                    "zone; give an aware datetime, e.g. datetime(..., tzinfo=ZoneInfo('Europe/Paris'))"
                )
        self._queues.ensure(self.name)
        item = NewItem(str(reference), dict(data or {}), priority, deadline, defer_until)
        result = self._queues.add(
            self.name, [item], source=f"bot of run {self._run_id}", run_id=self._run_id
        )
        return result.added[0] if result.added else None


@dataclass
class BotContext:
    """The page, the current item, parameters, secrets and a logger bound to the item.

    ``process(ctx)`` reads ``ctx.item``, drives ``ctx.page`` and writes results to
    ``ctx.output``. It calls ``ctx.business_error(...)`` when the data is wrong;
    any other exception counts as an application exception and is retried.
    """

    page: Page
    params: dict[str, Any]
    log: Any
    downloads: Path
    input_dir: Path
    item: dict[str, Any] = field(default_factory=dict)
    reference: str = ""
    output: dict[str, Any] = field(default_factory=dict)
    _secret: Callable[[str], str] = field(default=lambda name: "", repr=False)
    _allowed_secrets: frozenset[str] = field(default=frozenset(), repr=False)
    _queues: Queues | None = field(default=None, repr=False)
    _run_id: int | None = field(default=None, repr=False)

    def secret(self, name: str) -> str:
        """The value of a secret listed in the definition's ``secrets``."""
        if name not in self._allowed_secrets:
            raise SecretError(
                f"the bot asked for secret '{name}', which the definition does not list in "
                "'secrets'; add it there"
            )
        return self._secret(name)

    def secret_forms(self) -> list[str]:
        """Every form (raw, encoded) of the secrets this bot may use: what screenshots mask."""
        forms = Redactor()
        for name in sorted(self._allowed_secrets):
            try:
                forms.add(self._secret(name))
            except SecretError:
                continue  # not set: then it cannot be on the page either
        return forms.forms()

    def business_error(self, message: str) -> NoReturn:
        """End this item as a business exception: the data is wrong, a human takes over."""
        raise BusinessException(message)

    def skip(self, message: str) -> NoReturn:
        """End this item as skipped: its work was already done (it saves no minutes)."""
        raise ItemSkipped(message)

    def queue(self, name: str) -> QueueHandle:
        """A queue to add items to, e.g. the queue a performer process drains."""
        if self._queues is None:
            raise QueueError("queues are not available here (the bot runs outside a run)")
        return QueueHandle(name, self._queues, self._run_id)
