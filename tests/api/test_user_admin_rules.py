"""User management rules: a company always keeps an active admin, deactivation ends sessions, changes are audited."""

from __future__ import annotations

from typing import Any

import httpx2
import pytest
from fastapi import FastAPI
from sqlalchemy import select

from db.models import AuditEntry, RefreshToken, User
from schemas.users import UserUpdate
from services import users
from services.errors import Conflict
from tests.api.lead_support import sessions
from tests.api.test_api_keys import bearer, create_key
from tests.conftest import Account

PASSWORD = "password123"


async def _add_user(client: httpx2.AsyncClient, admin: Account, email: str, role: str = "user") -> dict[str, Any]:
    body = {"email": email, "password": PASSWORD, "full_name": "Sam Doe", "role": role}
    created = await client.post("/api/users", headers=admin.headers, json=body)
    assert created.status_code == 201, created.text
    user: dict[str, Any] = created.json()
    return user


async def _sign_in(client: httpx2.AsyncClient, email: str) -> dict[str, Any]:
    response = await client.post("/v1/auth/login", json={"email": email, "password": PASSWORD})
    assert response.status_code == 200, response.text
    tokens: dict[str, Any] = response.json()
    return tokens


def _headers(tokens: dict[str, Any]) -> dict[str, str]:
    return {"Authorization": f"Bearer {tokens['token']}"}


def _canonical(api_id: str) -> str:
    return api_id.replace("user-", "usr_")


async def _stale_admin(app: FastAPI, user_id: str) -> User:
    """The user as a request that authenticated them a moment ago holds them (before a concurrent change)."""
    async with sessions(app)() as session:
        user = await session.get(User, user_id)
        assert user is not None
        session.expunge(user)
    return user


async def test_the_last_active_admin_is_kept_whoever_asks(
    client: httpx2.AsyncClient, owner: Account, app: FastAPI
) -> None:
    second = await _add_user(client, owner, "second@example.com", role="admin")
    # Two admins: either may demote the other, then the one left is the last.
    second_as_seen = await _stale_admin(app, _canonical(second["id"]))
    demoted = await client.put(f"/api/users/{second['id']}", headers=owner.headers, json={"role": "manager"})
    assert demoted.status_code == 200 and demoted.json()["role"] == "manager"

    # The second admin's request was already past its role check when the first demotion committed; the rule
    # counts the active admins other than the target at write time, so it still refuses to leave none.
    for change, doing in (({"role": "user"}, "demote"), ({"is_active": False}, "deactivate")):
        async with sessions(app)() as session:
            with pytest.raises(Conflict, match=f"Cannot {doing} the last active admin"):
                await users.update(session, second_as_seen, owner.user_id, UserUpdate.model_validate(change))
    async with sessions(app)() as session:
        with pytest.raises(Conflict, match="Cannot delete the last active admin"):
            await users.delete(session, second_as_seen, owner.user_id)

    # Through the API the owner cannot step down either (the older self rule answers first).
    assert (
        await client.put(f"/api/users/{owner.user_id}", headers=owner.headers, json={"role": "user"})
    ).status_code == 422
    assert (await client.delete(f"/api/users/{owner.user_id}", headers=owner.headers)).status_code == 409
    me = await client.get("/api/users/me", headers=owner.headers)
    assert me.json()["role"] == "admin" and me.json()["is_active"] is True


async def test_an_inactive_admin_does_not_count_and_other_admins_can_go(
    client: httpx2.AsyncClient, owner: Account, app: FastAPI
) -> None:
    second = await _add_user(client, owner, "second@example.com", role="admin")
    third = await _add_user(client, owner, "third@example.com", role="admin")
    assert (
        await client.put(f"/api/users/{third['id']}", headers=owner.headers, json={"is_active": False})
    ).status_code == 200
    assert (await client.delete(f"/api/users/{third['id']}", headers=owner.headers)).status_code == 200
    second_as_seen = await _stale_admin(app, _canonical(second["id"]))
    assert (await client.delete(f"/api/users/{second['id']}", headers=owner.headers)).status_code == 200
    async with sessions(app)() as session:
        with pytest.raises(Conflict) as refused:
            await users.update(session, second_as_seen, owner.user_id, UserUpdate(is_active=False))
    assert refused.value.status_code == 409
    listed = (await client.get("/api/users", headers=owner.headers, params={"role": "admin"})).json()
    assert [user["id"] for user in listed["items"]] == [owner.user_id.replace("usr_", "user-")]


