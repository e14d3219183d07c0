"""The console's customer pages: customers, their sales and review requests, reviews and referral codes.

Through the real stack: the browser's forms -> the same services as ``/v1`` -> the Temporal dev server ->
the real worker, on SQLite and PostgreSQL.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable
from typing import Any

import httpx2
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.client import Client

from tests.api.review_support import REVIEW_CONFIG, REVIEW_LINK, code_pattern, terminated_afterwards
from tests.console.conftest import csrf_of, sign_up

PASSWORD = "correct horse battery"
CUSTOMER_URL = re.compile(r"^/app/customers/(cust_[0-9a-z]+)\?notice=added$")


async def _api_headers(browser: httpx2.AsyncClient, email: str) -> dict[str, str]:
    """The signed-up owner's API token, for what the console does not cover (automation configs, settings)."""
    answer = await browser.post("/token", json={"username": email, "password": PASSWORD})
    assert answer.status_code == 200, answer.text
    return {"Authorization": f"Bearer {answer.json()['access_token']}"}


async def _post_form(browser: httpx2.AsyncClient, url: str, **fields: str) -> httpx2.Response:
    """Submit a form the way a browser does: with the CSRF token of the page it is on."""
    page = await browser.get("/app/customers")
    return await browser.post(url, data={"csrf_token": csrf_of(page), **fields})


async def _add_customer(browser: httpx2.AsyncClient, **fields: str) -> str:
    answer = await _post_form(browser, "/app/customers", **fields)
    assert answer.status_code == 303, answer.text
    found = CUSTOMER_URL.match(answer.headers["location"])
    assert found, answer.headers["location"]
    return found.group(1)


async def _record_sale(browser: httpx2.AsyncClient, customer_id: str, **fields: str) -> str:
    answer = await _post_form(browser, f"/app/customers/{customer_id}/sales", **fields)
    assert answer.status_code == 303, answer.text
    found = re.search(r"#sale-(sale_[0-9a-z]+)$", answer.headers["location"])
    assert found, answer.headers["location"]
    return found.group(1)


async def _page_until(browser: httpx2.AsyncClient, url: str, done: Callable[[str], bool], seconds: float = 30) -> str:
    """Reload ``url`` as a person would until ``done(html)`` holds."""
    html = ""
    async with asyncio.timeout(seconds):
        while True:
            page = await browser.get(url)
            assert page.status_code == 200, page.text
            html = page.text
            if done(html):
                return html
            await asyncio.sleep(0.2)


def _box(html: str, sale_id: str) -> str:
    """One sale's review request box."""
    found = re.search(rf'<div class="review-request" id="review-request-{sale_id}".*?</div>', html, re.S)
    assert found, f"no review request box for {sale_id}"
    return found.group(0)


