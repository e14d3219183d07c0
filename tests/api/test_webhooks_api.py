"""``/api/webhooks``: registration with the spec's body, public-address checks, the audit trail, secrets shown only
on create and rotate, delivery history, tenants that never see each other's webhooks, and the test event."""

from __future__ import annotations

import asyncio
import json
import re
import uuid
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx2
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.testing import WorkflowEnvironment

from core.config import Settings
from db.base import utcnow
from db.models import AuditEntry, DomainEvent, Webhook, WebhookDelivery
from schemas.webhooks import EVENT_CATALOGUE, TEST_EVENT
from tests.conftest import Account, register
from tests.support.webhook_receiver import WebhookReceiver

PUBLIC_URL = "https://93.184.216.34/hook"  # a public literal: passes the address check without DNS
SPEC_BODY = {
    "url": PUBLIC_URL,
    "events": ["lead.created", "review.submitted", "content.published"],
    "secret": "your_webhook_secret",
}
ROOT = Path(__file__).resolve().parents[2]


async def _register_webhook(client: httpx2.AsyncClient, account: Account, **changes: Any) -> dict[str, Any]:
    response = await client.post("/api/webhooks", headers=account.headers, json={**SPEC_BODY, **changes})
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


async def _member(client: httpx2.AsyncClient, admin: Account, role: str) -> dict[str, str]:
    email = f"{role}-{uuid.uuid4().hex[:8]}@example.com"
    created = await client.post(
        "/api/users", headers=admin.headers, json={"email": email, "password": "password123", "role": role}
    )
    assert created.status_code == 201, created.text
    token = (await client.post("/token", json={"username": email, "password": "password123"})).json()["access_token"]
    return {"Authorization": f"Bearer {token}"}


def _canonical(api_id: str) -> str:
    return api_id.replace("webhook-", "hook_", 1)


async def _audit_trail(db: async_sessionmaker[AsyncSession], webhook_id: str) -> list[AuditEntry]:
    async with db() as session:
        rows = await session.scalars(
            select(AuditEntry).where(AuditEntry.target_id == _canonical(webhook_id)).order_by(AuditEntry.created_at)
        )
        return list(rows)


async def _stored(db: async_sessionmaker[AsyncSession], webhook_id: str) -> Webhook | None:
    async with db() as session:
        return await session.get(Webhook, _canonical(webhook_id))


async def _seed_delivery(
    db: async_sessionmaker[AsyncSession], webhook_id: str, status: str, age_minutes: int
) -> tuple[str, str]:
    """A recorded event and its delivery to the webhook, as the relay would have written them."""
    async with db() as session, session.begin():
        webhook = await session.get(Webhook, _canonical(webhook_id))
        assert webhook is not None
        created_at = utcnow() - timedelta(minutes=age_minutes)
        event = DomainEvent(
            id=f"evt_{uuid.uuid4().hex[:16]}",
            company_id=webhook.company_id,
            type="lead.created",
            entity_id="lead_x",
            payload={"id": "lead_x"},
            created_at=created_at,
            dispatched_at=created_at,
        )
        delivery = WebhookDelivery(
            id=f"whd_{uuid.uuid4().hex[:16]}",
            webhook_id=webhook.id,
            event_id=event.id,
            event_type=event.type,
            status=status,
            attempts=1,
            response_status=200 if status == "delivered" else 500,
            attempt_log=[{"status": 200 if status == "delivered" else 500}],
            created_at=created_at,
        )
        session.add(event)
        await session.flush()
        session.add(delivery)
    return delivery.id, event.id


