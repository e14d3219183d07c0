"""Reviews and referrals on both surfaces (``/v1`` and ``/api/review-referral``), on SQLite and PostgreSQL.

One stored vocabulary, each surface's own words: ``/v1`` says "completed", "Google" and "active" where
``/api`` says "submitted", "google" and "created"/"sent"/"used".
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from typing import Any

import httpx2
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.client import Client

import db.referrals as issuing
from db.models import MessageDelivery
from schemas.review_request import ReviewEvent
from tests.api.review_support import (
    ALICE,
    API_ENVELOPE,
    API_REFERRAL_KEYS,
    API_REVIEW_KEYS,
    JANE,
    OFFER,
    REFERRAL_DETAIL_KEYS,
    REFERRAL_KEYS,
    REFERRAL_SUMMARY_KEYS,
    REFERRER_OFFER,
    REVIEW_CONFIG,
    REVIEW_KEYS,
    REVIEW_LINK,
    REVIEW_SUMMARY_KEYS,
    USE_KEYS,
    V1_META,
    add_leads,
    add_review_config,
    api_id,
    code_pattern,
    create_customer,
    create_referral,
    create_sale,
    expire,
    get_json,
    review_events,
    runs_of,
    set_review_link,
    terminated_afterwards,
    wait_for,
)
from tests.conftest import Account, register

API = "/api/review-referral"


@pytest.fixture(autouse=True)
async def _terminate_runs(temporal_client: Client, db: async_sessionmaker[AsyncSession]) -> AsyncIterator[None]:
    async with terminated_afterwards(temporal_client, db):
        yield


def moment(value: str) -> datetime:
    return datetime.fromisoformat(value)


def api_detail_fields(response: httpx2.Response) -> list[str]:
    """The fields a ``/api`` 422 names (``{"detail": [{"loc", "field", "msg"}]}``)."""
    assert response.status_code == 422, response.text
    detail = response.json()["detail"]
    assert response.json().keys() == {"detail"}
    for error in detail:
        assert error.keys() == {"loc", "field", "msg"} and error["msg"]
    return [error["field"] for error in detail]


def v1_detail_fields(response: httpx2.Response) -> list[str]:
    """The fields a ``/v1`` 422 names (``{"error", "message", "details": {field: [...]}}``)."""
    assert response.status_code == 422, response.text
    body = response.json()
    assert body.keys() == {"error", "message", "details"} and body["error"] == "validation_error"
    return list(body["details"])


# ---------------------------------------------------------------- /v1 reviews


async def test_v1_review_request_and_update_with_the_spec_bodies(
    client: httpx2.AsyncClient, owner: Account, temporal_client: Client
) -> None:
    jane = await create_customer(client, owner, JANE)
    sale = await create_sale(client, owner, jane["id"], 500.0, service_name="Maintenance Service")
    config = await add_review_config(client, owner)  # after the sale: the sale started no request of its own
    body = {
        "customer_id": jane["id"],
        "sale_id": sale["id"],
        "platform": "Google",
        "message_template": "thank_you_review_request",
    }
    response = await client.post("/v1/reviews/request", headers=owner.headers, json=body)
    assert response.status_code == 201, response.text
    review = response.json()
    assert review.keys() == REVIEW_KEYS
    assert review["id"].startswith("rev_")
    assert {k: review[k] for k in REVIEW_KEYS - {"id", "request_sent_at"}} == {
        "customer_id": jane["id"],
        "customer_name": "Jane Smith",
        "sale_id": sale["id"],
        "platform": "Google",
        "rating": None,
        "content": None,
        "status": "requested",
        "completed_at": None,
        "review_url": None,
    }
    [run] = await runs_of(client, owner, sale["id"])
    assert (run["trigger_type"], run["status"], run["workflow_config_id"]) == (
        "review_requested",
        "running",
        config["id"],
    )

    # Asking again for the same sale reuses the running request.
    again = await client.post("/v1/reviews/request", headers=owner.headers, json=body)
    assert again.status_code == 200, again.text
    assert again.json()["id"] == review["id"]
    assert len(await runs_of(client, owner, sale["id"])) == 1
    assert await get_json(client, owner, f"/v1/reviews/{review['id']}") == again.json()

    # The spec's Update Review body records what the customer left; the request stops reminding.
    patched = await client.patch(
        f"/v1/reviews/{review['id']}",
        headers=owner.headers,
        json={
            "status": "completed",
            "rating": 5,
            "content": "Amazing service! Will definitely recommend to friends.",
            "review_url": "https://g.co/review/ghi789",
        },
    )
    assert patched.status_code == 200, patched.text
    left = patched.json()
    assert left.keys() == REVIEW_KEYS
    assert (left["status"], left["rating"], left["platform"]) == ("completed", 5, "Google")
    assert left["content"] == "Amazing service! Will definitely recommend to friends."
    assert left["review_url"] == "https://g.co/review/ghi789"
    assert left["completed_at"] is not None
    assert await review_events(temporal_client, sale["id"]) == [ReviewEvent.review_recorded]
    # Recording it again sends nothing more.
    await client.patch(f"/v1/reviews/{review['id']}", headers=owner.headers, json={"content": "Edited"})
    assert await review_events(temporal_client, sale["id"]) == [ReviewEvent.review_recorded]

    # The customer's page lists it in /v1 words.
    [summary] = (await get_json(client, owner, f"/v1/customers/{jane['id']}"))["reviews"]
    assert summary.keys() == REVIEW_SUMMARY_KEYS
    assert summary == {
        "id": review["id"],
        "platform": "Google",
        "rating": 5,
        "status": "completed",
        "completed_at": left["completed_at"],
    }
    # /api shows the same review in its own words.
    shown = await get_json(client, owner, f"{API}/reviews/{api_id(review['id'])}")
    assert (shown["status"], shown["platform"], shown["submitted_at"]) == ("submitted", "google", left["completed_at"])


async def test_v1_review_request_refusals(client: httpx2.AsyncClient, owner: Account) -> None:
    jane = await create_customer(client, owner, JANE)
    bob = await create_customer(client, owner, {"name": "Bob Johnson", "email": "bob@example.com"})
    sale = await create_sale(client, owner, jane["id"])
    bobs_sale = await create_sale(client, owner, bob["id"])
    pending = await create_sale(client, owner, jane["id"], status="pending")

    async def ask(**fields: Any) -> httpx2.Response:
        body = {"customer_id": jane["id"], "sale_id": sale["id"], **fields}
        return await client.post("/v1/reviews/request", headers=owner.headers, json=body)

    yelp = await ask(platform="Yelp")
    assert v1_detail_fields(yelp) == ["platform"]
    assert "Yelp" in yelp.json()["details"]["platform"][0]
    assert v1_detail_fields(await ask(platform="MySpace")) == ["platform"]
    assert v1_detail_fields(await ask(sale_id=bobs_sale["id"])) == ["sale_id"]
    assert v1_detail_fields(await ask(sale_id="sale_nope")) == ["sale_id"]
    assert v1_detail_fields(await ask(customer_id="cust_nope")) == ["customer_id"]
    # No active config: only the built-in templates exist.
    assert v1_detail_fields(await ask(message_template="thank_you_review_request")) == ["message_template"]
    not_yet = await ask(sale_id=pending["id"])
    assert not_yet.status_code == 409, not_yet.text
    assert not_yet.json()["error"] == "conflict" and pending["id"] in not_yet.json()["message"]
    assert (await get_json(client, owner, "/v1/reviews"))["data"] == []  # nothing was written

    # Without a platform, the request is for Google; the refused ones left no run behind.
    asked = await ask()
    assert asked.status_code == 201 and asked.json()["platform"] == "Google"
    assert len(await runs_of(client, owner, sale["id"])) == 1
    assert await runs_of(client, owner, bobs_sale["id"]) == []

    review_url = f"/v1/reviews/{asked.json()['id']}"
    for bad in ({"rating": 0}, {"rating": 6}, {"rating": "five"}):
        assert v1_detail_fields(await client.patch(review_url, headers=owner.headers, json=bad)) == ["rating"]
    bad_url = await client.patch(review_url, headers=owner.headers, json={"review_url": "javascript:alert(1)"})
    assert v1_detail_fields(bad_url) == ["review_url"]
    bad_status = await client.patch(review_url, headers=owner.headers, json={"status": "glowing"})
    assert v1_detail_fields(bad_status) == ["status"]
    assert (await get_json(client, owner, review_url))["rating"] is None
    missing = await client.get("/v1/reviews/rev_nope", headers=owner.headers)
    assert missing.status_code == 404
    assert missing.json() == {
        "error": "not_found",
        "message": "Review not found",
        "resource_type": "review",
        "resource_id": "rev_nope",
    }
    assert (await client.patch("/v1/reviews/rev_nope", headers=owner.headers, json={"rating": 4})).status_code == 404


async def test_v1_review_list_filters_and_pages(client: httpx2.AsyncClient, owner: Account) -> None:
    jane = await create_customer(client, owner, JANE)
    bob = await create_customer(client, owner, {"name": "Bob Johnson", "email": "bob@example.com"})
    first_sale = await create_sale(client, owner, jane["id"])
    second_sale = await create_sale(client, owner, bob["id"])

    async def request(customer_id: str, sale_id: str) -> str:
        response = await client.post(
            "/v1/reviews/request", headers=owner.headers, json={"customer_id": customer_id, "sale_id": sale_id}
        )
        assert response.status_code == 201, response.text
        review_id: str = response.json()["id"]
        return review_id

    requested = await request(jane["id"], first_sale["id"])
    completed = await request(bob["id"], second_sale["id"])
    await client.patch(f"/v1/reviews/{completed}", headers=owner.headers, json={"rating": 4})
    # A Yelp review Bob left on his own, recorded through /api.
    yelp = await client.post(
        f"{API}/reviews",
        headers=owner.headers,
        json={"customer_id": api_id(bob["id"]), "platform": "yelp", "rating": 5, "content": "Great service"},
    )
    assert yelp.status_code == 201, yelp.text
    on_yelp = yelp.json()["id"].replace("review-", "rev_")

    async def ids(**params: Any) -> list[str]:
        body = await get_json(client, owner, "/v1/reviews", **params)
        assert body.keys() == {"data", "meta"} and body["meta"].keys() == V1_META
        for review in body["data"]:
            assert review.keys() == REVIEW_KEYS
        return [review["id"] for review in body["data"]]

    assert await ids() == [on_yelp, completed, requested]
    assert await ids(status="completed") == [on_yelp, completed]
    assert await ids(status="requested") == [requested]
    assert await ids(status="verified") == []
    assert await ids(platform="Yelp") == [on_yelp] == await ids(platform="yelp")
    assert await ids(platform="Google") == [completed, requested]
    assert await ids(customer_id=bob["id"]) == [on_yelp, completed]
    assert await ids(customer_id=bob["id"], status="completed", platform="Google") == [completed]
    assert await ids(per_page=2, page=2) == [requested]
    page = await get_json(client, owner, "/v1/reviews", per_page=2)
    assert page["meta"] == {"current_page": 1, "per_page": 2, "total_items": 3, "total_pages": 2}
    shown = {r["id"]: r for r in page["data"]}
    assert (shown[on_yelp]["platform"], shown[on_yelp]["status"], shown[on_yelp]["sale_id"]) == (
        "Yelp",
        "completed",
        None,
    )
    assert shown[on_yelp]["customer_name"] == "Bob Johnson"

    assert v1_detail_fields(await client.get("/v1/reviews", headers=owner.headers, params={"status": "x"})) == [
        "status"
    ]
    assert v1_detail_fields(await client.get("/v1/reviews", headers=owner.headers, params={"platform": "x"})) == [
        "platform"
    ]


async def test_a_review_request_goes_out_with_the_company_review_link(
    client: httpx2.AsyncClient, owner: Account, db: async_sessionmaker[AsyncSession], worker: None
) -> None:
    await set_review_link(client, owner)
    jane = await create_customer(client, owner, JANE)
    sale = await create_sale(client, owner, jane["id"], service_name="Premium Package")
    await add_review_config(client, owner)
    asked = await client.post(
        "/v1/reviews/request",
        headers=owner.headers,
        json={"customer_id": jane["id"], "sale_id": sale["id"], "message_template": "thank_you_review_request"},
    )
    assert asked.status_code == 201, asked.text
    # Asked by hand, the request goes out now (the config's ten-hour delay is for automatic requests).
    sent = await wait_for(
        client, owner, f"/v1/reviews/{asked.json()['id']}", lambda review: review["request_sent_at"] is not None
    )
    assert sent["status"] == "requested"
    async with db() as session:
        [delivery] = await session.scalars(select(MessageDelivery).where(MessageDelivery.customer_id == jane["id"]))
    assert delivery.recipient == "jane@example.com" and delivery.channel == "email"
    assert delivery.body == f"Thank you Jane! A review helps: {REVIEW_LINK}"
    assert delivery.subject == "How did we do, Jane?"


# ---------------------------------------------------------------- /api reviews


async def test_api_reviews_with_the_spec_bodies(client: httpx2.AsyncClient, owner: Account) -> None:
    jane = await create_customer(client, owner, JANE)
    sale = await create_sale(client, owner, jane["id"])
    body = {"customer_id": api_id(jane["id"]), "sale_id": api_id(sale["id"])}
    response = await client.post(f"{API}/reviews", headers=owner.headers, json=body)
    assert response.status_code == 201, response.text
    review = response.json()
    assert review.keys() == API_REVIEW_KEYS
    assert review["id"].startswith("review-")
    assert review["company_id"] == api_id(owner.company_id) and review["company_id"].startswith("company-")
    assert review["customer_id"] == api_id(jane["id"]) and review["customer_id"].startswith("customer-")
    assert review["sale_id"] == api_id(sale["id"]) and review["sale_id"].startswith("sale-")
    assert (review["status"], review["platform"], review["rating"], review["content"]) == (
        "requested",
        "google",
        None,
        None,
    )
    assert (review["submitted_at"], review["verified_at"], review["request_sent_at"]) == (None, None, None)
    assert [run["trigger_type"] for run in await runs_of(client, owner, sale["id"])] == ["review_requested"]

    again = await client.post(f"{API}/reviews", headers=owner.headers, json=body)
    assert again.status_code == 200 and again.json()["id"] == review["id"]

    url = f"{API}/reviews/{review['id']}"
    assert await get_json(client, owner, url) == again.json()
    canonical = review["id"].replace("review-", "rev_")
    assert (await get_json(client, owner, f"{API}/reviews/{canonical}"))["id"] == review["id"]

    # The spec's Update Review body.
    put = await client.put(
        url,
        headers=owner.headers,
        json={
            "rating": 5,
            "content": "Great service!",
            "platform": "google",
            "status": "submitted",
            "submitted_at": "2025-06-02T10:00:00Z",
        },
    )
    assert put.status_code == 200, put.text
    updated = put.json()
    assert updated.keys() == API_REVIEW_KEYS
    assert {k: updated[k] for k in ("rating", "content", "platform", "status", "submitted_at", "verified_at")} == {
        "rating": 5,
        "content": "Great service!",
        "platform": "google",
        "status": "submitted",
        "submitted_at": "2025-06-02T10:00:00Z",
        "verified_at": None,
    }
    assert updated["updated_at"] >= review["updated_at"]
    v1 = await get_json(client, owner, f"/v1/reviews/{canonical}")
    assert (v1["status"], v1["platform"], v1["completed_at"]) == ("completed", "Google", "2025-06-02T10:00:00Z")

    verified = await client.put(url, headers=owner.headers, json={"status": "verified"})
    assert verified.status_code == 200
    assert verified.json()["status"] == "verified" and verified.json()["verified_at"] is not None
    assert verified.json()["submitted_at"] == "2025-06-02T10:00:00Z"
    assert (await get_json(client, owner, f"/v1/reviews/{canonical}"))["status"] == "verified"

    assert api_detail_fields(await client.put(url, headers=owner.headers, json={"rating": 6})) == ["rating"]
    assert api_detail_fields(await client.put(url, headers=owner.headers, json={"status": "completed!"})) == ["status"]
    missing = await client.get(f"{API}/reviews/review-nope", headers=owner.headers)
    assert missing.status_code == 404 and missing.json() == {"detail": "Review not found"}
    assert (await client.put(f"{API}/reviews/review-nope", headers=owner.headers, json={})).status_code == 404


async def test_api_records_a_review_left_on_its_own_and_lists(client: httpx2.AsyncClient, owner: Account) -> None:
    jane = await create_customer(client, owner, JANE)
    bob = await create_customer(client, owner, {"name": "Bob Johnson", "email": "bob@example.com"})
    # A review Bob left on Yelp without being asked: recording it is fine (asking there is not).
    left = await client.post(
        f"{API}/reviews",
        headers=owner.headers,
        json={"customer_id": api_id(bob["id"]), "platform": "yelp", "rating": 4, "content": "Good"},
    )
    assert left.status_code == 201, left.text
    yelp = left.json()
    assert yelp.keys() == API_REVIEW_KEYS
    assert (yelp["status"], yelp["platform"], yelp["rating"], yelp["sale_id"]) == ("submitted", "yelp", 4, None)
    assert yelp["submitted_at"] is not None and yelp["request_sent_at"] is None
    asking_yelp = await client.post(
        f"{API}/reviews",
        headers=owner.headers,
        json={
            "customer_id": api_id(bob["id"]),
            "sale_id": api_id((await create_sale(client, owner, bob["id"]))["id"]),
            "platform": "yelp",
        },
    )
    assert api_detail_fields(asking_yelp) == ["platform"]

    sale = await create_sale(client, owner, jane["id"])
    requested = (
        await client.post(
            f"{API}/reviews",
            headers=owner.headers,
            json={"customer_id": api_id(jane["id"]), "sale_id": api_id(sale["id"])},
        )
    ).json()
    # A rating sent with the sale records the review on the sale's own row.
    rated = await client.post(
        f"{API}/reviews",
        headers=owner.headers,
        json={"customer_id": api_id(jane["id"]), "sale_id": api_id(sale["id"]), "rating": 5, "platform": "google"},
    )
    assert rated.status_code == 201, rated.text
    assert rated.json()["id"] == requested["id"] and rated.json()["status"] == "submitted"
    google = await client.post(
        f"{API}/reviews",
        headers=owner.headers,
        json={"customer_id": api_id(jane["id"]), "platform": "google", "status": "submitted"},
    )
    assert google.status_code == 201 and google.json()["rating"] is None

    async def ids(**params: Any) -> list[str]:
        body = await get_json(client, owner, f"{API}/reviews", **params)
        assert body.keys() == API_ENVELOPE
        for review in body["items"]:
            assert review.keys() == API_REVIEW_KEYS
        return [review["id"] for review in body["items"]]

    everything = await get_json(client, owner, f"{API}/reviews")
    assert (everything["total"], everything["page"], everything["limit"]) == (3, 1, 20)
    assert await ids() == [google.json()["id"], requested["id"], yelp["id"]]
    assert await ids(status="submitted") == [google.json()["id"], requested["id"], yelp["id"]]
    assert await ids(status="requested") == []
    assert await ids(platform="yelp") == [yelp["id"]]
    assert await ids(platform="google", status="submitted") == [google.json()["id"], requested["id"]]
    assert await ids(customer_id=api_id(bob["id"])) == [yelp["id"]]
    assert await ids(limit=1, page=2) == [requested["id"]]
    paged = await get_json(client, owner, f"{API}/reviews", limit=2, page=2)
    assert (paged["total"], paged["page"], paged["limit"]) == (3, 2, 2)
    assert api_detail_fields(await client.get(f"{API}/reviews", headers=owner.headers, params={"status": "x"})) == [
        "status"
    ]

    unknown = await client.post(
        f"{API}/reviews", headers=owner.headers, json={"customer_id": "customer-nope", "sale_id": api_id(sale["id"])}
    )
    assert api_detail_fields(unknown) == ["customer_id"]
    other_sale = await client.post(
        f"{API}/reviews",
        headers=owner.headers,
        json={"customer_id": api_id(bob["id"]), "sale_id": api_id(sale["id"]), "rating": 3},
    )
    assert api_detail_fields(other_sale) == ["sale_id"]
    no_sale = await client.post(f"{API}/reviews", headers=owner.headers, json={"customer_id": api_id(jane["id"])})
    assert api_detail_fields(no_sale) == ["sale_id"]
    pending = await create_sale(client, owner, jane["id"], status="pending")
    refused = await client.post(
        f"{API}/reviews",
        headers=owner.headers,
        json={"customer_id": api_id(jane["id"]), "sale_id": api_id(pending["id"])},
    )
    assert refused.status_code == 409 and isinstance(refused.json()["detail"], str)
    rating = await client.post(
        f"{API}/reviews", headers=owner.headers, json={"customer_id": api_id(jane["id"]), "rating": 0}
    )
    assert api_detail_fields(rating) == ["rating"]


# ---------------------------------------------------------------- /v1 referrals


async def test_v1_referral_with_the_spec_bodies(
    client: httpx2.AsyncClient, owner: Account, db: async_sessionmaker[AsyncSession]
) -> None:
    alice = await create_customer(client, owner, ALICE)
    response = await client.post(
        "/v1/referrals",
        headers=owner.headers,
        json={
            "customer_id": alice["id"],
            "offer": "20% off your first purchase",
            "max_uses": 5,
            "expires_in_days": 180,
        },
    )
    assert response.status_code == 201, response.text
    referral = response.json()
    assert referral.keys() == REFERRAL_KEYS
    assert referral["id"].startswith("ref_")
    assert code_pattern("ALICE").match(referral["code"]), referral["code"]
    assert {k: referral[k] for k in ("customer_id", "customer_name", "offer", "status", "times_used", "max_uses")} == {
        "customer_id": alice["id"],
        "customer_name": "Alice Brown",
        "offer": "20% off your first purchase",
        "status": "active",
        "times_used": 0,
        "max_uses": 5,
    }
    assert moment(referral["expires_at"]) - moment(referral["created_at"]) == timedelta(days=180)
    detail = await get_json(client, owner, f"/v1/referrals/{referral['id']}")
    assert detail.keys() == REFERRAL_DETAIL_KEYS and detail["uses"] == []
    assert {k: detail[k] for k in REFERRAL_KEYS} == referral

    # Defaults: the standard offer, 90 days, no limit.
    plain = await create_referral(client, owner, alice["id"])
    assert (plain["offer"], plain["max_uses"]) == ("10% off your first purchase", None)
    assert moment(plain["expires_at"]) - moment(plain["created_at"]) == timedelta(days=90)
    forever = await create_referral(client, owner, alice["id"], expires_in_days=None)
    assert forever["expires_at"] is None

    # The spec's Track Referral Use body, with real leads.
    first, second = await add_leads(db, owner.company_id, 2)
    track = f"/v1/referrals/{referral['id']}/track"
    used = await client.post(track, headers=owner.headers, json={"lead_id": first})
    assert used.status_code == 200, used.text
    body = used.json()
    assert body.keys() == REFERRAL_DETAIL_KEYS
    assert (body["times_used"], body["status"]) == (1, "active")
    [use] = body["uses"]
    assert use.keys() == USE_KEYS and (use["lead_id"], use["converted"]) == (first, False)
    # The same lead again counts once.
    twice = await client.post(track, headers=owner.headers, json={"lead_id": first})
    assert twice.status_code == 200 and twice.json()["times_used"] == 1 and twice.json()["uses"] == [use]
    third = (await client.post(track, headers=owner.headers, json={"lead_id": second})).json()
    assert third["times_used"] == 2
    assert [u["lead_id"] for u in third["uses"]] == [first, second]
    anonymous = (await client.post(track, headers=owner.headers, json={})).json()
    assert anonymous["times_used"] == 3 and anonymous["uses"][-1]["lead_id"] is None

    # Customer page: the referral summary in /v1 words.
    summaries = {r["id"]: r for r in (await get_json(client, owner, f"/v1/customers/{alice['id']}"))["referrals"]}
    assert summaries[referral["id"]].keys() == REFERRAL_SUMMARY_KEYS
    assert summaries[referral["id"]] == {
        "id": referral["id"],
        "code": referral["code"],
        "status": "active",
        "times_used": 3,
        "created_at": referral["created_at"],
    }

    bad_lead = await client.post(track, headers=owner.headers, json={"lead_id": "lead_nope"})
    assert v1_detail_fields(bad_lead) == ["lead_id"]
    missing = await client.post("/v1/referrals/ref_nope/track", headers=owner.headers, json={})
    assert missing.status_code == 404
    assert missing.json() == {
        "error": "not_found",
        "message": "Referral not found",
        "resource_type": "referral",
        "resource_id": "ref_nope",
    }
    for bad in ({"max_uses": 0}, {"expires_in_days": 0}, {"offer": ""}):
        refused = await client.post("/v1/referrals", headers=owner.headers, json={"customer_id": alice["id"], **bad})
        assert v1_detail_fields(refused) == list(bad)
    unknown = await client.post("/v1/referrals", headers=owner.headers, json={"customer_id": "cust_nope"})
    assert v1_detail_fields(unknown) == ["customer_id"]


async def test_v1_referral_limits_expiry_and_list_filters(
    client: httpx2.AsyncClient, owner: Account, db: async_sessionmaker[AsyncSession]
) -> None:
    jane = await create_customer(client, owner, JANE)
    bob = await create_customer(client, owner, {"name": "Bob Johnson", "email": "bob@example.com"})
    active = await create_referral(client, owner, jane["id"], offer="10% off your first purchase", max_uses=10)
    used_up = await create_referral(client, owner, jane["id"], max_uses=2)
    lapsed = await create_referral(client, owner, bob["id"], offer="15% off your first purchase")
    first, second, third = await add_leads(db, owner.company_id, 3)
    for lead_id in (first, second):
        tracked = await client.post(
            f"/v1/referrals/{used_up['id']}/track", headers=owner.headers, json={"lead_id": lead_id}
        )
        assert tracked.status_code == 200
    exhausted = await client.post(
        f"/v1/referrals/{used_up['id']}/track", headers=owner.headers, json={"lead_id": third}
    )
    assert exhausted.status_code == 409
    assert exhausted.json()["error"] == "conflict" and used_up["code"] in exhausted.json()["message"]
    await expire(db, lapsed["id"])
    expired = await client.post(f"/v1/referrals/{lapsed['id']}/track", headers=owner.headers, json={"lead_id": third})
    assert expired.status_code == 409 and "expired" in expired.json()["message"]
    # A lead that already used the code still counts once, even now that it is used up.
    again = await client.post(f"/v1/referrals/{used_up['id']}/track", headers=owner.headers, json={"lead_id": first})
    assert again.status_code == 200 and again.json()["times_used"] == 2

    async def listed(**params: Any) -> list[tuple[str, str]]:
        body = await get_json(client, owner, "/v1/referrals", **params)
        assert body.keys() == {"data", "meta"} and body["meta"].keys() == V1_META
        for referral in body["data"]:
            assert referral.keys() == REFERRAL_KEYS
        return [(referral["id"], referral["status"]) for referral in body["data"]]

    assert await listed() == [(lapsed["id"], "expired"), (used_up["id"], "exhausted"), (active["id"], "active")]
    assert await listed(status="active") == [(active["id"], "active")]
    assert await listed(status="exhausted") == [(used_up["id"], "exhausted")]
    assert await listed(status="expired") == [(lapsed["id"], "expired")]
    assert await listed(customer_id=jane["id"]) == [(used_up["id"], "exhausted"), (active["id"], "active")]
    assert await listed(customer_id=bob["id"], status="active") == []
    assert await listed(per_page=2, page=2) == [(active["id"], "active")]
    assert (await listed(sort_by="times_used"))[0] == (used_up["id"], "exhausted")
    assert await listed(sort_by="created_at", sort_dir="asc") == (await listed())[::-1]
    page = await get_json(client, owner, "/v1/referrals", per_page=2)
    assert page["meta"] == {"current_page": 1, "per_page": 2, "total_items": 3, "total_pages": 2}
    assert {r["customer_name"] for r in page["data"]} == {"Jane Smith", "Bob Johnson"}
    bad = await client.get("/v1/referrals", headers=owner.headers, params={"status": "used"})
    assert v1_detail_fields(bad) == ["status"]


# ---------------------------------------------------------------- /api referrals


async def test_api_referrals_with_the_spec_bodies(
    client: httpx2.AsyncClient, owner: Account, db: async_sessionmaker[AsyncSession]
) -> None:
    await add_review_config(client, owner)
    jane = await create_customer(client, owner, JANE)
    review = await client.post(
        f"{API}/reviews",
        headers=owner.headers,
        json={"customer_id": api_id(jane["id"]), "platform": "google", "rating": 5},
    )
    response = await client.post(
        f"{API}/referrals",
        headers=owner.headers,
        json={"customer_id": api_id(jane["id"]), "review_id": review.json()["id"]},
    )
    assert response.status_code == 201, response.text
    referral = response.json()
    assert referral.keys() == API_REFERRAL_KEYS
    assert referral["id"].startswith("referral-")
    assert (referral["company_id"], referral["customer_id"], referral["review_id"]) == (
        api_id(owner.company_id),
        api_id(jane["id"]),
        review.json()["id"],
    )
    assert code_pattern("JANE").match(referral["code"]), referral["code"]
    assert referral["status"] == "created"
    # The review config's offer, the same whether or not a review was left.
    assert referral["offer"] == {"referrer_offer": REFERRER_OFFER, "description": OFFER}
    assert (referral["times_used"], referral["max_uses"]) == (0, 5)
    assert moment(referral["expires_at"]) - moment(referral["created_at"]) == timedelta(days=30)
    unreviewed = await client.post(f"{API}/referrals", headers=owner.headers, json={"customer_id": api_id(jane["id"])})
    assert unreviewed.status_code == 201
    assert unreviewed.json()["offer"] == referral["offer"] and unreviewed.json()["review_id"] is None

    url = f"{API}/referrals/{referral['id']}"
    assert await get_json(client, owner, url) == referral
    canonical = referral["id"].replace("referral-", "ref_")
    assert (await get_json(client, owner, f"{API}/referrals/{canonical}"))["id"] == referral["id"]
    v1 = await get_json(client, owner, f"/v1/referrals/{canonical}")
    assert (v1["status"], v1["offer"], v1["code"]) == ("active", OFFER, referral["code"])

    # The spec's Process Referral Use body, with a real lead (and the code typed in lower case).
    [lead] = await add_leads(db, owner.company_id, 1)
    used = await client.post(
        f"{API}/referrals/use", headers=owner.headers, json={"code": referral["code"].lower(), "lead_id": api_id(lead)}
    )
    assert used.status_code == 200, used.text
    assert used.json() == {
        "success": True,
        "referral_id": referral["id"],
        "lead_id": api_id(lead),
        "offer": {"description": OFFER},
    }
    after = await get_json(client, owner, url)
    assert (after["status"], after["times_used"]) == ("used", 1)
    assert (await get_json(client, owner, f"/v1/referrals/{canonical}"))["status"] == "active"
    again = await client.post(
        f"{API}/referrals/use", headers=owner.headers, json={"code": referral["code"], "lead_id": lead}
    )
    assert again.status_code == 200 and again.json()["lead_id"] == api_id(lead)
    assert (await get_json(client, owner, url))["times_used"] == 1  # the same lead counts once

    stranger_review = await client.post(
        f"{API}/reviews",
        headers=owner.headers,
        json={
            "customer_id": api_id((await create_customer(client, owner, ALICE))["id"]),
            "platform": "google",
            "rating": 4,
        },
    )
    wrong_review = await client.post(
        f"{API}/referrals",
        headers=owner.headers,
        json={"customer_id": api_id(jane["id"]), "review_id": stranger_review.json()["id"]},
    )
    assert api_detail_fields(wrong_review) == ["review_id"]
    unknown = await client.post(f"{API}/referrals", headers=owner.headers, json={"customer_id": "customer-nope"})
    assert api_detail_fields(unknown) == ["customer_id"]
    missing = await client.get(f"{API}/referrals/referral-nope", headers=owner.headers)
    assert missing.status_code == 404 and missing.json() == {"detail": "Referral not found"}


async def test_api_referral_defaults_statuses_and_refusals(
    client: httpx2.AsyncClient, owner: Account, db: async_sessionmaker[AsyncSession]
) -> None:
    jane = await create_customer(client, owner, JANE)

    async def issue() -> dict[str, Any]:
        response = await client.post(
            f"{API}/referrals", headers=owner.headers, json={"customer_id": api_id(jane["id"])}
        )
        assert response.status_code == 201, response.text
        body: dict[str, Any] = response.json()
        return body

    # No review config: the built-in offer, 90 days, no limit.
    plain = await issue()
    assert plain["offer"] == {
        "referrer_offer": "10% off your next purchase",
        "description": "10% off your first purchase",
    }
    assert plain["max_uses"] is None
    assert moment(plain["expires_at"]) - moment(plain["created_at"]) == timedelta(days=90)
    await add_review_config(client, owner, {"referral": {**REVIEW_CONFIG["actions"]["referral"], "max_uses": 1}})
    single, lapsed, fresh = await issue(), await issue(), await issue()
    await expire(db, lapsed["id"].replace("referral-", "ref_"))
    first, second = await add_leads(db, owner.company_id, 2)

    async def use(code: str, lead_id: str | None) -> httpx2.Response:
        body = {"code": code, "lead_id": api_id(lead_id) if lead_id else None}
        return await client.post(f"{API}/referrals/use", headers=owner.headers, json=body)

    assert (await use(single["code"], first)).status_code == 200
    exhausted = await use(single["code"], second)
    assert exhausted.status_code == 409, exhausted.text
    assert exhausted.json().keys() == {"detail"} and single["code"] in exhausted.json()["detail"]
    expired = await use(lapsed["code"], first)
    assert expired.status_code == 409 and "expired" in expired.json()["detail"]
    unknown = await use("NOPE-22222222", first)
    assert unknown.status_code == 404 and unknown.json() == {"detail": "Referral code not found"}
    assert api_detail_fields(await use(fresh["code"], "lead_nope")) == ["lead_id"]
    no_lead = await use(fresh["code"], None)
    assert no_lead.status_code == 200 and no_lead.json()["lead_id"] is None

    async def statuses(**params: Any) -> dict[str, str]:
        body = await get_json(client, owner, f"{API}/referrals", **params)
        assert body.keys() == API_ENVELOPE
        for referral in body["items"]:
            assert referral.keys() == API_REFERRAL_KEYS
        return {referral["id"]: referral["status"] for referral in body["items"]}

    assert await statuses() == {
        plain["id"]: "created",
        single["id"]: "used",  # exhausted is "used" in /api words
        lapsed["id"]: "expired",
        fresh["id"]: "used",
    }
    assert await statuses(status="created") == {plain["id"]: "created"}
    assert await statuses(status="used") == {single["id"]: "used", fresh["id"]: "used"}
    assert await statuses(status="expired") == {lapsed["id"]: "expired"}
    assert await statuses(status="sent") == {}
    assert await statuses(customer_id=api_id(jane["id"]), limit=1, page=4) == {plain["id"]: "created"}
    paged = await get_json(client, owner, f"{API}/referrals", limit=3)
    assert (paged["total"], paged["page"], paged["limit"], len(paged["items"])) == (4, 1, 3, 3)
    v1 = await get_json(client, owner, f"/v1/referrals/{single['id'].replace('referral-', 'ref_')}")
    assert (v1["status"], v1["times_used"]) == ("exhausted", 1)
    bad = await client.get(f"{API}/referrals", headers=owner.headers, params={"status": "active"})
    assert api_detail_fields(bad) == ["status"]


@pytest.fixture
def colliding_codes(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The code generator hands out the same code twice, then a fresh one."""
    codes = ["JANE-AAAAAAAA", "JANE-AAAAAAAA", "JANE-BBBBBBBB", "JANE-CCCCCCCC"]
    handed: list[str] = []

    def next_code(name: str) -> str:
        code = codes[len(handed)]
        handed.append(code)
        return code

    monkeypatch.setattr(issuing, "referral_code", next_code)
    return handed


