"""``/api/lead-nurturing`` leads and interactions with the spec's bodies, and what reaches Temporal.

Sequences run on the real Temporal dev server. No worker polls the test's task queue, so a started run
stays live and every signal the API sends is visible, decoded, in its history.
"""

from __future__ import annotations

from typing import Any

import httpx2
import pytest
from fastapi import FastAPI
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

from schemas.lead_follow_up import LeadEvent, LeadEventSignal
from schemas.temporal import COMPANY_ID, ENTITY_ID, WORKFLOW_CONFIG_ID
from services.lead_follow_up import workflow_id_for
from tests.api.lead_support import add_lead_config, create_lead, run_count, signals
from tests.conftest import Account, register

# The spec's "Create a Lead" request body.
JOHN: dict[str, Any] = {
    "name": "John Doe",
    "email": "john.doe@example.com",
    "phone": "+1234567890",
    "source": "website_form",
    "notes": "Interested in our services",
}
LEAD_KEYS = {
    "id",
    "name",
    "email",
    "phone",
    "company_id",
    "source",
    "status",
    "notes",
    "created_at",
    "updated_at",
}
INTERACTION_KEYS = {
    "id",
    "company_id",
    "lead_id",
    "type",
    "direction",
    "content",
    "channel",
    "status",
    "created_at",
    "metadata",
}
LEADS = "/api/lead-nurturing/leads"
INTERACTIONS = "/api/lead-nurturing/interactions"


async def test_lead_endpoints_with_the_spec_bodies(client: httpx2.AsyncClient, owner: Account) -> None:
    created = await client.post(LEADS, headers=owner.headers, json=JOHN)
    assert created.status_code == 201, created.text
    lead = created.json()
    assert lead.keys() >= LEAD_KEYS
    assert lead["id"].startswith("lead-")
    assert lead["company_id"] == owner.company_id.replace("cmp_", "company-")
    assert {k: lead[k] for k in JOHN} == JOHN
    assert lead["status"] == "new"

    listed = (await client.get(LEADS, headers=owner.headers)).json()
    assert listed == {"items": [lead], "total": 1, "page": 1, "limit": 20}
    assert (await client.get(f"{LEADS}/{lead['id']}", headers=owner.headers)).json() == lead
    # The canonical spelling of the id is accepted too.
    canonical = lead["id"].replace("lead-", "lead_")
    assert (await client.get(f"{LEADS}/{canonical}", headers=owner.headers)).json()["id"] == lead["id"]

    # The spec's "Update Lead" body.
    updated = await client.put(
        f"{LEADS}/{lead['id']}",
        headers=owner.headers,
        json={
            "name": "John Doe",
            "email": "john.doe@example.com",
            "phone": "+1234567890",
            "status": "contacted",
            "notes": "Interested in our services, sent initial email",
        },
    )
    assert updated.status_code == 200, updated.text
    assert updated.json()["status"] == "contacted"
    assert updated.json()["notes"] == "Interested in our services, sent initial email"
    assert updated.json()["source"] == "website_form"

    deleted = await client.delete(f"{LEADS}/{lead['id']}", headers=owner.headers)
    assert deleted.json() == {"success": True, "message": "Lead deleted successfully"}
    missing = await client.get(f"{LEADS}/{lead['id']}", headers=owner.headers)
    assert missing.status_code == 404 and missing.json() == {"detail": "Lead not found"}
    assert (await client.put(f"{LEADS}/{lead['id']}", headers=owner.headers, json={})).status_code == 404


async def test_interaction_endpoints_with_the_spec_bodies(client: httpx2.AsyncClient, owner: Account) -> None:
    lead = await create_lead(client, owner, JOHN, path=LEADS)
    # The spec's "Create Interaction" body.
    created = await client.post(
        INTERACTIONS,
        headers=owner.headers,
        json={
            "lead_id": lead["id"],
            "type": "email",
            "direction": "outbound",
            "content": "Hi John, thank you for your interest in our services.",
            "channel": "manual",
            "metadata": {"subject": "Thank you for your interest"},
        },
    )
    assert created.status_code == 201, created.text
    interaction = created.json()
    assert interaction.keys() >= INTERACTION_KEYS
    assert interaction["id"].startswith("interaction-")
    assert interaction["lead_id"] == lead["id"] and interaction["company_id"] == lead["company_id"]
    assert interaction["status"] == "delivered"  # the spec's default for an outbound message
    assert interaction["metadata"] == {"subject": "Thank you for your interest"}
    assert interaction["created_by"] == owner.user_id.replace("usr_", "user-")

    other = await create_lead(client, owner, {"name": "Jane Smith", "email": "jane@example.com"}, path=LEADS)
    for body in (
        {"lead_id": other["id"], "type": "sms", "direction": "outbound", "content": "Hi Jane"},
        {
            "lead_id": other["id"],
            "type": "email",
            "direction": "inbound",
            "content": "Yes, call me",
            "channel": "reply",
        },
    ):
        assert (await client.post(INTERACTIONS, headers=owner.headers, json=body)).status_code == 201

    async def listed(**params: Any) -> dict[str, Any]:
        response = await client.get(INTERACTIONS, headers=owner.headers, params=params)
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    everything = await listed()
    assert everything["total"] == 3 and everything["page"] == 1 and everything["limit"] == 20
    assert (await listed(lead_id=lead["id"]))["items"] == [interaction]
    assert (await listed(lead_id=canonical_id(other["id"])))["total"] == 2
    assert [i["type"] for i in (await listed(type="sms"))["items"]] == ["sms"]
    inbound = (await listed(direction="inbound"))["items"]
    assert [(i["content"], i["status"]) for i in inbound] == [("Yes, call me", "received")]
    assert (await listed(type="email", direction="outbound"))["items"] == [interaction]
    assert len((await listed(limit=2, page=2))["items"]) == 1
    # A reply moves a new lead to engaged.
    assert (await client.get(f"{LEADS}/{other['id']}", headers=owner.headers)).json()["status"] == "engaged"

    unknown = await client.post(
        INTERACTIONS, headers=owner.headers, json={"lead_id": "lead-nope", "type": "email", "direction": "outbound"}
    )
    assert unknown.status_code == 404 and unknown.json() == {"detail": "Lead not found"}
    invalid = await client.post(INTERACTIONS, headers=owner.headers, json={"type": "email", "direction": "up"})
    assert invalid.status_code == 422
    assert {e["field"] for e in invalid.json()["detail"]} == {"lead_id", "direction"}