async def test_register_with_the_spec_body(
    client: httpx2.AsyncClient, owner: Account, db: async_sessionmaker[AsyncSession]
) -> None:
    created = await _register_webhook(client, owner)
    assert created["id"].startswith("webhook-")
    assert {key: created[key] for key in ("url", "events", "secret", "active", "disabled_reason")} == {
        "url": PUBLIC_URL,
        "events": SPEC_BODY["events"],
        "secret": "your_webhook_secret",
        "active": True,
        "disabled_reason": None,
    }
    assert created["created_at"] and created["updated_at"]

    read = await client.get(f"/api/webhooks/{created['id']}", headers=owner.headers)
    assert read.status_code == 200
    assert read.json() == {key: value for key, value in created.items() if key != "secret"}
    listed = await client.get("/api/webhooks", headers=owner.headers)
    assert [item["id"] for item in listed.json()["items"]] == [created["id"]]
    assert "your_webhook_secret" not in read.text + listed.text

    generated = await _register_webhook(client, owner, secret=None, description="CRM sync")
    assert re.fullmatch(r"whsec_[A-Za-z0-9_-]{43}", generated["secret"])
    assert generated["description"] == "CRM sync"
    stored = await _stored(db, generated["id"])
    assert stored is not None and stored.secret == generated["secret"]

    trail = await _audit_trail(db, created["id"])
    assert [(entry.action, entry.actor_id, entry.target_type) for entry in trail] == [
        ("webhook.created", owner.user_id, "webhook")
    ]
    assert trail[0].changes["url"] == [None, PUBLIC_URL]
    assert trail[0].changes["events"] == [None, SPEC_BODY["events"]]
    assert "secret" not in json.dumps(trail[0].changes)


async def test_bad_bodies_name_the_field(client: httpx2.AsyncClient, owner: Account) -> None:
    cases: list[tuple[dict[str, Any], str, str]] = [
        ({"events": ["lead.created", "lead.exploded"]}, "events", "lead.exploded"),
        ({"events": [TEST_EVENT]}, "events", TEST_EVENT),
        ({"events": []}, "events", "at least 1"),
        ({"secret": "too-short"}, "secret", "at least 16"),
        ({"url": ""}, "url", "at least 1"),
    ]
    for changes, field, words in cases:
        response = await client.post("/api/webhooks", headers=owner.headers, json={**SPEC_BODY, **changes})
        assert response.status_code == 422, (changes, response.text)
        [error] = response.json()["detail"]
        assert error["field"] == field and words in error["msg"], (changes, error)
    listed = await client.get("/api/webhooks", headers=owner.headers)
    assert listed.json()["total"] == 0


async def test_only_public_targets_are_accepted(
    client: httpx2.AsyncClient, owner: Account, settings: Settings, db: async_sessionmaker[AsyncSession]
) -> None:
    refused = [
        "http://10.0.0.1/hook",
        "http://127.0.0.1:8080/hook",
        "http://169.254.169.254/latest/meta-data/",
        "http://[::1]/hook",
        "http://[::ffff:127.0.0.1]/hook",
        "https://no-such-host.invalid/hook",
        "ftp://93.184.216.34/hook",
        "https:///no-host",
    ]
    for url in refused:
        response = await client.post("/api/webhooks", headers=owner.headers, json={**SPEC_BODY, "url": url})
        assert response.status_code == 422, (url, response.text)
        assert response.json()["detail"][0]["field"] == "url", url
    assert (await client.get("/api/webhooks", headers=owner.headers)).json()["total"] == 0

    # An operator may allow a private range (a receiver on the same host or network).
    settings.webhook_allowed_networks = ["127.0.0.0/8"]
    loopback = await _register_webhook(client, owner, url="http://127.0.0.1:8080/hook")
    assert loopback["url"] == "http://127.0.0.1:8080/hook"
    # The update is checked the same way, and a refused change leaves the webhook as it was.
    moved = await client.patch(
        f"/api/webhooks/{loopback['id']}",
        headers=owner.headers,
        json={"url": "http://169.254.169.254/", "active": False},
    )
    assert moved.status_code == 422 and moved.json()["detail"][0]["field"] == "url"
    stored = await _stored(db, loopback["id"])
    assert stored is not None and stored.url == "http://127.0.0.1:8080/hook" and stored.active

    settings.environment = "production"
    plain_http = await client.post(
        "/api/webhooks", headers=owner.headers, json={**SPEC_BODY, "url": "http://93.184.216.34/hook"}
    )
    assert plain_http.status_code == 422 and "https" in plain_http.json()["detail"][0]["msg"]
    assert (await client.post("/api/webhooks", headers=owner.headers, json=SPEC_BODY)).status_code == 201


