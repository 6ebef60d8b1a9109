"""The PDF report: the HTML report printed by the Chromium robo already drives, with a
title page and a running footer numbering the pages (robo.reports.title_page).

Chromium only prints to PDF headless. Network requests are refused while
printing: the HTML is self-contained, so a request would be a bug.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from robo.errors import ReportError
from robo.reports.html import render_html
from robo.reports.report import Report
from robo.reports.title_page import footer_template

FOOTER_MARGIN = "18mm"
"""The bottom margin, which holds the running footer (the template's ``@page`` says the same)."""


def html_to_pdf(html_path: Path, pdf_path: Path, *, chromium: str = "", footer: str = "") -> Path:
    """Print a local HTML file to an A4 PDF in a runner browser session (headless Chromium);
    ``footer``: Chromium's footer template, printed at the foot of every page."""
    from playwright.sync_api import Error as PlaywrightError

    from robo.runner.browser import BrowserSession

    requested: list[str] = []

    def refuse_network(route: Any) -> None:
        url = route.request.url
        if url.startswith(("file:", "data:", "about:")):
            route.continue_()
        else:
            requested.append(url)
            route.abort()

    pdf_path.parent.mkdir(parents=True, exist_ok=True)
    try:
        # The same session as bots: same Chromium, flags, and no process left behind.
        with (
            BrowserSession(chromium=chromium) as session,
            tempfile.TemporaryDirectory(prefix="robo-pdf-") as downloads,
        ):
            session.new_context(Path(downloads))
            page = session.new_page()
            page.route("**/*", refuse_network)
            page.goto(html_path.resolve().as_uri(), wait_until="load")
            page.emulate_media(media="print")
            page.pdf(
                path=str(pdf_path),
                format="A4",
                print_background=True,
                margin={"top": "14mm", "bottom": FOOTER_MARGIN, "left": "12mm", "right": "12mm"},
                display_header_footer=bool(footer),
                header_template="<span></span>",  # no default header (date and title)
                footer_template=footer or "<span></span>",
            )
    except PlaywrightError as exc:
        raise ReportError(
            f"cannot print the PDF with Chromium ({exc.message.splitlines()[0]}); "
            "check ROBO_CHROMIUM, or write --format html and print it yourself"
        ) from None
    if requested:
        raise ReportError(f"the HTML report asked for network resources: {', '.join(requested)}")
    return pdf_path


def write_pdf(report: Report, path: Path, *, chromium: str = "") -> Path:
    with tempfile.TemporaryDirectory(prefix="robo-report-") as folder:
        html_path = Path(folder) / "report.html"
        html_path.write_text(render_html(report, for_print=True), encoding="utf-8")
        return html_to_pdf(html_path, path, chromium=chromium, footer=footer_template(report))