async def test_codes_are_unique_per_company(
    client: httpx2.AsyncClient, owner: Account, colliding_codes: list[str]
) -> None:
    jane = await create_customer(client, owner, JANE)
    first = await create_referral(client, owner, jane["id"])
    second = await create_referral(client, owner, jane["id"])
    # The second code collided with the first: a fresh one was drawn instead.
    assert (first["code"], second["code"]) == ("JANE-AAAAAAAA", "JANE-BBBBBBBB")
    assert colliding_codes == ["JANE-AAAAAAAA", "JANE-AAAAAAAA", "JANE-BBBBBBBB"]

    # Another company may hold the same code; each company redeems its own.
    stranger = await register(client, company="Other Co")
    theirs_customer = await create_customer(client, stranger, JANE)
    colliding_codes.clear()
    theirs = await create_referral(client, stranger, theirs_customer["id"])
    assert theirs["code"] == first["code"]
    used = await client.post(f"{API}/referrals/use", headers=stranger.headers, json={"code": first["code"]})
    assert used.status_code == 200 and used.json()["referral_id"] == api_id(theirs["id"])
    assert (await get_json(client, owner, f"/v1/referrals/{first['id']}"))["times_used"] == 0
    assert (await get_json(client, stranger, f"/v1/referrals/{theirs['id']}"))["times_used"] == 1