async def test_list_pages_and_filters(client: httpx2.AsyncClient, owner: Account) -> None:
    ids = [(await _register_webhook(client, owner, url=f"https://93.184.216.{n}/hook"))["id"] for n in (10, 11, 12)]
    disabled = await client.patch(f"/api/webhooks/{ids[0]}", headers=owner.headers, json={"active": False})
    assert disabled.status_code == 200 and disabled.json()["active"] is False

    first = (await client.get("/api/webhooks", headers=owner.headers, params={"limit": 2})).json()
    assert first["total"] == 3 and first["page"] == 1 and first["limit"] == 2
    second = (await client.get("/api/webhooks", headers=owner.headers, params={"limit": 2, "page": 2})).json()
    assert [item["id"] for item in first["items"] + second["items"]] == ids[::-1]  # newest first
    assert all("secret" not in item for item in first["items"] + second["items"])

    inactive = (await client.get("/api/webhooks", headers=owner.headers, params={"active": False})).json()
    assert [item["id"] for item in inactive["items"]] == [ids[0]]
    by_url = (await client.get("/api/webhooks", headers=owner.headers, params={"sort": "url", "order": "asc"})).json()
    assert [item["url"] for item in by_url["items"]] == [f"https://93.184.216.{n}/hook" for n in (10, 11, 12)]
    bad_sort = await client.get("/api/webhooks", headers=owner.headers, params={"sort": "secret"})
    assert bad_sort.status_code == 422 and bad_sort.json()["detail"][0]["field"] == "sort_by"


async def test_update_with_patch_and_put(
    client: httpx2.AsyncClient, owner: Account, db: async_sessionmaker[AsyncSession]
) -> None:
    created = await _register_webhook(client, owner, description="first")
    patched = await client.patch(
        f"/api/webhooks/{created['id']}", headers=owner.headers, json={"events": ["sale.created", "sale.created"]}
    )
    assert patched.status_code == 200, patched.text
    assert patched.json()["events"] == ["sale.created"]
    assert patched.json()["url"] == PUBLIC_URL and patched.json()["description"] == "first"
    assert datetime.fromisoformat(patched.json()["updated_at"]) > datetime.fromisoformat(created["updated_at"])

    put = await client.put(
        f"/api/webhooks/{created['id']}",
        headers=owner.headers,
        json={"url": "https://93.184.216.35/v2", "description": None, "active": False},
    )
    assert put.status_code == 200, put.text
    assert {key: put.json()[key] for key in ("url", "events", "description", "active")} == {
        "url": "https://93.184.216.35/v2",
        "events": ["sale.created"],
        "description": None,
        "active": False,
    }
    # The secret is changed by rotating it, never by an update.
    sneaky = await client.patch(f"/api/webhooks/{created['id']}", headers=owner.headers, json={"secret": "x" * 20})
    assert sneaky.status_code == 422 and sneaky.json()["detail"][0]["field"] == "secret"
    unknown = await client.patch(f"/api/webhooks/{created['id']}", headers=owner.headers, json={"events": ["nope"]})
    assert unknown.status_code == 422 and unknown.json()["detail"][0]["field"] == "events"

    trail = await _audit_trail(db, created["id"])
    assert [entry.action for entry in trail] == ["webhook.created", "webhook.updated", "webhook.updated"]
    assert trail[1].changes == {"events": [SPEC_BODY["events"], ["sale.created"]]}
    assert trail[2].changes == {
        "url": [PUBLIC_URL, "https://93.184.216.35/v2"],
        "description": ["first", None],
        "active": [True, False],
    }


async def test_re_enabling_clears_why_it_was_disabled(
    client: httpx2.AsyncClient, owner: Account, db: async_sessionmaker[AsyncSession]
) -> None:
    created = await _register_webhook(client, owner)
    async with db() as session, session.begin():
        webhook = await session.get(Webhook, _canonical(created["id"]))
        assert webhook is not None
        webhook.active = False
        webhook.disabled_reason = "5 deliveries in a row failed"
        webhook.consecutive_failures = 5

    read = (await client.get(f"/api/webhooks/{created['id']}", headers=owner.headers)).json()
    assert read["active"] is False and read["disabled_reason"] == "5 deliveries in a row failed"
    enabled = await client.patch(f"/api/webhooks/{created['id']}", headers=owner.headers, json={"active": True})
    assert enabled.status_code == 200
    assert enabled.json()["active"] is True and enabled.json()["disabled_reason"] is None
    stored = await _stored(db, created["id"])
    assert stored is not None and stored.consecutive_failures == 0
    trail = await _audit_trail(db, created["id"])
    assert trail[-1].changes == {"active": [False, True], "disabled_reason": ["5 deliveries in a row failed", None]}


