"""The figures of one report line, and how the derived ones follow from the sums.

Every stored field is a SQL sum over ledger rows; every property is arithmetic
on those sums. Nothing else enters a figure.

Items, item rows, attempts and runs are four different counts:

- ``runs``: executions started in the scope;
- ``item_rows``: outcomes recorded, one per item per run (a queue item tried by
  two runs has two);
- ``items``: work items, each counted once, with its *deciding* outcome: its
  credited success if the scope has it, else its latest outcome in the scope
  (a queue item where the row names one, the row itself otherwise);
- ``attempts``: tries, summed over every item row (a row retried three times
  inside its run holds 3).

``succeeded``, ``business_exceptions``, ``application_exceptions`` and
``skipped`` count items by their deciding outcome, so they add up to ``items``.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any

FTE_HOURS_PER_YEAR = 1607.0
"""Yearly work time of a French public-service full-time post (35 h a week)."""


@dataclass(frozen=True)
class Figures:
    """Sums over the runs (and their items) of one group."""

    runs: int = 0
    items: int = 0
    item_rows: int = 0
    attempts: int = 0
    succeeded: int = 0
    business_exceptions: int = 0
    application_exceptions: int = 0
    skipped: int = 0
    item_minutes_saved: float = 0.0
    run_minutes_saved: float = 0.0
    robot_seconds: float = 0.0
    human_minutes: float = 0.0
    """Agent time the work still takes, from the baselines (an estimate per item)."""
    resolved_by_human: int = 0
    """Queue items a human resolved (``robo worklist resolve``), with the run that last held them."""
    human_minutes_spent: float = 0.0
    """The minutes those humans recorded: human work, never robot savings."""
    euros_saved: float = 0.0
    """Minutes saved × the agent hour cost each run started with (runs without one: 0)."""
    costed_runs: int = 0
    """Runs that recorded an hour cost: euros cover these only."""

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
        """Share of the items with work to do that the robot completed: succeeded ÷
        (items − skipped). None when no item had work to do."""
        to_do = self.items - self.skipped
        return self.succeeded / to_do if to_do else None

    @property
    def robot_hours(self) -> float:
        return self.robot_seconds / 3600

    @property
    def human_hours(self) -> float:
        return self.human_minutes / 60

    @property
    def human_hours_spent(self) -> float:
        return self.human_minutes_spent / 60

    def fte(self, hours_per_year: float = FTE_HOURS_PER_YEAR) -> float:
        """Hours saved as a share of one full-time post's year of work."""
        return self.hours_saved / hours_per_year

    def __add__(self, other: Figures) -> Figures:
        return Figures(**{f.name: getattr(self, f.name) + getattr(other, f.name) for f in FIELDS})

    def as_dict(self, fte_hours_per_year: float = FTE_HOURS_PER_YEAR) -> dict[str, Any]:
        rate = self.success_rate
        return {
            "runs": self.runs,
            "items": self.items,
            "item_rows": self.item_rows,
            "attempts": self.attempts,
            "succeeded": self.succeeded,
            "business_exceptions": self.business_exceptions,
            "application_exceptions": self.application_exceptions,
            "skipped": self.skipped,
            "success_rate": None if rate is None else round(rate, 4),
            "minutes_saved": round(self.minutes_saved, 4),
            "item_minutes_saved": round(self.item_minutes_saved, 4),
            "run_minutes_saved": round(self.run_minutes_saved, 4),
            "hours_saved": round(self.hours_saved, 4),
            "fte": round(self.fte(fte_hours_per_year), 4),
            "robot_hours": round(self.robot_hours, 4),
            "human_hours_needed": round(self.human_hours, 4),
            "resolved_by_human": self.resolved_by_human,
            "human_minutes_spent": round(self.human_minutes_spent, 4),
            "human_hours_spent": round(self.human_hours_spent, 4),
            # None when no run of the group recorded an hour cost: unknown, not zero.
            "euros_saved": round(self.euros_saved, 2) if self.costed_runs else None,
            "costed_runs": self.costed_runs,
        }


FIELDS = fields(Figures)
"""The stored sums, in the order the SQL selects them (see ``queries.Sums.columns``)."""

COUNTS = frozenset(f.name for f in FIELDS if f.type in (int, "int"))
"""The fields that are counts (ints); the others are sums of minutes or seconds."""

FIGURE_COLUMNS = (
    "runs",
    "items",
    "item_rows",
    "attempts",
    "succeeded",
    "business_exceptions",
    "application_exceptions",
    "skipped",
    "success_rate",
    "minutes_saved",
    "item_minutes_saved",
    "run_minutes_saved",
    "hours_saved",
    "fte",
    "robot_hours",
    "human_hours_needed",
    "resolved_by_human",
    "human_minutes_spent",
    "human_hours_spent",
    "euros_saved",
    "costed_runs",
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
