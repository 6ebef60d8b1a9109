"""`robo report` in every text format: the same figures as the facts say, and clear errors."""

from __future__ import annotations

import csv
import io
import json
import os
import shutil
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from robo.cli.main import cli
from robo.i18n import use_locale
from robo.reports.labels import ITEM_LABELS, LABELS, label
from robo.storage.database import Database
from tests.ledger_factory import RunFact, build_ledger, expected_totals


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[RunFact]]:
    """One generated ledger for the module (building it takes a second or two)."""
    folder = tmp_path_factory.mktemp("ledger")
    db = Database(f"sqlite:///{folder / 'robo.db'}")
    with pytest.MonkeyPatch.context() as monkeypatch:
        facts = build_ledger(db, monkeypatch)
    db.close()
    return folder / "robo.db", facts


@pytest.fixture
def ledger(built: tuple[Path, list[RunFact]], tmp_path: Path) -> tuple[Path, list[RunFact]]:
    """A copy of the generated ledger that this test may change."""
    path, facts = built
    shutil.copyfile(path, tmp_path / "robo.db")
    return tmp_path, facts


def robo(home: Path, *args: str) -> Result:
    env: dict[str, str | None] = {k: None for k in os.environ if k.startswith("ROBO_")}
    env["ROBO_LOCALE"] = "en"  # test_report_french.py reads the French default
    runner = CliRunner(env=env)
    return runner.invoke(
        cli,
        ["--home", str(home), "--database-url", f"sqlite:///{home / 'robo.db'}", "report", *args],
        catch_exceptions=False,
    )


def ok(home: Path, *args: str) -> Result:
    result = robo(home, *args)
    assert result.exit_code == 0, result.output
    return result


def check_rows(rows: list[dict[str, Any]], facts: list[RunFact], keys: tuple[str, ...]) -> None:
    expected = expected_totals(facts, keys)
    assert {tuple(str(r[k]) for k in keys) for r in rows} == set(expected)
    for row in rows:
        want = expected[tuple(str(row[k]) for k in keys)]
        for name in ("runs", "items", "succeeded", "business_exceptions", "application_exceptions"):
            assert int(row[name]) == want[name], (row, name)
        assert float(row["minutes_saved"]) == pytest.approx(want["minutes_saved"], abs=1e-3)
        assert float(row["hours_saved"]) == pytest.approx(want["minutes_saved"] / 60, abs=1e-4)
        assert float(row["fte"]) == pytest.approx(want["minutes_saved"] / 60 / 1607, abs=1e-4)
        assert float(row["robot_hours"]) == pytest.approx(want["robot_seconds"] / 3600, abs=1e-4)
        assert float(row["human_hours_needed"]) == pytest.approx(
            want["human_minutes"] / 60, abs=1e-4
        )
        rate = want["succeeded"] / want["items"] if want["items"] else None
        assert (
            (row["success_rate"] in (None, ""))
            if rate is None
            else float(row["success_rate"]) == pytest.approx(rate, abs=1e-4)
        )


def test_json_rows_by_process_by_default(ledger: tuple[Path, list[RunFact]]) -> None:
    home, facts = ledger
    rows = json.loads(ok(home, "--json").stdout)

    check_rows(rows, facts, ("process_id",))
    assert json.loads(ok(home, "--format", "json").stdout) == rows
    assert all(r["baselines"] for r in rows)


@pytest.mark.parametrize(
    "by", [("region", "origin"), ("month",), ("application", "quarter"), ("week",)]
)
def test_json_rows_for_any_grouping(
    ledger: tuple[Path, list[RunFact]], by: tuple[str, ...]
) -> None:
    home, facts = ledger
    rows = json.loads(ok(home, *(a for b in by for a in ("--by", b)), "--json").stdout)

    check_rows(rows, facts, tuple({"origin": "origin_region"}.get(b, b) for b in by))


def test_csv_has_the_same_figures_and_a_total_line(
    ledger: tuple[Path, list[RunFact]], tmp_path: Path
) -> None:
    home, facts = ledger
    out = tmp_path / "out" / "hours.csv"
    ok(home, "--by", "region", "--by", "month", "--format", "csv", "-o", str(out))
    lines = list(csv.DictReader(io.StringIO(out.read_text(encoding="utf-8"))))
    # Headers are labels for people ("hours saved"); map them back to the JSON keys.
    with use_locale("en"):
        keys = {label(c): c for c in (*LABELS, *ITEM_LABELS)}
    lines = [{keys[k]: v for k, v in line.items()} for line in lines]

    check_rows(lines[:-1], facts, ("region", "month"))
    total = expected_totals(facts, ())[()]
    assert lines[-1]["region"] == "total"
    assert int(lines[-1]["items"]) == total["items"]
    assert float(lines[-1]["minutes_saved"]) == pytest.approx(total["minutes_saved"])


