"""Replies and opt-outs from outside: the unsubscribe link, inbound email and SMS webhooks (no JWT)."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import httpx2
import pytest
from fastapi import FastAPI
from pydantic import SecretStr
from sqlalchemy import select
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from api.main import create_app
from core import security
from core.config import Settings
from db.models import Suppression
from schemas.lead_follow_up import LeadEvent, LeadEventSignal
from services.opt_outs import twilio_signature
from tests.api.lead_support import add_lead_config, create_lead, sessions, signals
from tests.conftest import Account, register

EMPTY_TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response></Response>'


async def suppressions(app: FastAPI, company_id: str) -> list[tuple[str, str, str]]:
    async with sessions(app)() as session:
        rows = await session.scalars(
            select(Suppression).where(Suppression.company_id == company_id).order_by(Suppression.created_at)
        )
        return [(row.channel, row.address, row.reason) for row in rows]


async def webhook_paths(client: httpx2.AsyncClient, account: Account) -> dict[str, str]:
    response = await client.get("/api/lead-nurturing/inbound-webhooks", headers=account.headers)
    assert response.status_code == 200, response.text
    return {name: urlsplit(url).path for name, url in response.json().items()}


async def interactions_of(client: httpx2.AsyncClient, account: Account, lead_id: str) -> list[dict[str, Any]]:
    response = await client.get(f"/v1/leads/{lead_id}/interactions", headers=account.headers)
    data: list[dict[str, Any]] = response.json()["data"]
    return data


async def test_inbound_webhook_urls_are_for_admins_and_managers(
    client: httpx2.AsyncClient, owner: Account, settings: Settings
) -> None:
    response = await client.get("/api/lead-nurturing/inbound-webhooks", headers=owner.headers)
    key = security.inbound_key(settings, owner.company_id)
    assert response.json() == {
        "email_url": f"http://localhost:8000/api/lead-nurturing/inbound/{key}/email",
        "sms_url": f"http://localhost:8000/api/lead-nurturing/inbound/{key}/sms",
    }
    await client.post(
        "/api/users", headers=owner.headers, json={"email": "u@example.com", "password": "password123", "role": "user"}
    )
    token = (await client.post("/token", json={"username": "u@example.com", "password": "password123"})).json()
    user = {"Authorization": f"Bearer {token['access_token']}"}
    assert (await client.get("/api/lead-nurturing/inbound-webhooks", headers=user)).status_code == 403
    assert (await client.get("/api/lead-nurturing/inbound-webhooks")).status_code == 401


async def test_unsubscribe_link_confirms_then_unsubscribes_once(
    client: httpx2.AsyncClient, owner: Account, app: FastAPI, settings: Settings, temporal_client: Client
) -> None:
    config = await add_lead_config(app, owner.company_id)
    lead = await create_lead(client, owner, {"name": "Jane Smith", "email": "Jane@Example.com"})
    url = f"/api/lead-nurturing/unsubscribe/{security.sign_unsubscribe(settings, owner.company_id, lead['id'])}"

    page = await client.get(url)
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert '<form method="post">' in page.text and "Acme Inc" in page.text
    # Looking at the page (or a mail scanner fetching it) changes nothing.
    assert (await client.get(f"/v1/leads/{lead['id']}", headers=owner.headers)).json()["unsubscribed_at"] is None
    assert await signals(temporal_client, lead["id"], config) == []

    # RFC 8058 one-click: what a mail client POSTs.
    done = await client.post(
        url, content=b"List-Unsubscribe=One-Click", headers={"content-type": "application/x-www-form-urlencoded"}
    )
    assert done.status_code == 200 and "You are unsubscribed" in done.text
    assert (await client.get(f"/v1/leads/{lead['id']}", headers=owner.headers)).json()["unsubscribed_at"] is not None
    assert await suppressions(app, owner.company_id) == [("email", "jane@example.com", "unsubscribe")]
    assert await signals(temporal_client, lead["id"], config) == [LeadEventSignal(event=LeadEvent.unsubscribed)]

    # The page's button (a form POST) a second time: still fine, nothing new.
    again = await client.post(url, data={"List-Unsubscribe": "One-Click"})
    assert again.status_code == 200 and "You are unsubscribed" in again.text
    assert len(await suppressions(app, owner.company_id)) == 1
    assert len(await signals(temporal_client, lead["id"], config)) == 1

    forged = url[:-3] + ("AAA" if not url.endswith("AAA") else "BBB")
    for response in (await client.get(forged), await client.post(forged)):
        assert response.status_code == 404 and "Link not found" in response.text
    # A genuine token for a lead that was erased.
    await client.delete(f"/v1/leads/{lead['id']}", headers=owner.headers)
    assert (await client.get(url)).status_code == 404


async def test_inbound_email_reply_stops_the_sequence(
    client: httpx2.AsyncClient, owner: Account, app: FastAPI, temporal_client: Client
) -> None:
    config = await add_lead_config(app, owner.company_id)
    lead = await create_lead(client, owner, {"name": "Jane Smith", "email": "jane@example.com"})
    path = (await webhook_paths(client, owner))["email_url"]

    reply = await client.post(
        path,
        json={
            "from": "Jane Smith <JANE@example.com>",
            "subject": "Re: Thank you for your interest",
            "text": "Thanks! Can we talk on Tuesday?",
            "headers": {"Message-ID": "<abc@mail.example.com>"},
        },
    )
    assert reply.status_code == 200, reply.text
    body = reply.json()
    assert body["status"] == "recorded" and body["lead_id"] == lead["id"].replace("lead_", "lead-")
    [interaction] = await interactions_of(client, owner, lead["id"])
    assert interaction["id"] == body["interaction_id"].replace("interaction-", "int_")
    assert (interaction["type"], interaction["direction"], interaction["channel"], interaction["status"]) == (
        "email",
        "inbound",
        "reply",
        "received",
    )
    assert interaction["content"] == "Thanks! Can we talk on Tuesday?" and interaction["created_by"] is None
    assert interaction["metadata"] == {
        "subject": "Re: Thank you for your interest",
        "message_id": "<abc@mail.example.com>",
    }
    assert (await client.get(f"/v1/leads/{lead['id']}", headers=owner.headers)).json()["status"] == "engaged"
    assert await signals(temporal_client, lead["id"], config) == [
        LeadEventSignal(event=LeadEvent.replied, interaction_id=interaction["id"])
    ]


async def test_auto_replies_and_strangers_stop_nothing(
    client: httpx2.AsyncClient, owner: Account, app: FastAPI, temporal_client: Client
) -> None:
    config = await add_lead_config(app, owner.company_id)
    lead = await create_lead(client, owner, {"name": "Jane Smith", "email": "jane@example.com"})
    path = (await webhook_paths(client, owner))["email_url"]
    sender = {"from": "jane@example.com", "text": "I am away until Monday."}
    auto_replies: list[dict[str, Any]] = [
        {**sender, "subject": "Re: hello", "headers": {"Auto-Submitted": "auto-replied"}},
        {**sender, "subject": "Re: hello", "headers": {"X-Autoreply": "yes"}},
        {**sender, "subject": "Re: hello", "headers": {"X-Autorespond": "1"}},
        {**sender, "subject": "Re: hello", "headers": {"Precedence": "auto_reply"}},
        {**sender, "subject": "Re: hello", "headers": {"precedence": "bulk"}},
        {**sender, "subject": "Out of Office: back Monday"},
        {**sender, "subject": "Automatic reply: Thank you for your interest"},
        {**sender, "subject": "Auto: hello"},
    ]
    for message in auto_replies:
        response = await client.post(path, json=message)
        assert response.status_code == 200
        assert response.json()["status"] == "ignored" and response.json()["reason"], message
    # The inbound-parse form shape, with the raw header block.
    form = await client.post(
        path,
        data={
            "from": "Jane <jane@example.com>",
            "subject": "Re: hi",
            "text": "Away",
            "headers": "Auto-Submitted: auto-replied\nX-Mailer: x\n",
        },
    )
    assert form.json()["status"] == "ignored"
    # Other providers' header shapes: a list of Name/Value objects, and a JSON object with a repeated header.
    listed = await client.post(
        path, json={**sender, "subject": "Re: hi", "headers": [{"Name": "X-Autoreply", "Value": "yes"}]}
    )
    assert listed.json()["status"] == "ignored"
    repeated = {"Received": ["from a", "from b"], "Precedence": "junk"}
    assert (await client.post(path, json={**sender, "headers": repeated})).json()["status"] == "ignored"
    assert await interactions_of(client, owner, lead["id"]) == []
    assert await signals(temporal_client, lead["id"], config) == []

    # A person answering with Auto-Submitted: no is a real reply, here in the form shape.
    human = await client.post(
        path,
        data={
            "from": "jane@example.com",
            "subject": "Re: hi",
            "text": "Real answer",
            "headers": "Auto-Submitted: no\n",
        },
    )
    assert human.json()["status"] == "recorded"
    assert len(await signals(temporal_client, lead["id"], config)) == 1
    # A very long reply is kept, shortened, rather than refused (the provider would retry it forever).
    long = await client.post(path, json={"from": "jane@example.com", "subject": "Re", "text": "x" * 80_000})
    assert long.json()["status"] == "recorded"
    assert [len(i["content"]) for i in await interactions_of(client, owner, lead["id"])] == [50_000, 11]

    stranger = await client.post(path, json={"from": "Someone <nobody@example.org>", "subject": "Hi", "text": "?"})
    assert stranger.status_code == 200 and stranger.json() == {"status": "unmatched"}
    # Another company's lead is a stranger here too.
    other = await register(client, company="Other Co")
    await create_lead(client, other, {"name": "Olga", "email": "olga@example.com"})
    assert (await client.post(path, json={"from": "olga@example.com", "text": "hi"})).json() == {"status": "unmatched"}

    assert (await client.post(path, json={"subject": "no sender"})).status_code == 422
    key = path.split("/")[-2]
    forged = path.replace(key, key[:-2] + ("xx" if not key.endswith("xx") else "yy"))
    assert (await client.post(forged, json=sender)).status_code == 404
    assert (await client.post(path.replace(key, "nonsense"), json=sender)).status_code == 404


async def test_inbound_sms_reply_stop_and_start(
    client: httpx2.AsyncClient, owner: Account, app: FastAPI, temporal_client: Client
) -> None:
    config = await add_lead_config(app, owner.company_id)
    lead = await create_lead(client, owner, {"name": "Sam", "phone": "+1 415 555 0123"})
    path = (await webhook_paths(client, owner))["sms_url"]

    def twilio(body: str, sender: str = "+14155550123") -> dict[str, str]:
        return {"From": sender, "To": "+14155550100", "Body": body, "MessageSid": "SM0123456789abcdef", "NumMedia": "0"}

    reply = await client.post(path, data=twilio("Yes, please call me tomorrow"))
    assert reply.status_code == 200
    assert reply.text == EMPTY_TWIML and reply.headers["content-type"].startswith("application/xml")
    [interaction] = await interactions_of(client, owner, lead["id"])
    assert (interaction["type"], interaction["direction"], interaction["channel"]) == ("sms", "inbound", "reply")
    assert interaction["content"] == "Yes, please call me tomorrow"
    assert interaction["metadata"] == {"message_sid": "SM0123456789abcdef"}
    assert await signals(temporal_client, lead["id"], config) == [
        LeadEventSignal(event=LeadEvent.replied, interaction_id=interaction["id"])
    ]

    stop = await client.post(path, data=twilio("  stop "))
    assert stop.text == EMPTY_TWIML
    assert await suppressions(app, owner.company_id) == [("sms", "+14155550123", "sms_stop")]
    assert (await signals(temporal_client, lead["id"], config))[-1] == LeadEventSignal(event=LeadEvent.unsubscribed)
    assert len(await interactions_of(client, owner, lead["id"])) == 1  # an opt-out is not a reply

    await client.post(path, data=twilio("START"))
    assert await suppressions(app, owner.company_id) == []
    for word in ("STOPALL", "unsubscribe", "Cancel", "END", "quit"):
        await client.post(path, data=twilio(word))
        assert len(await suppressions(app, owner.company_id)) == 1, word
        await client.post(path, data=twilio("unstop"))
        assert await suppressions(app, owner.company_id) == [], word
    # "Please stop" is a reply that happens to contain the word, not the keyword.
    await client.post(path, data=twilio("Please stop calling after 6pm"))
    assert await suppressions(app, owner.company_id) == []
    assert len(await interactions_of(client, owner, lead["id"])) == 2

    # STOP from a number no lead has still suppresses it; any other text from it is unmatched.
    await client.post(path, data=twilio("STOP", sender="+442079460958"))
    assert ("sms", "+442079460958", "sms_stop") in await suppressions(app, owner.company_id)
    unknown = await client.post(path, data=twilio("hello", sender="+442079460000"))
    assert unknown.status_code == 200 and unknown.text == EMPTY_TWIML
    assert (await client.post(path.replace("/sms", "x/sms"), data=twilio("hi"))).status_code == 404


async def test_twilio_signature_is_checked_when_an_auth_token_is_set(
    settings: Settings, temporal_dev: WorkflowEnvironment
) -> None:
    signed = settings.model_copy(
        update={"sms_auth_token": SecretStr("twilio-auth-token"), "public_base_url": "https://bas.example.com/"}
    )
    app = create_app(signed, temporal_client=temporal_dev.client)
    async with (
        app.router.lifespan_context(app),
        httpx2.AsyncClient(transport=httpx2.ASGITransport(app=app), base_url="http://internal:8000") as client,
    ):
        owner = await register(client)
        lead = await create_lead(client, owner, {"name": "Sam", "phone": "+14155550123"})
        urls = (await client.get("/api/lead-nurturing/inbound-webhooks", headers=owner.headers)).json()
        public_url = urls["sms_url"]
        assert public_url.startswith("https://bas.example.com/api/lead-nurturing/inbound/")
        path = urlsplit(public_url).path
        params = {"From": "+14155550123", "To": "+14155550100", "Body": "Sounds good", "MessageSid": "SM1"}
        signature = twilio_signature("twilio-auth-token", public_url, params.items())

        unsigned = await client.post(path, data=params)
        assert unsigned.status_code == 403 and unsigned.json() == {"detail": "Invalid Twilio signature"}
        wrong = await client.post(
            path, data={**params, "Body": "Sounds bad"}, headers={"X-Twilio-Signature": signature}
        )
        assert wrong.status_code == 403
        good = await client.post(path, data=params, headers={"X-Twilio-Signature": signature})
        assert good.status_code == 200 and good.text == EMPTY_TWIML
        # The URL the process itself saw is accepted too (no proxy in front).
        direct = twilio_signature("twilio-auth-token", f"http://internal:8000{path}", params.items())
        assert (await client.post(path, data=params, headers={"X-Twilio-Signature": direct})).status_code == 200
        assert len(await interactions_of(client, owner, lead["id"])) == 2


def test_twilio_signature_matches_the_twilio_sdks_test_vector() -> None:
    # The vector of Twilio's own SDK tests (RequestValidatorTest): token "12345", this URL and these params.
    params = {
        "CallSid": "CA1234567890ABCDE",
        "Caller": "+14158675309",
        "Digits": "1234",
        "From": "+14158675309",
        "To": "+18005551212",
    }
    signature = twilio_signature("12345", "https://mycompany.com/myapp.php?foo=1&bar=2", params.items())
    assert signature == "RSOYDt4T1cUTdK1PDd93/VVr8B8="


async def test_opt_outs_are_recorded_while_temporal_is_away(
    client: httpx2.AsyncClient, owner: Account, app: FastAPI, settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    lead = await create_lead(client, owner, {"name": "Jane", "email": "jane@example.com", "phone": "+14155550123"})
    paths = await webhook_paths(client, owner)
    unsubscribe = f"/api/lead-nurturing/unsubscribe/{security.sign_unsubscribe(settings, owner.company_id, lead['id'])}"
    # The same database, but an API that has not reached Temporal (nothing listens on port 9).
    away = create_app(settings.model_copy(update={"temporal_address": "127.0.0.1:9"}))
    async with (
        away.router.lifespan_context(away),
        httpx2.AsyncClient(transport=httpx2.ASGITransport(app=away), base_url="http://testserver") as offline,
    ):
        assert away.state.temporal is None
        assert (await offline.post(unsubscribe, data={"List-Unsubscribe": "One-Click"})).status_code == 200
        stop = await offline.post(paths["sms_url"], data={"From": "+14155550123", "Body": "STOP"})
        assert stop.status_code == 200 and stop.text == EMPTY_TWIML
        reply = await offline.post(paths["email_url"], json={"from": "jane@example.com", "text": "Call me"})
        assert reply.json()["status"] == "recorded"
        # Authenticated writes that need Temporal say so instead of half-working.
        refused = await offline.patch(f"/v1/leads/{lead['id']}", headers=owner.headers, json={"status": "lost"})
        assert refused.status_code == 503

    assert await suppressions(app, owner.company_id) == [
        ("email", "jane@example.com", "unsubscribe"),
        ("sms", "+14155550123", "sms_stop"),
    ]
    stored = (await client.get(f"/v1/leads/{lead['id']}", headers=owner.headers)).json()
    assert stored["unsubscribed_at"] is not None and stored["status"] == "engaged"
    errors = [r.getMessage() for r in caplog.records if r.levelname == "ERROR" and r.name == "services.leads"]
    assert any("Temporal not connected" in message and "unsubscribed" in message for message in errors)
    assert any("replied" in message for message in errors)
