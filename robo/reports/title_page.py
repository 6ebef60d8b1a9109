"""The printed report's first page and running footer: what a prefect reads before
turning the page (``robo report --format pdf``).

Everything shown is in the current locale and comes from the report itself: the
headline sentence, three or four of its figures, the period, the regions.
Nothing secret goes on paper: no database URL, no settings.
"""

from __future__ import annotations

import html
import unicodedata
from dataclasses import dataclass

from robo.i18n import _, ngettext
from robo.i18n import formats as f
from robo.regions import region
from robo.reports.headline import _counted
from robo.reports.report import Report

KICKER = "robo · "
"""Before the translated "hours of agent work saved": robo is a name, never translated."""
FOOTER_SCOPE_CHARS = 70
FOOTER_STYLE = (
    "font-size:8pt; font-family:system-ui, 'DejaVu Sans', Arial, sans-serif; color:#5e5e5e;"
    " width:100%; box-sizing:border-box; padding:0 12mm; display:flex;"
    " justify-content:space-between; gap:8mm;"
)


@dataclass(frozen=True)
class KeyFigure:
    key: str
    value: str
    label: str


@dataclass(frozen=True)
class TitlePage:
    kicker: str
    title: str
    scope: str
    period: str
    headline: str
    figures: list[KeyFigure]
    generated: str
    regions: list[str]


def title(report: Report) -> str:
    """The report's title in the current locale, as the footer and the cover say it."""
    return _("Hours of agent work saved")


def period_text(report: Report) -> str:
    """The stretch of time the figures cover, in words ("" when nothing ran)."""
    period = report.headline.period
    if period is None:
        return ""
    start, end = (f.date(moment) for moment in period)
    if start == end:
        return start
    return _("%(start)s to %(end)s") % {"start": start, "end": end}


def key_figures(report: Report) -> list[KeyFigure]:
    """Hours saved, full-time posts, euros (when runs recorded an hour cost), processes."""
    head = report.headline
    totals = head.totals
    figures = [
        KeyFigure("hours_saved", f.hours(totals.hours_saved), _("hours of agent work saved"))
    ]
    if head.fte_annualised is not None:
        figures.append(
            KeyFigure(
                "fte_annualised",
                f.number(head.fte_annualised, 2),
                _("full-time posts a year at this period's pace"),
            )
        )
    else:
        figures.append(
            KeyFigure(
                "fte",
                f.number(totals.fte(report.fte_hours_per_year), 2),
                _("of one full-time post's year (%(hours)s h), not annualised")
                % {"hours": f.number(report.fte_hours_per_year)},
            )
        )
    if totals.costed_runs:
        figures.append(
            KeyFigure("euros_saved", f.euros(totals.euros_saved), _("of agent time saved"))
        )
    if report.scope.purposes == ("production",):
        counted = ngettext("process in production", "processes in production", head.processes)
    else:  # the headline's own words for what was counted, without its number
        counted = ngettext(
            "%(n)s process %(counted)s", "%(n)s processes %(counted)s", head.processes
        ) % {"n": "", "counted": _counted(report.scope, head.processes)}
    figures.append(
        KeyFigure("processes_in_production", f.number(head.processes), " ".join(counted.split()))
    )
    return figures


def region_names(report: Report) -> list[str]:
    """The regions whose robots saved work in the scope (the headline's count), by name;
    else the regions the scope names."""
    rows = report.extra.get("region") or []
    slugs = [r.keys["region"] for r in rows if r.keys.get("region") and r.figures.succeeded]
    if not slugs:
        slugs = list(report.scope.regions)
    return sorted({region(slug).name for slug in slugs}, key=_alphabetical)


def _alphabetical(name: str) -> str:
    """Île-de-France between Guyane and Occitanie, not after them."""
    return unicodedata.normalize("NFD", name).casefold()


def title_page(report: Report) -> TitlePage:
    return TitlePage(
        kicker=KICKER + _("hours of agent work saved"),
        title=title(report),
        scope=report.scope.describe(),
        period=period_text(report),
        headline=report.headline.text,
        figures=key_figures(report),
        generated=f.date(report.generated_at),
        regions=region_names(report),
    )


def footer_template(report: Report) -> str:
    """Chromium's running footer (``page.pdf(footer_template=...)``): "robo · title · scope
    · page 3 of 7". Chromium fills the ``pageNumber`` and ``totalPages`` spans; the
    footer is its own tiny document, so it says its font size (the default is ~0)."""
    scope = report.scope.describe()
    if len(scope) > FOOTER_SCOPE_CHARS:
        scope = scope[: FOOTER_SCOPE_CHARS - 1].rstrip() + "…"
    words = html.escape(f"{KICKER}{title(report)} · {scope}")
    # Translate first, then put the spans in: translators see one sentence.
    page = html.escape(_("page %(page)s of %(pages)s")) % {
        "page": '<span class="pageNumber"></span>',
        "pages": '<span class="totalPages"></span>',
    }
    return (
        f'<div style="{FOOTER_STYLE}"><span style="overflow:hidden; white-space:nowrap;">'
        f'{words}</span><span style="white-space:nowrap;">{page}</span></div>'
    )
