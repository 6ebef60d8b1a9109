"""Click-through drill-down of the HTML report, the ``--items`` HTML page and
``--pseudonymise``, in real headless Chromium, offline.

The ledger is the factory's (facts kept aside: the expected figures come from
them, not from robo) plus a work queue whose item Q-1 fails in October and is
done in November, so that an item counted once across two runs is drilled too.
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from robo.cli.main import cli
from robo.reports.drilldown_html import drill_data, report_drill_data
from robo.reports.html import SERIES, fmt, render_html
from robo.reports.pseudonyms import Pseudonyms
from robo.reports.queries import Scope
from robo.reports.report import build_report
from robo.storage.database import Database
from tests.ledger_factory import BASELINE_A, QueueWork, RunFact, build_ledger, expected_totals

WAIT_MS = 5_000
QUEUE = "queue-claims"
EARNED = BASELINE_A.manual_minutes_per_item - BASELINE_A.residual_minutes_per_item  # 25


@dataclass(frozen=True)
class Ledger:
    home: Path
    facts: list[RunFact]

    @property
    def url(self) -> str:
        return f"sqlite:///{self.home / 'robo.db'}"

    def references(self) -> set[str]:
        """Every item reference written, from the facts (and the queue scenario)."""
        made = {f"R{n}-{p}" for n, fact in enumerate(self.facts) for p in range(len(fact.items))}
        return made | {"Q-1", "Q-2", "Q-3"}


@pytest.fixture(scope="module")
def ledger(tmp_path_factory: pytest.TempPathFactory) -> Ledger:
    folder = tmp_path_factory.mktemp("drilldown")
    db = Database(f"sqlite:///{folder / 'robo.db'}")
    with pytest.MonkeyPatch.context() as monkeypatch:
        facts = build_ledger(db, monkeypatch)
        work = QueueWork.open(db, monkeypatch)  # 5 October 2026, 09:00 UTC
        work.add(QUEUE, "Q-1", "Q-2", "Q-3")
        first = work.start(QUEUE, region="guyane", baseline=BASELINE_A, application="anef")
        work.work(first, QUEUE, "application_exception", attempts=3)  # Q-1, back in the queue
        work.work(first, QUEUE, "success")
        work.finish(first)
        work.tick(days=40)  # 14 November
        second = work.start(QUEUE, region="guyane", baseline=BASELINE_A, application="anef")
        work.work(second, QUEUE, "success")  # Q-1, credited once
        work.work(second, QUEUE, "business_exception")
        work.finish(second)
    db.close()
    return Ledger(folder, facts)


@pytest.fixture(scope="module")
def report_html(ledger: Ledger, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The HTML report by process (the default), written once for the tests that only read it."""
    html = tmp_path_factory.mktemp("html") / "report.html"
    robo_report(ledger, "--format", "html", "-o", str(html))
    return html


def robo_report(ledger: Ledger, *args: str) -> Result:
    env: dict[str, str | None] = {k: None for k in os.environ if k.startswith("ROBO_")}
    env["ROBO_LOCALE"] = "en"
    result = CliRunner(env=env).invoke(
        cli,
        ["--home", str(ledger.home), "--database-url", ledger.url, "report", *args],
        catch_exceptions=False,
    )
    assert result.exit_code == 0, result.output
    return result


@contextmanager
def offline(path: Path) -> Iterator[tuple[Any, list[str]]]:
    """The page in headless Chromium with no network at all; yields it and the URLs it
    asked for (none expected), failing on any script error."""
    from playwright.sync_api import sync_playwright

    from robo.runner.browser import find_chromium, launch_args

    requested: list[str] = []
    errors: list[str] = []

    def guard(route: Any) -> None:
        if route.request.url.startswith("file:"):
            route.continue_()
        else:
            requested.append(route.request.url)
            route.abort()

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=find_chromium(), args=launch_args(), headless=True
        )
        try:
            context = browser.new_context(offline=True, viewport={"width": 1200, "height": 900})
            context.set_default_timeout(WAIT_MS)
            page = context.new_page()
            page.on("pageerror", lambda error: errors.append(str(error)))
            page.route("**/*", guard)
            page.goto(path.as_uri(), wait_until="load")
            page.wait_for_selector("#drilldown[data-ready]", state="attached")
            yield page, requested
            assert errors == []
        finally:
            browser.close()


