"""Issue 6's proof through the real parts: API -> Temporal dev server -> worker -> SMTP server.

Two customers buy. Each gets the review request with the company's Google link and one-click unsubscribe
headers. Grace records her review before the reminder is due: no reminder, then the referral offer, whose
code a new lead then redeems. Uma unsubscribes from the request's link: no reminder and no offer.
"""

from __future__ import annotations

import asyncio
import re
from typing import Any
from urllib.parse import urlsplit

import httpx2
import pytest

from tests.conftest import Account
from tests.support.smtp_server import SmtpServer, text_of

REVIEW_LINK = "https://g.page/r/acme-plumbing/review"
REMINDER_DELAY_HOURS = 0.002  # 7.2 seconds: long enough to record the review first


async def _run_of_sale(client: httpx2.AsyncClient, owner: Account, sale_id: str) -> dict[str, Any]:
    runs = (await client.get("/v1/workflow-runs", headers=owner.headers, params={"per_page": 100})).json()["data"]
    (run,) = [r for r in runs if r["trigger_id"] == sale_id]
    detail: dict[str, Any] = (await client.get(f"/v1/workflow-runs/{run['id']}", headers=owner.headers)).json()
    return detail


async def _wait_for_status(client: httpx2.AsyncClient, owner: Account, sale_id: str, status: str) -> dict[str, Any]:
    async with asyncio.timeout(45):
        while (run := await _run_of_sale(client, owner, sale_id))["status"] != status:
            await asyncio.sleep(0.2)
    return run


async def _buy(client: httpx2.AsyncClient, owner: Account, name: str, email: str) -> tuple[dict[str, Any], str]:
    customer = await client.post("/v1/customers", headers=owner.headers, json={"name": name, "email": email})
    assert customer.status_code == 201, customer.text
    sale = await client.post(
        "/v1/sales",
        headers=owner.headers,
        json={"customer_id": customer.json()["id"], "service_name": "Boiler service", "amount": 240.0},
    )
    assert sale.status_code == 201, sale.text
    return customer.json(), sale.json()["id"]


