"""Reading work items from CSV, XLSX and JSON, and refusing unusable input up front."""

from __future__ import annotations

import datetime as dt
import json
import re
from pathlib import Path
from typing import Any

import pytest

from robo.definition import ItemSource
from robo.errors import InputError
from robo.runner.workitems import check_references, read_items, reference_of


def source(kind: str, reference: str = "ref", **kwargs: Any) -> ItemSource:
    return ItemSource(source=kind, reference=reference, **kwargs)  # type: ignore[arg-type]


def write(path: Path, content: str | bytes) -> Path:
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")
    return path


def make_xlsx(path: Path, rows: list[list[Any]], title: str = "Items") -> Path:
    import openpyxl

    book = openpyxl.Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.title = title
    for row in rows:
        sheet.append(row)
    book.save(path)
    return path


# --- CSV ------------------------------------------------------------------------


def test_csv_with_commas_is_read(tmp_path: Path) -> None:
    path = write(tmp_path / "items.csv", "ref,name,amount\nA1,Dupont,12.50\nA2,Martin,3\n")
    assert read_items(source("csv"), path) == [
        {"ref": "A1", "name": "Dupont", "amount": "12.50"},
        {"ref": "A2", "name": "Martin", "amount": "3"},
    ]


def test_csv_with_semicolons_is_read(tmp_path: Path) -> None:
    # French spreadsheets export with ';' and decimal commas.
    path = write(tmp_path / "items.csv", "ref;name;amount\nA1;Dupont;12,50\nA2;Martin;3\n")
    assert read_items(source("csv"), path) == [
        {"ref": "A1", "name": "Dupont", "amount": "12,50"},
        {"ref": "A2", "name": "Martin", "amount": "3"},
    ]


def test_csv_with_semicolons_and_a_comma_in_a_header_splits_on_semicolons(tmp_path: Path) -> None:
    # "Nom, prénom" is a common French column title; ';' is clearly the delimiter here.
    path = write(
        tmp_path / "items.csv",
        "ref;Nom, prénom;montant;date\nA1;Dupont, Jean;12,50;02/03/2026\n",
    )
    assert read_items(source("csv"), path) == [
        {"ref": "A1", "Nom, prénom": "Dupont, Jean", "montant": "12,50", "date": "02/03/2026"}
    ]


def test_csv_with_a_utf8_bom_is_read(tmp_path: Path) -> None:
    path = write(tmp_path / "items.csv", "\ufeffref;nom\r\nA1;Élodie\r\n".encode())
    items = read_items(source("csv"), path)
    assert items == [{"ref": "A1", "nom": "Élodie"}]
    assert list(items[0]) == ["ref", "nom"]  # the BOM is not part of the first header


def test_csv_with_a_single_column_is_read(tmp_path: Path) -> None:
    path = write(tmp_path / "items.csv", "ref\nA1\nA2\n")
    assert read_items(source("csv"), path) == [{"ref": "A1"}, {"ref": "A2"}]


def test_csv_with_quoted_delimiters_keeps_them_in_the_value(tmp_path: Path) -> None:
    path = write(tmp_path / "items.csv", 'ref,label\nA1,"Dupont, Jean"\n')
    assert read_items(source("csv"), path) == [{"ref": "A1", "label": "Dupont, Jean"}]


def test_csv_that_is_not_utf8_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path / "items.csv", "ref;nom\nA1;Hélène\n".encode("latin-1"))
    with pytest.raises(InputError, match=re.escape(f"cannot read {path} as csv")):
        read_items(source("csv"), path)


# --- XLSX ------------------------------------------------------------------------


def test_xlsx_is_read_with_dates_as_iso_text(tmp_path: Path) -> None:
    path = make_xlsx(
        tmp_path / "items.xlsx",
        [
            ["ref", "received", "amount", "count", "note"],
            ["A1", dt.date(2026, 3, 2), 12.5, 3, "ok"],
            ["A2", dt.datetime(2026, 3, 3, 14, 30), 7.0, 4, None],
        ],
    )
    items = read_items(source("xlsx"), path)
    assert items == [
        {"ref": "A1", "received": "2026-03-02T00:00:00", "amount": 12.5, "count": 3, "note": "ok"},
        {"ref": "A2", "received": "2026-03-03T14:30:00", "amount": 7, "count": 4, "note": ""},
    ]
    json.dumps(items)  # every value is JSON-ready


def test_xlsx_skips_empty_rows_and_unnamed_columns(tmp_path: Path) -> None:
    path = make_xlsx(
        tmp_path / "items.xlsx",
        [["ref", None, "name"], ["A1", "ignored", "x"], [None, None, None], ["A2", None, "y"]],
    )
    assert read_items(source("xlsx"), path) == [
        {"ref": "A1", "name": "x"},
        {"ref": "A2", "name": "y"},
    ]


def test_xlsx_reads_the_named_sheet(tmp_path: Path) -> None:
    import openpyxl

    path = tmp_path / "items.xlsx"
    book = openpyxl.Workbook()
    book.active.append(["other"])  # type: ignore[union-attr]
    second = book.create_sheet("Dossiers")
    second.append(["ref"])
    second.append(["D1"])
    book.save(path)
    assert read_items(source("xlsx", sheet="Dossiers"), path) == [{"ref": "D1"}]


def test_xlsx_with_an_unknown_sheet_lists_the_sheets(tmp_path: Path) -> None:
    path = make_xlsx(tmp_path / "items.xlsx", [["ref"], ["A1"]], title="Items")
    with pytest.raises(InputError) as info:
        read_items(source("xlsx", sheet="Missing"), path)
    assert info.value.message == f"{path}: no sheet 'Missing'; sheets: Items"