async def test_deactivation_ends_every_session_and_key_of_the_user(
    client: httpx2.AsyncClient, owner: Account, app: FastAPI
) -> None:
    staff = await _add_user(client, owner, "staff@example.com", role="admin")
    tokens = await _sign_in(client, "staff@example.com")
    other_device = await _sign_in(client, "staff@example.com")
    staff_account = Account(
        _canonical(staff["id"]), owner.company_id, "staff@example.com", PASSWORD, tokens["token"], ""
    )
    key = await create_key(client, staff_account)
    assert (await client.get("/api/users/me", headers=_headers(tokens))).status_code == 200
    assert (
        await client.post("/v1/leads", headers=bearer(key), json={"name": "A", "email": "a@example.com"})
    ).status_code == 201

    off = await client.put(f"/api/users/{staff['id']}", headers=owner.headers, json={"is_active": False})
    assert off.status_code == 200 and off.json()["is_active"] is False

    # The access token issued before fails on its very next request: every request checks the account.
    for path in ("/api/users/me", "/v1/users/me", "/v1/leads"):
        assert (await client.get(path, headers=_headers(tokens))).status_code == 401, path
    for refresh_token in (tokens["refresh_token"], other_device["refresh_token"]):
        refreshed = await client.post("/v1/auth/refresh", json={"refresh_token": refresh_token})
        assert refreshed.status_code == 401
    assert (
        await client.post("/v1/auth/login", json={"email": "staff@example.com", "password": PASSWORD})
    ).status_code == 401
    assert (
        await client.post("/v1/leads", headers=bearer(key), json={"name": "B", "email": "b@example.com"})
    ).status_code == 401
    async with sessions(app)() as session:
        rows = list(await session.scalars(select(RefreshToken).where(RefreshToken.user_id == _canonical(staff["id"]))))
    assert len(rows) == 2 and all(row.revoked_at is not None for row in rows)  # one per sign-in

    # Back on: a new sign-in works; the old tokens stay dead.
    assert (
        await client.put(f"/api/users/{staff['id']}", headers=owner.headers, json={"is_active": True})
    ).status_code == 200
    fresh = await _sign_in(client, "staff@example.com")
    assert (await client.get("/api/users/me", headers=_headers(fresh))).status_code == 200
    assert (await client.post("/v1/auth/refresh", json={"refresh_token": tokens["refresh_token"]})).status_code == 401


async def test_user_changes_are_audited_without_secrets(
    client: httpx2.AsyncClient, owner: Account, app: FastAPI
) -> None:
    created = await _add_user(client, owner, "sam@example.com")
    target = _canonical(created["id"])
    body = {"role": "manager", "full_name": "Sam Smith", "password": "a new secret phrase", "email": "SAM2@example.com"}
    assert (await client.put(f"/api/users/{created['id']}", headers=owner.headers, json=body)).status_code == 200
    unchanged = await client.put(f"/api/users/{created['id']}", headers=owner.headers, json={"role": "manager"})
    assert unchanged.status_code == 200
    assert (await client.delete(f"/api/users/{created['id']}", headers=owner.headers)).status_code == 200

    async with sessions(app)() as session:
        entries = list(
            await session.scalars(
                select(AuditEntry).where(AuditEntry.target_id == target).order_by(AuditEntry.created_at)
            )
        )
        stored_hashes = list(await session.scalars(select(User.password_hash)))
    assert [entry.action for entry in entries] == ["user.created", "user.updated", "user.deleted"]
    assert all(entry.actor_id == owner.user_id and entry.target_type == "user" for entry in entries)
    assert all(entry.ip_address == "127.0.0.1" and entry.company_id == owner.company_id for entry in entries)
    assert entries[0].changes == {
        "email": [None, "sam@example.com"],
        "name": [None, "Sam Doe"],
        "role": [None, "user"],
        "is_active": [None, True],
    }
    assert entries[1].changes == {
        "email": ["sam@example.com", "sam2@example.com"],
        "name": ["Sam Doe", "Sam Smith"],
        "role": ["user", "manager"],
        "password": "changed",
    }
    assert entries[2].changes == {
        "email": ["sam2@example.com", None],
        "name": ["Sam Smith", None],
        "role": ["manager", None],
        "is_active": [True, None],
    }
    text = str([entry.changes for entry in entries])
    assert "a new secret phrase" not in text and not any(digest in text for digest in stored_hashes)
