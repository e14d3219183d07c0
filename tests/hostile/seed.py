"""One of each record a company can own, created through the API, and its id under every path-parameter name.

The tenant-isolation matrix calls another company's routes with these ids; the OpenAPI fuzzer uses them so
that its generated bodies also reach real records, not only 404s.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import httpx2

from schemas.ids import from_api_id
from tests.conftest import Account, register

TEMPLATES = {"welcome": "Hi {{ first_name }}, thanks for getting in touch with {{ company_name }}."}
LEAD_CONFIG = {
    "name": "Welcome",
    "workflow_type": "lead_nurturing",
    "actions": {"message_template": "welcome", "initial_delay_minutes": 0},
    "templates": TEMPLATES,
}
SCHEDULE = {"content_type": "blog_post", "frequency": "weekly", "day_of_week": "monday", "topics": ["automation"]}
CSV = "name,email\nCsv Person,csv-{tag}@example.com\n"


@dataclass
class Tenant:
    account: Account
    ids: dict[str, str] = field(default_factory=dict)
    """Canonical ids by the path-parameter name that routes give them (``lead_id``, ``config_id``...)."""
    emails: dict[str, str] = field(default_factory=dict)
    referral_code: str = ""

    @property
    def headers(self) -> dict[str, str]:
        return self.account.headers


def _json(response: httpx2.Response, *expected: int) -> dict[str, Any]:
    assert response.status_code in expected, (response.request.method, str(response.request.url), response.text)
    body: dict[str, Any] = response.json()
    return body


async def _until(client: httpx2.AsyncClient, headers: dict[str, str], url: str, ready: str) -> dict[str, Any]:
    """Poll a record until a worker has moved it to a state (content drafted, backup written)."""
    deadline = time.monotonic() + 30
    while True:
        body = _json(await client.get(url, headers=headers), 200)
        if body.get("status") == ready:
            return body
        assert time.monotonic() < deadline, (url, body)
        await asyncio.sleep(0.1)


async def _first(client: httpx2.AsyncClient, headers: dict[str, str], url: str) -> dict[str, Any]:
    """Poll a list until a worker has put something in it."""
    deadline = time.monotonic() + 30
    while not (items := _json(await client.get(url, headers=headers), 200)["data"]):
        assert time.monotonic() < deadline, f"{url} stayed empty"
        await asyncio.sleep(0.1)
    first: dict[str, Any] = items[0]
    return first


async def seed_tenant(client: httpx2.AsyncClient, company: str) -> Tenant:
    """Register a company and create one of everything it can own (needs the ``worker`` fixture)."""
    tag = uuid.uuid4().hex[:8]
    tenant = Tenant(await register(client, company))
    h = tenant.headers
    ids = tenant.ids

    member = _json(
        await client.post(
            "/api/users",
            headers=h,
            json={"email": f"member-{tag}@example.com", "password": "member password", "full_name": "Member"},
        ),
        201,
    )
    ids["user_id"] = str(from_api_id(member["id"]))
    tenant.emails["member"] = f"member-{tag}@example.com"

    config = _json(await client.post("/v1/workflow-configs", headers=h, json=LEAD_CONFIG), 201)
    ids["workflow_id"] = ids["config_id"] = config["id"]

    lead_body = {"name": "Lena Lead", "email": f"lead-{tag}@example.com"}
    lead = _json(await client.post("/v1/leads", headers=h, json=lead_body), 201)
    ids["lead_id"] = lead["id"]
    tenant.emails["lead"] = lead["email"]
    _json(
        await client.post(
            f"/v1/leads/{lead['id']}/interactions", headers=h, json={"type": "note", "direction": "outbound"}
        ),
        201,
    )
    ids["delivery_id"] = (await _first(client, h, "/v1/deliveries"))["id"]  # the welcome email, recorded
    runs = _json(await client.get("/v1/workflow-runs", headers=h), 200)["data"]
    assert runs, "the lead config should have started a run for the new lead"
    ids["run_id"] = runs[0]["id"]

    customer = _json(
        await client.post("/v1/customers", headers=h, json={"name": "Carl", "email": f"cust-{tag}@example.org"}),
        201,
    )
    ids["customer_id"] = customer["id"]
    sale = _json(
        await client.post(
            "/v1/sales", headers=h, json={"customer_id": customer["id"], "amount": 120, "status": "pending"}
        ),
        201,
    )
    ids["sale_id"] = sale["id"]
    review = _json(
        await client.post(
            "/api/review-referral/reviews",
            headers=h,
            json={"customer_id": customer["id"], "rating": 5, "platform": "google", "content": "Great"},
        ),
        200,
        201,
    )
    ids["review_id"] = str(from_api_id(review["id"]))
    referral = _json(await client.post("/v1/referrals", headers=h, json={"customer_id": customer["id"]}), 201)
    ids["referral_id"] = referral["id"]
    tenant.referral_code = referral["code"]

    generated = _json(
        await client.post("/v1/content/generate", headers=h, json={"type": "blog", "topic": "automation"}), 201, 202
    )
    ids["content_id"] = generated["id"]
    await _until(client, h, f"/v1/content/{generated['id']}", "draft")
    _json(await client.post(f"/v1/content/{generated['id']}/approve", headers=h), 200)
    published = _json(
        await client.post(
            f"/api/content-generation/publish/{generated['id']}", headers=h, json={"platform": "recorded"}
        ),
        200,
        202,
    )
    ids["publication_id"] = str(from_api_id(published["publication_id"]))

    schedule = _json(await client.post("/api/content-generation/schedule", headers=h, json=SCHEDULE), 200, 201)
    ids["schedule_id"] = str(from_api_id(schedule["schedule_id"]))

    webhook = _json(
        await client.post(
            "/api/webhooks", headers=h, json={"url": "http://127.0.0.1:9/hook", "events": ["lead.created"]}
        ),
        201,
    )
    ids["webhook_id"] = str(from_api_id(webhook["id"]))
    key = _json(await client.post("/api/api-keys", headers=h, json={"name": "Contact form"}), 201)
    ids["key_id"] = str(from_api_id(key["id"]))

    backup = _json(await client.post("/api/system/backup", headers=h), 200)
    ids["backup_id"] = str(from_api_id(backup["backup_id"]))
    await _until(client, h, f"/api/system/backups/{backup['backup_id']}", "completed")
    return tenant
