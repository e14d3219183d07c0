"""Issue 3's proof through the real parts: API -> Temporal dev server -> worker -> OpenAI-compatible server
-> SMTP server, and replies / unsubscribe clicks that stop the next follow-up.

Three leads enter the same sequence (first message at once, a follow-up 7.2 s later): one replies over the
inbound email webhook, one clicks the one-click unsubscribe link, one does nothing and gets both messages.
"""

from __future__ import annotations

import asyncio
from typing import Any
from urllib.parse import urlsplit

import httpx2
import pytest

from tests.conftest import Account
from tests.support.openai_server import OpenAIServer
from tests.support.smtp_server import SmtpServer, text_of

FOLLOW_UP_DELAY_HOURS = 0.002  # 7.2 seconds: long enough for a reply to arrive first


async def _run_of(client: httpx2.AsyncClient, owner: Account, lead_id: str) -> dict[str, Any]:
    runs = (await client.get("/v1/workflow-runs", headers=owner.headers, params={"per_page": 100})).json()["data"]
    (run,) = [r for r in runs if r["trigger_id"] == lead_id]
    detail: dict[str, Any] = (await client.get(f"/v1/workflow-runs/{run['id']}", headers=owner.headers)).json()
    return detail


async def _wait_for_status(client: httpx2.AsyncClient, owner: Account, lead_id: str, status: str) -> dict[str, Any]:
    async with asyncio.timeout(30):
        while (run := await _run_of(client, owner, lead_id))["status"] != status:
            await asyncio.sleep(0.2)
    return run


@pytest.mark.usefixtures("worker")
async def test_a_lead_gets_a_personal_email_and_a_reply_or_unsubscribe_stops_the_follow_up(
    client: httpx2.AsyncClient, owner: Account, smtp: SmtpServer, llm: OpenAIServer
) -> None:
    await client.patch(
        "/v1/companies/current", headers=owner.headers, json={"postal_address": "1 Main Street, Springfield"}
    )
    config = await client.post(
        "/v1/workflow-configs",
        headers=owner.headers,
        json={
            "name": "New Lead Follow-up",
            "workflow_type": "lead_nurturing",
            "active": True,
            "triggers": {"lead_source": ["website_form"], "tags": []},
            "actions": {
                "initial_delay_minutes": 0,
                "message_template": "new_lead_template",
                "channel": "email",
                "subject": "Thanks for your interest, {{first_name}}",
                "personalize": True,
                "follow_up": [{"delay_hours": FOLLOW_UP_DELAY_HOURS, "message_template": "follow_up_1"}],
            },
            "templates": {
                "new_lead_template": "Hello {{name}}, thank you for your interest in {{company_name}}.",
                "follow_up_1": "Hello {{name}}, I wanted to follow up on our previous message.",
            },
        },
    )
    assert config.status_code == 201, config.text

    leads = {}
    for key, name in (("replies", "Rita Reply"), ("unsubscribes", "Uma Unsub"), ("silent", "Sam Silent")):
        created = await client.post(
            "/v1/leads",
            headers=owner.headers,
            json={"name": name, "email": f"{key}@example.com", "source": "website_form"},
        )
        assert created.status_code == 201, created.text
        leads[key] = created.json()

    # The first email: the lead's name went through the template and the LLM; one-click unsubscribe headers.
    first = {key: (await smtp.wait_for(lead["email"], 1))[0] for key, lead in leads.items()}
    rita = first["replies"]
    assert "Rita Reply" in text_of(rita)
    assert text_of(rita).startswith("Personalised: ")  # written by the loopback OpenAI server
    assert any("Rita Reply" in str(r["body"]["messages"]) for r in llm.requests)
    assert rita["Subject"] == "Thanks for your interest, Rita"
    assert rita["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert rita["List-Unsubscribe"].startswith("<http://testserver/api/lead-nurturing/unsubscribe/")
    assert "1 Main Street, Springfield" in text_of(rita)

    # Rita replies through the inbound email webhook the company gave its provider.
    hooks = (await client.get("/api/lead-nurturing/inbound-webhooks", headers=owner.headers)).json()
    reply = await client.post(
        urlsplit(hooks["email_url"]).path,
        json={"from": "Rita Reply <replies@example.com>", "subject": "Re: Thanks", "text": "Yes, call me!"},
    )
    assert reply.status_code == 200, reply.text

    # Uma clicks one-click unsubscribe (RFC 8058: a POST to the List-Unsubscribe URL).
    unsubscribe_url = first["unsubscribes"]["List-Unsubscribe"].strip("<>")
    clicked = await client.post(
        urlsplit(unsubscribe_url).path,
        content=b"List-Unsubscribe=One-Click",
        headers={"content-type": "application/x-www-form-urlencoded"},
    )
    assert clicked.status_code == 200

    stopped_by_reply = await _wait_for_status(client, owner, leads["replies"]["id"], "stopped")
    stopped_by_unsubscribe = await _wait_for_status(client, owner, leads["unsubscribes"]["id"], "stopped")
    assert stopped_by_reply["results"]["stopped_by"] == "replied"
    assert stopped_by_unsubscribe["results"]["stopped_by"] == "unsubscribed"
    completed = await _wait_for_status(client, owner, leads["silent"]["id"], "completed")

    # The silent lead got the follow-up, after the others' would have been due: theirs never went out.
    second = await smtp.wait_for("silent@example.com", 2)
    assert "follow up on our previous message" in text_of(second[1])
    assert completed["results"]["messages_sent"] == 2
    assert len(smtp.sent_to("replies@example.com")) == 1
    assert len(smtp.sent_to("unsubscribes@example.com")) == 1

    # What the API shows about it: the lead engaged, the interactions, the run's actions and its UI link.
    rita_now = (await client.get(f"/v1/leads/{leads['replies']['id']}", headers=owner.headers)).json()
    assert rita_now["status"] == "engaged"
    kinds = [(i["direction"], i["channel"]) for i in rita_now["interactions"]]
    assert kinds == [("outbound", "automated_workflow"), ("inbound", "reply")]
    assert rita_now["interactions"][0]["metadata"]["template_id"] == "new_lead_template"
    assert [a["type"] for a in stopped_by_reply["actions_performed"]][:2] == ["generate_message", "send_email"]
    assert stopped_by_reply["temporal_ui_url"].startswith("http://localhost:8233/namespaces/default/workflows/")
    uma_now = (await client.get(f"/v1/leads/{leads['unsubscribes']['id']}", headers=owner.headers)).json()
    assert uma_now["unsubscribed_at"] is not None
