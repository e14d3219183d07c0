"""Auth abuse, beyond what tests/api already proves.

Already covered elsewhere (not repeated here): ``alg: none``, a wrong key, an expired token, garbage, on
``/v1`` and ``/api`` (test_auth.py::test_bad_tokens_are_refused); refresh-token reuse revoking the family
(test_auth.py::test_refresh_rotates_and_refuses_reuse); an access token used as a refresh token and back;
a deactivated user's tokens and sign-in on ``/api`` and ``/token`` (test_auth.py); deactivation ending every
session and API key (test_user_admin_rules.py); users managing users (test_users_and_company.py); the
per-IP and per-user rate limits (test_cross_cutting.py).

Here: the same forged tokens on every surface including the console's cookie and an API-key header,
a deactivated user on ``/v1`` and the console, a user or manager raising their own role on every route that
sets a role, 429 with Retry-After on all three surfaces, and an inbound provider webhook under a burst.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx2
import jwt
import pytest
from fastapi import FastAPI
from temporalio.testing import WorkflowEnvironment

from api.console.session import ACCESS_COOKIE, CSRF_COOKIE, CSRF_HEADER
from api.main import create_app
from core.config import Settings
from tests.conftest import Account, register

PROTECTED = ("/v1/users/me", "/api/users/me", "/v1/leads", "/api/lead-nurturing/leads")


def _claims(account: Account, **changes: Any) -> dict[str, Any]:
    claims = {
        "sub": account.user_id,
        "cmp": account.company_id,
        "typ": "access",
        "jti": "forged",
        "exp": datetime.now(UTC) + timedelta(minutes=5),
    }
    return {**claims, **changes}


def _forgeries(settings: Settings, account: Account) -> dict[str, str]:
    key = settings.jwt_secret.get_secret_value()
    unsigned = jwt.encode(_claims(account), None, algorithm="none")
    header, payload, _ = jwt.encode(_claims(account), key, algorithm="HS256").split(".")
    return {
        "alg none": unsigned,
        "alg None, signature kept": ".".join([unsigned.split(".")[0], payload, "c2lnbmF0dXJl"]),
        "HS512 with the right key": jwt.encode(_claims(account), key, algorithm="HS512"),
        "wrong key": jwt.encode(_claims(account), "x" * 48, algorithm="HS256"),
        "expired": jwt.encode(_claims(account, exp=datetime.now(UTC) - timedelta(seconds=1)), key, algorithm="HS256"),
        "no expiry": jwt.encode({k: v for k, v in _claims(account).items() if k != "exp"}, key, algorithm="HS256"),
        "refresh type": jwt.encode(_claims(account, typ="refresh"), key, algorithm="HS256"),
        "payload swapped": ".".join([header, payload.replace(payload[:4], "eyJz"), "AAAA"]),
        "empty signature": f"{header}.{payload}.",
    }


async def test_forged_tokens_are_refused_on_every_surface(
    client: httpx2.AsyncClient, owner: Account, settings: Settings
) -> None:
    for name, token in _forgeries(settings, owner).items():
        for path in PROTECTED:
            response = await client.get(path, headers={"Authorization": f"Bearer {token}"})
            assert response.status_code == 401, (name, path, response.text)
        as_key = await client.get("/v1/leads", headers={"X-API-Key": token})
        assert as_key.status_code == 401, (name, as_key.text)
        console = await client.get("/app/leads", headers={"Cookie": f"{ACCESS_COOKIE}={token}"})
        assert console.status_code == 303 and console.headers["location"].startswith("/app/login"), name
    # Control: the same claims, correctly signed, are accepted everywhere.
    valid = jwt.encode(_claims(owner), settings.jwt_secret.get_secret_value(), algorithm="HS256")
    for path in PROTECTED:
        assert (await client.get(path, headers={"Authorization": f"Bearer {valid}"})).status_code == 200
    assert (await client.get("/app/leads", headers={"Cookie": f"{ACCESS_COOKIE}={valid}"})).status_code == 200


async def _member(client: httpx2.AsyncClient, admin: Account, role: str) -> tuple[str, dict[str, str], str]:
    email = f"{role}-member@example.com"
    created = await client.post(
        "/api/users",
        headers=admin.headers,
        json={"email": email, "password": "member password", "full_name": role.title(), "role": role},
    )
    assert created.status_code == 201, created.text
    token = (await client.post("/token", json={"username": email, "password": "member password"})).json()
    return created.json()["id"], {"Authorization": f"Bearer {token['access_token']}"}, token["access_token"]


async def test_a_deactivated_user_is_out_of_v1_and_the_console(client: httpx2.AsyncClient, owner: Account) -> None:
    user_id, headers, token = await _member(client, owner, "user")
    cookie = {"Cookie": f"{ACCESS_COOKIE}={token}"}
    assert (await client.get("/v1/leads", headers=headers)).status_code == 200
    assert (await client.get("/app/leads", headers=cookie)).status_code == 200
    assert (await client.put(f"/api/users/{user_id}", headers=owner.headers, json={"is_active": False})).is_success
    assert (await client.get("/v1/leads", headers=headers)).status_code == 401
    refused = await client.post(
        "/v1/auth/login", json={"email": "user-member@example.com", "password": "member password"}
    )
    assert refused.status_code == 401
    console = await client.get("/app/leads", headers=cookie)
    assert console.status_code == 303 and console.headers["location"].startswith("/app/login")


@pytest.mark.parametrize("role", ["user", "manager"])
async def test_nobody_raises_their_own_role_on_any_surface(
    client: httpx2.AsyncClient, owner: Account, role: str
) -> None:
    user_id, headers, token = await _member(client, owner, role)
    own = user_id.replace("user-", "usr_")
    attempts = [
        ("PATCH", "/v1/users/me", {"role": "admin"}),
        ("PUT", f"/api/users/{user_id}", {"role": "admin"}),
        ("PUT", f"/api/users/{own}", {"role": "admin", "is_active": True}),
        ("POST", "/api/users", {"email": "sock@example.com", "password": "sock puppet", "role": "admin"}),
    ]
    for method, path, body in attempts:
        response = await client.request(method, path, headers=headers, json=body)
        # 422: /v1/users/me has no role field (extra fields are refused); 403: the rest is for admins.
        assert response.status_code in (403, 422), (method, path, response.status_code, response.text)
    csrf = "c" * 32
    console = await client.post(
        f"/app/settings/users/{own}",
        headers={"Cookie": f"{ACCESS_COOKIE}={token}; {CSRF_COOKIE}={csrf}", CSRF_HEADER: csrf},
        data={"role": "admin"},
    )
    assert console.status_code == 403, console.text[:300]
    # Nothing changed: still the same role, and no new account was made.
    me = (await client.get("/v1/users/me", headers=headers)).json()
    assert me["role"] == role
    listed = (await client.get("/api/users", headers=owner.headers)).json()
    assert sorted(user["role"] for user in listed["items"]) == sorted(["admin", role])


async def _limited_app(settings: Settings, temporal_dev: WorkflowEnvironment, per_minute: int) -> FastAPI:
    return create_app(settings.model_copy(update={"rate_limit_per_ip_minute": per_minute}), temporal_dev.client)


async def test_over_the_rate_limit_every_surface_answers_429_with_retry_after(
    settings: Settings, temporal_dev: WorkflowEnvironment
) -> None:
    app = await _limited_app(settings, temporal_dev, 3)
    async with (
        app.router.lifespan_context(app),
        httpx2.AsyncClient(transport=httpx2.ASGITransport(app=app), base_url="https://t") as client,
    ):
        for _ in range(3):
            await client.get("/v1/users/me")
        answers = {
            "v1": await client.get("/v1/users/me"),
            "api": await client.get("/api/users/me"),
            "token": await client.post("/token", json={"username": "a@example.com", "password": "x"}),
            "console": await client.get("/app/leads"),
        }
        for surface, answer in answers.items():
            assert answer.status_code == 429, (surface, answer.text[:200])
            assert int(answer.headers["retry-after"]) >= 1, surface
            assert answer.headers["x-ratelimit-remaining"] == "0", surface
        assert answers["v1"].json()["error"] == "rate_limit_exceeded"
        assert answers["api"].json()["detail"].startswith("Too many requests")
        assert "text/html" in answers["console"].headers["content-type"]


async def test_an_inbound_webhook_takes_a_burst_from_one_sender(
    settings: Settings, temporal_dev: WorkflowEnvironment
) -> None:
    """A provider relays every reply from its few addresses: 40 in a row from one address, with the per-IP
    budget at 5, are all taken and recorded, while that address is throttled everywhere else."""
    app = await _limited_app(settings, temporal_dev, 5)
    async with (
        app.router.lifespan_context(app),
        httpx2.AsyncClient(transport=httpx2.ASGITransport(app=app), base_url="http://t") as client,
    ):
        owner = await register(client, "Burst Inc")
        lead = await client.post("/v1/leads", headers=owner.headers, json={"name": "Rae", "email": "rae@example.com"})
        urls = (await client.get("/api/lead-nurturing/inbound-webhooks", headers=owner.headers)).json()
        email_path = urls["email_url"].split("8000", 1)[-1]
        spent = [(await client.get("/v1/users/me", headers=owner.headers)).status_code for _ in range(3)]
        assert spent[-1] == 429, spent  # this address's budget is spent
        statuses = []
        for index in range(40):
            reply = {
                "from": "Rae <rae@example.com>",
                "subject": f"Re: hello ({index})",
                "text": f"reply number {index}",
                "headers": {"Message-ID": f"<reply-{index}@example.com>"},
            }
            statuses.append((await client.post(email_path, json=reply)).status_code)
        assert statuses == [200] * 40
        # Read from another address, whose budget is untouched.
        reader = httpx2.AsyncClient(
            transport=httpx2.ASGITransport(app=app, client=("10.0.0.9", 1)), base_url="http://t"
        )
        async with reader:
            interactions = await reader.get(
                f"/v1/leads/{lead.json()['id']}/interactions", headers=owner.headers, params={"per_page": 100}
            )
    inbound = [item for item in interactions.json()["data"] if item["direction"] == "inbound"]
    assert len(inbound) == 40