async def test_delete_removes_the_webhook_and_its_deliveries(
    client: httpx2.AsyncClient, owner: Account, db: async_sessionmaker[AsyncSession]
) -> None:
    created = await _register_webhook(client, owner)
    delivery_id, _ = await _seed_delivery(db, created["id"], "delivered", age_minutes=1)

    deleted = await client.delete(f"/api/webhooks/{created['id']}", headers=owner.headers)
    assert deleted.status_code == 200
    assert deleted.json() == {"success": True, "message": "Webhook deleted successfully"}
    assert (await client.get(f"/api/webhooks/{created['id']}", headers=owner.headers)).status_code == 404
    assert (await client.delete(f"/api/webhooks/{created['id']}", headers=owner.headers)).status_code == 404
    async with db() as session:
        assert await session.get(WebhookDelivery, delivery_id) is None
    trail = await _audit_trail(db, created["id"])
    assert [entry.action for entry in trail] == ["webhook.created", "webhook.deleted"]
    assert trail[1].changes["url"] == [PUBLIC_URL, None]


async def test_rotating_replaces_the_secret(
    client: httpx2.AsyncClient, owner: Account, db: async_sessionmaker[AsyncSession]
) -> None:
    created = await _register_webhook(client, owner)
    rotated = await client.post(f"/api/webhooks/{created['id']}/rotate-secret", headers=owner.headers)
    assert rotated.status_code == 200, rotated.text
    new_secret = rotated.json()["secret"]
    assert new_secret.startswith("whsec_") and new_secret != SPEC_BODY["secret"]
    assert rotated.json()["id"] == created["id"] and rotated.json()["events"] == created["events"]

    stored = await _stored(db, created["id"])
    assert stored is not None and stored.secret == new_secret
    read = await client.get(f"/api/webhooks/{created['id']}", headers=owner.headers)
    assert "secret" not in read.json() and new_secret not in read.text
    trail = await _audit_trail(db, created["id"])
    assert [(entry.action, entry.changes) for entry in trail][1:] == [("webhook.secret_rotated", {})]
    assert all(secret not in json.dumps(entry.changes) for entry in trail for secret in (new_secret, "your_webhook"))


async def test_deliveries_newest_first_with_a_status_filter(
    client: httpx2.AsyncClient, owner: Account, db: async_sessionmaker[AsyncSession]
) -> None:
    created = await _register_webhook(client, owner)
    old_id, old_event = await _seed_delivery(db, created["id"], "failed", age_minutes=30)
    new_id, _ = await _seed_delivery(db, created["id"], "delivered", age_minutes=1)
    url = f"/api/webhooks/{created['id']}/deliveries"

    page = (await client.get(url, headers=owner.headers)).json()
    assert page["total"] == 2
    assert [item["id"] for item in page["items"]] == [
        new_id.replace("whd_", "webhook-delivery-"),
        old_id.replace("whd_", "webhook-delivery-"),
    ]
    oldest = page["items"][1]
    assert oldest["event_id"] == old_event.replace("evt_", "event-")
    assert {key: oldest[key] for key in ("event_type", "status", "attempts", "response_status", "attempt_log")} == {
        "event_type": "lead.created",
        "status": "failed",
        "attempts": 1,
        "response_status": 500,
        "attempt_log": [{"status": 500}],
    }
    failed = (await client.get(url, headers=owner.headers, params={"status": "failed"})).json()
    assert [item["id"] for item in failed["items"]] == [oldest["id"]]
    bad = await client.get(url, headers=owner.headers, params={"status": "lost"})
    assert bad.status_code == 422 and bad.json()["detail"][0]["field"] == "status"


async def test_other_companies_webhooks_are_not_found(client: httpx2.AsyncClient, owner: Account) -> None:
    theirs = await _register_webhook(client, await register(client, company="Globex"))
    path = f"/api/webhooks/{theirs['id']}"
    attempts = [
        client.get(path, headers=owner.headers),
        client.patch(path, headers=owner.headers, json={"active": False}),
        client.put(path, headers=owner.headers, json={"url": PUBLIC_URL}),
        client.delete(path, headers=owner.headers),
        client.post(f"{path}/rotate-secret", headers=owner.headers),
        client.get(f"{path}/deliveries", headers=owner.headers),
        client.post(f"{path}/test", headers=owner.headers),
    ]
    for attempt in attempts:
        response = await attempt
        assert response.status_code == 404, (response.request.method, response.request.url, response.text)
        assert response.json() == {"detail": "Webhook not found"}
    assert (await client.get("/api/webhooks", headers=owner.headers)).json()["total"] == 0