@pytest.mark.usefixtures("worker")
async def test_a_sale_asks_for_a_review_and_every_customer_gets_the_referral_offer(
    client: httpx2.AsyncClient, owner: Account, smtp: SmtpServer
) -> None:
    company = await client.patch(
        "/v1/companies/current",
        headers=owner.headers,
        json={"postal_address": "1 Main Street, Springfield", "settings": {"review_links": {"google": REVIEW_LINK}}},
    )
    assert company.status_code == 200, company.text
    config = await client.post(
        "/v1/workflow-configs",
        headers=owner.headers,
        json={
            "name": "Post-Sale Review Request",
            "workflow_type": "review_referral",
            "actions": {
                "delay_hours": 0,
                "platform": "google",
                "message_template": "ask",
                "subject": "How was your {{service_name}}, {{first_name}}?",
                "reminders": [{"delay_hours": REMINDER_DELAY_HOURS, "message_template": "remind"}],
                "referral": {
                    "message_template": "offer",
                    "subject": "A gift to share",
                    "offer": "$20 off for new customers",
                    "referrer_offer": "10% off next purchase",
                    "max_uses": 3,
                    "expires_in_days": 30,
                },
            },
            "templates": {
                "ask": "Hi {{first_name}}, would you review us on {{platform}}? {{review_link}}",
                "remind": "Hi {{first_name}}, a reminder: {{review_link}}",
                "offer": "Share {{referral_code}}: friends get {{referral_offer}}, you get {{referrer_offer}}.",
            },
        },
    )
    assert config.status_code == 201, config.text

    grace, grace_sale = await _buy(client, owner, "Grace Hopper", "grace@example.com")
    uma, uma_sale = await _buy(client, owner, "Uma Unsub", "uma@example.com")

    # The request: the platform link in the body, one-click unsubscribe in the headers, the postal address.
    [request] = await smtp.wait_for("grace@example.com", 1)
    assert request["Subject"] == "How was your Boiler service, Grace?"
    assert f"would you review us on Google? {REVIEW_LINK}" in text_of(request)
    assert "1 Main Street, Springfield" in text_of(request)
    assert request["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert request["List-Unsubscribe"].startswith("<http://testserver/api/lead-nurturing/unsubscribe/")
    [uma_request] = await smtp.wait_for("uma@example.com", 1)

    # Grace leaves a review; recording it stops the reminder, the referral offer still follows.
    [review] = (await client.get("/v1/reviews", headers=owner.headers, params={"customer_id": grace["id"]})).json()[
        "data"
    ]
    assert (review["status"], review["platform"], review["sale_id"]) == ("requested", "Google", grace_sale)
    recorded = await client.patch(
        f"/v1/reviews/{review['id']}",
        headers=owner.headers,
        json={"status": "completed", "rating": 5, "content": "Quick and tidy.", "review_url": "https://g.co/r/1"},
    )
    assert recorded.status_code == 200, recorded.text
    # Uma clicks the one-click unsubscribe of her request: nothing more goes to her.
    clicked = await client.post(
        urlsplit(uma_request["List-Unsubscribe"].strip("<>")).path,
        content=b"List-Unsubscribe=One-Click",
        headers={"content-type": "application/x-www-form-urlencoded"},
    )
    assert clicked.status_code == 200

    grace_run = await _wait_for_status(client, owner, grace_sale, "completed")
    uma_run = await _wait_for_status(client, owner, uma_sale, "stopped")
    assert grace_run["results"]["review_recorded"] is True
    assert grace_run["results"]["messages_sent"] == 2
    assert uma_run["results"]["stopped_by"] == "unsubscribed"

    # Exactly two emails to Grace: the request and the offer (no reminder); one to Uma.
    request_again, offer = await smtp.wait_for("grace@example.com", 2)
    assert request_again["Message-ID"] == request["Message-ID"]
    assert offer["Subject"] == "A gift to share"
    match = re.search(r"Share ([A-Z]+-[0-9A-Z]{8}): friends get \$20 off for new customers", text_of(offer))
    assert match is not None, text_of(offer)
    code = match.group(1)
    await asyncio.sleep(REMINDER_DELAY_HOURS * 3600)  # past the reminder's due time: it must not come
    assert len(smtp.sent_to("grace@example.com")) == 2
    assert len(smtp.sent_to("uma@example.com")) == 1
    uma_now = (await client.get(f"/v1/customers/{uma['id']}", headers=owner.headers)).json()
    assert uma_now["unsubscribed_at"] is not None and uma_now["referrals"] == []

    # The referral is Grace's, linked to her review, and sent; a new lead redeems the emailed code.
    [referral] = (await client.get("/api/review-referral/referrals", headers=owner.headers)).json()["items"]
    assert (referral["code"], referral["status"]) == (code, "sent")
    assert referral["review_id"] == review["id"].replace("rev_", "review-")
    assert referral["offer"] == {"referrer_offer": "10% off next purchase", "description": "$20 off for new customers"}
    lead = await client.post("/v1/leads", headers=owner.headers, json={"name": "Ned New", "email": "ned@example.com"})
    used = await client.post(
        "/api/review-referral/referrals/use", headers=owner.headers, json={"code": code, "lead_id": lead.json()["id"]}
    )
    assert used.status_code == 200, used.text
    assert used.json() == {
        "success": True,
        "referral_id": referral["id"],
        "lead_id": lead.json()["id"].replace("lead_", "lead-"),
        "offer": {"description": "$20 off for new customers"},
    }
    # The review request's figures on the run page and in the analytics.
    analytics = (await client.get("/api/review-referral/analytics", headers=owner.headers)).json()
    assert analytics["review_requests"] == {"sent": 2, "completed": 1}
    assert analytics["referral_offers"] == {"sent": 1, "used": 1}
    assert analytics["rating_distribution"]["5"] == 1
