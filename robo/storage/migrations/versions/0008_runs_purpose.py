"""runs.purpose: production, test or demo; per-run minutes for completed runs only

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-02 20:00:00

Reports summed every run: one `robo demo` made the headline speak of processes
"in production". Runs now record their purpose; runs the demo started become
`demo`, every other run stays `production` (nothing else told them apart).

The per-run saving (opening the tools, compiling a report) is now credited only
to a run that completed with at least one successful item: a failed, timed out,
interrupted or abandoned run was credited it before. This revision applies the
rule to the runs already recorded, so that `report --check` holds on old ledgers.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("runs") as batch:
        batch.add_column(
            sa.Column("purpose", sa.String(16), nullable=False, server_default="production")
        )
    op.execute("UPDATE runs SET purpose = 'demo' WHERE \"trigger\" = 'demo'")
    op.execute(
        "UPDATE runs SET run_minutes_saved = 0 "
        "WHERE status <> 'completed' AND status <> 'running' AND run_minutes_saved <> 0"
    )


def downgrade() -> None:
    with op.batch_alter_table("runs") as batch:
        batch.drop_column("purpose")
