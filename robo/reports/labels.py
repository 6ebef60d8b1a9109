"""What report columns are called where people read them (HTML, PDF, CSV, the terminal).

Written in English and translated when shown (``label``); JSON keeps the keys.
"""

from __future__ import annotations

from robo.i18n import N_, _

LABELS = {
    "process_id": N_("process"),
    "region": N_("region"),
    "application": N_("application"),
    "origin_region": N_("built by"),
    "month": N_("month"),
    "week": N_("week"),
    "quarter": N_("quarter"),
    "year": N_("year"),
    "runs": N_("runs"),
    "items": N_("items"),
    "item_rows": N_("item rows"),
    "attempts": N_("attempts"),
    "succeeded": N_("succeeded"),
    "business_exceptions": N_("business exc."),
    "application_exceptions": N_("application exc."),
    "skipped": N_("skipped"),
    "success_rate": N_("success rate"),
    "minutes_saved": N_("minutes saved"),
    "item_minutes_saved": N_("minutes saved on items"),
    "run_minutes_saved": N_("minutes saved per run"),
    "hours_saved": N_("hours saved"),
    "fte": N_("FTE"),
    "robot_hours": N_("robot hours"),
    "human_hours_needed": N_("human hours needed"),
    "resolved_by_human": N_("resolved by hand"),
    "human_minutes_spent": N_("minutes resolving"),
    "human_hours_spent": N_("hours resolving"),
    "euros_saved": N_("€ saved"),
    "costed_runs": N_("runs with an hour cost"),
}
ITEM_LABELS = {
    "run_id": N_("run"),
    "position": N_("position"),
    "reference": N_("reference"),
    "queue_item_id": N_("queue item"),
    "credited": N_("credited"),
    "status": N_("status"),
    "started_at": N_("started (UTC)"),
    "duration_seconds": N_("seconds"),
    "error": N_("error"),
}
"""Columns of the item rows behind a figure (``--items``)."""
STATUSES = {
    # runs
    "running": N_("running"), "completed": N_("completed"), "failed": N_("failed"),
    "timed_out": N_("timed out"), "interrupted": N_("interrupted"),
    "abandoned": N_("abandoned"), "cancelled": N_("cancelled"),
    # items
    "success": N_("done"), "business_exception": N_("business exception"),
    "application_exception": N_("application exception"), "skipped": N_("nothing to do"),
}  # fmt: skip
"""Run and item statuses as readers say them (JSON and CSV keep the status itself)."""
SHOWN = {
    "runs", "items", "attempts", "succeeded", "business_exceptions", "application_exceptions",
    "skipped", "success_rate", "hours_saved", "fte", "robot_hours", "human_hours_needed",
    "resolved_by_human", "human_hours_spent", "euros_saved",
}  # fmt: skip
"""The columns of the HTML and PDF tables (the CSV has every figure)."""


def label(column: str) -> str:
    """A column's name in the current locale."""
    return _(LABELS.get(column) or ITEM_LABELS.get(column) or column)


def status_text(status: str) -> str:
    """A run's or an item's status in the current locale."""
    return _(STATUSES.get(status, status))
