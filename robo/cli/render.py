"""Rendering for the CLI: tables for people, JSON for scripts."""

from __future__ import annotations

import dataclasses
import json
import sys
from collections.abc import Sequence
from typing import Any

import click


def to_plain(obj: Any) -> Any:
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {k: to_plain(v) for k, v in dataclasses.asdict(obj).items()}
    if isinstance(obj, list | tuple):
        return [to_plain(v) for v in obj]
    if isinstance(obj, dict):
        return {k: to_plain(v) for k, v in obj.items()}
    return obj


def print_json(obj: Any) -> None:
    click.echo(json.dumps(to_plain(obj), indent=2, ensure_ascii=False, default=str))


def table(
    title: str | None,
    columns: Sequence[str],
    rows: Sequence[Sequence[Any]],
    *,
    right: Sequence[str] = (),
) -> None:
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    # Text, never markup: '[secret]' or '[bold]' in a value is printed as it is.
    grid = Table(
        title=None if title is None else Text(title), title_justify="left", header_style="bold"
    )
    for name in columns:
        grid.add_column(Text(name), justify="right" if name in right else "left", overflow="fold")
    for row in rows:
        grid.add_row(*(Text("" if v is None else str(v)) for v in row))
    Console(soft_wrap=False, width=max(100, _width())).print(grid)


def _width() -> int:
    import shutil

    return shutil.get_terminal_size((120, 40)).columns if sys.stdout.isatty() else 160


def hours(minutes: float) -> str:
    return f"{minutes / 60:,.1f}"


def error(message: str) -> None:
    click.echo(click.style("error: ", fg="red", bold=True) + message, err=True)


def note(message: str) -> None:
    click.echo(message, err=True)
