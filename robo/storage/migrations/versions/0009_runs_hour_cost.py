"""runs.hour_cost_eur: the region's agent hour cost, kept on each run like its baseline

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-02 20:15:00

Reports give euros saved: minutes saved × the hour cost the run started with. A
change of the hour cost (ROBO_HOUR_COST_EUR) applies from the next run on and
never rewrites earlier runs. Runs recorded before this revision have none.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("runs") as batch:
        batch.add_column(sa.Column("hour_cost_eur", sa.Float(), nullable=True))
        batch.add_column(
            sa.Column("hour_cost_set_by", sa.String(255), nullable=False, server_default="")
        )
        batch.add_column(
            sa.Column("hour_cost_set_on", sa.String(10), nullable=False, server_default="")
        )


def downgrade() -> None:
    with op.batch_alter_table("runs") as batch:
        batch.drop_column("hour_cost_set_on")
        batch.drop_column("hour_cost_set_by")
        batch.drop_column("hour_cost_eur")