async def test_a_sale_asks_for_a_review_and_the_owner_follows_it_to_a_referral_code(
    browser: httpx2.AsyncClient, worker: None, temporal_client: Client, db: async_sessionmaker[AsyncSession]
) -> None:
    await sign_up(browser, "grace-owner@example.com", "Acme Plumbing")
    api = await _api_headers(browser, "grace-owner@example.com")
    linked = await browser.patch(
        "/v1/companies/current", headers=api, json={"settings": {"review_links": {"google": REVIEW_LINK}}}
    )
    assert linked.status_code == 200, linked.text
    actions: dict[str, Any] = {
        **REVIEW_CONFIG["actions"],
        "delay_hours": 0,  # ask at once; the reminder waits ten hours, so the run is seen waiting for it
        "referral": {**REVIEW_CONFIG["actions"]["referral"], "delay_hours": 0},
    }
    config = await browser.post("/v1/workflow-configs", headers=api, json={**REVIEW_CONFIG, "actions": actions})
    assert config.status_code == 201, config.text

    async with terminated_afterwards(temporal_client, db):
        listing = await browser.get("/app/customers")
        assert listing.status_code == 200 and "No customers yet" in listing.text
        assert '<a href="/app/customers" aria-current="page">Customers</a>' in listing.text  # main nav and sub-nav

        # A form with mistakes comes back with each error next to its input and what was typed.
        refused = await _post_form(browser, "/app/customers", name="", email="not-an-email", tags="vip")
        assert refused.status_code == 422
        assert 'id="e-name"' in refused.text and 'id="e-email"' in refused.text
        assert 'value="not-an-email"' in refused.text and 'value="vip"' in refused.text

        customer_id = await _add_customer(browser, name="Grace Hopper", email="grace@example.com", tags="vip, local")
        page = await browser.get(f"/app/customers/{customer_id}?notice=added")
        assert "Customer added." in page.text and "<h1>Grace Hopper</h1>" in page.text
        assert '<span class="badge">vip</span>' in page.text and 'data-figure="lifetime_value">0.00<' in page.text

        # A completed sale, through the same service as POST /v1/sales: the review request starts.
        sale_id = await _record_sale(
            browser, customer_id, amount="240", status="completed", service_name="Boiler service", notes="Annual"
        )
        url = f"/app/customers/{customer_id}"
        html = await _page_until(browser, url, lambda text: 'data-stage="reminding"' in _box(text, sale_id))
        box = _box(html, sale_id)
        assert 'data-run-status="running"' in box and "1 of 3 messages sent" in box
        assert "Next: <strong>review_reminder</strong> at <time" in box  # the reminder, ten hours on
        assert f"/workflows/review-request%2F{sale_id}/" in box  # the Temporal UI link of this run
        assert 'data-figure="lifetime_value">240.00<' in html and "Boiler service · 240.00" in html
        # htmx refreshes the box alone while the run is live.
        fragment = await browser.get(f"{url}/sales/{sale_id}/review-request", headers={"HX-Request": "true"})
        assert fragment.status_code == 200 and fragment.text.lstrip().startswith('<div class="review-request"')
        assert 'hx-trigger="every 5s"' in fragment.text and "<html" not in fragment.text

        # Only refunded is offered; another move is refused with the service's 409 message.
        assert 'name="status" value="refunded"' in html and 'value="pending"' not in _sale_card(html, sale_id)
        wrong = await _post_form(browser, f"{url}/sales/{sale_id}/status", status="pending")
        assert wrong.status_code == 409
        assert f"Sale {sale_id} is completed; it can become refunded" in wrong.text

        # The review the customer left: recorded on the request's review, whose reminder then never comes.
        recorded = await _post_form(
            browser,
            f"{url}/reviews",
            sale_id=sale_id,
            platform="google",
            rating="5",
            content="Quick and tidy.",
            review_url="https://g.co/r/1",
        )
        assert recorded.status_code == 303, recorded.text
        html = await _page_until(browser, url, lambda text: 'data-run-status="completed"' in _box(text, sale_id))
        box = _box(html, sale_id)
        assert "2 messages sent; review recorded; referral code issued" in box and "hx-trigger" not in box
        [code] = re.findall(r"<code>(GRACE-[0-9A-Z]{8})</code>", html)
        assert code_pattern("GRACE").match(code)
        assert 'data-referral-status="active"' in html and "Quick and tidy." in html

        reviews = await browser.get("/app/customers/reviews", params={"status": "submitted", "platform": "google"})
        assert reviews.status_code == 200
        row = re.search(r'<tr id="review-rev_[0-9a-z]+">.*?</tr>', reviews.text, re.S)
        assert row, reviews.text
        assert "Grace Hopper" in row.group(0) and "5 / 5" in row.group(0) and "Google" in row.group(0)
        assert ">completed<" in row.group(0)  # /v1's word for a review that was left
        elsewhere = await browser.get("/app/customers/reviews", params={"platform": "facebook"})
        assert "No reviews match." in elsewhere.text

        # The referral codes page: the code with its uses; a use tracked from the owner's side counts.
        codes = await browser.get("/app/customers/referrals", params={"status": "active"})
        assert code in codes.text and "0 of 5" in codes.text and "$20 off for new customers" in codes.text
        referral_id = re.search(r'<tr id="referral-(ref_[0-9a-z]+)"', codes.text)
        assert referral_id
        track_url = f"/app/customers/referrals/{referral_id.group(1)}/track"
        unknown = await _post_form(browser, track_url, lead_id="lead_nobody")
        assert unknown.status_code == 422 and "lead_nobody is not a lead of your company" in unknown.text
        tracked = await _post_form(browser, track_url)
        assert tracked.status_code == 303
        codes = await browser.get(tracked.headers["location"])
        assert "Use of the referral code recorded." in codes.text and "1 of 5" in codes.text
        assert code not in (await browser.get("/app/customers/referrals", params={"status": "expired"})).text

        # A refund is allowed from completed; the sale no longer counts towards the lifetime value.
        refunded = await _post_form(browser, f"{url}/sales/{sale_id}/status", status="refunded")
        assert refunded.status_code == 303
        html = (await browser.get(url)).text
        assert 'data-sale-status="refunded"' in html and 'data-figure="lifetime_value">0.00<' in html


