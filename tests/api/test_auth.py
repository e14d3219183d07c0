"""Sign-up and sign-in on both surfaces, and every way a token can be wrong."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import httpx2
import jwt

from core.config import Settings
from tests.conftest import Account, register


async def test_register_creates_company_and_admin(client: httpx2.AsyncClient) -> None:
    account = await register(client, company="Acme Inc", email="Jane@Example.com")
    me = (await client.get("/v1/users/me", headers=account.headers)).json()
    assert me["id"] == account.user_id and me["id"].startswith("usr_")
    assert me["email"] == "jane@example.com"
    assert me["role"] == "admin"
    company = (await client.get("/v1/companies/current", headers=account.headers)).json()
    assert company["id"] == account.company_id and company["id"].startswith("cmp_")
    assert company["name"] == "Acme Inc"


async def test_register_twice_is_a_conflict(client: httpx2.AsyncClient) -> None:
    await register(client, email="dup@example.com")
    response = await client.post(
        "/v1/auth/register",
        json={"email": "DUP@example.com", "password": "another password", "name": "X", "company_name": "Other"},
    )
    assert response.status_code == 409
    assert response.json()["error"] == "conflict"


async def test_register_validation_names_each_field(client: httpx2.AsyncClient) -> None:
    response = await client.post(
        "/v1/auth/register", json={"email": "not-an-email", "password": "short", "company_name": "Acme"}
    )
    assert response.status_code == 422
    body = response.json()
    assert body["error"] == "validation_error"
    assert set(body["details"]) == {"email", "password", "name"}


async def test_login_returns_tokens_usable_on_both_surfaces(client: httpx2.AsyncClient, owner: Account) -> None:
    response = await client.post("/v1/auth/login", json={"email": owner.email, "password": owner.password})
    assert response.status_code == 200
    token = response.json()["token"]
    headers = {"Authorization": f"Bearer {token}"}
    assert (await client.get("/v1/users/me", headers=headers)).json()["id"] == owner.user_id
    api_me = (await client.get("/api/users/me", headers=headers)).json()
    assert api_me["id"] == owner.user_id.replace("usr_", "user-")
    assert api_me["company_id"] == owner.company_id.replace("cmp_", "company-")


async def test_token_endpoint_accepts_json_and_oauth2_form(client: httpx2.AsyncClient, owner: Account) -> None:
    as_json = await client.post("/token", json={"username": owner.email, "password": owner.password})
    as_form = await client.post("/token", data={"username": owner.email, "password": owner.password})
    for response in (as_json, as_form):
        assert response.status_code == 200, response.text
        assert response.json()["token_type"] == "bearer"
        token = response.json()["access_token"]
        me = await client.get("/v1/users/me", headers={"Authorization": f"Bearer {token}"})
        assert me.status_code == 200


async def test_wrong_password_and_unknown_user_read_the_same(client: httpx2.AsyncClient, owner: Account) -> None:
    wrong = await client.post("/token", json={"username": owner.email, "password": "not it"})
    unknown = await client.post("/token", json={"username": "nobody@example.com", "password": "not it"})
    assert wrong.status_code == unknown.status_code == 401
    assert wrong.json() == unknown.json() == {"detail": "Incorrect email or password"}
    v1_wrong = await client.post("/v1/auth/login", json={"email": owner.email, "password": "not it"})
    assert v1_wrong.status_code == 401
    assert v1_wrong.json()["error"] == "authentication_error"


async def test_login_costs_the_same_for_unknown_accounts(client: httpx2.AsyncClient, owner: Account) -> None:
    """Both paths run argon2 once; a missing account must not answer measurably faster."""

    async def median_seconds(username: str) -> float:
        samples = []
        for _ in range(5):
            started = time.perf_counter()
            await client.post("/token", json={"username": username, "password": "not it"})
            samples.append(time.perf_counter() - started)
        return sorted(samples)[2]

    known, unknown = await median_seconds(owner.email), await median_seconds("ghost@example.com")
    # Without the dummy hash an unknown user answers ~10x faster; allow noise, not that.
    assert unknown > known * 0.5, (known, unknown)


async def test_refresh_rotates_and_refuses_reuse(client: httpx2.AsyncClient, owner: Account) -> None:
    first = await client.post("/v1/auth/refresh", json={"refresh_token": owner.refresh_token})
    assert first.status_code == 200
    rotated = first.json()
    assert rotated["refresh_token"] != owner.refresh_token
    me = await client.get("/v1/users/me", headers={"Authorization": f"Bearer {rotated['token']}"})
    assert me.status_code == 200

    reused = await client.post("/v1/auth/refresh", json={"refresh_token": owner.refresh_token})
    assert reused.status_code == 401
    # Reuse revokes the whole family: the legitimately rotated token is dead too.
    after_theft = await client.post("/v1/auth/refresh", json={"refresh_token": rotated["refresh_token"]})
    assert after_theft.status_code == 401


async def test_access_token_is_not_a_refresh_token(client: httpx2.AsyncClient, owner: Account) -> None:
    response = await client.post("/v1/auth/refresh", json={"refresh_token": owner.token})
    assert response.status_code == 401
    as_bearer = await client.get("/v1/users/me", headers={"Authorization": f"Bearer {owner.refresh_token}"})
    assert as_bearer.status_code == 401


def _forge(
    settings: Settings,
    account: Account,
    *,
    key: str | None = None,
    expires_in: timedelta = timedelta(minutes=5),
    algorithm: str = "HS256",
) -> str:
    claims = {
        "sub": account.user_id,
        "cmp": account.company_id,
        "typ": "access",
        "jti": "forged",
        "exp": datetime.now(UTC) + expires_in,
    }
    secret = key if key is not None else settings.jwt_secret.get_secret_value()
    return jwt.encode(claims, secret, algorithm=algorithm)


async def test_bad_tokens_are_refused(client: httpx2.AsyncClient, owner: Account, settings: Settings) -> None:
    expired = _forge(settings, owner, expires_in=timedelta(seconds=-5))
    other_key = _forge(settings, owner, key="another-secret-of-sufficient-length-123456")
    unsigned = jwt.encode(
        {
            "sub": owner.user_id,
            "cmp": owner.company_id,
            "typ": "access",
            "jti": "x",
            "exp": datetime.now(UTC) + timedelta(minutes=5),
        },
        None,
        algorithm="none",
    )
    for token in (expired, other_key, unsigned, "not.a.jwt", ""):
        for path in ("/v1/users/me", "/api/users/me"):
            response = await client.get(path, headers={"Authorization": f"Bearer {token}"})
            assert response.status_code == 401, (token, path, response.text)
    # Control: a correctly signed, unexpired token built the same way is accepted.
    valid = await client.get("/v1/users/me", headers={"Authorization": f"Bearer {_forge(settings, owner)}"})
    assert valid.status_code == 200


async def test_missing_token_is_401_in_each_surface_format(client: httpx2.AsyncClient) -> None:
    v1 = await client.get("/v1/users/me")
    api = await client.get("/api/users/me")
    assert v1.status_code == api.status_code == 401
    assert v1.json() == {"error": "authentication_error", "message": "Not authenticated"}
    assert api.json() == {"detail": "Not authenticated"}
    assert api.headers["www-authenticate"] == "Bearer"


async def test_deactivated_user_cannot_sign_in_or_use_old_tokens(client: httpx2.AsyncClient, owner: Account) -> None:
    created = await client.post(
        "/api/users",
        headers=owner.headers,
        json={"email": "staff@example.com", "password": "staff password", "full_name": "Staff"},
    )
    staff_id = created.json()["id"]
    login = await client.post("/token", json={"username": "staff@example.com", "password": "staff password"})
    staff_headers = {"Authorization": f"Bearer {login.json()['access_token']}"}
    assert (await client.get("/api/users/me", headers=staff_headers)).status_code == 200

    await client.put(f"/api/users/{staff_id}", headers=owner.headers, json={"is_active": False})
    assert (await client.get("/api/users/me", headers=staff_headers)).status_code == 401
    relogin = await client.post("/token", json={"username": "staff@example.com", "password": "staff password"})
    assert relogin.status_code == 401
