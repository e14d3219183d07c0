"""lead search indexes

Trigram indexes (pg_trgm, GIN) on the leads' name and email, which answer the lead list's search
(``ILIKE '%text%'``) on PostgreSQL without reading every lead of the company. The extension is created here when
the migrating role may create it (pg_trgm is a trusted extension: the database's owner, or any role with CREATE
on the database, may); otherwise the indexes are skipped with a warning naming the statements an administrator
runs instead, and search still works, unindexed. On SQLite the search is a plain LIKE and the indexes are plain.
The plans before and after are in docs/performance.md.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02 09:30:00.000000
"""

import logging
from collections.abc import Sequence

from alembic import op
from sqlalchemy import text
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError

revision: str = '0006'
down_revision: str | None = '0005'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

log = logging.getLogger("alembic.runtime.migration")

SEARCHED_COLUMNS = ("name", "email")


def _index_name(column: str) -> str:
    return f"ix_leads_{column}_trgm"


def _trigram_extension(connection: Connection) -> bool:
    """True once pg_trgm is installed in this database, creating it if this role may."""
    if connection.scalar(text("SELECT 1 FROM pg_extension WHERE extname = 'pg_trgm'")):
        return True
    try:
        with connection.begin_nested():  # a refusal must not abort the migration's transaction
            connection.execute(text("CREATE EXTENSION IF NOT EXISTS pg_trgm"))
    except DBAPIError as error:
        log.warning(
            "Lead search stays unindexed: this role cannot create the pg_trgm extension (%s). As a superuser, "
            "or the database owner, run in this database: CREATE EXTENSION pg_trgm; %s",
            str(error.orig).strip().splitlines()[0],
            " ".join(
                f"CREATE INDEX {_index_name(column)} ON leads USING gin ({column} gin_trgm_ops);"
                for column in SEARCHED_COLUMNS
            ),
        )
        return False
    return True


def upgrade() -> None:
    connection = op.get_bind()
    if connection.dialect.name == "postgresql":
        if not _trigram_extension(connection):
            return
        for column in SEARCHED_COLUMNS:
            op.create_index(
                _index_name(column),
                "leads",
                [column],
                unique=False,
                postgresql_using="gin",
                postgresql_ops={column: "gin_trgm_ops"},
            )
    else:
        for column in SEARCHED_COLUMNS:
            op.create_index(_index_name(column), "leads", [column], unique=False)


def downgrade() -> None:
    # The extension stays: other databases' objects may use it, and dropping it may need a privilege we lack.
    for column in SEARCHED_COLUMNS:
        op.execute(f"DROP INDEX IF EXISTS {_index_name(column)}")
