"""``/v1/customers`` and ``/v1/sales`` with the spec's bodies, on SQLite and PostgreSQL.

Lifetime value is derived from completed sales; a completed sale starts the review request on the real
Temporal dev server (no worker polls the test's queue unless a test asks for one, so runs stay live).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx2
import pytest
from fastapi import FastAPI
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.client import Client, WorkflowExecutionStatus

from db.models import ReferralUse, Sale
from schemas.lead_follow_up import LeadEvent, LeadEventSignal
from schemas.review_request import ReviewEvent
from services.review_requests import workflow_id_for
from tests.api.lead_support import add_lead_config, create_lead, signals
from tests.api.review_support import (
    ALICE,
    CUSTOMER_DETAIL_KEYS,
    CUSTOMER_KEYS,
    JANE,
    SALE_KEYS,
    SALE_SUMMARY_KEYS,
    V1_META,
    add_review_config,
    create_customer,
    create_referral,
    create_sale,
    expire,
    get_json,
    review_events,
    runs_of,
    set_sale_status,
    terminated_afterwards,
    wait_for,
)
from tests.conftest import Account, register


@pytest.fixture(autouse=True)
async def _terminate_runs(temporal_client: Client, db: async_sessionmaker[AsyncSession]) -> AsyncIterator[None]:
    async with terminated_afterwards(temporal_client, db):
        yield


# ---------------------------------------------------------------- customers


async def test_customer_from_a_lead_with_the_spec_bodies(
    client: httpx2.AsyncClient, owner: Account, app: FastAPI, temporal_client: Client
) -> None:
    follow_up = await add_lead_config(app, owner.company_id)
    lead = await create_lead(client, owner, {"name": "Alice Brown", "email": "alice@example.com", "tags": ["warm"]})
    response = await client.post("/v1/customers", headers=owner.headers, json={**ALICE, "lead_id": lead["id"]})
    assert response.status_code == 201, response.text
    assert "x-duplicate-of" not in response.headers
    customer = response.json()
    assert customer.keys() == CUSTOMER_KEYS
    assert customer["id"].startswith("cust_")
    assert {k: customer[k] for k in ALICE} == ALICE
    assert customer["lead_id"] == lead["id"]
    assert customer["lifetime_value"] == 0.0
    assert customer["updated_at"] >= customer["created_at"]
    # The lead was won.
    converted = await get_json(client, owner, f"/v1/leads/{lead['id']}")
    assert converted["status"] == "converted" and converted["converted_at"] is not None
    # ...and its follow-up sequence was told so.
    assert await signals(temporal_client, lead["id"], follow_up) == [LeadEventSignal(event=LeadEvent.converted)]

    detail = await get_json(client, owner, f"/v1/customers/{customer['id']}")
    assert detail.keys() == CUSTOMER_DETAIL_KEYS
    assert {k: detail[k] for k in CUSTOMER_KEYS - {"updated_at"}} == {
        k: customer[k] for k in CUSTOMER_KEYS - {"updated_at"}
    }
    assert (detail["sales"], detail["reviews"], detail["referrals"]) == ([], [], [])

    # The spec's Update Customer body: tags are added, custom fields merged.
    patched = await client.patch(
        f"/v1/customers/{customer['id']}",
        headers=owner.headers,
        json={
            "phone": "+1234567891",
            "tags": ["vip", "repeat", "priority"],
            "custom_fields": {"preferences": "Prefers phone communication"},
        },
    )
    assert patched.status_code == 200, patched.text
    body = patched.json()
    assert body.keys() == CUSTOMER_KEYS
    assert body["phone"] == "+1234567891"
    assert body["tags"] == ["new", "vip", "repeat", "priority"]
    assert body["custom_fields"] == {
        "company": "XYZ Corp",
        "position": "Marketing Director",
        "preferences": "Prefers phone communication",
    }
    assert (body["name"], body["email"], body["lead_id"]) == ("Alice Brown", "alice@example.com", lead["id"])
    assert body["updated_at"] >= customer["updated_at"]

    # null removes a custom field; repeated tags are kept once.
    trimmed = await client.patch(
        f"/v1/customers/{customer['id']}",
        headers=owner.headers,
        json={"custom_fields": {"position": None}, "tags": ["vip", "vip"], "name": "Alice B. Brown"},
    )
    assert trimmed.status_code == 200, trimmed.text
    assert trimmed.json()["custom_fields"] == {"company": "XYZ Corp", "preferences": "Prefers phone communication"}
    assert trimmed.json()["tags"] == ["new", "vip", "repeat", "priority"]
    assert trimmed.json()["name"] == "Alice B. Brown"


async def test_a_customer_from_a_lead_takes_its_contact_details(client: httpx2.AsyncClient, owner: Account) -> None:
    lead = await create_lead(client, owner, {"name": "Bob", "email": "bob@example.com", "phone": "+14155550123"})
    customer = await create_customer(client, owner, {"name": "Bob Johnson", "lead_id": lead["id"]})
    assert (customer["email"], customer["phone"], customer["lead_id"]) == (
        "bob@example.com",
        "+14155550123",
        lead["id"],
    )

    unknown = await client.post("/v1/customers", headers=owner.headers, json={"name": "X", "lead_id": "lead_nope"})
    assert unknown.status_code == 422
    assert unknown.json()["error"] == "validation_error" and list(unknown.json()["details"]) == ["lead_id"]
    stranger = await register(client, company="Other Co")
    theirs = await create_lead(client, stranger, {"name": "Sam", "email": "sam@example.com"})
    other = await client.post("/v1/customers", headers=owner.headers, json={"name": "Sam", "lead_id": theirs["id"]})
    assert other.status_code == 422 and list(other.json()["details"]) == ["lead_id"]
    assert (await get_json(client, stranger, f"/v1/leads/{theirs['id']}"))["status"] == "new"


async def test_the_same_email_again_is_the_same_customer(client: httpx2.AsyncClient, owner: Account) -> None:
    first = await create_customer(client, owner, ALICE)
    again = await client.post(
        "/v1/customers",
        headers=owner.headers,
        json={
            "name": "Alice Brown",
            "email": "ALICE@Example.com",
            "tags": ["new", "repeat"],
            "custom_fields": {"position": "CMO", "birthday": "1985-05-15"},
        },
    )
    assert again.status_code == 200, again.text
    assert again.headers["x-duplicate-of"] == first["id"]
    merged = again.json()
    assert merged.keys() == CUSTOMER_KEYS
    assert merged["id"] == first["id"]
    assert merged["tags"] == ["new", "repeat"]
    assert merged["custom_fields"] == {"company": "XYZ Corp", "position": "CMO", "birthday": "1985-05-15"}
    assert merged["phone"] == "+1122334455"  # not sent: kept
    listed = await get_json(client, owner, "/v1/customers")
    assert listed["meta"]["total_items"] == 1

    # Another company may have a customer with the same email.
    stranger = await register(client, company="Other Co")
    theirs = await client.post("/v1/customers", headers=stranger.headers, json=ALICE)
    assert theirs.status_code == 201 and theirs.json()["id"] != first["id"]


async def test_lifetime_value_is_the_sum_of_completed_sales(client: httpx2.AsyncClient, owner: Account) -> None:
    jane = await create_customer(client, owner, JANE)
    url = f"/v1/customers/{jane['id']}"
    big = await create_sale(client, owner, jane["id"], 1000.00, service_name="Premium Package")
    small = await create_sale(client, owner, jane["id"], 500.00, service_name="Maintenance Service")
    pending = await create_sale(client, owner, jane["id"], 200.00, status="pending")
    later = await create_sale(client, owner, jane["id"], 50.25, status="pending")

    async def value() -> float:
        detail = await get_json(client, owner, url)
        listed = await get_json(client, owner, "/v1/customers")
        [item] = listed["data"]
        assert item["lifetime_value"] == detail["lifetime_value"]
        result: float = detail["lifetime_value"]
        return result

    assert await value() == 1500.00  # pending sales do not count
    detail = await get_json(client, owner, url)
    assert [s["id"] for s in detail["sales"]] == [later["id"], pending["id"], small["id"], big["id"]]
    for sale in detail["sales"]:
        assert sale.keys() == SALE_SUMMARY_KEYS
    assert detail["sales"][-1] == {
        "id": big["id"],
        "service_id": None,
        "service_name": "Premium Package",
        "amount": 1000.0,
        "status": "completed",
        "created_at": big["created_at"],
    }

    await set_sale_status(client, owner, pending["id"], "completed")
    assert await value() == 1700.00
    await set_sale_status(client, owner, small["id"], "refunded")
    assert await value() == 1200.00
    await set_sale_status(client, owner, later["id"], "cancelled")
    assert await value() == 1200.00
    statuses = {s["id"]: s["status"] for s in (await get_json(client, owner, url))["sales"]}
    assert statuses == {
        big["id"]: "completed",
        small["id"]: "refunded",
        pending["id"]: "completed",
        later["id"]: "cancelled",
    }
    # Cents are exact.
    await create_sale(client, owner, jane["id"], 0.1)
    await create_sale(client, owner, jane["id"], 0.2)
    assert await value() == 1200.30


async def test_customer_list_sorts_and_pages(client: httpx2.AsyncClient, owner: Account) -> None:
    values = {"Jane Smith": 1500.0, "Bob Johnson": 750.0, "Carol White": 0.0, "Dan Brown": 2000.0}
    ids = {}
    for name, amount in values.items():
        customer = await create_customer(client, owner, {"name": name, "email": f"{name.split()[0].lower()}@x.com"})
        ids[name] = customer["id"]
        if amount:
            await create_sale(client, owner, customer["id"], amount)

    async def names(**params: Any) -> list[str]:
        return [c["name"] for c in (await get_json(client, owner, "/v1/customers", **params))["data"]]

    assert await names() == list(reversed(values))  # newest first
    assert await names(sort_by="lifetime_value") == ["Dan Brown", "Jane Smith", "Bob Johnson", "Carol White"]
    assert await names(sort_by="lifetime_value", sort_dir="asc") == [
        "Carol White",
        "Bob Johnson",
        "Jane Smith",
        "Dan Brown",
    ]
    assert await names(sort_by="name", sort_dir="asc") == sorted(values)
    assert await names(sort_by="created_at", sort_dir="asc") == list(values)

    page = await get_json(client, owner, "/v1/customers", per_page=3, page=2, sort_by="name", sort_dir="asc")
    assert page.keys() == {"data", "meta"} and page["meta"].keys() == V1_META
    assert page["meta"] == {"current_page": 2, "per_page": 3, "total_items": 4, "total_pages": 2}
    assert [c["name"] for c in page["data"]] == ["Jane Smith"]
    assert page["data"][0].keys() == CUSTOMER_KEYS and page["data"][0]["lifetime_value"] == 1500.0

    bad_sort = await client.get("/v1/customers", headers=owner.headers, params={"sort_by": "password"})
    assert bad_sort.status_code == 422 and list(bad_sort.json()["details"]) == ["sort_by"]
    bad_dir = await client.get("/v1/customers", headers=owner.headers, params={"sort_dir": "sideways"})
    assert bad_dir.status_code == 422 and list(bad_dir.json()["details"]) == ["sort_dir"]
    bad_page = await client.get("/v1/customers", headers=owner.headers, params={"per_page": 0})
    assert bad_page.status_code == 422 and list(bad_page.json()["details"]) == ["per_page"]


async def test_customer_validation_and_errors(client: httpx2.AsyncClient, owner: Account) -> None:
    async def field_errors(method: str, url: str, body: dict[str, Any]) -> list[str]:
        response = await client.request(method, url, headers=owner.headers, json=body)
        assert response.status_code == 422, response.text
        assert response.json()["error"] == "validation_error" and response.json()["message"]
        return list(response.json()["details"])

    assert await field_errors("POST", "/v1/customers", {"email": "a@example.com"}) == ["name"]
    assert await field_errors("POST", "/v1/customers", {"name": "A", "email": "not-an-email"}) == ["email"]
    assert await field_errors("POST", "/v1/customers", {"name": "A", "phone": "12"}) == ["phone"]
    assert await field_errors("POST", "/v1/customers", {"name": "A", "colour": "blue"}) == ["colour"]

    jane = await create_customer(client, owner, JANE)
    bob = await create_customer(client, owner, {"name": "Bob", "email": "bob@example.com"})
    url = f"/v1/customers/{jane['id']}"
    assert await field_errors("PATCH", url, {"name": None}) == ["name"]
    assert await field_errors("PATCH", url, {"phone": "call me"}) == ["phone"]
    taken = await client.patch(url, headers=owner.headers, json={"email": "BOB@example.com"})
    assert taken.status_code == 409 and taken.json()["error"] == "conflict" and bob["id"] in taken.json()["message"]

    missing = await client.get("/v1/customers/cust_nope", headers=owner.headers)
    assert missing.status_code == 404
    assert missing.json() == {
        "error": "not_found",
        "message": "Customer not found",
        "resource_type": "customer",
        "resource_id": "cust_nope",
    }
    assert (await client.patch("/v1/customers/cust_nope", headers=owner.headers, json={})).status_code == 404
    assert (await client.get("/v1/customers")).status_code == 401


# ---------------------------------------------------------------- sales


async def test_sale_with_the_spec_body(client: httpx2.AsyncClient, owner: Account) -> None:
    jane = await create_customer(client, owner, JANE)
    response = await client.post(
        "/v1/sales",
        headers=owner.headers,
        json={
            "customer_id": jane["id"],
            "service_id": "serv_123458",
            "service_name": "Consultation Service",
            "amount": 750.00,
            "status": "completed",
            "payment_method": "bank_transfer",
            "notes": "Includes 10% discount",
        },
    )
    assert response.status_code == 201, response.text
    sale = response.json()
    assert sale.keys() == SALE_KEYS
    assert sale["id"].startswith("sale_")
    assert {k: sale[k] for k in SALE_KEYS - {"id", "created_at", "updated_at"}} == {
        "customer_id": jane["id"],
        "customer_name": "Jane Smith",
        "service_id": "serv_123458",
        "service_name": "Consultation Service",
        "amount": 750.0,
        "status": "completed",
        "payment_method": "bank_transfer",
        "notes": "Includes 10% discount",
        "referral_id": None,
    }
    assert await get_json(client, owner, f"/v1/sales/{sale['id']}") == sale
    # The spec's body exactly (no service_name): a sale may name only the service's id.
    bare = await create_sale(client, owner, jane["id"], 750.00, service_id="serv_123458", payment_method="cash")
    assert (bare["service_id"], bare["service_name"], bare["status"]) == ("serv_123458", None, "completed")

    patched = await client.patch(
        f"/v1/sales/{sale['id']}", headers=owner.headers, json={"notes": "Paid in two parts", "payment_method": "card"}
    )
    assert patched.status_code == 200, patched.text
    assert (patched.json()["notes"], patched.json()["payment_method"], patched.json()["status"]) == (
        "Paid in two parts",
        "card",
        "completed",
    )

    async def field_errors(body: dict[str, Any]) -> list[str]:
        bad = await client.post("/v1/sales", headers=owner.headers, json=body)
        assert bad.status_code == 422, bad.text
        return list(bad.json()["details"])

    assert await field_errors({"customer_id": jane["id"], "amount": -1}) == ["amount"]
    assert await field_errors({"customer_id": jane["id"], "amount": 1.005}) == ["amount"]
    assert await field_errors({"customer_id": jane["id"], "amount": 5, "status": "paid"}) == ["status"]
    assert await field_errors({"customer_id": "cust_nope", "amount": 5}) == ["customer_id"]
    assert await field_errors({"amount": 5}) == ["customer_id"]
    missing = await client.get("/v1/sales/sale_nope", headers=owner.headers)
    assert missing.status_code == 404
    assert missing.json() == {
        "error": "not_found",
        "message": "Sale not found",
        "resource_type": "sale",
        "resource_id": "sale_nope",
    }
    assert (await client.patch("/v1/sales/sale_nope", headers=owner.headers, json={})).status_code == 404


async def test_sale_list_filters_sorts_and_pages(client: httpx2.AsyncClient, owner: Account) -> None:
    jane = await create_customer(client, owner, JANE)
    bob = await create_customer(client, owner, {"name": "Bob Johnson", "email": "bob@example.com"})
    made = [
        await create_sale(client, owner, jane["id"], 1000.0),
        await create_sale(client, owner, jane["id"], 500.0, status="pending"),
        await create_sale(client, owner, bob["id"], 250.0),
        await create_sale(client, owner, bob["id"], 750.0, status="pending"),
    ]
    await set_sale_status(client, owner, made[3]["id"], "cancelled")
    ids = [s["id"] for s in made]

    async def listed(**params: Any) -> list[str]:
        body = await get_json(client, owner, "/v1/sales", **params)
        assert body.keys() == {"data", "meta"}
        for sale in body["data"]:
            assert sale.keys() == SALE_KEYS
        return [s["id"] for s in body["data"]]

    assert await listed() == ids[::-1]
    assert await listed(customer_id=jane["id"]) == [ids[1], ids[0]]
    assert await listed(status="completed") == [ids[2], ids[0]]
    assert await listed(status="cancelled") == [ids[3]]
    assert await listed(customer_id=bob["id"], status="pending") == []
    assert await listed(sort_by="amount", sort_dir="asc") == [ids[2], ids[1], ids[3], ids[0]]
    assert await listed(sort_by="amount") == [ids[0], ids[3], ids[1], ids[2]]
    assert await listed(sort_by="created_at", sort_dir="asc", per_page=3, page=2) == [ids[3]]
    names = {s["customer_name"] for s in (await get_json(client, owner, "/v1/sales"))["data"]}
    assert names == {"Jane Smith", "Bob Johnson"}
    page = await get_json(client, owner, "/v1/sales", per_page=2)
    assert page["meta"] == {"current_page": 1, "per_page": 2, "total_items": 4, "total_pages": 2}

    bad_status = await client.get("/v1/sales", headers=owner.headers, params={"status": "paid"})
    assert bad_status.status_code == 422 and list(bad_status.json()["details"]) == ["status"]
    bad_sort = await client.get("/v1/sales", headers=owner.headers, params={"sort_by": "notes"})
    assert bad_sort.status_code == 422 and list(bad_sort.json()["details"]) == ["sort_by"]


async def test_sale_status_transitions(client: httpx2.AsyncClient, owner: Account) -> None:
    jane = await create_customer(client, owner, JANE)
    first = await create_sale(client, owner, jane["id"], 100.0, status="pending")
    second = await create_sale(client, owner, jane["id"], 100.0, status="pending")

    completed = await set_sale_status(client, owner, first["id"], "completed")
    assert completed.keys() == SALE_KEYS and completed["status"] == "completed"
    assert completed["updated_at"] >= first["updated_at"]
    assert (await set_sale_status(client, owner, first["id"], "completed"))["status"] == "completed"  # no change
    assert (await set_sale_status(client, owner, first["id"], "refunded"))["status"] == "refunded"
    assert (await set_sale_status(client, owner, second["id"], "cancelled"))["status"] == "cancelled"

    for sale_id, status in (
        (first["id"], "completed"),
        (first["id"], "pending"),
        (second["id"], "completed"),
        (second["id"], "refunded"),
    ):
        refused = await client.patch(f"/v1/sales/{sale_id}", headers=owner.headers, json={"status": status})
        assert refused.status_code == 409, (sale_id, status, refused.text)
        assert refused.json()["error"] == "conflict" and sale_id in refused.json()["message"]
    assert (await get_json(client, owner, f"/v1/sales/{first['id']}"))["status"] == "refunded"
    assert (await get_json(client, owner, f"/v1/sales/{second['id']}"))["status"] == "cancelled"

    third = await create_sale(client, owner, jane["id"], 100.0)
    back = await client.patch(f"/v1/sales/{third['id']}", headers=owner.headers, json={"status": "pending"})
    assert back.status_code == 409
    bad = await client.patch(f"/v1/sales/{third['id']}", headers=owner.headers, json={"status": "paid"})
    assert bad.status_code == 422 and list(bad.json()["details"]) == ["status"]


async def test_a_sale_with_a_referral_code_converts_the_use(
    client: httpx2.AsyncClient, owner: Account, db: async_sessionmaker[AsyncSession]
) -> None:
    jane = await create_customer(client, owner, JANE)
    referral = await create_referral(client, owner, jane["id"], max_uses=10)
    # A referred lead becomes a customer and buys, bringing the code (typed in lower case).
    lead = await create_lead(client, owner, {"name": "Bob Johnson", "email": "bob@example.com"})
    bob = await create_customer(client, owner, {"name": "Bob Johnson", "lead_id": lead["id"]})
    sale = await create_sale(client, owner, bob["id"], 300.0, referral_code=f"  {referral['code'].lower()} ")
    assert sale["referral_id"] == referral["id"]
    detail = await get_json(client, owner, f"/v1/referrals/{referral['id']}")
    assert detail["times_used"] == 1
    assert [(u["lead_id"], u["converted"]) for u in detail["uses"]] == [(lead["id"], True)]

    # A walk-in customer (no lead) with the code: the use counts, and is converted by the sale itself.
    walk_in = await create_customer(client, owner, {"name": "Carol", "email": "carol@example.com"})
    carol_sale = await create_sale(client, owner, walk_in["id"], 80.0, referral_code=referral["code"])
    assert carol_sale["referral_id"] == referral["id"]
    detail = await get_json(client, owner, f"/v1/referrals/{referral['id']}")
    assert detail["times_used"] == 2
    assert sorted(u["converted"] for u in detail["uses"]) == [True, True]

    # A lead who redeemed the code earlier and then buys without it: the sale is still the referral's.
    dan_lead = await create_lead(client, owner, {"name": "Dan", "email": "dan@example.com"})
    tracked = await client.post(
        f"/v1/referrals/{referral['id']}/track", headers=owner.headers, json={"lead_id": dan_lead["id"]}
    )
    assert tracked.status_code == 200, tracked.text
    dan = await create_customer(client, owner, {"name": "Dan", "lead_id": dan_lead["id"]})
    dan_sale = await create_sale(client, owner, dan["id"], 40.0)
    assert dan_sale["referral_id"] == referral["id"]
    detail = await get_json(client, owner, f"/v1/referrals/{referral['id']}")
    assert detail["times_used"] == 3
    assert {u["lead_id"]: u["converted"] for u in detail["uses"] if u["lead_id"]} == {
        lead["id"]: True,
        dan_lead["id"]: True,
    }
    async with db() as session:
        uses = await session.scalar(
            select(func.count()).select_from(ReferralUse).where(ReferralUse.referral_id == referral["id"])
        )
    assert uses == 3


async def test_a_bad_referral_code_is_a_422_and_writes_no_sale(
    client: httpx2.AsyncClient, owner: Account, db: async_sessionmaker[AsyncSession]
) -> None:
    jane = await create_customer(client, owner, JANE)
    bob = await create_customer(client, owner, {"name": "Bob", "email": "bob@example.com"})
    used_up = await create_referral(client, owner, jane["id"], max_uses=1)
    lapsed = await create_referral(client, owner, jane["id"])
    await expire(db, lapsed["id"])
    await create_sale(client, owner, bob["id"], 10.0, referral_code=used_up["code"])  # its only use

    stranger = await register(client, company="Other Co")
    sam = await create_customer(client, stranger, {"name": "Sam", "email": "sam@example.com"})
    theirs = await create_referral(client, stranger, sam["id"])

    for code in ("NOPE-22222222", used_up["code"], lapsed["code"], theirs["code"]):
        refused = await client.post(
            "/v1/sales", headers=owner.headers, json={"customer_id": bob["id"], "amount": 50.0, "referral_code": code}
        )
        assert refused.status_code == 422, (code, refused.text)
        assert refused.json()["error"] == "validation_error"
        assert list(refused.json()["details"]) == ["referral_code"]
    own = await client.post(
        "/v1/sales",
        headers=owner.headers,
        json={"customer_id": jane["id"], "amount": 50.0, "referral_code": lapsed["code"]},
    )
    assert own.status_code == 422 and list(own.json()["details"]) == ["referral_code"]

    async with db() as session:
        assert await session.scalar(select(func.count()).select_from(Sale)) == 1  # Bob's first sale only
    for referral in (used_up, lapsed):
        after = await get_json(client, owner, f"/v1/referrals/{referral['id']}")
        assert after["times_used"] == (1 if referral is used_up else 0)
    assert (await get_json(client, stranger, f"/v1/referrals/{theirs['id']}"))["times_used"] == 0


async def test_a_retried_sale_is_recorded_once(
    client: httpx2.AsyncClient, owner: Account, db: async_sessionmaker[AsyncSession]
) -> None:
    jane = await create_customer(client, owner, JANE)
    bob = await create_customer(client, owner, {"name": "Bob", "email": "bob@example.com"})
    referral = await create_referral(client, owner, jane["id"], max_uses=3)
    headers = {**owner.headers, "Idempotency-Key": "sale-bob-1"}
    body = {"customer_id": bob["id"], "amount": 120.0, "referral_code": referral["code"]}
    first = await client.post("/v1/sales", headers=headers, json=body)
    retry = await client.post("/v1/sales", headers=headers, json=body)
    assert first.status_code == retry.status_code == 201
    assert retry.json() == first.json() and retry.headers["idempotent-replayed"] == "true"
    # One sale, one use of the code, one contribution to the lifetime value.
    async with db() as session:
        assert await session.scalar(select(func.count()).select_from(Sale)) == 1
    assert (await get_json(client, owner, f"/v1/referrals/{referral['id']}"))["times_used"] == 1
    assert (await get_json(client, owner, f"/v1/customers/{bob['id']}"))["lifetime_value"] == 120.0
    changed = await client.post("/v1/sales", headers=headers, json={**body, "amount": 99.0})
    assert changed.status_code == 409 and changed.json()["error"] == "conflict"


# ---------------------------------------------------------------- the review request a sale starts


async def test_a_completed_sale_starts_a_review_request(
    client: httpx2.AsyncClient, owner: Account, temporal_client: Client
) -> None:
    jane = await create_customer(client, owner, JANE)
    # No active review_referral config: a completed sale asks nothing.
    quiet = await create_sale(client, owner, jane["id"], 100.0)
    assert await runs_of(client, owner, quiet["id"]) == []

    config = await add_review_config(client, owner)
    sale = await create_sale(client, owner, jane["id"], 100.0)
    [run] = await runs_of(client, owner, sale["id"])
    assert (run["trigger_type"], run["trigger_id"], run["status"]) == ("sale_completed", sale["id"], "running")
    assert run["workflow_config_id"] == config["id"] and run["workflow_name"] == "Review & Referral"
    description = await temporal_client.get_workflow_handle(workflow_id_for(sale["id"])).describe()
    assert description.workflow_type == "ReviewRequestWorkflow"
    assert description.status == WorkflowExecutionStatus.RUNNING

    # The sale's review row waits as "requested" (nothing has been sent: the first message waits ten hours).
    [review] = (await get_json(client, owner, "/v1/reviews", customer_id=jane["id"]))["data"]
    assert (review["sale_id"], review["status"], review["platform"]) == (sale["id"], "requested", "Google")
    assert review["request_sent_at"] is None

    # A pending sale asks once it is completed, not before.
    pending = await create_sale(client, owner, jane["id"], 100.0, status="pending")
    assert await runs_of(client, owner, pending["id"]) == []
    await set_sale_status(client, owner, pending["id"], "completed")
    [later] = await runs_of(client, owner, pending["id"])
    assert (later["trigger_type"], later["status"]) == ("sale_completed", "running")

    # A cancelled pending sale never asks.
    dropped = await create_sale(client, owner, jane["id"], 100.0, status="pending")
    await set_sale_status(client, owner, dropped["id"], "cancelled")
    assert await runs_of(client, owner, dropped["id"]) == []

    # An inactive config asks nothing either.
    await client.patch(f"/v1/workflow-configs/{config['id']}", headers=owner.headers, json={"active": False})
    off = await create_sale(client, owner, jane["id"], 100.0)
    assert await runs_of(client, owner, off["id"]) == []


async def test_a_refund_stops_the_review_request(
    client: httpx2.AsyncClient, owner: Account, temporal_client: Client, worker: None
) -> None:
    await add_review_config(client, owner)
    jane = await create_customer(client, owner, JANE)
    sale = await create_sale(client, owner, jane["id"], 100.0)
    [run] = await runs_of(client, owner, sale["id"])
    running = await get_json(client, owner, f"/v1/workflow-runs/{run['id']}")
    assert running["status"] == "running" and running["completed_at"] is None

    await set_sale_status(client, owner, sale["id"], "refunded")
    stopped = await wait_for(
        client, owner, f"/v1/workflow-runs/{run['id']}", lambda body: body["status"] == "stopped", seconds=30
    )
    assert stopped["completed_at"] is not None
    assert await review_events(temporal_client, sale["id"]) == [ReviewEvent.refunded]
    assert stopped["results"]["review_id"] is not None and stopped["results"]["referral_id"] is None
    # Nothing was sent, and the refund took the sale out of the lifetime value.
    assert (await get_json(client, owner, f"/v1/customers/{jane['id']}"))["lifetime_value"] == 0.0
