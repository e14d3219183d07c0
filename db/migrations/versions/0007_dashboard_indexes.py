"""dashboard indexes

The dashboard's automated messages without a send time (recorded, or never sent) by when they were written, from
a partial index that holds only those: the full index of every message by creation time made PostgreSQL read the
row of every message of the period to learn its status (a year: 37,000 heap pages, 200 ms; now 15 ms).
The plans are in docs/performance.md.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-02 01:30:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import db.base  # noqa: F401  (UTCDateTime and the JSON variant are rendered from it)

revision: str = '0007'
down_revision: str | None = '0006'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

UNSENT_AUTOMATED = "sent_at IS NULL AND workflow_run_id IS NOT NULL"


def upgrade() -> None:
    with op.batch_alter_table('message_deliveries', schema=None) as batch_op:
        batch_op.create_index(
            'ix_message_deliveries_company_unsent',
            ['company_id', 'created_at', 'status'],
            unique=False,
            postgresql_where=sa.text(UNSENT_AUTOMATED),
            sqlite_where=sa.text(UNSENT_AUTOMATED),
        )


def downgrade() -> None:
    with op.batch_alter_table('message_deliveries', schema=None) as batch_op:
        batch_op.drop_index(
            'ix_message_deliveries_company_unsent',
            postgresql_where=sa.text(UNSENT_AUTOMATED),
            sqlite_where=sa.text(UNSENT_AUTOMATED),
        )
