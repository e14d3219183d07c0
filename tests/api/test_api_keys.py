"""Per-company API keys: made and revoked by admins, shown once, and narrowed to their scope on every route."""

from __future__ import annotations

import hashlib
from typing import Any

import httpx2
from fastapi import FastAPI
from sqlalchemy import select

from core import security
from core.config import Settings
from db.models import ApiKey, AuditEntry
from tests.api.lead_support import add_lead_config, run_count, sessions
from tests.conftest import Account, register

KEYS = "/api/api-keys"
PUBLIC_KEYS = {
    "id",
    "name",
    "prefix",
    "scope",
    "form_url",
    "thank_you_url",
    "lead_source",
    "tags",
    "created_by",
    "created_at",
    "last_used_at",
    "revoked_at",
}


async def create_key(client: httpx2.AsyncClient, admin: Account, **body: Any) -> dict[str, Any]:
    """A key made through the API; the answer carries the whole key (``key``) this once."""
    response = await client.post(KEYS, headers=admin.headers, json={"name": "Website", **body})
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


def bearer(key: dict[str, Any]) -> dict[str, str]:
    return {"Authorization": f"Bearer {key['key']}"}


async def _add_user(client: httpx2.AsyncClient, admin: Account, email: str, role: str) -> dict[str, str]:
    body = {"email": email, "password": "password123", "role": role}
    assert (await client.post("/api/users", headers=admin.headers, json=body)).status_code == 201
    token = (await client.post("/token", json={"username": email, "password": "password123"})).json()["access_token"]
    return {"Authorization": f"Bearer {token}"}


async def test_a_key_is_shown_once_and_stored_only_as_a_hash(
    client: httpx2.AsyncClient, owner: Account, app: FastAPI, settings: Settings
) -> None:
    created = await create_key(client, owner, name="Contact form", thank_you_url="https://acme.example.com/thanks")
    assert set(created) == PUBLIC_KEYS | {"key"}
    prefix, secret = created["prefix"], created["key"]
    assert prefix.startswith("bas_lc_") and secret.startswith(f"{prefix}_") and len(secret) > len(prefix) + 32
    assert created["id"].startswith("api-key-")
    assert created["scope"] == "lead_capture" and created["lead_source"] == "website_form"
    assert created["form_url"] == f"{settings.public_base_url}/forms/{prefix}"
    assert created["thank_you_url"] == "https://acme.example.com/thanks"
    assert created["created_by"] == owner.user_id.replace("usr_", "user-")
    assert created["last_used_at"] is None and created["revoked_at"] is None

    listed = await client.get(KEYS, headers=owner.headers)
    read = await client.get(f"{KEYS}/{created['id']}", headers=owner.headers)
    for response in (listed, read):
        assert response.status_code == 200
        assert secret.removeprefix(prefix) not in response.text  # by prefix only, ever after
    body = listed.json()
    assert (body["total"], body["page"], body["limit"]) == (1, 1, 20)
    assert set(body["items"][0]) == PUBLIC_KEYS and body["items"][0]["prefix"] == prefix
    assert read.json() == body["items"][0]

    async with sessions(app)() as session:
        stored = await session.scalar(select(ApiKey).where(ApiKey.prefix == prefix))
        assert stored is not None
        entries = list(await session.scalars(select(AuditEntry).where(AuditEntry.target_id == stored.id)))
    assert stored.secret_hash == hashlib.sha256(secret.encode()).hexdigest()
    assert [entry.action for entry in entries] == ["api_key.created"]
    assert entries[0].actor_id == owner.user_id
    assert entries[0].changes == {
        "name": [None, "Contact form"],
        "scope": [None, "lead_capture"],
        "prefix": [None, prefix],
    }


async def test_key_bodies_are_validated_by_field(client: httpx2.AsyncClient, owner: Account) -> None:
    cases = [
        ({}, "name"),
        ({"name": ""}, "name"),
        ({"name": "x", "scope": "everything"}, "scope"),
        ({"name": "x", "thank_you_url": "ftp://acme.example.com/thanks"}, "thank_you_url"),
        ({"name": "x", "thank_you_url": "not a url"}, "thank_you_url"),
        ({"name": "x", "lead_source": "carrier_pigeon"}, "lead_source"),
        ({"name": "x", "tags": ["ok", ""]}, "tags.1"),
        ({"name": "x", "scope": "full", "thank_you_url": "https://acme.example.com/"}, "thank_you_url"),
        ({"name": "x", "scope": "full", "lead_source": "ad"}, "lead_source"),
        ({"name": "x", "secret": "mine"}, "secret"),
    ]
    for body, field in cases:
        response = await client.post(KEYS, headers=owner.headers, json=body)
        assert response.status_code == 422, (body, response.text)
        assert field in [error["field"] for error in response.json()["detail"]], (body, response.json())
    assert (await client.get(KEYS, headers=owner.headers)).json()["total"] == 0
    # The /api surface's word for a source is accepted and shown back as that surface says it.
    aliased = await create_key(client, owner, lead_source="ad_campaign", tags=["spring", "spring", "web"])
    assert aliased["lead_source"] == "ad_campaign" and aliased["tags"] == ["spring", "web"]
    full = await create_key(client, owner, scope="full")
    assert full["prefix"].startswith("bas_full_") and full["form_url"] is None and full["lead_source"] is None


