"""Fault tests break real parts on purpose; each test starts the ones it breaks. Providers are on loopback.

The heavy ones (several processes, a server stopped mid-flight) run on PostgreSQL only, the database several
workers share in production: a module asks for it with ``database_url = on_postgresql``.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from core.config import Settings
from tests.support.faults import FaultySmtp
from tests.support.postgres import PostgresServer


@pytest.fixture
def postgres_database_url(postgres_server: tuple[PostgresServer, str]) -> str:
    server, template = postgres_server
    return str(server.url(server.create_database(template=template)))


@pytest.fixture
def smtp() -> Iterator[FaultySmtp]:
    server = FaultySmtp().start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def settings(settings: Settings, smtp: FaultySmtp) -> Settings:
    return settings.model_copy(
        update={
            "smtp_host": smtp.host,
            "smtp_port": smtp.port,
            "smtp_starttls": False,
            "smtp_timeout_seconds": 10.0,
            "email_from": "Acme Inc <hello@acme.example.com>",
            "public_base_url": "http://testserver",
        }
    )
