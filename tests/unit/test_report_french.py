"""A French region reads its report in French: the headline, the table, CSV headers and
the HTML, with French numbers and months, processes by name; --locale en switches."""

from __future__ import annotations

import csv
import io
import json
import os
import re
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from robo.cli.main import cli
from robo.storage.database import Database
from tests.ledger_factory import NAMES, RunFact, build_ledger

NNBSP = "\u202f"  # French groups thousands with a narrow no-break space


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("french")
    db = Database(f"sqlite:///{folder / 'robo.db'}")
    with pytest.MonkeyPatch.context() as monkeypatch:
        facts: list[RunFact] = build_ledger(db, monkeypatch)
    assert facts
    db.close()
    return folder


def report(home: Path, *args: str, env: dict[str, str] | None = None) -> Result:
    """``robo report`` as an installation in Occitanie runs it: no ROBO_LOCALE."""
    clean: dict[str, str | None] = {k: None for k in os.environ if k.startswith("ROBO_")}
    result = CliRunner(env={**clean, **(env or {})}).invoke(
        cli,
        ["--home", str(home), "--database-url", f"sqlite:///{home / 'robo.db'}", "report", *args],
        catch_exceptions=False,
    )
    assert result.exit_code == 0, result.output
    return result


def french_number(text: str) -> float:
    return float(text.replace(NNBSP, "").replace("\u00a0", "").replace(",", "."))


def test_the_headline_is_french_with_french_numbers_and_dates(home: Path) -> None:
    headline = json.loads(report(home, "--headline", "--json").stdout)
    text = headline["text"]

    match = re.fullmatch(
        r"3 processus en production, ([\d\u202f,]+) heures économisées depuis la mise en "
        r"service \((\d{1,2}) (\w+) (\d{4})\), dans 3 régions\.",
        text,
    )
    assert match, text
    assert french_number(match[1]) == round(headline["totals"]["hours_saved"])
    go_live = headline["go_live"]
    assert int(match[2]) == int(go_live[8:10]) and match[4] == go_live[:4]
    assert match[3] in {"janvier", "février", "mars", "avril", "mai", "juin", "juillet",
                        "août", "septembre", "octobre", "novembre", "décembre"}  # fmt: skip


def test_the_table_speaks_french_and_names_processes(home: Path) -> None:
    out = report(home, "--by", "process", "--by", "month").stdout

    assert "Heures de travail d'agent économisées" in out
    assert "ETP : " in out and "de l'année d'un poste" in out
    for name in NAMES.values():
        assert name[:12] in out  # names (rich may fold a long one), not slugs
    assert "octobre" in out and "2026-10" not in out  # months in words (folded if narrow)
    assert "hours saved" not in out and "processes in production" not in out
    assert re.search(r"\d,\d", out)  # decimal commas


def test_csv_headers_are_french_and_values_stay_machine_readable(home: Path) -> None:
    text = report(home, "--by", "region", "--by", "month", "--format", "csv").stdout
    lines = list(csv.reader(io.StringIO(text)))

    assert lines[0][:4] == ["région", "mois", "exécutions", "éléments"]
    assert "heures économisées" in lines[0]
    assert lines[1][1] == "2026-08" or re.fullmatch(r"\d{4}-\d{2}", lines[1][1])
    hours = lines[1][lines[0].index("heures économisées")]
    assert float(hours) >= 0  # a dot decimal: spreadsheets and scripts read it as a number
    assert lines[-1][0] == "total"


def test_the_html_is_french_and_english_on_request(home: Path, tmp_path: Path) -> None:
    french, english = tmp_path / "fr.html", tmp_path / "en.html"
    report(home, "--format", "html", "-o", str(french))
    report(home, "--format", "html", "-o", str(english), "--locale", "en")
    fr, en = french.read_text(encoding="utf-8"), english.read_text(encoding="utf-8")

    assert '<html lang="fr">' in fr and '<html lang="en">' in en
    assert "Comment les chiffres sont calculés" in fr and "How the figures are computed" in en
    assert "heures économisées" in fr and ">hours saved<" not in fr
    for name in NAMES.values():
        assert name in fr and name in en
    assert f"1{NNBSP}" in fr or re.search(r"\d,\d h", fr)


def test_robo_locale_sets_the_language_and_locale_beats_it(home: Path) -> None:
    english = report(home, "--headline", env={"ROBO_LOCALE": "en"}).stdout
    assert english.startswith("3 processes in production, ")
    french = report(home, "--headline", "--locale", "fr", env={"ROBO_LOCALE": "en"}).stdout
    assert french.startswith("3 processus en production, ")


def test_a_locale_robo_cannot_speak_is_a_usage_error(home: Path) -> None:
    clean: dict[str, str | None] = {k: None for k in os.environ if k.startswith("ROBO_")}
    result = CliRunner(env=clean).invoke(
        cli,
        ["--home", str(home), "--database-url", f"sqlite:///{home / 'robo.db'}", "report",
         "--locale", "de"],
    )  # fmt: skip
    assert result.exit_code == 2
    assert "no translation for locale 'de'; available: fr (français), en (English)" in result.output
