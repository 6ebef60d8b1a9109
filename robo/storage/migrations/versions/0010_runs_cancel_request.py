"""runs.cancel_requested_at / cancel_mode / cancel_requested_by: robo cancel RUN

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-03 06:40:00

An operator asks a running run to stop (``robo cancel``): the request is a row
change the run reads between items (``after_item``) or at once (``now``),
whatever machine it runs on, local executor or Celery worker alike.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("runs") as batch:
        batch.add_column(sa.Column("cancel_requested_at", sa.DateTime(), nullable=True))
        batch.add_column(sa.Column("cancel_mode", sa.String(16), nullable=True))
        batch.add_column(
            sa.Column("cancel_requested_by", sa.String(255), nullable=False, server_default="")
        )


def downgrade() -> None:
    with op.batch_alter_table("runs") as batch:
        batch.drop_column("cancel_requested_by")
        batch.drop_column("cancel_mode")
        batch.drop_column("cancel_requested_at")
