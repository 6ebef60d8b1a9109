"""What every command shares: the typed context (one installation) and common options."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import click

if TYPE_CHECKING:
    from robo.app import Robo

json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")


class Context:
    """Global options; the installation is opened on first use, so --help stays fast."""

    def __init__(self, overrides: dict[str, Any]) -> None:
        self.overrides = {k: v for k, v in overrides.items() if v is not None}
        self._robo: Robo | None = None

    @property
    def robo(self) -> Robo:
        if self._robo is None:
            from robo.app import Robo
            from robo.logging import configure
            from robo.settings import load_settings

            settings = load_settings(**self.overrides)
            self._robo = Robo(settings)
            configure(settings.log_level, settings.log_format, self._robo.redactor)
        return self._robo

    def close(self) -> None:
        if self._robo is not None:
            self._robo.close()


def locale_option(command: Any) -> Any:
    """``--locale`` on the commands whose output managers read (reports, the demo)."""
    return click.option(
        "--locale",
        "locale",
        metavar="LANG",
        default=None,
        help="Language of the report: fr or en (default: ROBO_LOCALE, else the region's; "
        "French for French regions).",
    )(command)


@contextmanager
def speaking(obj: Context, locale: str | None) -> Iterator[str]:
    """Speak ``--locale``, else the installation's language, for the rest of the command."""
    from robo.i18n import parse_locale, use_locale

    if locale is not None:
        try:
            chosen = parse_locale(locale)
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint="--locale") from None
    else:
        chosen = obj.robo.settings.report_locale
    with use_locale(chosen) as language:
        yield language
