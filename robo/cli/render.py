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
    optional: Sequence[str] = (),
) -> None:
    """Print a table that fits the terminal; in a pipe, one line per row (or COLUMNS).

    A table too wide for its full borders is drawn compact, its cells wrapped
    between words where they can (no value is ever cut). On a terminal,
    ``optional`` columns (the least important first) are then left out, one by
    one, while the columns left could not each show a word of up to ``READABLE``
    characters; a note names them. In a pipe no column is left out and no word
    is broken: each row on one line (at least PIPE_WIDTH wide), or wrapped between
    words at COLUMNS if it is set (scripts read --json anyway).
    """
    from rich import box
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    width, terminal = _width()
    cells = [["" if v is None else str(v) for v in row] for row in rows]
    keep = list(range(len(columns)))
    cap = READABLE if terminal else None
    if not terminal:
        full = sum(_longest(columns[i], cells, i) for i in keep) + 3 * len(keep) + 1
        width = max(width or max(PIPE_WIDTH, full), _needed(columns, cells, keep, None))
    natural = sum(_longest(columns[i], cells, i) for i in keep) + 3 * len(keep) + 1
    compact = natural > width
    left_out: list[str] = []
    for name in optional if terminal and compact else ():
        if _needed(columns, cells, keep, cap) <= width:
            break
        if name in columns and len(keep) > 1:
            keep.remove(columns.index(name))
            left_out.append(name)
    # Text, never markup: '[secret]' or '[bold]' in a value is printed as it is.
    style: dict[str, Any] = (
        {"box": box.SIMPLE_HEAD, "show_edge": False, "pad_edge": False, "collapse_padding": True}
        if compact
        else {}
    )
    grid = Table(
        title=None if title is None else Text(title),
        title_justify="left",
        header_style="bold",
        **style,
    )
    widths = _fitted(columns, cells, keep, width, cap) if compact else {}
    for i in keep:
        name = columns[i]
        grid.add_column(
            Text(name),
            justify="right" if name in right else "left",
            overflow="fold",
            width=widths.get(i),
        )
    for row in cells:
        grid.add_row(*(Text(row[i] if i < len(row) else "") for i in keep))
    console = Console(soft_wrap=False, width=width)
    console.print(grid)
    if left_out:
        console.print(
            Text(f"({', '.join(left_out)}: left out to fit {width} columns; --json has them)"),
            style="dim",
        )


READABLE = 24  # a column narrower than its words, up to this long, is hard to read
PIPE_WIDTH = 100  # the narrowest a table is drawn in a pipe without COLUMNS


def _longest(header: str, cells: list[list[str]], i: int) -> int:
    """The widest line of column ``i``, header included."""
    from rich.cells import cell_len

    texts = [header, *(row[i] for row in cells if i < len(row))]
    return max(cell_len(line) for text in texts for line in text.splitlines() or [""])


def _longest_word(header: str, cells: list[list[str]], i: int, cap: int | None) -> int:
    """The longest word of column ``i`` (header included), at most ``cap``."""
    from rich.cells import cell_len

    texts = [header, *(row[i] for row in cells if i < len(row))]
    longest = max(cell_len(word) for text in texts for word in text.split() or [""])
    return longest if cap is None else min(longest, cap)


def _needed(
    columns: Sequence[str], cells: list[list[str]], keep: list[int], cap: int | None
) -> int:
    """The width of a compact table in which each kept column shows its words whole."""
    return sum(_longest_word(columns[i], cells, i, cap) for i in keep) + 2 * (len(keep) - 1)


def _fitted(
    columns: Sequence[str], cells: list[list[str]], keep: list[int], width: int, cap: int | None
) -> dict[int, int]:
    """Widths for a compact table too wide for ``width``: what must go is taken from each
    column in proportion to what it can give before its words break (its longest word,
    up to ``cap``), so a column of sentences wraps between words before an id is folded;
    if words must break anyway, the widest columns give first (narrow ones stay whole)."""
    natural = {i: _longest(columns[i], cells, i) for i in keep}
    least = {i: min(natural[i], _longest_word(columns[i], cells, i, cap)) for i in keep}
    excess = sum(natural.values()) + 2 * (len(keep) - 1) - width
    slack = {i: natural[i] - least[i] for i in keep}
    total = sum(slack.values())
    if excess <= 0:
        return {}
    if total < excess:
        widths, over = dict(least), excess - total
        while over > 0:
            widest = max(keep, key=lambda i: widths[i])
            if widths[widest] <= 1:
                break
            widths[widest] -= 1
            over -= 1
        return widths
    cut = {i: excess * slack[i] // total for i in keep}
    for i in sorted(keep, key=lambda i: slack[i] - cut[i], reverse=True):
        if sum(cut.values()) >= excess:
            break
        if cut[i] < slack[i]:
            cut[i] += 1
    return {i: natural[i] - cut[i] for i in keep}


def _width() -> tuple[int, bool]:
    """(width, on a terminal): the terminal's width; in a pipe COLUMNS, or 0 (none set)."""
    import os
    import shutil

    if sys.stdout.isatty():
        return max(20, shutil.get_terminal_size((100, 40)).columns), True
    try:
        columns = int(os.environ.get("COLUMNS", ""))
    except ValueError:
        columns = 0
    return (columns if columns >= 20 else 0), False


def hours(minutes: float) -> str:
    return f"{minutes / 60:,.1f}"


def error(message: str) -> None:
    click.echo(click.style("error: ", fg="red", bold=True) + message, err=True)


def note(message: str) -> None:
    click.echo(message, err=True)
