"""scheduling replication scale-out

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22 00:16:51.713859
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "metric_imports",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("file_hash", sa.String(length=64), nullable=False),
        sa.Column("region", sa.String(length=64), nullable=False),
        sa.Column("imported_at", sa.DateTime(), nullable=False),
        sa.Column("runs", sa.Integer(), nullable=False),
        sa.Column("items", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("file_hash"),
    )
    op.create_table(
        "overlays",
        sa.Column("process_id", sa.String(length=64), nullable=False),
        sa.Column("data", sa.JSON(), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("content_hash", sa.String(length=64), nullable=False),
        sa.Column("source_path", sa.Text(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("process_id"),
    )
    op.create_table(
        "schedule_events",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("process_id", sa.String(length=64), nullable=False),
        sa.Column("trigger_key", sa.String(length=128), nullable=False),
        sa.Column("scheduled_for", sa.DateTime(), nullable=False),
        sa.Column("decided_at", sa.DateTime(), nullable=False),
        sa.Column("decision", sa.String(length=16), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("run_id", sa.Integer(), nullable=True),
        sa.Column("scheduler", sa.String(length=255), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("process_id", "trigger_key", "scheduled_for", name="uq_schedule_fire"),
    )
    with op.batch_alter_table("schedule_events", schema=None) as batch_op:
        batch_op.create_index(
            "ix_schedule_events_process_time", ["process_id", "scheduled_for"], unique=False
        )

    op.create_table(
        "scheduler_lock",
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("owner", sa.String(length=255), nullable=False),
        sa.Column("acquired_at", sa.DateTime(), nullable=False),
        sa.Column("renewed_at", sa.DateTime(), nullable=False),
        sa.Column("expires_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("name"),
    )
    op.create_table(
        "trusted_keys",
        sa.Column("region", sa.String(length=64), nullable=False),
        sa.Column("public_key", sa.Text(), nullable=False),
        sa.Column("added_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("region"),
    )
    op.create_table(
        "workers",
        sa.Column("id", sa.String(length=255), nullable=False),
        sa.Column("host", sa.String(length=255), nullable=False),
        sa.Column("pid", sa.Integer(), nullable=False),
        sa.Column("slots", sa.Integer(), nullable=False),
        sa.Column("started_at", sa.DateTime(), nullable=False),
        sa.Column("heartbeat_at", sa.DateTime(), nullable=False),
        sa.Column("current_runs", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("processes", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("paused", sa.Boolean(), server_default=sa.false(), nullable=False)
        )

    with op.batch_alter_table("runs", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("application", sa.String(length=255), server_default="", nullable=False)
        )
        batch_op.add_column(sa.Column("origin_region", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("origin_version", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("scheduled_for", sa.DateTime(), nullable=True))
        batch_op.add_column(sa.Column("resumes_run_id", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("imported_from", sa.String(length=64), nullable=True))
        batch_op.add_column(
            sa.Column("worker", sa.String(length=255), server_default="", nullable=False)
        )
        batch_op.alter_column("version_id", existing_type=sa.INTEGER(), nullable=True)


def downgrade() -> None:
    with op.batch_alter_table("runs", schema=None) as batch_op:
        batch_op.alter_column("version_id", existing_type=sa.INTEGER(), nullable=False)
        batch_op.drop_column("worker")
        batch_op.drop_column("imported_from")
        batch_op.drop_column("resumes_run_id")
        batch_op.drop_column("scheduled_for")
        batch_op.drop_column("origin_version")
        batch_op.drop_column("origin_region")
        batch_op.drop_column("application")

    with op.batch_alter_table("processes", schema=None) as batch_op:
        batch_op.drop_column("paused")

    op.drop_table("workers")
    op.drop_table("trusted_keys")
    op.drop_table("scheduler_lock")
    with op.batch_alter_table("schedule_events", schema=None) as batch_op:
        batch_op.drop_index("ix_schedule_events_process_time")

    op.drop_table("schedule_events")
    op.drop_table("overlays")
    op.drop_table("metric_imports")
