"""The PDF a prefecture hands to its prefect (issue 13), printed by real headless Chromium
and read back with pypdf, in English and in French: the headline on a title page,
every page numbered "page N of T", table headers in whole words, A4 paper."""

from __future__ import annotations

import json
import os
import re
import unicodedata
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from robo.cli.main import cli
from robo.i18n import _, use_locale
from robo.storage.database import Database
from tests.ledger_factory import RunFact, build_ledger

A4 = (595.0, 842.0)  # points
pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[RunFact]]:
    folder = tmp_path_factory.mktemp("report-pdf")
    db = Database(f"sqlite:///{folder / 'robo.db'}")
    with pytest.MonkeyPatch.context() as monkeypatch:
        facts = build_ledger(db, monkeypatch)
    db.close()
    return folder, facts


def report(home: Path, locale: str, *args: str) -> Result:
    env: dict[str, str | None] = {k: None for k in os.environ if k.startswith("ROBO_")}
    env["ROBO_LOCALE"] = locale
    result = CliRunner(env=env).invoke(
        cli,
        ["--home", str(home), "--database-url", f"sqlite:///{home / 'robo.db'}", "report", *args],
        catch_exceptions=False,
    )
    assert result.exit_code == 0, result.output
    return result


def words(text: str) -> str:
    """Text as pypdf and the CLI both give it, compared word by word: French groups
    thousands with a narrow no-break space, the PDF may draw "ff" as a ligature, and
    lines wrap where the page is full."""
    return " ".join(unicodedata.normalize("NFKC", text).split())


class Sections(HTMLParser):
    """The HTML report's top-level sections, in order: each one's heading, header cells
    and visible text (scripts and styles left out)."""

    def __init__(self) -> None:
        super().__init__()
        self.order: list[str] = []
        self.heading: dict[str, str] = {}
        self.headers: dict[str, list[str]] = {}
        self.text: dict[str, str] = {}
        self.current, self.depth, self.skip, self.tag = "", 0, 0, ""

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("script", "style"):
            self.skip += 1
        if tag == "section":
            name = dict(attrs).get("id") or ""
            if not self.depth and name:
                self.current = name
                self.order.append(name)
                self.heading[name], self.headers[name], self.text[name] = "", [], ""
            self.depth += bool(self.depth or name)
        if self.depth and tag == "th":
            self.headers[self.current].append("")
        self.tag = tag if tag in ("h2", "th") else self.tag

    def handle_endtag(self, tag: str) -> None:
        if tag in ("script", "style"):
            self.skip -= 1
        if tag == "section" and self.depth:
            self.depth -= 1
        if tag in ("h2", "th"):
            self.tag = ""

    def handle_data(self, data: str) -> None:
        if not self.depth or self.skip:
            return
        self.text[self.current] += f" {data} "
        if self.tag == "h2" and not self.heading[self.current]:
            self.heading[self.current] = words(data)
        if self.tag == "th":
            self.headers[self.current][-1] += data


def tokens(text: str) -> list[str]:
    """Words with a letter in them, split at spaces, hyphens and slashes (a name like
    Île-de-France may wrap at its hyphens), punctuation around them dropped."""
    found = (t.strip('.,;:()«»"') for t in re.split(r"[\s/\-]+", words(text)))
    return [t for t in found if any(c.isalpha() for c in t)]


@dataclass(frozen=True)
class Printed:
    locale: str
    pages: list[str]
    boxes: list[tuple[float, float]]
    headline: str
    html: Sections
    database: str


