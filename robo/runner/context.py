"""What a Python bot receives for each item."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

from robo.errors import BusinessException, SecretError

if TYPE_CHECKING:
    from playwright.sync_api import Page


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

    def secret(self, name: str) -> str:
        """The value of a secret listed in the definition's ``secrets``."""
        if name not in self._allowed_secrets:
            raise SecretError(
                f"the bot asked for secret '{name}', which the definition does not list in "
                "'secrets'; add it there"
            )
        return self._secret(name)

    def business_error(self, message: str) -> NoReturn:
        """End this item as a business exception: the data is wrong, a human takes over."""
        raise BusinessException(message)
