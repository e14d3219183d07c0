"""Migration 0006 on a PostgreSQL role that may not create extensions: it migrates to head, warns,
and search still answers (unindexed)."""

from __future__ import annotations

import uuid

import psycopg
import pytest

from core.config import Settings
from db.migrate import upgrade_to_head
from tests.support.postgres import PostgresServer

TRIGRAM_INDEXES = "SELECT indexname FROM pg_indexes WHERE tablename = 'leads' AND indexname LIKE '%trgm' ORDER BY 1"


def test_a_role_without_create_on_the_database_gets_a_warning_and_no_trigram_index(
    postgres_server: tuple[PostgresServer, str], caplog: pytest.LogCaptureFixture
) -> None:
    server, _ = postgres_server
    database, role = server.create_database(), f"app_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(server.url("postgres"), autocommit=True) as admin:
        admin.execute(f"CREATE ROLE {role} LOGIN")
    with psycopg.connect(server.url(database), autocommit=True) as admin:
        admin.execute(f"GRANT ALL ON SCHEMA public TO {role}")  # tables, but not CREATE on the database
    app_url = server.url(database).replace(f"//{server.user}@", f"//{role}@")

    upgrade_to_head(Settings(environment="test", database_url=app_url))

    warning = next(record.getMessage() for record in caplog.records if "pg_trgm" in record.getMessage())
    assert "CREATE EXTENSION pg_trgm;" in warning
    assert "CREATE INDEX ix_leads_name_trgm ON leads USING gin (name gin_trgm_ops);" in warning
    with psycopg.connect(app_url) as connection:
        assert connection.execute(TRIGRAM_INDEXES).fetchall() == []
        searched = connection.execute("SELECT count(*) FROM leads WHERE name ILIKE '%x%' OR email ILIKE '%x%'")
        assert searched.fetchone() == (0,)  # unindexed, but it answers
    # What the warning tells an administrator to run makes the schema the models describe.
    with psycopg.connect(server.url(database), autocommit=True) as admin:
        admin.execute(warning.split("run in this database: ", 1)[1])
    with psycopg.connect(app_url) as connection:
        assert [row[0] for row in connection.execute(TRIGRAM_INDEXES)] == ["ix_leads_email_trgm", "ix_leads_name_trgm"]


def test_the_migrating_role_creates_the_extension_when_it_may(postgres_server: tuple[PostgresServer, str]) -> None:
    server, template = postgres_server  # migrated by the database's owner, as the tests and benchmarks do
    with psycopg.connect(server.url(template)) as connection:
        assert connection.execute("SELECT 1 FROM pg_extension WHERE extname = 'pg_trgm'").fetchone() == (1,)
        assert [row[0] for row in connection.execute(TRIGRAM_INDEXES)] == ["ix_leads_email_trgm", "ix_leads_name_trgm"]