@pytest.fixture(scope="module", params=["en", "fr"])
def printed(
    request: pytest.FixtureRequest,
    home: tuple[Path, list[RunFact]],
    tmp_path_factory: pytest.TempPathFactory,
) -> Printed:
    from pypdf import PdfReader

    locale: str = request.param
    folder, _facts = home
    out = tmp_path_factory.mktemp(f"pdf-{locale}")
    grouping = ("--by", "region", "--by", "quarter")
    pdf, page = out / "report.pdf", out / "report.html"
    report(folder, locale, *grouping, "--format", "pdf", "-o", str(pdf))
    report(folder, locale, *grouping, "--format", "html", "-o", str(page))
    headline = json.loads(report(folder, locale, "--headline", "--json").stdout)["text"]
    sections = Sections()
    sections.feed(page.read_text(encoding="utf-8"))

    assert pdf.read_bytes().startswith(b"%PDF-")
    reader = PdfReader(str(pdf))
    return Printed(
        locale=locale,
        pages=[p.extract_text() for p in reader.pages],
        boxes=[(float(p.mediabox.width), float(p.mediabox.height)) for p in reader.pages],
        headline=headline,
        html=sections,
        database=str(folder / "robo.db"),
    )


def test_page_one_is_a_title_page_with_the_headline_in_the_readers_language(
    printed: Printed,
) -> None:
    first = words(printed.pages[0])
    with use_locale(printed.locale):
        kicker = "robo · " + _("hours of agent work saved")
        hours_label = _("hours of agent work saved")
    assert words(printed.headline) in first
    assert first.lower().startswith(kicker.lower())  # the kicker is upper-cased in print
    assert hours_label in first  # a key figure's label
    assert printed.database not in first and "sqlite" not in first
    if printed.locale == "fr":
        assert "heures" in printed.headline and "hours saved" not in first
    # the details begin on page 2: the title page holds no table or chart
    assert len(printed.pages) >= 3
    assert "Charts" not in first and "Graphiques" not in first


def test_every_page_is_numbered_in_a_running_footer(printed: Printed) -> None:
    total = len(printed.pages)
    for number, text in enumerate(printed.pages, start=1):
        with use_locale(printed.locale):
            expected = _("page %(page)s of %(pages)s") % {"page": number, "pages": total}
        lines = [words(line) for line in text.splitlines() if line.strip()]
        assert any(line.endswith(expected) for line in lines), (number, lines[-3:])
        footer = next(line for line in lines if line.endswith(expected))
        assert footer.startswith("robo · "), footer
        assert printed.database not in footer and "sqlite" not in footer


def test_table_headers_are_printed_in_whole_words(printed: Printed) -> None:
    html = printed.html
    headers = [words(h) for h in html.headers["baselines"] if h.strip()]
    assert len(headers) >= 11, headers
    # The baselines section as printed: from its heading to the next section's, less
    # the running footers.
    lines = [words(line) for page in printed.pages for line in page.splitlines()]
    lines = [line for line in lines if line and not line.startswith("robo · ")]
    after = html.order[html.order.index("baselines") + 1]
    first = lines.index(html.heading["baselines"])
    last = next(i for i, line in enumerate(lines) if i > first and line == html.heading[after])
    printed_words = tokens(" ".join(lines[first:last]))
    vocabulary = set(tokens(html.heading["baselines"] + html.text["baselines"]))
    for header in headers:
        for word in tokens(header):
            assert word in printed_words, (header, word)
    # A header squeezed into a narrow column is printed in pieces ("versio" "n",
    # "ex" "éc" "uti" "on" "s"): no printed word may be a piece of a longer one.
    pieces = [
        word
        for word in printed_words
        if word not in vocabulary and any(word in whole for whole in vocabulary)
    ]
    assert pieces == [], f"words broken into pieces: {pieces}"
    if printed.locale == "en":
        assert "measured" in printed_words
    # and not one letter per line
    run = longest = 0
    for page in printed.pages:
        for line in page.splitlines():
            run = run + 1 if len(line.strip()) == 1 and line.strip().isalpha() else 0
            longest = max(longest, run)
    assert longest < 4, f"{longest} one-letter lines in a row"


def test_every_page_is_a4_portrait(printed: Printed) -> None:
    for width, height in printed.boxes:
        assert width == pytest.approx(A4[0], abs=2)
        assert height == pytest.approx(A4[1], abs=2)
