"""``POST /forms/{form_id}``: a website's form creates a lead like any other, and refuses what is not one."""

from __future__ import annotations

import logging
from typing import Any

import httpx2
import pytest
from fastapi import FastAPI
from sqlalchemy import select

from core.config import Settings
from db.models import Lead
from tests.api.lead_support import add_lead_config, run_count, sessions
from tests.api.test_api_keys import KEYS, create_key
from tests.conftest import Account

THANKS = "https://acme.example.com/thanks"
JSON = {"Accept": "application/json"}
ANN = {"name": "Ann Lee", "email": "Ann@Example.com", "message": "Please call me back"}


def form_path(key: dict[str, Any]) -> str:
    return f"/forms/{key['prefix']}"


async def leads_of(app: FastAPI, company_id: str) -> list[Lead]:
    async with sessions(app)() as session:
        return list(await session.scalars(select(Lead).where(Lead.company_id == company_id)))


async def test_a_form_post_creates_a_lead_starts_its_follow_up_and_redirects(
    client: httpx2.AsyncClient, owner: Account, app: FastAPI
) -> None:
    await add_lead_config(app, owner.company_id, lead_source=["website_form"])
    key = await create_key(client, owner, thank_you_url=THANKS, tags=["web"])
    fields = {**ANN, "company": "Lee & Co", "budget": "5000", "website": ""}
    response = await client.post(form_path(key), data=fields, headers={"Origin": "https://acme.example.com"})
    assert response.status_code == 303, response.text
    assert response.headers["location"] == THANKS
    assert response.headers["access-control-allow-origin"] == "*"

    [lead] = await leads_of(app, owner.company_id)
    assert (lead.name, lead.email, lead.source, lead.notes) == (
        "Ann Lee",
        "ann@example.com",
        "website_form",
        ANN["message"],
    )
    assert lead.tags == ["web"]
    # Only what the person typed, and which form it came from: no origin, referrer or address.
    assert lead.custom_fields == {"company": "Lee & Co", "budget": "5000", "form_id": key["prefix"]}
    assert await run_count(app, lead.id) == 1
    assert (await client.get(f"{KEYS}/{key['id']}", headers=owner.headers)).json()["last_used_at"] is not None


async def test_json_clients_get_201_and_a_known_email_is_not_revealed(
    client: httpx2.AsyncClient, owner: Account, app: FastAPI
) -> None:
    await add_lead_config(app, owner.company_id)
    key = await create_key(client, owner, thank_you_url=THANKS)
    first = await client.post(form_path(key), data=ANN, headers=JSON)
    again = await client.post(form_path(key), data={**ANN, "phone": "+1 415 555 0123", "message": ""}, headers=JSON)
    assert (first.status_code, first.json()) == (201, {"success": True})
    assert (again.status_code, again.json(), again.headers.keys()) == (201, {"success": True}, first.headers.keys())
    [lead] = await leads_of(app, owner.company_id)
    # The duplicate path of the lead service: merged, the first notes kept, no second sequence.
    assert lead.phone == "+14155550123" and lead.notes == ANN["message"]
    assert await run_count(app, lead.id) == 1


async def test_multipart_posts_and_split_names_work_and_the_keys_source_applies(
    client: httpx2.AsyncClient, owner: Account, app: FastAPI
) -> None:
    key = await create_key(client, owner, lead_source="landing_page")
    fields = {"first_name": "Bo", "last_name": "Yang", "phone": "+44 20 7946 0958", "interests": ["a", "b"]}
    response = await client.post(form_path(key), data=fields, files={"unused": (None, "")})
    assert response.status_code == 201 and response.json() == {"success": True}
    [lead] = await leads_of(app, owner.company_id)
    assert (lead.name, lead.phone, lead.email, lead.source) == ("Bo Yang", "+442079460958", None, "landing_page")
    assert lead.custom_fields == {"interests": "a, b", "form_id": key["prefix"]}


async def test_a_filled_honeypot_is_answered_like_a_success_and_dropped(
    client: httpx2.AsyncClient, owner: Account, app: FastAPI, caplog: pytest.LogCaptureFixture
) -> None:
    key = await create_key(client, owner, thank_you_url=THANKS)
    bot = {**ANN, "website": "https://spam.example.com"}
    with caplog.at_level(logging.INFO, logger="services.lead_forms"):
        redirected = await client.post(form_path(key), data=bot)
        answered = await client.post(form_path(key), data=bot, headers=JSON)
    assert (redirected.status_code, redirected.headers["location"]) == (303, THANKS)
    assert (answered.status_code, answered.json()) == (201, {"success": True})
    assert await leads_of(app, owner.company_id) == []
    dropped = [record.getMessage() for record in caplog.records if "honeypot" in record.getMessage()]
    assert len(dropped) == 2 and key["prefix"] in dropped[0] and "spam.example.com" not in dropped[0]