async def test_only_signed_in_admins_manage_keys(client: httpx2.AsyncClient, owner: Account) -> None:
    manager = await _add_user(client, owner, "manager@example.com", "manager")
    plain = await _add_user(client, owner, "plain@example.com", "user")
    lead_capture = bearer(await create_key(client, owner))
    full = bearer(await create_key(client, owner, scope="full"))
    for headers in (manager, plain, lead_capture, full, {"X-API-Key": full["Authorization"][7:]}):
        assert (await client.post(KEYS, headers=headers, json={"name": "mine"})).status_code == 403
        assert (await client.get(KEYS, headers=headers)).status_code == 403
    refused = await client.get(KEYS, headers=full)
    assert refused.json() == {"detail": "This action needs a signed-in user, not an API key"}
    assert (await client.get(KEYS)).status_code == 401


async def test_a_lead_capture_key_creates_leads_on_both_surfaces_and_nothing_else(
    client: httpx2.AsyncClient, owner: Account, app: FastAPI
) -> None:
    await add_lead_config(app, owner.company_id)
    key = await create_key(client, owner)
    v1 = await client.post("/v1/leads", headers=bearer(key), json={"name": "Ann", "email": "ann@example.com"})
    endpoints = await client.post(
        "/api/lead-nurturing/leads",
        headers={"X-API-Key": key["key"]},
        json={"name": "Bob", "email": "bob@example.com", "source": "crm"},
    )
    assert v1.status_code == 201 and endpoints.status_code == 201, (v1.text, endpoints.text)
    # The same service path as a user's lead: the follow-up starts for each.
    assert await run_count(app, v1.json()["id"]) == 1
    assert await run_count(app, endpoints.json()["id"].replace("lead-", "lead_")) == 1
    # A lead-capture key writes leads but never reads them: it sees the id and status, nothing personal...
    assert set(endpoints.json()) == {"id", "status", "created_at"}
    # ...not even when it posts an email the company already has (else it could read leads by guessing).
    again = await client.post(
        "/v1/leads", headers=bearer(key), json={"name": "Someone", "email": "ann@example.com", "phone": "+14155550100"}
    )
    assert again.status_code == 200 and again.json() == {k: v1.json()[k] for k in ("id", "status", "created_at")}

    for method, path in (
        ("GET", "/v1/leads"),
        ("GET", f"/v1/leads/{v1.json()['id']}"),
        ("PATCH", f"/v1/leads/{v1.json()['id']}"),
        ("GET", "/api/lead-nurturing/leads"),
        ("GET", "/api/users/me"),
        ("GET", "/v1/users/me"),
        ("GET", "/v1/workflow-configs"),
    ):
        response = await client.request(method, path, headers=bearer(key), json={})
        assert response.status_code == 403, (path, response.text)
    denied = await client.get("/v1/leads", headers=bearer(key))
    assert denied.json()["error"] == "permission_error"
    assert denied.json()["message"] == "This API key may only create leads"
    assert (await client.get("/api/lead-nurturing/leads", headers=bearer(key))).json() == {
        "detail": "This API key may only create leads"
    }
    assert (await client.get(f"{KEYS}/{key['id']}", headers=owner.headers)).json()["last_used_at"] is not None


async def test_a_full_key_acts_as_its_user_except_on_admin_routes(client: httpx2.AsyncClient, owner: Account) -> None:
    key = await create_key(client, owner, scope="full")
    assert (await client.get("/v1/leads", headers=bearer(key))).status_code == 200
    me = await client.get("/api/users/me", headers={"X-API-Key": key["key"]})
    assert me.status_code == 200 and me.json()["email"] == owner.email
    assert (await client.get("/v1/workflow-configs", headers=bearer(key))).status_code == 200
    for path in ("/api/users", "/api/audit-log", KEYS):
        assert (await client.get(path, headers=bearer(key))).status_code == 403, path


