"""Charts for the HTML report: matplotlib (Agg, no display) drawn to inline SVG.

matplotlib is imported here only, and this module only by the HTML renderer,
so ``robo --help`` and table reports never pay for it. Text stays text in the
SVG (``svg.fonttype = none``): the browser draws it with a local sans-serif
font, nothing is fetched.
"""

from __future__ import annotations

import io
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from robo.i18n import _
from robo.i18n import formats as f
from robo.reports.figures import Row
from robo.reports.headline import hours_label
from robo.reports.periods import months_between

BLUE = "#000091"  # bleu France
LIGHT = "#6a6af4"
RED = "#c9191e"
GREY = "#666666"
INK = "#161616"
# Printed in black and white, a bar still has a dark outline and the area under the
# cumulative line a hatch: no chart reads by colour alone.
BAR_EDGE = {"edgecolor": INK, "linewidth": 0.8}


@dataclass(frozen=True)
class Chart:
    key: str
    title: str
    description: str
    svg: str
    wide: bool = True


def _figure(width: float, height: float) -> Any:
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=96, layout="constrained")
    return fig, fig.add_subplot()


def _style(ax: Any) -> None:
    ax.spines[["top", "right"]].set_visible(False)
    ax.spines[["left", "bottom"]].set_color("#bbbbbb")
    ax.tick_params(colors="#333333", labelsize=9)
    ax.grid(axis="y", color="#e5e5e5", linewidth=0.8)
    ax.set_axisbelow(True)


def _svg(fig: Any, key: str) -> str:
    import matplotlib

    with matplotlib.rc_context({"svg.fonttype": "none", "svg.hashsalt": f"robo-{key}"}):
        buffer = io.StringIO()
        fig.savefig(buffer, format="svg", metadata={"Date": None, "Creator": "robo"})
    text = buffer.getvalue()
    text = text[text.index("<svg") :]  # drop the XML declaration and DOCTYPE
    text = re.sub(r"<metadata>.*?</metadata>\s*", "", text, flags=re.DOTALL)
    # Several SVGs share one page: make their ids (clip paths, markers) unique.
    text = re.sub(r'id="([^"]+)"', rf'id="{key}-\1"', text)
    text = re.sub(r"url\(#([^)]+)\)", rf"url(#{key}-\1)", text)
    text = re.sub(r'href="#([^"]+)"', rf'href="#{key}-\1"', text)
    return text.replace("<svg ", f'<svg role="img" aria-label="{key}" class="chart" ', 1)


def _label_bars(ax: Any, bars: Any, values: list[float]) -> None:
    # The headline's precision: a 7.5 h bar reads 7.5, not 8.
    ax.bar_label(bars, labels=[hours_label(v) if v else "" for v in values], fontsize=8, padding=2)


def monthly(rows: list[Row]) -> Chart | None:
    """Hours saved per month, every month shown (empty ones too)."""
    by_month = {r.keys["month"]: r.figures.hours_saved for r in rows}
    if not by_month:
        return None
    months = months_between(min(by_month), max(by_month))
    values = [by_month.get(m, 0.0) for m in months]
    fig, ax = _figure(7.5, 2.6)
    bars = ax.bar(_month_ticks(months), values, color=BLUE, width=0.7, **BAR_EDGE)
    _label_bars(ax, bars, values)
    ax.set_ylabel(_("hours saved"), fontsize=9)
    ax.tick_params(axis="x", rotation=45 if len(months) > 8 else 0)
    _style(ax)
    return Chart(
        "month",
        _("Hours saved per month"),
        _("Bars: hours saved by runs started that month (UTC)."),
        _svg(fig, "month"),
    )


def cumulative(rows: list[Row]) -> Chart | None:
    """Running total of hours saved, month by month."""
    by_month = {r.keys["month"]: r.figures.hours_saved for r in rows}
    if not by_month:
        return None
    months = months_between(min(by_month), max(by_month))
    running, values = 0.0, []
    for month in months:
        running += by_month.get(month, 0.0)
        values.append(running)
    fig, ax = _figure(7.5, 2.6)
    ax.fill_between(range(len(months)), values, facecolor="#e3e3fd", edgecolor=LIGHT,
                    hatch="///", linewidth=0)  # fmt: skip
    ax.plot(range(len(months)), values, color=BLUE, marker="o", markersize=4)
    ax.set_xticks(range(len(months)), _month_ticks(months), rotation=45 if len(months) > 8 else 0)
    ax.annotate(
        f"{hours_label(values[-1])} h",
        (len(months) - 1, values[-1]),
        textcoords="offset points",
        xytext=(-10, 8),
        ha="right",
        fontsize=9,
        color=BLUE,
    )
    ax.set_ylabel(_("hours saved, cumulative"), fontsize=9)
    ax.set_ylim(bottom=0)
    _style(ax)
    return Chart(
        "cumulative",
        _("Cumulative hours saved"),
        _("Hours saved since the first run, month by month."),
        _svg(fig, "cumulative"),
    )


def _horizontal(
    rows: list[Row], key: str, title: str, description: str, name: Callable[[str], str]
) -> Chart | None:
    ranked = sorted(rows, key=lambda r: (r.figures.hours_saved, r.keys[key]))
    if not ranked:
        return None
    labels = [name(r.keys[key]) if r.keys[key] else _("(none)") for r in ranked]
    values = [r.figures.hours_saved for r in ranked]
    chart_key = "process" if key == "process_id" else key
    fig, ax = _figure(5.0, max(1.8, 0.36 * len(labels) + 0.9))
    bars = ax.barh(labels, values, color=BLUE, height=0.6, **BAR_EDGE)
    ax.bar_label(bars, labels=[f"{hours_label(v)} h" for v in values], fontsize=8, padding=3)
    ax.set_xlabel(_("hours saved"), fontsize=9)
    ax.margins(x=0.15)
    _style(ax)
    ax.grid(axis="y", visible=False)
    ax.grid(axis="x", color="#e5e5e5", linewidth=0.8)
    return Chart(chart_key, title, description, _svg(fig, chart_key), wide=False)


def by_process(rows: list[Row], name: Callable[[str], str] = str) -> Chart | None:
    return _horizontal(rows, "process_id", _("Hours saved per process"),
                       _("All runs of each process in the scope."), name)  # fmt: skip


def by_region(rows: list[Row]) -> Chart | None:
    return _horizontal(rows, "region", _("Hours saved per region"),
                       _("By the region that ran the process."), str)  # fmt: skip


def _month_ticks(months: list[str]) -> list[str]:
    """Month axis labels in the reader's language ("déc. 2026"); one per month, in order."""
    return [f.month_short(m) for m in months]


def all_charts(series: dict[str, list[Row]], name: Callable[[str], str] = str) -> list[Chart]:
    """The report's charts; ``name`` turns a process id into what readers call it."""
    charts = [
        monthly(series.get("month", [])),
        cumulative(series.get("month", [])),
        by_process(series.get("process", []), name),
        by_region(series.get("region", [])),
    ]
    return [c for c in charts if c is not None]


# Keep GREY and RED available to templates that colour exceptions.
PALETTE = {"blue": BLUE, "light": LIGHT, "red": RED, "grey": GREY}
