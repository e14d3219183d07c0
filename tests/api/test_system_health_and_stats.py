"""``GET /api/system/health`` (short for anyone, full for admins) and ``GET /api/system/stats`` with API call counts."""

from __future__ import annotations

import asyncio
import shutil
from datetime import timedelta
from pathlib import Path

import httpx2
import pytest
from fastapi import FastAPI
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.testing import WorkflowEnvironment

from api.main import create_app
from core import security
from core.config import Settings
from core.ids import new_id
from db.base import utcnow
from db.models import ApiCallCount, ApiKey, Content, Customer, Lead, Referral, Review, User
from db.session import transaction
from services.api_usage import hour_of
from services.health import VERSION
from services.system_stats import human_size
from tests.conftest import Account, register

HEALTH = "/api/system/health"
STATS = "/api/system/stats"


async def _non_admin(client: httpx2.AsyncClient, db: async_sessionmaker[AsyncSession]) -> Account:
    account = await register(client, company="Initech")
    async with transaction(db) as session:
        await session.execute(update(User).where(User.id == account.user_id).values(role="user"))
    return account


# ---------------------------------------------------------------- health


async def test_health_without_sign_in_is_short(
    client: httpx2.AsyncClient, db: async_sessionmaker[AsyncSession]
) -> None:
    short = {"status": "degraded", "version": VERSION}  # no worker polls this test's queues
    anonymous = await client.get(HEALTH)
    assert anonymous.status_code == 200 and anonymous.json() == short
    bad_token = await client.get(HEALTH, headers={"Authorization": "Bearer not-a-token"})
    assert bad_token.status_code == 200 and bad_token.json() == short
    user = await _non_admin(client, db)
    assert (await client.get(HEALTH, headers=user.headers)).json() == short


async def test_health_without_a_worker_is_degraded_and_names_the_queues(
    client: httpx2.AsyncClient, owner: Account, settings: Settings
) -> None:
    response = await client.get(HEALTH, headers=owner.headers)
    assert response.status_code == 200
    main, llm = f"{settings.task_queue_prefix}-main", f"{settings.task_queue_prefix}-llm"
    assert response.json() == {
        "status": "degraded",
        "version": VERSION,
        "database": "connected",
        "api": "operational",
        "temporal": "connected",
        "workers": "unavailable",
        "task_queues": [{"name": main, "pollers": 0}, {"name": llm, "pollers": 0}],
        "services": {"openai": "recorded", "email": "recorded", "sms": "recorded"},
        "issues": [f"no worker polls task queue {main}", f"no worker polls task queue {llm}"],
    }
    assert settings.temporal_address not in response.text and settings.database_url not in response.text


@pytest.mark.usefixtures("worker")
async def test_health_with_a_worker_is_healthy(client: httpx2.AsyncClient, owner: Account) -> None:
    report: dict[str, object] = {}
    for _ in range(50):  # a new worker's first polls reach the server within moments
        report = (await client.get(HEALTH, headers=owner.headers)).json()
        if report["status"] == "healthy":
            break
        await asyncio.sleep(0.2)
    assert report["status"] == "healthy" and report["workers"] == "operational" and report["issues"] == []
    assert all(queue["pollers"] >= 1 for queue in report["task_queues"])  # type: ignore[attr-defined]
    assert (await client.get(HEALTH)).json() == {"status": "healthy", "version": VERSION}


async def test_health_is_503_when_the_database_is_down(
    tmp_path: Path, temporal_dev: WorkflowEnvironment, task_queue_prefix: str
) -> None:
    settings = Settings(
        environment="test",
        data_dir=tmp_path,
        database_url=f"sqlite:///{tmp_path / 'missing' / 'bas.db'}",  # its folder does not exist
        task_queue_prefix=task_queue_prefix,
    )
    token = security.encode_token(
        settings, security.create_token(settings, user_id="usr_x", company_id="cmp_x", kind="access")
    )
    app = create_app(settings, temporal_client=temporal_dev.client)
    async with (
        app.router.lifespan_context(app),
        httpx2.AsyncClient(transport=httpx2.ASGITransport(app=app), base_url="http://t") as client,
    ):
        for headers in ({}, {"Authorization": f"Bearer {token}"}):
            response = await client.get(HEALTH, headers=headers)
            assert response.status_code == 503
            assert response.json() == {"status": "unhealthy", "version": VERSION}


# ---------------------------------------------------------------- stats


def test_human_sizes() -> None:
    assert [human_size(size) for size in (0, 1023, 1024, 1536, 1288490189, 10 * 1024**3, 3 * 1024**6)] == [
        "0 B",
        "1023 B",
        "1 KB",
        "1.5 KB",
        "1.2 GB",
        "10 GB",
        "3072 PB",
    ]


async def _seed_records(db: async_sessionmaker[AsyncSession], company_id: str) -> None:
    """2 users, 3 leads, 2 customers, 1 review, 1 referral, 2 content items; 100 calls three days ago."""
    async with transaction(db) as session:
        session.add(
            User(
                id=new_id("usr"),
                company_id=company_id,
                email=f"second-{company_id}@example.com",
                username=f"second-{company_id}",
                password_hash="x",
            )
        )
        session.add_all(Lead(id=new_id("lead"), company_id=company_id, name=f"L{n}") for n in range(3))
        customers = [Customer(id=new_id("cust"), company_id=company_id, name=f"C{n}") for n in range(2)]
        session.add_all(customers)
        session.add_all(Content(id=new_id("cont"), company_id=company_id, type="blog") for _ in range(2))
        await session.flush()
        session.add(Review(id=new_id("rev"), company_id=company_id, customer_id=customers[0].id))
        session.add(
            Referral(id=new_id("ref"), company_id=company_id, customer_id=customers[0].id, code="A1", offer="x")
        )
        session.add(ApiCallCount(company_id=company_id, hour=hour_of(utcnow()) - timedelta(days=3), calls=100))


