"""work queues: queues, queue items with one life across runs, their events

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-02 07:30:00

Existing run items become items of their process's queue (one queue per
process, named after it): one queue item per (process, reference), with the
status of its latest outcome, and every item row linked to it. The first
success of each queue item is marked as the one that earned its minutes;
older duplicate successes stay as they were recorded (history is never
rewritten), and `robo report --check` names them.
"""

from __future__ import annotations

import datetime as dt
import json

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

OUTCOME_TO_STATUS = {
    "success": "successful",
    "business_exception": "business_exception",
    "application_exception": "application_exception",
    "skipped": "skipped",
}


def upgrade() -> None:
    op.create_table(
        "queues",
        sa.Column("name", sa.String(length=64), primary_key=True),
        sa.Column("unique_references", sa.String(length=32), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
    )
    op.create_table(
        "queue_items",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("queue", sa.String(length=64), sa.ForeignKey("queues.name"), nullable=False),
        sa.Column("reference", sa.String(length=255), nullable=False),
        sa.Column("holds_reference", sa.String(length=255), nullable=True),
        sa.Column("data", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(length=32), nullable=False),
        sa.Column("priority", sa.Integer(), nullable=False),
        sa.Column("deadline", sa.DateTime(), nullable=True),
        sa.Column("defer_until", sa.DateTime(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.Column("source", sa.String(length=255), nullable=False),
        sa.Column("added_by_run_id", sa.Integer(), nullable=True),
        sa.Column("run_id", sa.Integer(), nullable=True),
        sa.Column("lease_until", sa.DateTime(), nullable=True),
        sa.Column("needs_verify", sa.Boolean(), nullable=False),
        sa.Column("runs_failed", sa.Integer(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("taken_by", sa.String(length=128), nullable=True),
        sa.Column("taken_at", sa.DateTime(), nullable=True),
        sa.Column("resolved_by", sa.String(length=128), nullable=True),
        sa.Column("resolved_at", sa.DateTime(), nullable=True),
        sa.Column("human_minutes", sa.Float(), nullable=True),
        sa.Column("note", sa.Text(), nullable=False),
        sa.UniqueConstraint("queue", "holds_reference", name="uq_queue_reference"),
    )
    op.create_index(
        "ix_queue_items_take", "queue_items", ["queue", "status", "priority", "created_at"]
    )
    op.create_index("ix_queue_items_reference", "queue_items", ["queue", "reference"])
    op.create_index("ix_queue_items_run_id", "queue_items", ["run_id"])
    op.create_table(
        "queue_events",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("item_id", sa.Integer(), sa.ForeignKey("queue_items.id"), nullable=False),
        sa.Column("at", sa.DateTime(), nullable=False),
        sa.Column("action", sa.String(length=32), nullable=False),
        sa.Column("status", sa.String(length=32), nullable=False),
        sa.Column("actor", sa.String(length=128), nullable=False),
        sa.Column("run_id", sa.Integer(), nullable=True),
        sa.Column("detail", sa.Text(), nullable=False),
    )
    op.create_index("ix_queue_events_item_id", "queue_events", ["item_id"])
    with op.batch_alter_table("items") as batch:
        batch.add_column(sa.Column("queue_item_id", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("credited_queue_item_id", sa.Integer(), nullable=True))
        batch.create_foreign_key("fk_items_queue_item", "queue_items", ["queue_item_id"], ["id"])
        batch.create_index("ix_items_queue_item_id", ["queue_item_id"])
        batch.create_unique_constraint("uq_items_credit", ["credited_queue_item_id"])
    _migrate_items()


def _migrate_items() -> None:
    """Every existing item row of a run made here joins its process's queue."""
    bind = op.get_bind()
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    rows = bind.execute(
        sa.text(
            "SELECT items.id, items.reference, items.status, items.attempts, items.data, "
            "items.error, runs.process_id, runs.id, runs.started_at "
            "FROM items JOIN runs ON runs.id = items.run_id "
            "WHERE runs.imported_from IS NULL ORDER BY items.id"
        )
    ).all()
    queues: set[str] = set()
    items: dict[tuple[str, str], dict[str, object]] = {}
    links: list[tuple[int, tuple[str, str]]] = []
    for item_id, reference, status, attempts, data, error, process, run_id, started in rows:
        if isinstance(data, str):  # a raw query returns JSON columns as text on SQLite
            data = json.loads(data or "{}")
        key = (process, reference)
        queues.add(process)
        entry = items.setdefault(
            key,
            {"created_at": started, "attempts": 0, "credited": None, "data": data},
        )
        entry.update(status=OUTCOME_TO_STATUS.get(status, status), run_id=run_id, error=error)
        entry["attempts"] = int(entry["attempts"]) + int(attempts or 0)  # type: ignore[call-overload]
        if status == "success" and entry["credited"] is None:
            entry["credited"] = item_id
        links.append((item_id, key))
    queue_table = sa.table(
        "queues",
        sa.column("name", sa.String),
        sa.column("unique_references", sa.String),
        sa.column("created_at", sa.DateTime),
    )
    for name in sorted(queues):
        bind.execute(queue_table.insert().values(
            name=name, unique_references="refuse", created_at=now
        ))  # fmt: skip
    ids: dict[tuple[str, str], int] = {}
    for (process, reference), entry in items.items():
        bind.execute(
            sa.text(
                "INSERT INTO queue_items (queue, reference, holds_reference, data, status, "
                "priority, created_at, updated_at, source, run_id, needs_verify, runs_failed, "
                "attempts, error, note) VALUES (:queue, :reference, :reference, :data, :status, "
                "0, :created, :now, 'before queues', :run_id, :false, 0, :attempts, :error, '')"
            ).bindparams(sa.bindparam("data", type_=sa.JSON)),
            {
                "queue": process, "reference": reference, "data": entry["data"] or {},
                "status": entry["status"], "created": entry["created_at"], "now": now,
                "run_id": entry["run_id"], "false": False, "attempts": entry["attempts"],
                "error": entry["error"],
            },
        )  # fmt: skip
        new_id = bind.execute(
            sa.text("SELECT id FROM queue_items WHERE queue = :q AND reference = :r"),
            {"q": process, "r": reference},
        ).scalar_one()
        ids[(process, reference)] = int(new_id)
    credited = {int(e["credited"]) for e in items.values() if e["credited"] is not None}  # type: ignore[call-overload]
    for item_id, key in links:
        bind.execute(
            sa.text(
                "UPDATE items SET queue_item_id = :q, credited_queue_item_id = :c WHERE id = :i"
            ),
            {"q": ids[key], "c": ids[key] if item_id in credited else None, "i": item_id},
        )


def downgrade() -> None:
    with op.batch_alter_table("items") as batch:
        batch.drop_constraint("uq_items_credit", type_="unique")
        batch.drop_index("ix_items_queue_item_id")
        batch.drop_constraint("fk_items_queue_item", type_="foreignkey")
        batch.drop_column("credited_queue_item_id")
        batch.drop_column("queue_item_id")
    op.drop_index("ix_queue_events_item_id", table_name="queue_events")
    op.drop_table("queue_events")
    op.drop_index("ix_queue_items_run_id", table_name="queue_items")
    op.drop_index("ix_queue_items_reference", table_name="queue_items")
    op.drop_index("ix_queue_items_take", table_name="queue_items")
    op.drop_table("queue_items")
    op.drop_table("queues")
