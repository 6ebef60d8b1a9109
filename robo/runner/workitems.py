"""Reading work items from CSV, XLSX or JSON, checked before a run starts."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
from pathlib import Path
from typing import Any

from robo.definition import ItemSource
from robo.errors import InputError

Item = dict[str, Any]
MAX_REFERENCE_LENGTH = 255


def _json_value(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def _read_csv(path: Path) -> list[Item]:
    text = path.read_text(encoding="utf-8-sig")
    # French spreadsheets export ';' and headers may hold commas: the most frequent wins.
    header = text.split("\n", 1)[0]
    delimiter = max([",", ";", "\t"], key=header.count)
    return [dict(row) for row in csv.DictReader(io.StringIO(text), delimiter=delimiter)]


def _read_xlsx(path: Path, sheet: str | None) -> list[Item]:
    import openpyxl

    book = openpyxl.load_workbook(path, read_only=True, data_only=True)
    try:
        if sheet is not None and sheet not in book.sheetnames:
            raise InputError(f"{path}: no sheet '{sheet}'; sheets: {', '.join(book.sheetnames)}")
        rows = book[sheet] if sheet else book.worksheets[0]
        values = list(rows.iter_rows(values_only=True))
    finally:
        book.close()
    if not values:
        return []
    header = [str(h).strip() if h is not None else "" for h in values[0]]
    return [
        {h: _json_value(v) for h, v in zip(header, row, strict=False) if h}
        for row in values[1:]
        if any(v is not None for v in row)
    ]


def _read_json(path: Path) -> list[Item]:
    data = json.loads(path.read_text(encoding="utf-8"))
    if isinstance(data, dict) and isinstance(data.get("items"), list):
        data = data["items"]
    if not isinstance(data, list) or not all(isinstance(row, dict) for row in data):
        raise InputError(f'{path}: expected a JSON list of objects (or {{"items": [...]}})')
    return data


def read_items(source: ItemSource, path: Path) -> list[Item]:
    """Read and check every item; refuse the whole input if any row is unusable."""
    if not path.is_file():
        raise InputError(f"input file {path} does not exist")
    kind = source.source
    try:
        if kind == "csv":
            items = _read_csv(path)
        elif kind == "xlsx":
            items = _read_xlsx(path, source.sheet)
        elif kind == "json":
            items = _read_json(path)
        else:
            raise InputError(
                f"items of source '{kind}' are produced by the bot, not read from a file"
            )
    except InputError:
        raise
    except (OSError, UnicodeDecodeError, ValueError, csv.Error) as exc:
        raise InputError(f"cannot read {path} as {kind}: {exc}") from exc
    except Exception as exc:  # openpyxl raises many kinds on a damaged workbook
        raise InputError(f"cannot read {path} as {kind}: {exc}") from exc
    check_references(
        items, source.reference, str(path), first_row=2 if kind in ("csv", "xlsx") else 1
    )
    return items


def check_references(items: list[Item], field: str, origin: str, first_row: int = 1) -> None:
    """Every item needs a unique, non-empty reference: it is how an item is counted once."""
    problems = []
    seen: dict[str, int] = {}
    for index, item in enumerate(items):
        row = index + first_row
        value = item.get(field)
        if value is None or str(value).strip() == "":
            problems.append(f"row {row}: no value for reference field '{field}'")
            continue
        reference = str(value).strip()
        if len(reference) > MAX_REFERENCE_LENGTH:
            problems.append(f"row {row}: reference longer than {MAX_REFERENCE_LENGTH} characters")
        elif reference in seen:
            problems.append(
                f"row {row}: reference '{reference}' already used at row {seen[reference]}"
            )
        else:
            seen[reference] = row
    if problems:
        shown = "\n  ".join(problems[:20])
        more = f"\n  ... and {len(problems) - 20} more" if len(problems) > 20 else ""
        raise InputError(
            f"{origin}: {len(problems)} unusable item(s); nothing was run:\n  {shown}{more}\n"
            f"hint: each item needs a unique '{field}' (items.reference in process.yaml)"
        )


def reference_of(item: Item, field: str) -> str:
    return str(item[field]).strip()
