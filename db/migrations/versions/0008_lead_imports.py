"""lead imports

A console CSV import's progress and report, in the database instead of the memory of the API process that ran
it: behind a load balancer the page that polls it may be answered by another process.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-02 02:10:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import db.base

revision: str = '0008'
down_revision: str | None = '0007'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('lead_imports',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('company_id', sa.String(length=40), nullable=False),
    sa.Column('user_id', sa.String(length=40), nullable=False),
    sa.Column('filename', sa.String(length=255), nullable=False),
    sa.Column('total', sa.Integer(), nullable=False),
    sa.Column('done', sa.Integer(), nullable=False),
    sa.Column('created', sa.Integer(), nullable=False),
    sa.Column('merged', sa.Integer(), nullable=False),
    sa.Column('refused', sa.Integer(), nullable=False),
    sa.Column('errors', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('failure', sa.Text(), nullable=True),
    sa.Column('started_at', db.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('progressed_at', db.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('finished_at', db.base.UTCDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['company_id'], ['companies.id'], name=op.f('fk_lead_imports_company_id_companies'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_lead_imports_user_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_lead_imports'))
    )
    with op.batch_alter_table('lead_imports', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_lead_imports_company_id'), ['company_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_lead_imports_user_id'), ['user_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('lead_imports', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_lead_imports_user_id'))
        batch_op.drop_index(batch_op.f('ix_lead_imports_company_id'))

    op.drop_table('lead_imports')
