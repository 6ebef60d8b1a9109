"""queue_items: a partial index in the order runs take waiting items

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02 15:00:00

Taking the next item sorted every waiting row of the queue (about 260 ms at
100,000 waiting items on SQLite). This index holds only waiting items, in the
order `Queues.take` wants them, so the next one is the first entry it reads.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

WAITING = sa.text("status IN ('new', 'deferred')")


def upgrade() -> None:
    op.create_index(
        "ix_queue_items_next",
        "queue_items",
        [
            "queue",
            sa.text("priority DESC"),
            sa.text("(deadline IS NULL)"),
            "deadline",
            "created_at",
            "id",
        ],
        sqlite_where=WAITING,
        postgresql_where=WAITING,
    )


def downgrade() -> None:
    op.drop_index("ix_queue_items_next", table_name="queue_items")
