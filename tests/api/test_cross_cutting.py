"""Behaviour every router inherits: error formats, request ids, rate limits, CORS, health."""

from __future__ import annotations

import gc

import httpx2
import pytest
from fastapi import FastAPI
from temporalio.testing import WorkflowEnvironment

from api.main import create_app
from core.config import Settings
from tests.conftest import Account


async def test_unexpected_errors_are_500_with_a_request_id(
    app: FastAPI, owner: Account, caplog: pytest.LogCaptureFixture
) -> None:
    @app.get("/v1/_boom")
    async def boom_v1() -> None:
        raise RuntimeError("kaboom")

    @app.get("/api/_boom")
    async def boom_api() -> None:
        raise RuntimeError("kaboom")

    transport = httpx2.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx2.AsyncClient(transport=transport, base_url="http://testserver") as client:
        v1 = await client.get("/v1/_boom")
        api = await client.get("/api/_boom", headers={"X-Request-ID": "req_from_caller"})
    assert v1.status_code == api.status_code == 500
    body = v1.json()
    assert body["error"] == "server_error"
    assert body["message"] == "An unexpected error occurred"
    assert body["request_id"] == v1.headers["x-request-id"] and body["request_id"].startswith("req_")
    assert "kaboom" not in v1.text  # internals stay in the log
    assert api.json() == {"detail": "An unexpected error occurred (request id req_from_caller)"}
    assert any("req_from_caller" in r.getMessage() and r.exc_info for r in caplog.records)


async def test_unknown_routes_and_methods_in_each_format(client: httpx2.AsyncClient) -> None:
    v1 = await client.get("/v1/nothing-here")
    api = await client.get("/api/nothing-here")
    assert v1.status_code == api.status_code == 404
    assert v1.json()["error"] == "not_found"
    assert api.json() == {"detail": "Not Found"}
    wrong_method = await client.delete("/v1/auth/login")
    assert wrong_method.status_code == 405 and wrong_method.json()["error"] == "method_not_allowed"


async def test_malformed_json_is_a_422_not_a_500(client: httpx2.AsyncClient) -> None:
    response = await client.post("/v1/auth/login", content=b"{not json", headers={"content-type": "application/json"})
    assert response.status_code == 422
    token = await client.post("/token", content=b"{not json", headers={"content-type": "application/json"})
    assert token.status_code == 422 and isinstance(token.json()["detail"], list)


async def test_every_response_carries_a_request_id(client: httpx2.AsyncClient) -> None:
    response = await client.get("/api/system/health")
    assert response.headers["x-request-id"].startswith("req_")


async def test_cors_preflight_allows_any_origin(client: httpx2.AsyncClient) -> None:
    response = await client.options(
        "/api/users/me", headers={"Origin": "https://app.example.com", "Access-Control-Request-Method": "GET"}
    )
    assert response.status_code == 200
    assert response.headers["access-control-allow-origin"] in ("*", "https://app.example.com")


async def _app_with_limits(
    settings: Settings, temporal_dev: WorkflowEnvironment, **limits: int
) -> tuple[FastAPI, Settings]:
    limited = settings.model_copy(update=limits)
    return create_app(limited, temporal_client=temporal_dev.client), limited


async def test_what_the_app_built_at_startup_is_left_out_of_garbage_collection_while_it_serves(
    settings: Settings, temporal_dev: WorkflowEnvironment
) -> None:
    # A full collection over these objects took 220 ms inside one request (bench/read_paths); frozen, it skips them.
    assert gc.get_freeze_count() == 0
    app = create_app(settings, temporal_client=temporal_dev.client)
    async with app.router.lifespan_context(app):
        assert gc.get_freeze_count() > 100_000  # modules, classes, routes, ORM and pydantic machinery
    assert gc.get_freeze_count() == 0  # back in reach of the collector once the app is done


async def test_rate_limit_per_ip(settings: Settings, temporal_dev: WorkflowEnvironment) -> None:
    app, _ = await _app_with_limits(settings, temporal_dev, rate_limit_per_ip_minute=5)
    async with (
        app.router.lifespan_context(app),
        httpx2.AsyncClient(transport=httpx2.ASGITransport(app=app), base_url="http://t") as client,
    ):
        responses = [await client.get("/api/users/me") for _ in range(6)]
        assert [r.status_code for r in responses] == [401] * 5 + [429]
        assert [r.headers["x-ratelimit-remaining"] for r in responses[:5]] == ["4", "3", "2", "1", "0"]
        assert responses[0].headers["x-ratelimit-limit"] == "5"
        limited = responses[-1]
        assert limited.json()["detail"].startswith("Too many requests")
        assert int(limited.headers["retry-after"]) >= 1
        assert int(limited.headers["x-ratelimit-reset"]) > 0
        v1 = await client.get("/v1/users/me")
        assert v1.status_code == 429 and v1.json()["error"] == "rate_limit_exceeded"
        # Health stays reachable for load balancers.
        assert (await client.get("/api/system/health")).status_code == 200


