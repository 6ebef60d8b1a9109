"""The figures of one report line, and how the derived ones follow from the sums.

Every stored field is a SQL sum over ledger rows; every property is arithmetic
on those sums. Nothing else enters a figure.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

FTE_HOURS_PER_YEAR = 1607.0
"""Yearly work time of a French public-service full-time post (35 h a week)."""


@dataclass(frozen=True)
class Figures:
    """Sums over the runs (and their items) of one group."""

    runs: int = 0
    items: int = 0
    succeeded: int = 0
    business_exceptions: int = 0
    application_exceptions: int = 0
    item_minutes_saved: float = 0.0
    run_minutes_saved: float = 0.0
    robot_seconds: float = 0.0
    human_minutes: float = 0.0

    @property
    def minutes_saved(self) -> float:
        return self.item_minutes_saved + self.run_minutes_saved

    @property
    def hours_saved(self) -> float:
        return self.minutes_saved / 60

    @property
    def exceptions(self) -> int:
        return self.business_exceptions + self.application_exceptions

    @property
    def success_rate(self) -> float | None:
        """Share of items the robot completed; None when there was no item."""
        return self.succeeded / self.items if self.items else None

    @property
    def robot_hours(self) -> float:
        return self.robot_seconds / 3600

    @property
    def human_hours(self) -> float:
        return self.human_minutes / 60

    def fte(self, hours_per_year: float = FTE_HOURS_PER_YEAR) -> float:
        """Hours saved as a share of one full-time post's year of work."""
        return self.hours_saved / hours_per_year

    def __add__(self, other: Figures) -> Figures:
        return Figures(
            runs=self.runs + other.runs,
            items=self.items + other.items,
            succeeded=self.succeeded + other.succeeded,
            business_exceptions=self.business_exceptions + other.business_exceptions,
            application_exceptions=self.application_exceptions + other.application_exceptions,
            item_minutes_saved=self.item_minutes_saved + other.item_minutes_saved,
            run_minutes_saved=self.run_minutes_saved + other.run_minutes_saved,
            robot_seconds=self.robot_seconds + other.robot_seconds,
            human_minutes=self.human_minutes + other.human_minutes,
        )

    def as_dict(self, fte_hours_per_year: float = FTE_HOURS_PER_YEAR) -> dict[str, Any]:
        rate = self.success_rate
        return {
            "runs": self.runs,
            "items": self.items,
            "succeeded": self.succeeded,
            "business_exceptions": self.business_exceptions,
            "application_exceptions": self.application_exceptions,
            "success_rate": None if rate is None else round(rate, 4),
            "minutes_saved": round(self.minutes_saved, 4),
            "item_minutes_saved": round(self.item_minutes_saved, 4),
            "run_minutes_saved": round(self.run_minutes_saved, 4),
            "hours_saved": round(self.hours_saved, 4),
            "fte": round(self.fte(fte_hours_per_year), 4),
            "robot_hours": round(self.robot_hours, 4),
            "human_hours_needed": round(self.human_hours, 4),
        }


FIGURE_COLUMNS = (
    "runs",
    "items",
    "succeeded",
    "business_exceptions",
    "application_exceptions",
    "success_rate",
    "minutes_saved",
    "item_minutes_saved",
    "run_minutes_saved",
    "hours_saved",
    "fte",
    "robot_hours",
    "human_hours_needed",
)


@dataclass(frozen=True)
class Row:
    """One line of a report: the group's labels and its figures."""

    keys: dict[str, str]
    figures: Figures
    baselines: list[dict[str, Any]] = field(default_factory=list)

    def as_dict(self, fte_hours_per_year: float = FTE_HOURS_PER_YEAR) -> dict[str, Any]:
        return {**self.keys, **self.figures.as_dict(fte_hours_per_year)}


def total(rows: list[Row]) -> Figures:
    result = Figures()
    for row in rows:
        result = result + row.figures
    return result
