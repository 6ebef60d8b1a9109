"""Commands: see the module that fills COMMANDS."""

from __future__ import annotations

import click

COMMANDS: list[click.Command] = []