def _sale_card(html: str, sale_id: str) -> str:
    found = re.search(rf'<article class="card" id="sale-{sale_id}".*?</article>', html, re.S)
    assert found, f"no card for {sale_id}"
    return found.group(0)


async def test_forms_refuse_bad_input_and_other_companies_records(
    browser: httpx2.AsyncClient, temporal_client: Client, db: async_sessionmaker[AsyncSession]
) -> None:
    await sign_up(browser, "first@example.com", "First Co")
    async with terminated_afterwards(temporal_client, db):
        customer_id = await _add_customer(browser, name="Bob Buyer", email="bob@example.com")
        url = f"/app/customers/{customer_id}"

        # No CSRF token: refused before anything is written.
        await browser.get(url)
        for target, fields in ((f"{url}/sales", {"amount": "10"}), ("/app/customers", {"name": "Eve"})):
            forged = await browser.post(target, data=fields)
            assert forged.status_code == 403 and "did not come from this site" in forged.text
        listing = await browser.get("/app/customers")
        assert "Eve" not in listing.text and "10.00" not in (await browser.get(url)).text

        # Bad amounts and unknown codes come back next to their inputs, with what was typed.
        bad = await _post_form(browser, f"{url}/sales", amount="lots", referral_code="NOPE-123")
        assert bad.status_code == 422 and 'id="e-amount"' in bad.text and 'value="lots"' in bad.text
        unknown_code = await _post_form(browser, f"{url}/sales", amount="10", referral_code="NOPE-123")
        assert unknown_code.status_code == 422 and "no referral code &#39;NOPE-123&#39;" in unknown_code.text
        assert "No sales yet." in unknown_code.text

        # A pending sale asks for nothing; once cancelled it is final, and the page says so.
        sale_id = await _record_sale(browser, customer_id, amount="99.5", status="pending")
        html = (await browser.get(url)).text
        assert "No review request has run for this sale." in _box(html, sale_id)
        assert 'value="completed"' in _sale_card(html, sale_id) and 'value="cancelled"' in _sale_card(html, sale_id)
        cancelled = await _post_form(browser, f"{url}/sales/{sale_id}/status", status="cancelled")
        assert cancelled.status_code == 303
        again = await _post_form(browser, f"{url}/sales/{sale_id}/status", status="completed")
        assert again.status_code == 409 and "is cancelled; it can become nothing: it is final" in again.text

        # A code issued by hand (the same service as POST /v1/referrals), and a referral form error.
        bad_issue = await _post_form(browser, f"{url}/referrals", offer="10% off", max_uses="0")
        assert bad_issue.status_code == 422 and 'id="e-max_uses"' in bad_issue.text
        issued = await _post_form(browser, f"{url}/referrals", offer="A free coffee", max_uses="2")
        assert issued.status_code == 303
        html = (await browser.get(issued.headers["location"])).text
        assert "Referral code issued." in html and re.search(r"<code>BOB-[0-9A-Z]{8}</code>", html)
        assert "A free coffee" in html and "0 of 2" in html

        # A review left on the customer's own initiative, on a platform where asking is not allowed.
        own = await _post_form(browser, f"{url}/reviews", sale_id="", platform="yelp", rating="4", content="Fine")
        assert own.status_code == 303
        yelp = await browser.get("/app/customers/reviews", params={"platform": "yelp"})
        assert "Bob Buyer" in yelp.text and "Yelp" in yelp.text and "4 / 5" in yelp.text
        assert (await browser.get("/app/customers/reviews", params={"status": "bogus"})).status_code == 422

        # Another company: the customer, its sales and its forms are not found.
        browser.cookies.clear()
        await sign_up(browser, "second@example.com", "Second Co")
        for path in (url, f"{url}/sales/{sale_id}/review-request"):
            other = await browser.get(path)
            assert other.status_code == 404 and "Customer not found" in other.text
        stolen = await _post_form(browser, f"{url}/sales/{sale_id}/status", status="completed")
        assert stolen.status_code == 404
        assert "Bob Buyer" not in (await browser.get("/app/customers/reviews")).text
        assert "BOB-" not in (await browser.get("/app/customers/referrals")).text
