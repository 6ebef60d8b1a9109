"""Asking the application whether an item's work was already done (``bot.verify``).

Used for an item a dead run left in progress: the bot may have done the work
just before robo died. The verify block says which of three things is true,
and only ``not_done`` lets the work be done again.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from robo.definition import Bot
from robo.errors import BusinessException, Deadline, ItemSkipped
from robo.runner.context import BotContext
from robo.runner.steps import first_line, run_steps


@dataclass(frozen=True)
class Verdict:
    state: Literal["done", "not_done", "unknown"]
    detail: str


def verify_item(
    bot: Bot, function: Callable[..., Any] | None, ctx: BotContext, screenshots: Path
) -> Verdict:
    """Steps: done if they all pass, not done if a ``fail_if`` fires. Python: the function's
    True or False. Anything else (an error, a timeout, no answer) cannot tell."""
    try:
        if isinstance(bot.verify, list):
            run_steps(list(bot.verify), ctx, screenshots)
            return Verdict("done", "the verify steps found the work done")
        if function is None:
            return Verdict("unknown", "the verify function is missing from the bot module")
        answer = function(ctx)
    except ItemSkipped as exc:
        return Verdict("done", exc.message)
    except BusinessException as exc:
        return Verdict("not_done", exc.message)
    except (Exception, Deadline) as exc:
        return Verdict("unknown", f"verify failed: {first_line(exc)}")
    if answer is True:
        return Verdict("done", "verify() returned True")
    if answer is False:
        return Verdict("not_done", "verify() returned False")
    return Verdict("unknown", f"verify() returned {answer!r}, not True or False")
