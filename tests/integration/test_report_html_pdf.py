"""The HTML report in real headless Chromium (offline, charts shown, numbers equal
to the JSON report) and the PDF printed from it (headline on page 1)."""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from robo.cli.main import cli
from robo.i18n import use_locale
from robo.i18n.formats import key_text
from robo.reports.html import fmt
from robo.storage.database import Database
from tests.ledger_factory import NAMES, RunFact, build_ledger

CHARTS = {"month", "cumulative", "process", "region"}


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[RunFact]]:
    folder = tmp_path_factory.mktemp("report")
    db = Database(f"sqlite:///{folder / 'robo.db'}")
    with pytest.MonkeyPatch.context() as monkeypatch:
        facts = build_ledger(db, monkeypatch)
    db.close()
    return folder, facts


def report(home: Path, *args: str) -> Result:
    env: dict[str, str | None] = {k: None for k in os.environ if k.startswith("ROBO_")}
    result = CliRunner(env=env).invoke(
        cli,
        ["--home", str(home), "--database-url", f"sqlite:///{home / 'robo.db'}", "report", *args],
        catch_exceptions=False,
    )
    assert result.exit_code == 0, result.output
    return result


def open_offline(path: Path) -> Iterator[tuple[Any, list[str]]]:
    from playwright.sync_api import sync_playwright

    from robo.runner.browser import find_chromium, launch_args

    requested: list[str] = []

    def guard(route: Any) -> None:
        url = route.request.url
        if url.startswith("file:"):
            route.continue_()
        else:
            requested.append(url)
            route.abort()

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=find_chromium(), args=launch_args(), headless=True
        )
        try:
            context = browser.new_context(offline=True, viewport={"width": 1100, "height": 900})
            page = context.new_page()
            page.route("**/*", guard)
            page.goto(path.as_uri(), wait_until="load")
            yield page, requested
        finally:
            browser.close()


@pytest.mark.browser
@pytest.mark.parametrize("by", [("process",), ("region", "month")])
def test_the_html_report_opens_offline_with_its_charts_and_the_json_figures(
    home: tuple[Path, list[RunFact]], tmp_path: Path, by: tuple[str, ...]
) -> None:
    folder, facts = home
    grouping = [a for b in by for a in ("--by", b)]
    html = tmp_path / "report.html"
    report(folder, *grouping, "--format", "html", "-o", str(html))
    rows = json.loads(report(folder, *grouping, "--json").stdout)
    headline = json.loads(report(folder, "--headline", "--json").stdout)
    keys = ["process_id"] if by == ("process",) else ["region", "month"]

    source = html.read_text(encoding="utf-8")
    assert not re.search(r"<(link|img|iframe)\b", source)
    # Scripts only inline (the drill-down): none loads anything.
    scripts = re.findall(r"<script\b([^>]*)>", source)
    assert scripts and all("src" not in attributes for attributes in scripts)
    assert not re.search(r"(src|href)=\"(https?:)?//", source)

    for page, requested in open_offline(html):
        charts = page.locator("figure[data-chart]")
        assert {charts.nth(i).get_attribute("data-chart") for i in range(charts.count())} == CHARTS
        for i in range(charts.count()):
            svg = charts.nth(i).locator("svg")
            assert svg.is_visible()
            box = svg.bounding_box()
            assert box is not None and box["width"] > 300 and box["height"] > 100
            assert svg.locator("path, rect, use").count() > 5  # something is drawn

        assert page.locator("[data-key=headline]").inner_text() == headline["text"]
        cards = {
            key: page.locator(f".card [data-key={key}]").get_attribute("data-value")
            for key in ("processes_in_production", "regions", "hours_saved", "fte", "items")
        }
        totals = headline["totals"]
        assert (
            int(cards["processes_in_production"] or 0) == headline["processes_in_production"] == 3
        )
        assert int(cards["regions"] or 0) == headline["regions"]
        assert float(cards["hours_saved"] or 0) == totals["hours_saved"]
        assert float(cards["fte"] or 0) == totals["fte"]
        assert int(cards["items"] or 0) == totals["items"] == sum(len(f.items) for f in facts)

        table = page.locator("#report-table tbody tr[data-row]:not(.total)")
        assert table.count() == len(rows)
        for i, row in enumerate(rows):
            line = table.nth(i)
            cells = [line.locator(f"td[data-key={k}]") for k in keys]
            assert [c.get_attribute("data-raw") for c in cells] == [row[k] for k in keys]
            # In words for the reader (the French default): names, "août 2026", "Occitanie".
            with use_locale("fr"):
                words = [key_text(k, row[k], lambda p: NAMES.get(p, p)) for k in keys]
            assert [c.inner_text().startswith(w) for c, w in zip(cells, words, strict=True)] == [
                True
            ] * len(keys), [c.inner_text() for c in cells]
            for column in (
                "runs",
                "items",
                "succeeded",
                "business_exceptions",
                "hours_saved",
                "fte",
                "human_hours_needed",
            ):
                cell = line.locator(f"td[data-col={column}]")
                with use_locale("fr"):
                    assert cell.inner_text() == fmt(column, row[column])
                assert float(cell.get_attribute("data-value") or "nan") == row[column]
        total = page.locator("#report-table tr.total td[data-col=hours_saved]")
        assert float(total.get_attribute("data-value") or "nan") == pytest.approx(
            sum(r["hours_saved"] for r in rows), abs=1e-3
        )
        assert requested == []


@pytest.mark.browser
def test_the_pdf_has_the_headline_on_its_first_page(
    home: tuple[Path, list[RunFact]], tmp_path: Path
) -> None:
    from pypdf import PdfReader

    folder, _ = home
    pdf = tmp_path / "out" / "report.pdf"
    printed = report(folder, "--by", "region", "--by", "quarter", "--format", "pdf", "-o", str(pdf))
    headline = json.loads(report(folder, "--headline", "--json").stdout)["text"]

    reader = PdfReader(str(pdf))
    pages = [" ".join(page.extract_text().split()) for page in reader.pages]
    assert pdf.read_bytes().startswith(b"%PDF-")
    assert len(pages) >= 3
    assert headline in pages[0]  # the title page (tests/integration/test_report_pdf.py)
    assert headline in pages[1]  # the report proper starts on page 2, with its headline
    assert headline in printed.output