def canonical_id(api_id: str) -> str:
    return api_id.replace("lead-", "lead_")


async def test_source_words_sorting_and_validation(client: httpx2.AsyncClient, owner: Account) -> None:
    manual = await create_lead(
        client, owner, {"name": "Ann", "email": "ann@example.com", "source": "manual_entry"}, path=LEADS
    )
    ad = await create_lead(client, owner, {"name": "Ben", "email": "ben@example.com", "source": "ad"}, path=LEADS)
    crm = await create_lead(
        client, owner, {"name": "Cid", "email": "cid@example.com", "source": "crm", "tags": ["vip"]}, path=LEADS
    )
    assert (manual["source"], ad["source"], crm["source"]) == ("manual_entry", "ad_campaign", "crm")
    # /v1 shows the canonical words for the same leads.
    v1 = (await client.get(f"/v1/leads/{canonical_id(manual['id'])}", headers=owner.headers)).json()
    assert v1["source"] == "manual"

    async def names(**params: Any) -> list[str]:
        response = await client.get(LEADS, headers=owner.headers, params=params)
        assert response.status_code == 200, response.text
        return [lead["name"] for lead in response.json()["items"]]

    assert await names(source="manual_entry") == ["Ann"] == await names(source="manual")
    assert await names(source="ad_campaign") == ["Ben"]
    assert await names(tags="vip") == ["Cid"]
    assert await names(sort="name", order="asc") == ["Ann", "Ben", "Cid"]
    assert await names(sort="name", order="desc", limit=1, page=2) == ["Ben"]
    assert await names(status="new", sort="created_at", order="asc") == ["Ann", "Ben", "Cid"]

    bad = await client.post(
        LEADS, headers=owner.headers, json={"name": "X", "email": "nope", "phone": "12", "source": "tv"}
    )
    assert bad.status_code == 422
    assert {e["field"] for e in bad.json()["detail"]} == {"email", "phone", "source"}
    bad_status = await client.put(f"{LEADS}/{ad['id']}", headers=owner.headers, json={"status": "won"})
    assert bad_status.status_code == 422 and bad_status.json()["detail"][0]["field"] == "status"

    stranger = await register(client, company="Other Co")
    assert (await client.get(f"{LEADS}/{ad['id']}", headers=stranger.headers)).status_code == 404
    assert (await client.delete(f"{LEADS}/{ad['id']}", headers=stranger.headers)).status_code == 404
    assert (await client.get(LEADS, headers=stranger.headers)).json()["total"] == 0
    theirs = (await client.get(INTERACTIONS, headers=stranger.headers, params={"lead_id": ad["id"]})).json()
    assert theirs["total"] == 0


async def test_duplicates_and_idempotency_on_api(client: httpx2.AsyncClient, owner: Account) -> None:
    first = await create_lead(client, owner, JOHN, path=LEADS)
    again = await client.post(LEADS, headers=owner.headers, json={**JOHN, "notes": "Asked for a quote", "tags": ["q"]})
    assert again.status_code == 200
    assert again.headers["x-duplicate-of"] == first["id"]
    assert again.json()["notes"] == "Asked for a quote" and again.json()["tags"] == ["q"]

    body = {"lead_id": first["id"], "type": "email", "direction": "outbound", "content": "Hi"}
    headers = {**owner.headers, "Idempotency-Key": "3f1c-interaction"}
    one = await client.post(INTERACTIONS, headers=headers, json=body)
    two = await client.post(INTERACTIONS, headers=headers, json=body)
    assert one.status_code == two.status_code == 201 and one.json() == two.json()
    assert (await client.get(INTERACTIONS, headers=owner.headers)).json()["total"] == 1
    clash = await client.post(INTERACTIONS, headers=headers, json={**body, "content": "Hello"})
    assert clash.status_code == 409 and isinstance(clash.json()["detail"], str)

    lead_key = {**owner.headers, "Idempotency-Key": "lead-key"}
    made = await client.post(LEADS, headers=lead_key, json={"name": "Kim", "email": "kim@example.com"})
    replayed = await client.post(LEADS, headers=lead_key, json={"name": "Kim", "email": "kim@example.com"})
    assert made.status_code == replayed.status_code == 201 and made.json() == replayed.json()