def listed(page: Any) -> list[dict[str, Any]]:
    """The item rows the panel lists, with their exact values (all of them)."""
    more = page.locator("#drill-more")
    if more.is_visible():
        more.locator("button").click()
    rows: list[dict[str, Any]] = page.evaluate(
        """() => Array.from(document.querySelectorAll('#drill-table tbody tr')).map(tr => {
            const v = c => tr.querySelector(`td[data-col=${c}]`).dataset.value;
            return {run_id: Number(v('run_id')), position: Number(v('position')),
                    reference: v('reference'), status: v('status'), process_id: v('name'),
                    region: v('region'), month: v('month'), attempts: Number(v('attempts')),
                    minutes_saved: Number(v('minutes_saved')), counts: v('counts') === '1'};
        })"""
    )
    return rows


def sums(page: Any) -> dict[str, float]:
    cells = page.locator("#drill-sum [data-sum]")
    found = {
        cells.nth(i).get_attribute("data-sum"): float(cells.nth(i).get_attribute("data-value"))
        for i in range(cells.count())
    }
    found["minutes"] = float(page.locator("[data-sum=hours_saved]").get_attribute("data-minutes"))
    return found


def queue_runs_expected() -> dict[str, float]:
    """The queue scenario, by hand: 4 item rows, 3 items, 2 successes of 25 min, 5 min per run."""
    return {"item_rows": 4, "items": 3, "runs": 2, "succeeded": 2, "minutes": 2 * EARNED + 2 * 5}


# --- the report's figures, clicked ---------------------------------------------------------


@pytest.mark.browser
def test_a_process_figure_lists_the_item_rows_that_add_up_to_it(
    ledger: Ledger, report_html: Path
) -> None:
    html = report_html
    rows = json.loads(robo_report(ledger, "--json").stdout)
    index, row = next((i, r) for i, r in enumerate(rows) if r["process_id"] == "residence-permit")
    facts = expected_totals(ledger.facts, ("process_id",))[("residence-permit",)]
    references = {
        f"R{n}-{p}"
        for n, fact in enumerate(ledger.facts)
        if fact.process_id == "residence-permit"
        for p in range(len(fact.items))
    }

    with offline(html) as (page, requested):
        assert page.locator("#drilldown").is_hidden()
        cell = page.locator(f"#report-table tr[data-row='{index}'] td[data-col=hours_saved]")
        assert cell.get_attribute("role") == "button" and cell.get_attribute("tabindex") == "0"
        cell.click()
        page.locator("#drilldown").wait_for(state="visible")
        shown = listed(page)
        total = sums(page)
        hours = page.locator("[data-sum=hours_saved]")

        assert {r["reference"] for r in shown} == references
        assert {r["process_id"] for r in shown} == {"residence-permit"}
        assert len(shown) == row["item_rows"] == facts["items"]
        listed_minutes = sum(r["minutes_saved"] for r in shown)
        assert listed_minutes == pytest.approx(row["item_minutes_saved"], abs=1e-6)
        assert listed_minutes + total["run_minutes"] == pytest.approx(facts["minutes_saved"])
        assert total["minutes"] / 60 == pytest.approx(row["hours_saved"], abs=1e-4)
        assert float(hours.get_attribute("data-value") or "nan") == pytest.approx(
            row["hours_saved"], abs=1e-4
        )
        assert hours.inner_text() == fmt("hours_saved", row["hours_saved"])  # the cell's text
        assert "clicked" in (hours.get_attribute("class") or "")
        assert (total["items"], total["succeeded"], total["runs"]) == (
            row["items"], row["succeeded"], row["runs"]
        )  # fmt: skip
        assert page.locator("select[data-filter=process_id]").input_value() == "residence-permit"
        assert requested == []