async def test_bad_values_say_what_to_fix_and_write_nothing(
    client: httpx2.AsyncClient, owner: Account, app: FastAPI
) -> None:
    key = await create_key(client, owner, thank_you_url=THANKS)
    page = await client.post(form_path(key), data={**ANN, "email": "ann-at-example"}, headers={"Accept": "text/html"})
    assert page.status_code == 400 and page.headers["content-type"].startswith("text/html")
    assert "<b>email</b>" in page.text and "@-sign" in page.text
    assert page.headers["access-control-allow-origin"] == "*"

    cases: list[tuple[dict[str, Any], str]] = [
        ({**ANN, "email": "ann-at-example"}, "email"),
        ({"email": "ann@example.com"}, "name"),
        ({"name": "Ann"}, "email"),  # neither an email nor a phone: the lead service's own rule
        ({**ANN, "phone": "12"}, "phone"),
        ({**ANN, "message": "x" * 10_001}, "message"),
        ({**ANN, "notes_from_sales": "x" * 1001}, "notes_from_sales"),
        ({**ANN, **{f"extra_{index}": "x" for index in range(21)}}, "custom_fields"),
        ({**ANN, "q" * 101: "x"}, "q" * 100),
    ]
    for fields, field in cases:
        response = await client.post(form_path(key), data=fields, headers=JSON)
        assert response.status_code == 422, (field, response.text)
        assert [error["field"] for error in response.json()["detail"]] == [field], response.json()
    twenty = await client.post(form_path(key), data={**ANN, **{f"extra_{index}": "x" for index in range(20)}})
    assert twenty.status_code == 303  # the bound itself is allowed
    assert len(await leads_of(app, owner.company_id)) == 1


async def test_what_is_not_a_form_post_is_refused(client: httpx2.AsyncClient, owner: Account, app: FastAPI) -> None:
    key = await create_key(client, owner)
    as_json = await client.post(form_path(key), json=ANN, headers=JSON)
    assert as_json.status_code == 415 and "x-www-form-urlencoded" in as_json.json()["detail"]
    with_file = await client.post(form_path(key), data=ANN, files={"cv": ("cv.txt", b"hello", "text/plain")})
    assert with_file.status_code == 400 and "files" in with_file.text
    huge = await client.post(form_path(key), data={**ANN, "message": "x" * 300_000})
    assert huge.status_code == 413
    too_many = await client.post(
        form_path(key),
        content="&".join(f"f{index}=1" for index in range(60)).encode(),
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert too_many.status_code == 400
    assert await leads_of(app, owner.company_id) == []


async def test_unknown_revoked_and_full_scope_forms_are_404(client: httpx2.AsyncClient, owner: Account) -> None:
    revoked = await create_key(client, owner)
    await client.delete(f"{KEYS}/{revoked['id']}", headers=owner.headers)
    full = await create_key(client, owner, scope="full")
    for form_id in ("bas_lc_00000000", revoked["prefix"], full["prefix"], "x" * 40):
        response = await client.post(f"/forms/{form_id}", data=ANN)
        assert response.status_code == 404, form_id
        assert response.headers["content-type"].startswith("text/plain")
        assert response.text == "This form does not exist or no longer accepts submissions"
    as_json = await client.post(f"/forms/{revoked['prefix']}", data=ANN, headers=JSON)
    assert as_json.status_code == 404 and as_json.json() == {
        "detail": "This form does not exist or no longer accepts submissions"
    }


async def test_each_address_is_held_to_a_rate_per_form(
    client: httpx2.AsyncClient, owner: Account, app: FastAPI, settings: Settings
) -> None:
    settings.form_rate_limit_per_minute = 2
    key, other = await create_key(client, owner), await create_key(client, owner)
    for index in range(2):
        assert (await client.post(form_path(key), data={**ANN, "email": f"p{index}@example.com"})).status_code == 201
    limited = await client.post(form_path(key), data=ANN, headers=JSON)
    assert limited.status_code == 429 and 1 <= int(limited.headers["retry-after"]) <= 60
    assert "Too many submissions" in limited.json()["detail"]
    assert limited.headers["access-control-allow-origin"] == "*"
    page = await client.post(form_path(key), data=ANN)
    assert page.status_code == 429 and page.headers["content-type"].startswith("text/plain")
    # Another form, or another address on the same form, has its own budget.
    assert (await client.post(form_path(other), data=ANN)).status_code == 201
    elsewhere = httpx2.AsyncClient(
        transport=httpx2.ASGITransport(app=app, client=("203.0.113.9", 4000)), base_url="http://testserver"
    )
    async with elsewhere:
        assert (await elsewhere.post(form_path(key), data={**ANN, "email": "far@example.com"})).status_code == 201
    assert len(await leads_of(app, owner.company_id)) == 4