# ---------------------------------------------------------------- sequences on Temporal


async def test_create_starts_one_sequence_per_matching_config(
    client: httpx2.AsyncClient, owner: Account, app: FastAPI, temporal_client: Client
) -> None:
    website = await add_lead_config(app, owner.company_id, lead_source=["website_form", "landing_page"])
    vip = await add_lead_config(app, owner.company_id, tags=["vip"])

    lead = await create_lead(client, owner, JOHN, path=LEADS)
    lead_id = canonical_id(lead["id"])
    description = await temporal_client.get_workflow_handle(workflow_id_for(lead_id, website)).describe()
    attributes = description.typed_search_attributes
    assert attributes.get(COMPANY_ID) == owner.company_id
    assert attributes.get(ENTITY_ID) == lead_id
    assert attributes.get(WORKFLOW_CONFIG_ID) == website
    assert description.workflow_type == "LeadFollowUpWorkflow"
    with pytest.raises(RPCError) as not_started:
        await temporal_client.get_workflow_handle(workflow_id_for(lead_id, vip)).describe()
    assert not_started.value.status == RPCStatusCode.NOT_FOUND
    assert await run_count(app, lead_id) == 1

    # The same email again, even with the tag that would match the second config: no second sequence.
    again = await client.post(LEADS, headers=owner.headers, json={**JOHN, "tags": ["vip"]})
    assert again.status_code == 200
    assert await run_count(app, lead_id) == 1
    assert (
        await temporal_client.get_workflow_handle(workflow_id_for(lead_id, website)).describe()
    ).run_id == description.run_id

    both = await create_lead(
        client, owner, {"name": "Vera", "email": "vera@example.com", "source": "landing_page", "tags": ["vip"]}
    )
    assert await run_count(app, both["id"]) == 2
    for config in (website, vip):
        await temporal_client.get_workflow_handle(workflow_id_for(both["id"], config)).describe()
    neither = await create_lead(client, owner, {"name": "Ned", "email": "ned@example.com", "source": "crm"})
    assert await run_count(app, neither["id"]) == 0


async def test_replies_status_changes_and_deletes_signal_the_sequence(
    client: httpx2.AsyncClient, owner: Account, app: FastAPI, temporal_client: Client
) -> None:
    config = await add_lead_config(app, owner.company_id)
    leads = [await create_lead(client, owner, {"name": f"Lead {n}", "email": f"lead{n}@example.com"}) for n in range(5)]
    replied, converted, lost, deleted, untouched = (lead["id"] for lead in leads)

    reply = await client.post(
        f"/v1/leads/{replied}/interactions",
        headers=owner.headers,
        json={"type": "email", "direction": "inbound", "content": "Sounds good", "channel": "reply"},
    )
    assert reply.status_code == 201
    assert await signals(temporal_client, replied, config) == [
        LeadEventSignal(event=LeadEvent.replied, interaction_id=reply.json()["id"])
    ]
    assert (await client.get(f"/v1/leads/{replied}", headers=owner.headers)).json()["status"] == "engaged"

    won = await client.patch(f"/v1/leads/{converted}", headers=owner.headers, json={"status": "converted"})
    assert won.status_code == 200 and won.json()["converted_at"] is not None
    assert await signals(temporal_client, converted, config) == [LeadEventSignal(event=LeadEvent.converted)]
    # A change that does not end the sequence sends nothing.
    await client.patch(f"/v1/leads/{converted}", headers=owner.headers, json={"notes": "Signed the contract"})
    assert len(await signals(temporal_client, converted, config)) == 1

    gone = await client.put(
        f"{LEADS}/lead-{lost.removeprefix('lead_')}", headers=owner.headers, json={"status": "lost"}
    )
    assert gone.status_code == 200
    assert await signals(temporal_client, lost, config) == [LeadEventSignal(event=LeadEvent.lost)]

    assert (await client.delete(f"/v1/leads/{deleted}", headers=owner.headers)).status_code == 204
    assert await signals(temporal_client, deleted, config) == [LeadEventSignal(event=LeadEvent.deleted)]

    outbound = await client.post(
        f"/v1/leads/{untouched}/interactions", headers=owner.headers, json={"type": "sms", "direction": "outbound"}
    )
    assert outbound.status_code == 201
    assert await signals(temporal_client, untouched, config) == []