def test_the_table_shows_the_headline_totals_and_baselines(
    ledger: tuple[Path, list[RunFact]],
) -> None:
    home, facts = ledger
    out = ok(home).output
    total = expected_totals(facts, ())[()]

    assert out.startswith("3 processes in production, ")
    assert "Hours of agent work saved" in out
    assert f"{total['minutes_saved'] / 60:,.1f}" in out
    assert "Baselines used" in out and "Mission d'audit" in out and "Bureau du séjour" in out


def test_the_headline_alone(ledger: tuple[Path, list[RunFact]]) -> None:
    home, facts = ledger
    data = json.loads(ok(home, "--headline", "--json").stdout)

    assert data["processes_in_production"] == 3
    assert data["totals"]["items"] == sum(len(f.items) for f in facts)
    assert ok(home, "--headline").output.strip() == data["text"]


def test_a_period_restricts_the_figures(ledger: tuple[Path, list[RunFact]]) -> None:
    home, _ = ledger
    rows = json.loads(ok(home, "--period", "2026-Q4", "--by", "month", "--json").stdout)
    assert [r["month"] for r in rows] == ["2026-10", "2026-11", "2026-12"]

    since = json.loads(
        ok(home, "--since", "2026-10-01", "--until", "2027-01-01", "--by", "month", "--json").stdout
    )
    assert since == rows
    assert json.loads(ok(home, "--month", "2026-10", "--json").stdout) == json.loads(
        ok(home, "--period", "2026-10", "--json").stdout
    )


def test_items_drill_down_lists_the_rows_behind_a_figure(
    ledger: tuple[Path, list[RunFact]],
) -> None:
    home, _ = ledger
    [figure] = json.loads(ok(home, "--process", "hr-claims", "--month", "2026-10", "--json").stdout)
    drill = json.loads(
        ok(home, "--process", "hr-claims", "--month", "2026-10", "--items", "--json").stdout
    )

    assert len(drill["runs"]) == figure["runs"]
    assert len(drill["items"]) == figure["items"] == drill["items_total"]
    assert sum(r["minutes_saved"] for r in drill["runs"]) == pytest.approx(figure["minutes_saved"])
    assert {i["process_id"] for i in drill["items"]} == {"hr-claims"}

    table = ok(
        home, "--process", "hr-claims", "--month", "2026-10", "--items", "--limit", "2"
    ).output
    assert "Runs behind the figure" in table and "Plateforme RH" in table
    assert f"showing 2 of {figure['items']} items" in table
    lines = ok(
        home, "--process", "hr-claims", "--month", "2026-10", "--items", "--format", "csv"
    ).output
    assert len(lines.strip().splitlines()) == figure["items"] + 1


def test_check_passes_on_a_sound_ledger(ledger: tuple[Path, list[RunFact]]) -> None:
    home, facts = ledger
    out = ok(home, "--by", "week", "--by", "region", "--check").output

    assert "check passed" in out
    assert f"{sum(len(f.items) for f in facts):,} item row(s)" in out


def test_check_fails_loudly_on_a_mismatch(ledger: tuple[Path, list[RunFact]]) -> None:
    home, _ = ledger
    db = Database(f"sqlite:///{home / 'robo.db'}")
    from sqlalchemy import text

    with db.engine.begin() as connection:
        connection.execute(text("UPDATE items SET minutes_saved = 1000 WHERE id = 1"))
    db.close()

    result = robo(home, "--check")
    assert result.exit_code == 1
    assert "check FAILED: 1 mismatch(es)" in result.output
    assert "records 1000 min saved" in result.output

    as_json = robo(home, "--check", "--json")
    assert as_json.exit_code == 1
    assert json.loads(as_json.stdout)["ok"] is False


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (
            ("--period", "2026-Q5"),
            "'2026-Q5' is not a date (YYYY-MM-DD) or a period; use 2026, 2026-Q3",
        ),
        (("--month", "2026-Q3"), "'2026-Q3' is not a month; use YYYY-MM"),
        (("--since", "yesterday"), "'yesterday' is not a date (YYYY-MM-DD)"),
        (("--period", "2026-10", "--since", "2026-01-01"), "drop --since/--until"),
        (("--period", "2026", "--month", "2026-10"), "not both"),
        (("--format", "html"), "add -o report.html"),
        (("--format", "pdf"), "add -o report.pdf"),
        (("--by", "colour"), "'colour' is not one of"),
        (("--items", "--format", "pdf", "-o", "x.pdf"), "--items lists rows"),
    ],
)
def test_a_bad_option_says_what_to_type(
    ledger: tuple[Path, list[RunFact]], args: tuple[str, ...], says: str
) -> None:
    home, _ = ledger
    result = robo(home, *args)

    assert result.exit_code == 2
    assert says in result.output