# ---------------------------------------------------------------- tenant isolation


async def test_another_companys_records_are_not_found_anywhere(
    client: httpx2.AsyncClient, owner: Account, db: async_sessionmaker[AsyncSession]
) -> None:
    jane = await create_customer(client, owner, JANE)
    sale = await create_sale(client, owner, jane["id"])
    review = (
        await client.post(
            "/v1/reviews/request", headers=owner.headers, json={"customer_id": jane["id"], "sale_id": sale["id"]}
        )
    ).json()
    referral = await create_referral(client, owner, jane["id"])
    stranger = await register(client, company="Other Co")
    [their_lead] = await add_leads(db, stranger.company_id, 1)
    their_customer = await create_customer(client, stranger, {"name": "Sam", "email": "sam@example.com"})
    their_sale = await create_sale(client, stranger, their_customer["id"])

    def as_stranger(method: str, url: str, body: dict[str, Any] | None = None) -> Any:
        return client.request(method, url, headers=stranger.headers, json=body)

    for method, url, body in (
        ("GET", f"/v1/customers/{jane['id']}", None),
        ("PATCH", f"/v1/customers/{jane['id']}", {"tags": ["stolen"]}),
        ("GET", f"/v1/sales/{sale['id']}", None),
        ("PATCH", f"/v1/sales/{sale['id']}", {"status": "refunded"}),
        ("GET", f"/v1/reviews/{review['id']}", None),
        ("PATCH", f"/v1/reviews/{review['id']}", {"rating": 1}),
        ("GET", f"/v1/referrals/{referral['id']}", None),
        ("POST", f"/v1/referrals/{referral['id']}/track", {"lead_id": their_lead}),
    ):
        response = await as_stranger(method, url, body)
        assert response.status_code == 404, (method, url, response.text)
        assert response.json()["error"] == "not_found"
    for method, url, body in (
        ("GET", f"{API}/reviews/{api_id(review['id'])}", None),
        ("PUT", f"{API}/reviews/{api_id(review['id'])}", {"rating": 1}),
        ("GET", f"{API}/referrals/{api_id(referral['id'])}", None),
        ("POST", f"{API}/referrals/use", {"code": referral["code"], "lead_id": api_id(their_lead)}),
    ):
        response = await as_stranger(method, url, body)
        assert response.status_code == 404, (method, url, response.text)
        assert response.json().keys() == {"detail"}

    # Naming our records in their requests is a 422 on the field, never a write.
    assert v1_detail_fields(await as_stranger("POST", "/v1/sales", {"customer_id": jane["id"], "amount": 1})) == [
        "customer_id"
    ]
    assert v1_detail_fields(await as_stranger("POST", "/v1/referrals", {"customer_id": jane["id"]})) == ["customer_id"]
    asked = await as_stranger("POST", "/v1/reviews/request", {"customer_id": jane["id"], "sale_id": sale["id"]})
    assert v1_detail_fields(asked) == ["customer_id"]
    mixed = await as_stranger(
        "POST", "/v1/reviews/request", {"customer_id": their_customer["id"], "sale_id": sale["id"]}
    )
    assert v1_detail_fields(mixed) == ["sale_id"]
    ours_theirs: list[dict[str, Any]] = [
        {"customer_id": api_id(jane["id"]), "sale_id": api_id(their_sale["id"])},
        {"customer_id": api_id(jane["id"]), "rating": 1},
    ]
    for review_body in ours_theirs:
        assert api_detail_fields(await as_stranger("POST", f"{API}/reviews", review_body)) == ["customer_id"]
    theirs_ours = {"customer_id": api_id(their_customer["id"]), "sale_id": api_id(sale["id"])}
    assert api_detail_fields(await as_stranger("POST", f"{API}/reviews", theirs_ours)) == ["sale_id"]
    assert api_detail_fields(await as_stranger("POST", f"{API}/referrals", {"customer_id": api_id(jane["id"])})) == [
        "customer_id"
    ]
    their_sale_code = await as_stranger(
        "POST", "/v1/sales", {"customer_id": their_customer["id"], "amount": 1, "referral_code": referral["code"]}
    )
    assert v1_detail_fields(their_sale_code) == ["referral_code"]

    # Their lists hold only their own records, whatever the filter.
    for url, params in (
        ("/v1/customers", {}),
        ("/v1/sales", {"customer_id": jane["id"]}),
        ("/v1/reviews", {}),
        ("/v1/reviews", {"customer_id": jane["id"]}),
        ("/v1/referrals", {}),
        ("/v1/referrals", {"customer_id": jane["id"]}),
    ):
        listed = await get_json(client, stranger, url, **params)
        ours = {jane["id"], sale["id"], review["id"], referral["id"]}
        assert not ours & {item["id"] for item in listed["data"]}, (url, params)
    assert [c["id"] for c in (await get_json(client, stranger, "/v1/customers"))["data"]] == [their_customer["id"]]
    assert [s["id"] for s in (await get_json(client, stranger, "/v1/sales"))["data"]] == [their_sale["id"]]
    assert (await get_json(client, stranger, f"{API}/reviews"))["total"] == 0
    assert (await get_json(client, stranger, f"{API}/referrals"))["total"] == 0
    assert (await get_json(client, stranger, f"{API}/reviews", customer_id=api_id(jane["id"])))["items"] == []

    # And nothing of ours changed.
    assert (await get_json(client, owner, f"/v1/customers/{jane['id']}"))["tags"] == []
    assert (await get_json(client, owner, f"/v1/sales/{sale['id']}"))["status"] == "completed"
    assert (await get_json(client, owner, f"/v1/reviews/{review['id']}"))["rating"] is None
    assert (await get_json(client, owner, f"/v1/referrals/{referral['id']}"))["times_used"] == 0
    assert (await get_json(client, owner, "/v1/sales"))["meta"]["total_items"] == 1