async def test_managers_manage_webhooks_and_users_only_read_the_catalogue(
    client: httpx2.AsyncClient, owner: Account
) -> None:
    manager = await _member(client, owner, "manager")
    plain = await _member(client, owner, "user")
    created = await client.post("/api/webhooks", headers=manager, json=SPEC_BODY)
    assert created.status_code == 201
    path = f"/api/webhooks/{created.json()['id']}"
    for response in (
        await client.post("/api/webhooks", headers=plain, json=SPEC_BODY),
        await client.get("/api/webhooks", headers=plain),
        await client.get(path, headers=plain),
        await client.patch(path, headers=plain, json={"active": False}),
        await client.post(f"{path}/rotate-secret", headers=plain),
        await client.delete(path, headers=plain),
    ):
        assert response.status_code == 403, (response.request.method, response.request.url)
        assert response.json() == {"detail": "You do not have permission to access this resource"}
    assert (await client.get("/api/webhooks/events", headers=plain)).status_code == 200
    assert (await client.get("/api/webhooks/events")).status_code == 401


async def test_the_event_catalogue(client: httpx2.AsyncClient, owner: Account) -> None:
    response = await client.get("/api/webhooks/events", headers=owner.headers)
    assert response.status_code == 200
    catalogue = {entry["name"]: entry for entry in response.json()}
    assert set(catalogue) == set(EVENT_CATALOGUE) and TEST_EVENT not in catalogue
    completed = catalogue["workflow_run.completed"]
    assert completed["description"] and completed["example"]["status"] == "completed"
    assert set(completed["example"]) == {"id", "workflow_type", "status", "entity_id", "config_id", "error"}
    assert catalogue["lead.created"]["example"]["source"] == "website_form"


def test_every_event_the_code_records_is_in_the_catalogue() -> None:
    # A new event type is a contract change for receivers: it must be documented before it can be emitted.
    call = re.compile(r"\b(?:emit|record)\(\s*session,\s*[\w.]+,\s*\"([a-z_]+\.[a-z_]+)\"", re.S)
    recorded = {
        name
        for folder in ("services", "activities", "db")
        for source in (ROOT / folder).rglob("*.py")
        for name in call.findall(source.read_text())
    }
    assert len(recorded) >= 17, recorded
    assert recorded - {TEST_EVENT} <= set(EVENT_CATALOGUE)


@pytest.mark.usefixtures("worker")
async def test_sending_a_test_event_starts_its_delivery(
    client: httpx2.AsyncClient,
    owner: Account,
    settings: Settings,
    db: async_sessionmaker[AsyncSession],
    temporal_dev: WorkflowEnvironment,
) -> None:
    settings.webhook_allowed_networks = ["127.0.0.0/8"]
    with WebhookReceiver() as receiver:
        created = await _register_webhook(client, owner, url=f"{receiver.url}/hook")
        sent = await client.post(f"/api/webhooks/{created['id']}/test", headers=owner.headers)
        assert sent.status_code == 202, sent.text
        delivery_id = sent.json()["delivery_id"].replace("webhook-delivery-", "whd_")
        event_id = sent.json()["event_id"].replace("event-", "evt_")

        async with db() as session:
            delivery = await session.get(WebhookDelivery, delivery_id)
            event = await session.get(DomainEvent, event_id)
        assert delivery is not None and delivery.webhook_id == _canonical(created["id"])
        assert delivery.event_type == TEST_EVENT and delivery.event_id == event_id
        # Marked dispatched at once: the outbox relay never fans a test out to other webhooks.
        assert event is not None and event.type == TEST_EVENT and event.dispatched_at is not None
        assert event.payload["webhook_id"] == _canonical(created["id"])
        described = await temporal_dev.client.get_workflow_handle(f"webhook-delivery/{delivery_id}").describe()
        assert described.workflow_type == "DeliverWebhookWorkflow"
        [arrived] = await asyncio.wait_for(
            receiver.wait_for(lambda request: request.headers.get("x-bas-event") == TEST_EVENT), timeout=20
        )
        assert json.loads(arrived.body)["event"] == TEST_EVENT

    disabled = await client.patch(f"/api/webhooks/{created['id']}", headers=owner.headers, json={"active": False})
    assert disabled.status_code == 200
    refused = await client.post(f"/api/webhooks/{created['id']}/test", headers=owner.headers)
    assert refused.status_code == 409 and "disabled" in refused.json()["detail"]
