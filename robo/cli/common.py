"""What every command shares: the typed context (one installation) and common options."""

from __future__ import annotations

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