async def _api_key(db: async_sessionmaker[AsyncSession], account: Account) -> str:
    prefix, key = security.new_api_key("full")
    async with transaction(db) as session:
        session.add(
            ApiKey(
                id=new_id("key"),
                company_id=account.company_id,
                created_by=account.user_id,
                name="integration",
                prefix=prefix,
                secret_hash=security.api_key_digest(key),
                scope="full",
            )
        )
    return key


async def _stored_calls(db: async_sessionmaker[AsyncSession], company_id: str) -> int:
    async with db() as session:
        total = await session.scalar(select(func.sum(ApiCallCount.calls)).where(ApiCallCount.company_id == company_id))
    return int(total or 0)


async def test_stats_count_records_and_calls(
    app: FastAPI, client: httpx2.AsyncClient, owner: Account, db: async_sessionmaker[AsyncSession]
) -> None:
    other = await register(client, company="Globex")
    await _seed_records(db, owner.company_id)
    await client.get("/v1/users/me", headers=other.headers)  # another company's call

    first = await client.get(STATS, headers=owner.headers)
    assert first.status_code == 200, first.text
    body = first.json()
    assert {
        key: body[key] for key in ("users", "companies", "leads", "customers", "reviews", "referrals", "content")
    } == {
        "users": 2,
        "companies": 1,
        "leads": 3,
        "customers": 2,
        "reviews": 1,
        "referrals": 1,
        "content": 2,
    }
    # Only the old row: this call is counted once it has been answered.
    assert body["api_calls"] == {"total": 100, "last_24h": 0}

    key = await _api_key(db, owner)
    for _ in range(3):
        assert (await client.get("/v1/users/me", headers=owner.headers)).status_code == 200
    assert (await client.get("/v1/leads", headers={"X-API-Key": key})).status_code == 200
    assert (await client.get("/v1/leads", headers={"Authorization": f"Bearer {key}"})).status_code == 200
    # Not counted: no credentials, a wrong key secret (401), an expired-looking token (401).
    assert (await client.get("/v1/users/me")).status_code == 401
    assert (await client.get("/v1/leads", headers={"X-API-Key": key[:-4] + "xxxx"})).status_code == 401
    assert (await client.get("/v1/users/me", headers={"Authorization": "Bearer nope"})).status_code == 401

    # first stats + 3 tokens + 2 keys, not yet flushed: the figure is exact all the same.
    second = (await client.get(STATS, headers=owner.headers)).json()
    assert second["api_calls"] == {"total": 106, "last_24h": 6}

    await app.state.api_usage.flush(app.state.sessions)
    assert await _stored_calls(db, owner.company_id) == 107  # the second stats call too
    assert await _stored_calls(db, other.company_id) == 1
    third = (await client.get(STATS, headers=owner.headers)).json()
    assert third["api_calls"] == {"total": 107, "last_24h": 7}


async def test_counts_are_stored_at_shutdown(
    settings: Settings, temporal_dev: WorkflowEnvironment, owner: Account, db: async_sessionmaker[AsyncSession]
) -> None:
    second_process = create_app(settings, temporal_client=temporal_dev.client)
    second_process.state.api_usage.flush_interval_seconds = 3600  # only the shutdown flushes
    async with (
        second_process.router.lifespan_context(second_process),
        httpx2.AsyncClient(transport=httpx2.ASGITransport(app=second_process), base_url="http://t") as client,
    ):
        for _ in range(2):
            assert (await client.get("/api/users/me", headers=owner.headers)).status_code == 200
        assert await _stored_calls(db, owner.company_id) == 0  # still in memory
    assert await _stored_calls(db, owner.company_id) == 2


async def test_stats_storage(client: httpx2.AsyncClient, owner: Account, settings: Settings) -> None:
    backups = settings.data_dir / "backups" / "2026"
    backups.mkdir(parents=True)
    (backups / "one.tar.gz").write_bytes(b"x" * 4096)
    storage = (await client.get(STATS, headers=owner.headers)).json()["storage"]
    assert storage["total_bytes"] == shutil.disk_usage(settings.data_dir).total
    assert storage["total"] == human_size(storage["total_bytes"])
    assert storage["used"] == human_size(storage["used_bytes"])
    database = settings.data_dir / "bas.db"
    if database.exists():  # SQLite: at least the file itself and the backup
        assert storage["used_bytes"] >= database.stat().st_size + 4096
    else:  # PostgreSQL: a database is several MB before any row
        assert storage["used_bytes"] > 1024 * 1024 + 4096


async def test_stats_need_an_admin(client: httpx2.AsyncClient, db: async_sessionmaker[AsyncSession]) -> None:
    anonymous = await client.get(STATS)
    assert anonymous.status_code == 401 and "detail" in anonymous.json()
    user = await _non_admin(client, db)
    forbidden = await client.get(STATS, headers=user.headers)
    assert forbidden.status_code == 403 and "detail" in forbidden.json()