async def test_revoked_and_malformed_keys_are_refused(client: httpx2.AsyncClient, owner: Account, app: FastAPI) -> None:
    key = await create_key(client, owner)
    lead = {"name": "Ann", "email": "ann@example.com"}
    assert (await client.post("/v1/leads", headers=bearer(key), json=lead)).status_code == 201

    revoked = await client.delete(f"{KEYS}/{key['id']}", headers=owner.headers)
    assert revoked.status_code == 200 and revoked.json()["revoked_at"] is not None
    again = await client.delete(f"{KEYS}/{key['id']}", headers=owner.headers)
    assert again.status_code == 200 and again.json()["revoked_at"] == revoked.json()["revoked_at"]

    refused = await client.post("/v1/leads", headers=bearer(key), json=lead)
    assert refused.status_code == 401 and refused.json()["message"] == "Invalid or revoked API key"
    assert refused.headers["www-authenticate"] == "Bearer"
    endpoints = await client.post("/api/lead-nurturing/leads", headers={"X-API-Key": key["key"]}, json=lead)
    assert endpoints.status_code == 401 and endpoints.json() == {"detail": "Invalid or revoked API key"}
    tampered = key["key"][:-4] + ("AAAA" if not key["key"].endswith("AAAA") else "BBBB")
    for presented in ("bas_lc_1a2b3c4d", "bas_", "bas_lc_x_short", tampered, f"bas_lc_00000000_{'x' * 43}"):
        response = await client.post("/v1/leads", headers={"Authorization": f"Bearer {presented}"}, json=lead)
        assert response.status_code == 401, presented

    assert (await client.get(KEYS, headers=owner.headers)).json()["total"] == 0
    with_revoked = (await client.get(KEYS, headers=owner.headers, params={"include_revoked": True})).json()
    assert [item["id"] for item in with_revoked["items"]] == [key["id"]]
    async with sessions(app)() as session:
        actions = await session.scalars(
            select(AuditEntry.action).where(AuditEntry.target_id == key["id"].replace("api-key-", "key_"))
        )
        assert sorted(actions) == ["api_key.created", "api_key.revoked"]  # revoking twice is one change


async def test_keys_are_listed_newest_first_and_paged(client: httpx2.AsyncClient, owner: Account) -> None:
    ids = [(await create_key(client, owner, name=f"key {index}"))["id"] for index in range(3)]
    page = (await client.get(KEYS, headers=owner.headers, params={"limit": 2})).json()
    assert page["total"] == 3 and [item["id"] for item in page["items"]] == ids[::-1][:2]
    by_name = (await client.get(KEYS, headers=owner.headers, params={"sort": "name", "order": "asc"})).json()
    assert [item["name"] for item in by_name["items"]] == ["key 0", "key 1", "key 2"]
    assert (await client.get(KEYS, headers=owner.headers, params={"sort": "prefix"})).status_code == 422


async def test_other_companies_keys_are_invisible(client: httpx2.AsyncClient, owner: Account) -> None:
    key = await create_key(client, owner)
    other = await register(client, company="Globex")
    assert (await client.get(f"{KEYS}/{key['id']}", headers=other.headers)).status_code == 404
    missing = await client.delete(f"{KEYS}/{key['id']}", headers=other.headers)
    assert missing.status_code == 404 and missing.json() == {"detail": "Api key not found"}
    assert (await client.get(KEYS, headers=other.headers)).json()["total"] == 0
    # Still alive for its own company: the other tenant's attempt changed nothing.
    assert (await client.get(f"{KEYS}/{key['id']}", headers=owner.headers)).json()["revoked_at"] is None
    # A key creates leads in its own company only.
    created = await client.post("/v1/leads", headers=bearer(key), json={"name": "Ann", "email": "ann@example.com"})
    assert created.status_code == 201
    assert (await client.get("/v1/leads", headers=other.headers)).json()["meta"]["total_items"] == 0
    assert (await client.get("/v1/leads", headers=owner.headers)).json()["meta"]["total_items"] == 1


def test_the_prefix_is_read_from_the_left_whatever_the_secret_holds() -> None:
    # The secret is url-safe base64, which may contain "_" (about every other key does).
    assert security.api_key_prefix(f"bas_lc_1a2b3c4d_{'_' * 10}{'x' * 30}") == "bas_lc_1a2b3c4d"
    assert security.api_key_prefix(f"bas_full_1a2b3c4d_-x_{'y' * 40}") == "bas_full_1a2b3c4d"
    for malformed in ("bas_lc_1a2b3c4d", "bas__1a2b3c4d_" + "x" * 40, "bas_lc__" + "x" * 40, "key_lc_1a2b_" + "x" * 40):
        assert security.api_key_prefix(malformed) is None, malformed
    for _ in range(50):
        prefix, key = security.new_api_key("lc")
        assert security.api_key_prefix(key) == prefix