async def test_rate_limits_fail_open_when_their_storage_is_down(
    settings: Settings, temporal_dev: WorkflowEnvironment, caplog: pytest.LogCaptureFixture
) -> None:
    """Redis gone (nothing listens on port 1): requests are served unlimited and the log says so once."""
    down = settings.model_copy(update={"rate_limit_storage": "redis://127.0.0.1:1"})
    app = create_app(down, temporal_client=temporal_dev.client)
    async with (
        app.router.lifespan_context(app),
        httpx2.AsyncClient(transport=httpx2.ASGITransport(app=app), base_url="http://t") as client,
    ):
        responses = [await client.get("/api/users/me") for _ in range(3)]
    assert [r.status_code for r in responses] == [401, 401, 401]  # the route's own answer, not a 500
    assert "x-ratelimit-limit" not in responses[0].headers
    warnings = [r for r in caplog.records if "rate limits are OFF" in r.getMessage()]
    assert len(warnings) == 1 and "127.0.0.1:1" in warnings[0].getMessage()


async def test_rate_limit_per_user_spans_addresses(settings: Settings, temporal_dev: WorkflowEnvironment) -> None:
    app, _ = await _app_with_limits(settings, temporal_dev, rate_limit_per_user_hour=3)
    async with app.router.lifespan_context(app):
        first_ip = httpx2.AsyncClient(
            transport=httpx2.ASGITransport(app=app, client=("10.0.0.1", 1)), base_url="http://t"
        )
        second_ip = httpx2.AsyncClient(
            transport=httpx2.ASGITransport(app=app, client=("10.0.0.2", 1)), base_url="http://t"
        )
        async with first_ip, second_ip:
            registered = await first_ip.post(
                "/v1/auth/register",
                json={"email": "rl@example.com", "password": "password123", "name": "R", "company_name": "R"},
            )
            headers = {"Authorization": f"Bearer {registered.json()['token']}"}
            codes = [
                (await client.get("/v1/users/me", headers=headers)).status_code
                for client in (first_ip, second_ip, first_ip, second_ip)
            ]
            assert codes == [200, 200, 200, 429]
            # Another user from the same address is not affected.
            assert (await second_ip.get("/v1/users/me")).status_code == 401


@pytest.mark.usefixtures("worker")
async def test_health_with_a_worker_and_the_end_to_end_check(
    client: httpx2.AsyncClient, owner: Account, settings: Settings
) -> None:
    report = (await client.get("/api/system/health", headers=owner.headers)).json()
    assert report["status"] == "healthy" and report["workers"] == "operational"
    assert report["task_queues"][0]["pollers"] >= 1

    check = await client.post("/api/system/check", headers=owner.headers)
    assert check.status_code == 200, check.text
    body = check.json()
    assert body["worker_identity"].startswith("test-worker")
    assert body["workflow_id"] == f"system-check/{body['check_id']}"
    assert body["temporal_ui_url"].endswith("system-check%2F" + body["check_id"])
    # The activity really wrote the row: the database the API reads has it.
    from sqlalchemy import select

    from db.models import SystemCheck
    from db.session import create_engine, session_factory

    engine = create_engine(settings)
    async with session_factory(engine)() as session:
        row = await session.scalar(select(SystemCheck).where(SystemCheck.id == body["check_id"]))
    await engine.dispose()
    assert row is not None and row.requested_by == owner.user_id


async def test_system_check_without_worker_times_out_cleanly(
    client: httpx2.AsyncClient, owner: Account, monkeypatch: pytest.MonkeyPatch
) -> None:
    from services import health

    original = health.run_system_check

    async def quick(*args: object, **kwargs: object) -> object:
        return await original(*args, wait_seconds=2.0)  # type: ignore[arg-type,misc]

    monkeypatch.setattr(health, "run_system_check", quick)
    response = await client.post("/api/system/check", headers=owner.headers)
    assert response.status_code == 503
    assert "worker" in response.json()["detail"]