@pytest.mark.browser
def test_the_total_and_the_headline_cards_open_the_whole_scope(
    ledger: Ledger, tmp_path: Path
) -> None:
    html = tmp_path / "report.html"
    robo_report(ledger, "--by", "region", "--by", "month", "--format", "html", "-o", str(html))
    headline = json.loads(robo_report(ledger, "--headline", "--json").stdout)["totals"]
    queue = queue_runs_expected()
    factory_minutes = sum(f.expected()["minutes_saved"] for f in ledger.facts)
    factory_rows = sum(len(f.items) for f in ledger.facts)

    with offline(html) as (page, _requested):
        page.locator("#report-table tr.total td[data-col=items]").focus()
        page.keyboard.press("Enter")  # the keyboard opens it too
        page.locator("#drilldown").wait_for(state="visible")
        shown = listed(page)
        total = sums(page)
        assert len(shown) == factory_rows + queue["item_rows"] == headline["item_rows"]
        assert {r["reference"] for r in shown} == ledger.references()
        assert total["items"] == headline["items"] == factory_rows + queue["items"]
        assert sum(r["counts"] for r in shown) == headline["items"]
        assert total["minutes"] == pytest.approx(factory_minutes + queue["minutes"])
        assert total["hours_saved"] == pytest.approx(headline["hours_saved"], abs=1e-4)
        assert total["attempts"] == headline["attempts"]

        page.locator("#drill-close").click()
        assert page.locator("#drilldown").is_hidden()
        page.locator(".card [data-key=hours_saved]").click()
        page.locator("#drilldown").wait_for(state="visible")
        assert sums(page)["hours_saved"] == pytest.approx(headline["hours_saved"], abs=1e-4)
        assert page.locator("#drill-what").inner_text().startswith("hours saved")
        page.locator(".card [data-key=items]").click()
        assert page.locator("[data-sum=items]").get_attribute("class") == "clicked"


@pytest.mark.browser
def test_filters_by_region_month_and_text_narrow_the_rows_and_their_sums(
    ledger: Ledger, report_html: Path
) -> None:
    html = report_html
    cells = json.loads(robo_report(ledger, "--by", "region", "--by", "month", "--json").stdout)
    figure = {(r["region"], r["month"]): r for r in cells}
    guyane = expected_totals(ledger.facts, ("region",))[("guyane",)]
    queue = queue_runs_expected()

    with offline(html) as (page, _requested):
        page.locator("#report-table tr.total td[data-col=hours_saved]").click()
        page.locator("select[data-filter=region]").select_option("guyane")
        shown = listed(page)
        assert {r["region"] for r in shown} == {"guyane"}
        assert len(shown) == guyane["items"] + queue["item_rows"]
        assert sums(page)["minutes"] == pytest.approx(guyane["minutes_saved"] + queue["minutes"])

        page.locator("select[data-filter=month]").select_option("2026-10")
        shown = listed(page)
        october = figure[("guyane", "2026-10")]
        assert {(r["region"], r["month"]) for r in shown} == {("guyane", "2026-10")}
        assert len(shown) == october["item_rows"]
        total = sums(page)
        assert total["items"] == october["items"]  # Q-1 counts in November, with its success
        assert total["hours_saved"] == pytest.approx(october["hours_saved"], abs=1e-4)
        q1 = [r for r in shown if r["reference"] == "Q-1"]
        assert [(r["status"], r["counts"], r["minutes_saved"]) for r in q1] == [
            ("application_exception", False, 0.0)
        ]

        page.locator("select[data-filter=month]").select_option("")
        page.locator("#drill-text").fill("Q-1")
        shown = listed(page)
        assert sorted((r["month"], r["status"]) for r in shown) == [
            ("2026-10", "application_exception"),
            ("2026-11", "success"),
        ]
        assert sums(page)["items"] == 1 and sums(page)["item_minutes"] == EARNED
        page.locator("#drill-reset").click()
        assert len(listed(page)) == sum(len(f.items) for f in ledger.facts) + queue["item_rows"]


@pytest.mark.browser
def test_a_column_header_sorts_the_rows_both_ways(report_html: Path) -> None:
    with offline(report_html) as (page, _requested):
        page.locator("#report-table tr.total td[data-col=runs]").click()
        header = page.locator("#drill-table th[data-sort=minutes_saved]")
        header.locator("button").click()
        minutes = [r["minutes_saved"] for r in listed(page)]
        assert minutes == sorted(minutes) and minutes[0] < minutes[-1]
        assert header.get_attribute("aria-sort") == "ascending"
        header.locator("button").click()
        assert [r["minutes_saved"] for r in listed(page)] == sorted(minutes, reverse=True)
        assert header.get_attribute("aria-sort") == "descending"
        page.locator("#drill-table th[data-sort=run_id] button").click()
        order = [(r["run_id"], r["position"]) for r in listed(page)]
        assert order == sorted(order)