def test_a_file_that_is_not_a_workbook_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path / "items.xlsx", "ref\nA1\n")
    with pytest.raises(InputError, match=re.escape(f"cannot read {path} as xlsx")):
        read_items(source("xlsx"), path)


def test_xlsx_rows_are_numbered_as_in_the_spreadsheet(tmp_path: Path) -> None:
    path = make_xlsx(tmp_path / "items.xlsx", [["ref"], ["A1"], ["A1"]])
    with pytest.raises(InputError, match="row 3: reference 'A1' already used at row 2"):
        read_items(source("xlsx"), path)


# --- JSON ----------------------------------------------------------------------------


def test_json_list_is_read(tmp_path: Path) -> None:
    rows = [{"ref": "A1", "amount": 12.5, "tags": ["x"]}, {"ref": 2, "amount": None}]
    path = write(tmp_path / "items.json", json.dumps(rows))
    assert read_items(source("json"), path) == rows


def test_json_object_with_items_is_read(tmp_path: Path) -> None:
    path = write(tmp_path / "items.json", json.dumps({"items": [{"ref": "A1"}], "meta": 1}))
    assert read_items(source("json"), path) == [{"ref": "A1"}]


@pytest.mark.parametrize(
    "document",
    [{"ref": "A1"}, "A1", [1, 2], [{"ref": "A1"}, "A2"], {"items": {"ref": "A1"}}],
    ids=["object", "string", "list-of-numbers", "mixed-list", "items-not-a-list"],
)
def test_json_that_is_not_a_list_of_objects_is_refused(tmp_path: Path, document: Any) -> None:
    path = write(tmp_path / "items.json", json.dumps(document))
    with pytest.raises(InputError) as info:
        read_items(source("json"), path)
    assert info.value.message == (
        f'{path}: expected a JSON list of objects (or {{"items": [...]}})'
    )


def test_malformed_json_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path / "items.json", '[{"ref": "A1",}]')
    with pytest.raises(InputError, match=re.escape(f"cannot read {path} as json")):
        read_items(source("json"), path)


# --- references ------------------------------------------------------------------------


def test_a_missing_reference_value_is_refused_with_its_row(tmp_path: Path) -> None:
    path = write(tmp_path / "items.csv", "ref,name\nA1,x\n,y\n  ,z\n")
    with pytest.raises(InputError) as info:
        read_items(source("csv"), path)
    message = info.value.message
    assert message.startswith(f"{path}: 2 unusable item(s); nothing was run:")
    assert "row 3: no value for reference field 'ref'" in message
    assert "row 4: no value for reference field 'ref'" in message
    assert "hint: each item needs a unique 'ref' (items.reference in process.yaml)" in message


def test_a_missing_reference_column_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path / "items.csv", "reference,name\nA1,x\n")
    with pytest.raises(InputError, match="row 2: no value for reference field 'ref'"):
        read_items(source("csv"), path)


def test_duplicate_references_name_both_rows(tmp_path: Path) -> None:
    path = write(tmp_path / "items.csv", "ref,name\nA1,x\nA2,y\nA1,z\n")
    with pytest.raises(InputError) as info:
        read_items(source("csv"), path)
    assert "row 4: reference 'A1' already used at row 2" in info.value.message
    assert "1 unusable item(s)" in info.value.message


def test_references_that_differ_only_by_spaces_are_duplicates(tmp_path: Path) -> None:
    path = write(tmp_path / "items.json", json.dumps([{"ref": "A1"}, {"ref": " A1 "}]))
    with pytest.raises(InputError, match="row 2: reference 'A1' already used at row 1"):
        read_items(source("json"), path)


def test_an_overlong_reference_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path / "items.json", json.dumps([{"ref": "x" * 256}]))
    with pytest.raises(InputError, match="row 1: reference longer than 255 characters"):
        read_items(source("json"), path)


def test_many_problems_are_summarised(tmp_path: Path) -> None:
    items = [{"ref": ""} for _ in range(25)]
    with pytest.raises(InputError) as info:
        check_references(items, "ref", "items.json")
    message = info.value.message
    assert "25 unusable item(s)" in message
    assert "row 20:" in message
    assert "row 21:" not in message
    assert "... and 5 more" in message


def test_reference_of_trims_and_stringifies() -> None:
    assert reference_of({"ref": " A1 "}, "ref") == "A1"
    assert reference_of({"ref": 42}, "ref") == "42"


# --- the file itself --------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["csv", "xlsx", "json"])
def test_a_missing_input_file_is_refused(tmp_path: Path, kind: str) -> None:
    path = tmp_path / f"absent.{kind}"
    with pytest.raises(InputError) as info:
        read_items(source(kind), path)
    assert info.value.message == f"input file {path} does not exist"


def test_a_folder_is_not_an_input_file(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="does not exist"):
        read_items(source("csv"), tmp_path)


def test_items_produced_by_the_bot_are_not_read_from_a_file(tmp_path: Path) -> None:
    path = write(tmp_path / "items.csv", "ref\nA1\n")
    with pytest.raises(InputError, match="produced by the bot, not read from a file"):
        read_items(source("bot"), path)


def test_an_empty_input_gives_no_items(tmp_path: Path) -> None:
    assert read_items(source("csv"), write(tmp_path / "items.csv", "ref,name\n")) == []
    assert read_items(source("json"), write(tmp_path / "items.json", "[]")) == []
