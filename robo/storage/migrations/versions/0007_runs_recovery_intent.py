"""runs.recovery: the recovery an abandoned run is owed, recorded as it is abandoned

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-02 19:30:00

A scheduler abandoned a dead run and then submitted its recovery; killed in
between (or with its broker away), the recovery was lost for good. The intent
is now a column written in the abandoning transaction: due, submitted, started
(the recovery's run row exists) or declined (the schedule says `leave`).
Runs abandoned before this revision keep no intent: their recoveries were
decided already.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("runs") as batch:
        batch.add_column(sa.Column("recovery", sa.String(16), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("runs") as batch:
        batch.drop_column("recovery")