@pytest.mark.browser
def test_a_capped_page_says_so_and_its_sums_still_add_up(ledger: Ledger, tmp_path: Path) -> None:
    db = Database(ledger.url, migrate=False)
    try:
        report = build_report(db, ("process",), Scope(), series=SERIES)
        data = report_drill_data(db, report, cap=50)
        html = tmp_path / "capped.html"
        html.write_text(render_html(report, drilldown=data), encoding="utf-8")
    finally:
        db.close()
    assert data.capped and data.items_listed == 50

    with offline(html) as (page, _requested):
        page.locator("#report-table tr.total td[data-col=hours_saved]").click()
        assert page.locator("#drill-capped").is_visible()
        assert "robo report --items --format csv" in page.locator("#drill-capped").inner_text()
        assert len(listed(page)) == 50
        assert sums(page)["hours_saved"] == pytest.approx(report.totals.hours_saved, abs=1e-6)
        assert sums(page)["item_rows"] == report.totals.item_rows


# --- robo report --items --format html ------------------------------------------------------


@pytest.mark.browser
def test_the_items_page_opens_offline_and_lists_exactly_the_json_items(
    ledger: Ledger, tmp_path: Path
) -> None:
    page_path = tmp_path / "items.html"
    robo_report(ledger, "--items", "--format", "html", "-o", str(page_path))
    drill = json.loads(robo_report(ledger, "--items", "--format", "json").stdout)
    source = page_path.read_text(encoding="utf-8")
    assert not re.search(r"<(link|img|iframe)\b|<script[^>]*\bsrc=", source)

    with offline(page_path) as (page, requested):
        assert page.locator("#drilldown").is_visible()  # open on the whole scope
        assert page.locator("#runs-table tbody tr").count() == len(drill["runs"])

        def key(r: dict[str, Any]) -> tuple[Any, ...]:
            return (r["run_id"], r["position"], r["reference"], r["status"], r["minutes_saved"])

        assert sorted(map(key, listed(page))) == sorted(map(key, drill["items"]))
        minutes = sum(r["minutes_saved"] for r in drill["items"])
        per_run = sum(r["run_minutes_saved"] for r in drill["runs"])
        assert sums(page)["minutes"] == pytest.approx(minutes + per_run)
        assert requested == []


# --- --pseudonymise -------------------------------------------------------------------------


def test_pseudonymised_files_hold_no_reference_and_no_error_and_are_stable(
    ledger: Ledger, tmp_path: Path
) -> None:
    first = robo_report(ledger, "--items", "--json", "--pseudonymise").stdout
    second = robo_report(ledger, "--items", "--json", "--pseudonymise").stdout
    table = robo_report(ledger, "--items", "--pseudonymise", "--limit", "5000").stdout
    out = tmp_path / "items.csv"
    robo_report(ledger, "--items", "--format", "csv", "--pseudonymise", "-o", str(out))
    html = tmp_path / "report.html"
    robo_report(ledger, "--format", "html", "--pseudonymise", "-o", str(html))
    page = tmp_path / "items.html"
    robo_report(ledger, "--items", "--format", "html", "--pseudonymise", "-o", str(page))
    plain = json.loads(robo_report(ledger, "--items", "--json").stdout)["items"]

    items = json.loads(first)["items"]
    assert [i["reference"] for i in items] == [
        i["reference"] for i in json.loads(second)["items"]
    ]  # stable between two runs
    assert all(re.fullmatch(r"item-[0-9a-f]{10}", i["reference"]) for i in items)
    assert len({i["reference"] for i in items}) == len({i["reference"] for i in plain})
    assert all(i["error"] is None for i in items)
    # The same reference gets the same pseudonym: Q-1 in both runs.
    q1 = [p["reference"] for p, i in zip(items, plain, strict=True) if i["reference"] == "Q-1"]
    assert len(q1) == 2 and len(set(q1)) == 1
    rows = list(csv.DictReader(io.StringIO(out.read_text(encoding="utf-8"))))
    assert [r["reference"] for r in rows] == [i["reference"] for i in items]
    assert (ledger.home / "pseudonyms.key").stat().st_mode & 0o077 == 0

    texts = {"json": first, "table": table, "csv": out.read_text(encoding="utf-8"),
             "report": html.read_text(encoding="utf-8"),
             "items": page.read_text(encoding="utf-8")}  # fmt: skip
    for name, text in texts.items():
        words = set(re.findall(r"[A-Za-z0-9-]+", text))
        assert not words & ledger.references(), name
        assert "it failed" not in text, name
    assert items[0]["reference"] in texts["report"] and items[0]["reference"] in texts["items"]


