"""``GET /api/audit-log``: the company's changes, newest first, filtered and paged; admins only."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx2
from fastapi import FastAPI
from sqlalchemy import update

from db.models import AuditEntry
from tests.api.lead_support import sessions
from tests.api.test_api_keys import bearer, create_key
from tests.conftest import Account, register

AUDIT = "/api/audit-log"
ENTRY_KEYS = {"id", "actor_id", "action", "target_type", "target_id", "changes", "ip_address", "created_at"}


async def _log(client: httpx2.AsyncClient, admin: Account, **params: Any) -> dict[str, Any]:
    response = await client.get(AUDIT, headers=admin.headers, params=params)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def _seed(client: httpx2.AsyncClient, owner: Account) -> tuple[str, str]:
    """A user created and promoted, a key created and revoked: four entries, oldest first."""
    user = await client.post(
        "/api/users", headers=owner.headers, json={"email": "sam@example.com", "password": "password123"}
    )
    user_id = user.json()["id"]
    await client.put(f"/api/users/{user_id}", headers=owner.headers, json={"role": "manager"})
    key = await create_key(client, owner)
    await client.delete(f"/api/api-keys/{key['id']}", headers=owner.headers)
    return user_id, key["id"]


async def test_entries_are_listed_newest_first_in_the_surface_spelling(
    client: httpx2.AsyncClient, owner: Account
) -> None:
    user_id, key_id = await _seed(client, owner)
    body = await _log(client, owner)
    assert (body["total"], body["page"], body["limit"]) == (4, 1, 20)
    assert [item["action"] for item in body["items"]] == [
        "api_key.revoked",
        "api_key.created",
        "user.updated",
        "user.created",
    ]
    assert all(set(item) == ENTRY_KEYS for item in body["items"])
    revoked, _, promoted, _ = body["items"]
    assert revoked["id"].startswith("audit-entry-")
    assert revoked["actor_id"] == owner.user_id.replace("usr_", "user-")
    assert (revoked["target_type"], revoked["target_id"]) == ("api_key", key_id)
    assert (promoted["target_type"], promoted["target_id"]) == ("user", user_id)
    assert promoted["changes"] == {"role": ["user", "manager"]}
    assert promoted["ip_address"] == "127.0.0.1"
    created_at = [datetime.fromisoformat(item["created_at"]) for item in body["items"]]
    assert created_at == sorted(created_at, reverse=True)

    second = await _log(client, owner, limit=3, page=2)
    assert second["total"] == 4 and [item["action"] for item in second["items"]] == ["user.created"]
    oldest_first = await _log(client, owner, order="asc")
    assert oldest_first["items"][0]["action"] == "user.created"


def actions(body: dict[str, Any]) -> list[str]:
    return [item["action"] for item in body["items"]]


async def test_filters_narrow_the_log(client: httpx2.AsyncClient, owner: Account, app: FastAPI) -> None:
    user_id, key_id = await _seed(client, owner)
    assert actions(await _log(client, owner, action="user.updated")) == ["user.updated"]
    assert actions(await _log(client, owner, target_type="api_key")) == ["api_key.revoked", "api_key.created"]
    assert actions(await _log(client, owner, target_id=user_id)) == ["user.updated", "user.created"]
    # Either spelling of an id names the same record.
    assert actions(await _log(client, owner, target_id=key_id.replace("api-key-", "key_"))) == [
        "api_key.revoked",
        "api_key.created",
    ]
    assert (await _log(client, owner, actor_id=owner.user_id))["total"] == 4
    assert (await _log(client, owner, actor_id=owner.user_id.replace("usr_", "user-")))["total"] == 4
    assert (await _log(client, owner, actor_id=user_id))["total"] == 0
    assert (await _log(client, owner, action="user.updated", target_type="api_key"))["total"] == 0

    # Days are whole UTC days, both ends included: move two entries back in time to see them split.
    ten_days_ago = datetime.now(UTC) - timedelta(days=10)
    async with sessions(app)() as session:
        await session.execute(
            update(AuditEntry).where(AuditEntry.target_type == "user").values(created_at=ten_days_ago)
        )
        await session.commit()
    old_day = ten_days_ago.date().isoformat()
    today = datetime.now(UTC).date().isoformat()
    assert actions(await _log(client, owner, since=today)) == ["api_key.revoked", "api_key.created"]
    assert sorted(actions(await _log(client, owner, until=old_day))) == ["user.created", "user.updated"]
    assert (await _log(client, owner, since=old_day, until=old_day))["total"] == 2
    assert (await _log(client, owner, since=old_day, until=today))["total"] == 4


async def test_bad_filters_are_422_by_field(client: httpx2.AsyncClient, owner: Account) -> None:
    for params, field in (
        ({"since": "last tuesday"}, "since"),
        ({"until": "2024-02-30"}, "until"),
        ({"since": "2024-03-02", "until": "2024-03-01"}, "until"),
        ({"limit": 0}, "limit"),
        ({"sort": "ip_address"}, "sort_by"),
        ({"action": "x" * 61}, "action"),
    ):
        response = await client.get(AUDIT, headers=owner.headers, params=params)
        assert response.status_code == 422, (params, response.text)
        assert [error["field"] for error in response.json()["detail"]] == [field], response.json()


async def test_only_signed_in_admins_read_the_log_of_their_own_company(
    client: httpx2.AsyncClient, owner: Account
) -> None:
    await _seed(client, owner)
    await client.post(
        "/api/users",
        headers=owner.headers,
        json={"email": "boss@example.com", "password": "password123", "role": "manager"},
    )
    manager_token = (
        await client.post("/token", json={"username": "boss@example.com", "password": "password123"})
    ).json()
    manager = {"Authorization": f"Bearer {manager_token['access_token']}"}
    full_key = bearer(await create_key(client, owner, scope="full"))
    for headers in (manager, full_key, {}):
        response = await client.get(AUDIT, headers=headers)
        assert response.status_code in (401, 403), headers
    assert (await client.get(AUDIT, headers=manager)).json() == {
        "detail": "You do not have permission to access this resource"
    }

    other = await register(client, company="Globex")
    assert (await _log(client, other))["total"] == 0
    own = await _log(client, owner)
    assert own["total"] == 6  # the seed, the manager and the full key