def test_another_installation_gets_other_pseudonyms(tmp_path: Path) -> None:
    one, other = Pseudonyms.for_home(tmp_path / "a"), Pseudonyms.for_home(tmp_path / "b")
    assert Pseudonyms.for_home(tmp_path / "a").reference("R1-1") == one.reference("R1-1")
    assert one.reference("R1-1") != other.reference("R1-1")
    assert one.reference("R1-1") != one.reference("R1-2")


def test_the_embedded_json_cannot_close_its_script(ledger: Ledger) -> None:
    db = Database(ledger.url, migrate=False)
    try:
        data = drill_data(db, Scope(processes=("invoice-check",)), cap=3)
    finally:
        db.close()
    data.payload["items"][0][2] = "</script><script>alert(1)</script> & <!--"
    text = str(data.json())
    assert "<" not in text and ">" not in text and "&" not in text
    assert json.loads(text)["items"][0][2] == "</script><script>alert(1)</script> & <!--"


# --- in the reader's language ---------------------------------------------------------------


@pytest.mark.browser
@pytest.mark.parametrize(
    ("locale", "header", "headline_start"),
    [
        ("fr", "heures économisées", "4 processus en production, "),
        ("en", "hours saved", "4 processes in production, "),
    ],
)
def test_each_language_shows_its_labels_and_numbers_and_a_clicked_figure_equals_the_json(
    ledger: Ledger, tmp_path: Path, locale: str, header: str, headline_start: str
) -> None:
    from robo.i18n import use_locale
    from tests.ledger_factory import NAMES

    html = tmp_path / f"report-{locale}.html"
    robo_report(ledger, "--format", "html", "-o", str(html), "--locale", locale)
    rows = json.loads(robo_report(ledger, "--json").stdout)
    headline = json.loads(robo_report(ledger, "--headline", "--json", "--locale", locale).stdout)
    with use_locale(locale):
        shown_hours = [fmt("hours_saved", r["hours_saved"]) for r in rows]
        shown_rates = [fmt("success_rate", r["success_rate"]) for r in rows]
    assert headline["text"].startswith(headline_start)

    with offline(html) as (page, requested):
        assert page.locator("html").get_attribute("lang") == locale
        assert page.locator("[data-key=headline]").inner_text() == headline["text"]
        assert header in page.locator("#report-table thead th").all_inner_texts()
        for i, row in enumerate(rows):
            line = page.locator(f"#report-table tr[data-row='{i}']")
            assert (
                line.locator("td[data-key=process_id]")
                .inner_text()
                .startswith(NAMES.get(row["process_id"], row["process_id"]))
            )  # the process by its name, its id in small print after it
            assert line.locator("td[data-col=hours_saved]").inner_text() == shown_hours[i]
            assert line.locator("td[data-col=success_rate]").inner_text() == shown_rates[i]
        if locale == "fr":
            assert all("," in text and "." not in text for text in shown_hours)
            assert all(text.endswith("\u00a0%") for text in shown_rates)

        line = page.locator("#report-table tr[data-row='0'] td[data-col=hours_saved]")
        line.click()
        page.locator("#drilldown").wait_for(state="visible")
        hours = page.locator("[data-sum=hours_saved]")
        assert float(hours.get_attribute("data-value") or "nan") == pytest.approx(
            rows[0]["hours_saved"], abs=1e-4
        )
        assert hours.inner_text() == shown_hours[0]
        assert sum(r["minutes_saved"] for r in listed(page)) == pytest.approx(
            rows[0]["item_minutes_saved"], abs=1e-6
        )
        assert requested == []
