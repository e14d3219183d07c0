"""``/v1/leads`` and ``/v1/leads/{id}/interactions`` with the spec's bodies, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx2
from fastapi import FastAPI

from tests.api.lead_support import add_lead_config, create_lead, event_types, run_count, stored_keys
from tests.conftest import Account, register

# The spec's "Create Lead" request body.
ALICE: dict[str, Any] = {
    "name": "Alice Brown",
    "email": "alice@example.com",
    "phone": "+1122334455",
    "source": "referral",
    "notes": "Referred by Bob Johnson",
    "tags": ["warm_lead"],
    "custom_fields": {"company": "XYZ Corp", "position": "Marketing Director"},
}
# Every key of the spec's "Get Lead" response.
DETAIL_KEYS = {
    "id",
    "name",
    "email",
    "phone",
    "source",
    "status",
    "created_at",
    "updated_at",
    "notes",
    "tags",
    "assigned_to",
    "custom_fields",
    "interactions",
}
INTERACTION_KEYS = {
    "id",
    "lead_id",
    "type",
    "direction",
    "content",
    "channel",
    "status",
    "created_at",
    "created_by",
    "metadata",
}


async def test_lead_lifecycle_with_the_spec_bodies(client: httpx2.AsyncClient, owner: Account, app: FastAPI) -> None:
    created = await client.post("/v1/leads", headers=owner.headers, json=ALICE)
    assert created.status_code == 201, created.text
    lead = created.json()
    assert lead["id"].startswith("lead_")
    assert {k: lead[k] for k in ALICE} == ALICE
    assert lead["status"] == "new" and lead["assigned_to"] is None
    assert "x-duplicate-of" not in created.headers

    detail = (await client.get(f"/v1/leads/{lead['id']}", headers=owner.headers)).json()
    assert detail.keys() >= DETAIL_KEYS
    assert detail["interactions"] == []

    # The spec's "Update Lead" body, assigning the lead to a real user of the company.
    patched = await client.patch(
        f"/v1/leads/{lead['id']}",
        headers=owner.headers,
        json={
            "status": "qualified",
            "notes": "Interested in premium package, follow up next week",
            "assigned_to": owner.user_id,
        },
    )
    assert patched.status_code == 200, patched.text
    assert patched.json()["status"] == "qualified"
    assert patched.json()["notes"] == "Interested in premium package, follow up next week"
    assert patched.json()["assigned_to"] == owner.user_id
    assert patched.json()["tags"] == ["warm_lead"]  # not sent, not changed
    assert patched.json()["updated_at"] >= lead["updated_at"]

    # The spec's "Create Interaction" body.
    interaction = await client.post(
        f"/v1/leads/{lead['id']}/interactions",
        headers=owner.headers,
        json={
            "type": "email",
            "direction": "outbound",
            "content": "Hello Jane, following up on our previous conversation...",
            "channel": "manual",
            "status": "delivered",
        },
    )
    assert interaction.status_code == 201, interaction.text
    body = interaction.json()
    assert body.keys() == INTERACTION_KEYS
    assert body["id"].startswith("int_") and body["lead_id"] == lead["id"]
    assert body["created_by"] == owner.user_id and body["metadata"] == {}
    assert (body["type"], body["direction"], body["channel"], body["status"]) == (
        "email",
        "outbound",
        "manual",
        "delivered",
    )

    detail = (await client.get(f"/v1/leads/{lead['id']}", headers=owner.headers)).json()
    assert [i["id"] for i in detail["interactions"]] == [body["id"]]
    assert detail["status"] == "qualified"  # outbound contact does not change the status

    listed = (await client.get(f"/v1/leads/{lead['id']}/interactions", headers=owner.headers)).json()
    assert listed["meta"] == {"current_page": 1, "per_page": 20, "total_items": 1, "total_pages": 1}
    assert listed["data"][0] == body

    assert await event_types(app, lead["id"]) == ["lead.created", "lead.updated", "lead.status_changed"]
    assert await event_types(app, body["id"]) == ["interaction.created"]

    deleted = await client.delete(f"/v1/leads/{lead['id']}", headers=owner.headers)
    assert deleted.status_code == 204 and deleted.content == b""
    missing = await client.get(f"/v1/leads/{lead['id']}", headers=owner.headers)
    assert missing.status_code == 404
    assert missing.json() == {
        "error": "not_found",
        "message": "Lead not found",
        "resource_type": "lead",
        "resource_id": lead["id"],
    }
    # Erased with its interactions and the events that carried its data.
    assert (await client.get(f"/v1/leads/{lead['id']}/interactions", headers=owner.headers)).status_code == 404
    assert await event_types(app, lead["id"]) == []


async def test_erasing_a_lead_drops_the_stored_responses_that_show_it(
    client: httpx2.AsyncClient, owner: Account, app: FastAPI
) -> None:
    keyed = {**owner.headers, "Idempotency-Key": "k1"}
    lead = (await client.post("/v1/leads", headers=keyed, json=ALICE)).json()
    other = await create_lead(client, owner, {"name": "Bob", "email": "bob@example.com"})
    await client.post(
        f"/v1/leads/{lead['id']}/interactions",
        headers={**owner.headers, "Idempotency-Key": "k2"},
        json={"type": "note", "direction": "outbound", "content": "Alice prefers mornings"},
    )
    api_key = {**owner.headers, "Idempotency-Key": "k3"}
    await client.put(f"/api/lead-nurturing/leads/lead-{lead['id'][5:]}", headers=owner.headers, json={"notes": "x"})
    await client.post(
        "/api/lead-nurturing/interactions",
        headers=api_key,
        json={"lead_id": f"lead-{lead['id'][5:]}", "type": "note", "direction": "outbound"},
    )
    await client.post(
        "/api/lead-nurturing/interactions",
        headers={**owner.headers, "Idempotency-Key": "k4"},
        json={"lead_id": other["id"], "type": "note", "direction": "outbound"},
    )
    assert await stored_keys(app, owner.company_id) == ["k1", "k2", "k3", "k4"]
    await client.delete(f"/v1/leads/{lead['id']}", headers=owner.headers)
    assert await stored_keys(app, owner.company_id) == ["k4"]


async def test_list_filters_sorts_and_pages(client: httpx2.AsyncClient, owner: Account) -> None:
    specs = [
        ("Jane Smith", "website_form", ["interested", "high_value"]),
        ("Bob Johnson", "manual", ["follow_up"]),
        ("Carol White", "website_form", ["interested"]),
        ("Dan Brown", "referral", []),
        ("Eve Black", "website_form", ["high_value"]),
    ]
    ids = {}
    for name, source, tags in specs:
        email = f"{name.split()[0].lower()}@example.com"
        ids[name] = (await create_lead(client, owner, {"name": name, "email": email, "source": source, "tags": tags}))[
            "id"
        ]
    await client.patch(f"/v1/leads/{ids['Bob Johnson']}", headers=owner.headers, json={"status": "contacted"})

    async def names(**params: Any) -> list[str]:
        response = await client.get("/v1/leads", headers=owner.headers, params=params)
        assert response.status_code == 200, response.text
        return [lead["name"] for lead in response.json()["data"]]

    # Default: newest first.
    assert await names() == [name for name, _, _ in reversed(specs)]
    assert await names(status="contacted") == ["Bob Johnson"]
    assert await names(source="website_form", sort_by="name", sort_dir="asc") == [
        "Carol White",
        "Eve Black",
        "Jane Smith",
    ]
    assert await names(source="manual_entry") == ["Bob Johnson"]  # the /api word is understood too
    assert await names(tags="interested", sort_by="name", sort_dir="asc") == ["Carol White", "Jane Smith"]
    assert await names(tags="interested,high_value") == ["Jane Smith"]
    assert await names(tags=["high_value", "interested"]) == ["Jane Smith"]
    assert await names(tags="nobody") == []
    assert await names(sort_by="name", sort_dir="desc") == sorted((n for n, _, _ in specs), reverse=True)

    page = (
        await client.get(
            "/v1/leads", headers=owner.headers, params={"per_page": 2, "page": 2, "sort_by": "name", "sort_dir": "asc"}
        )
    ).json()
    assert [lead["name"] for lead in page["data"]] == ["Dan Brown", "Eve Black"]
    assert page["meta"] == {"current_page": 2, "per_page": 2, "total_items": 5, "total_pages": 3}

    bad_sort = await client.get("/v1/leads", headers=owner.headers, params={"sort_by": "password"})
    assert bad_sort.status_code == 422 and "sort_by" in bad_sort.json()["details"]
    bad_status = await client.get("/v1/leads", headers=owner.headers, params={"status": "hot"})
    assert bad_status.status_code == 422 and "status" in bad_status.json()["details"]


async def test_search_matches_name_or_email_literally_and_pages_with_the_filters(
    client: httpx2.AsyncClient, owner: Account
) -> None:
    """``q`` is a case-insensitive substring of the name or the email; ``%`` and ``_`` are characters, not wildcards.

    Searching and the tags filter read the matching leads first (services.paging's ``matches_first``): the total
    and the pages must be those of the plain filtered, sorted list.
    """
    specs = [
        ("Ann 100% Organic", "ann@example.com", ["vip"]),
        ("Bo Under_Score", "bo@example.com", ["vip"]),
        ("Cy Plain", "cy_x@example.com", []),
        ("Di Hundred", "di100x@example.com", ["vip"]),
        ("Ed Other", "ed@example.org", ["vip"]),
    ]
    for name, email, tags in specs:
        await create_lead(client, owner, {"name": name, "email": email, "tags": tags})
    stranger = await register(client, "Stranger Ltd")
    await create_lead(client, stranger, {"name": "Ann 100% Elsewhere", "email": "ann100@example.com"})

    async def search(**params: Any) -> tuple[list[str], int]:
        response = await client.get(
            "/v1/leads", headers=owner.headers, params={"sort_by": "name", "sort_dir": "asc", **params}
        )
        assert response.status_code == 200, response.text
        body = response.json()
        return [lead["name"] for lead in body["data"]], body["meta"]["total_items"]

    assert await search(q="100%") == (["Ann 100% Organic"], 1)
    assert await search(q="%") == (["Ann 100% Organic"], 1)  # not "any text"
    assert await search(q="00% ORG") == (["Ann 100% Organic"], 1)
    assert await search(q="1_0") == ([], 0)  # "_" is not "any one character": "100" does not match
    assert await search(q="r_s") == (["Bo Under_Score"], 1)
    assert await search(q="_") == (["Bo Under_Score", "Cy Plain"], 2)  # in the name, or in the email
    assert await search(q="100") == (["Ann 100% Organic", "Di Hundred"], 2)
    assert await search(q="EXAMPLE.ORG") == (["Ed Other"], 1)
    assert await search(q="organic") == (["Ann 100% Organic"], 1)
    assert await search(q="nobody") == ([], 0)
    assert await search(q="example", tags="vip", sort_dir="desc") == (
        ["Ed Other", "Di Hundred", "Bo Under_Score", "Ann 100% Organic"],
        4,
    )
    # Pages of a search and of the tags filter: the same rows as the whole list, sliced, whatever the page.
    for params in ({"q": "example"}, {"tags": "vip"}, {"tags": "vip", "q": "o"}):
        everything, total = await search(**params, per_page=100)
        paged = [name for page in (1, 2, 3) for name in (await search(**params, per_page=2, page=page))[0]]
        assert paged == everything and total == len(everything) and total >= 3
        beyond, beyond_total = await search(**params, per_page=2, page=10)
        assert beyond == [] and beyond_total == total


async def test_interactions_list_filters_and_pages(client: httpx2.AsyncClient, owner: Account) -> None:
    lead = await create_lead(client, owner, {"name": "Jane Smith", "email": "jane@example.com"})
    url = f"/v1/leads/{lead['id']}/interactions"
    for kind in ("email", "sms", "email", "call"):
        response = await client.post(url, headers=owner.headers, json={"type": kind, "direction": "outbound"})
        assert response.status_code == 201
        assert response.json()["status"] == "delivered" and response.json()["channel"] == "manual"
    emails = (await client.get(url, headers=owner.headers, params={"type": "email"})).json()
    assert [i["type"] for i in emails["data"]] == ["email", "email"]
    assert emails["meta"]["total_items"] == 2
    paged = (await client.get(url, headers=owner.headers, params={"per_page": 3, "page": 2})).json()
    assert len(paged["data"]) == 1 and paged["meta"]["total_pages"] == 2

    bad = await client.post(url, headers=owner.headers, json={"type": "fax", "direction": "sideways"})
    assert bad.status_code == 422
    assert {"type", "direction"} <= bad.json()["details"].keys()


async def test_invalid_values_are_422_naming_the_field(client: httpx2.AsyncClient, owner: Account) -> None:
    async def field_errors(body: dict[str, Any]) -> dict[str, list[str]]:
        response = await client.post("/v1/leads", headers=owner.headers, json=body)
        assert response.status_code == 422, response.text
        assert response.json()["error"] == "validation_error"
        details: dict[str, list[str]] = response.json()["details"]
        return details

    assert "email" in await field_errors({"name": "Jane", "email": "not-an-email"})
    assert "phone" in await field_errors({"name": "Jane", "phone": "call me maybe"})
    assert "phone" in await field_errors({"name": "Jane", "phone": "12345"})  # no country code
    assert "phone" in await field_errors({"name": "Jane", "phone": "+1 23"})
    assert "source" in await field_errors({"name": "Jane", "email": "j@example.com", "source": "carrier_pigeon"})
    assert "name" in await field_errors({"email": "j@example.com"})
    assert "timezone" in await field_errors({"name": "Jane", "email": "j@example.com", "timezone": "Mars/Olympus"})
    assert "email" in await field_errors({"name": "Jane"})  # nothing to reach the lead with
    other = await register(client, company="Other Co")
    assert "assigned_to" in await field_errors({"name": "Jane", "email": "j@example.com", "assigned_to": other.user_id})

    lead = await create_lead(
        client, owner, {"name": "  Jane  ", "email": "Jane.Smith@Example.COM", "phone": "+1 (415) 555-0123"}
    )
    assert (lead["name"], lead["email"], lead["phone"]) == ("Jane", "jane.smith@example.com", "+14155550123")

    async def patch_errors(body: dict[str, Any]) -> dict[str, list[str]]:
        response = await client.patch(f"/v1/leads/{lead['id']}", headers=owner.headers, json=body)
        assert response.status_code == 422, response.text
        details: dict[str, list[str]] = response.json()["details"]
        return details

    assert "status" in await patch_errors({"status": "hot"})
    assert "phone" in await patch_errors({"phone": "555"})
    assert "name" in await patch_errors({"name": None})
    assert "assigned_to" in await patch_errors({"assigned_to": other.user_id})
    assert "colour" in await patch_errors({"colour": "blue"})  # unknown fields are refused, not ignored
    assert "email" in await patch_errors({"email": None, "phone": None})

    # Clearing the phone is fine while the lead still has an email; another lead's email is a conflict.
    cleared = await client.patch(f"/v1/leads/{lead['id']}", headers=owner.headers, json={"phone": None})
    assert cleared.status_code == 200 and cleared.json()["phone"] is None
    await create_lead(client, owner, {"name": "Bob", "email": "bob@example.com"})
    taken = await client.patch(f"/v1/leads/{lead['id']}", headers=owner.headers, json={"email": "BOB@example.com"})
    assert taken.status_code == 409 and taken.json()["error"] == "conflict"


async def test_custom_fields_merge_and_timezone(client: httpx2.AsyncClient, owner: Account) -> None:
    lead = await create_lead(
        client,
        owner,
        {"name": "Jane", "email": "jane@example.com", "custom_fields": {"budget": "$5000-$10000", "timeline": "3m"}},
    )
    patched = await client.patch(
        f"/v1/leads/{lead['id']}",
        headers=owner.headers,
        json={"custom_fields": {"timeline": None, "size": 12}, "timezone": "Europe/Paris", "tags": ["a", "a", "b"]},
    )
    assert patched.status_code == 200, patched.text
    assert patched.json()["custom_fields"] == {"budget": "$5000-$10000", "size": 12}
    assert patched.json()["timezone"] == "Europe/Paris"
    assert patched.json()["tags"] == ["a", "b"]


async def test_another_companys_leads_are_not_found(client: httpx2.AsyncClient, owner: Account) -> None:
    lead = await create_lead(client, owner, ALICE)
    stranger = await register(client, company="Other Co")
    url = f"/v1/leads/{lead['id']}"
    assert (await client.get(url, headers=stranger.headers)).status_code == 404
    assert (await client.patch(url, headers=stranger.headers, json={"status": "lost"})).status_code == 404
    assert (await client.delete(url, headers=stranger.headers)).status_code == 404
    assert (await client.get(f"{url}/interactions", headers=stranger.headers)).status_code == 404
    logged = await client.post(
        f"{url}/interactions", headers=stranger.headers, json={"type": "note", "direction": "outbound"}
    )
    assert logged.status_code == 404
    assert (await client.get("/v1/leads", headers=stranger.headers)).json()["meta"]["total_items"] == 0
    # The same email is a different lead in another company.
    theirs = await client.post("/v1/leads", headers=stranger.headers, json=ALICE)
    assert theirs.status_code == 201 and theirs.json()["id"] != lead["id"]
    assert (await client.get(url, headers=owner.headers)).json()["status"] == "new"
    assert (await client.get("/v1/leads")).status_code == 401


async def test_two_creates_of_one_email_at_once_make_one_lead_and_one_sequence(
    app: FastAPI, client: httpx2.AsyncClient, owner: Account
) -> None:
    await add_lead_config(app, owner.company_id)
    body = {"name": "Dana Lee", "email": "dana@example.com", "source": "website_form"}
    answers = await asyncio.gather(*(client.post("/v1/leads", headers=owner.headers, json=body) for _ in range(2)))
    assert sorted(answer.status_code for answer in answers) == [200, 201], [answer.text for answer in answers]
    first, second = (answer.json()["id"] for answer in answers)
    assert first == second
    assert await run_count(app, first) == 1
    assert await event_types(app, first) == ["lead.created"]


async def test_a_second_create_with_the_same_email_returns_the_lead_merged(
    client: httpx2.AsyncClient, owner: Account
) -> None:
    first = await create_lead(client, owner, ALICE)
    again = await client.post(
        "/v1/leads",
        headers=owner.headers,
        json={
            "name": "Alice Brown",
            "email": "ALICE@example.com",
            "source": "website_form",
            "notes": "",
            "tags": ["warm_lead", "webinar"],
            "custom_fields": {"position": "CMO", "budget": "10k"},
        },
    )
    assert again.status_code == 200, again.text
    assert again.headers["x-duplicate-of"] == first["id"]
    merged = again.json()
    assert merged["id"] == first["id"]
    assert merged["tags"] == ["warm_lead", "webinar"]
    assert merged["custom_fields"] == {"company": "XYZ Corp", "position": "CMO", "budget": "10k"}
    assert merged["notes"] == "Referred by Bob Johnson"  # an empty new value keeps the old one
    assert merged["phone"] == "+1122334455"
    assert merged["source"] == "referral"  # where the lead first came from
    listed = (await client.get("/v1/leads", headers=owner.headers)).json()
    assert listed["meta"]["total_items"] == 1


async def test_idempotency_key_replays_and_conflicts(client: httpx2.AsyncClient, owner: Account) -> None:
    headers = {**owner.headers, "Idempotency-Key": "create-alice-1"}
    first = await client.post("/v1/leads", headers=headers, json=ALICE)
    assert first.status_code == 201
    retry = await client.post("/v1/leads", headers=headers, json=dict(reversed(list(ALICE.items()))))
    # A retry gets the first answer (201 and the same body), not "that email exists" (200).
    assert retry.status_code == 201
    assert retry.json() == first.json()
    assert retry.headers["idempotent-replayed"] == "true"

    changed = await client.post("/v1/leads", headers=headers, json={**ALICE, "name": "Alice B."})
    assert changed.status_code == 409 and changed.json()["error"] == "conflict"
    elsewhere = await client.post(
        f"/v1/leads/{first.json()['id']}/interactions",
        headers=headers,
        json={"type": "note", "direction": "outbound"},
    )
    assert elsewhere.status_code == 409  # the key belongs to the lead create

    url = f"/v1/leads/{first.json()['id']}/interactions"
    note = {"type": "note", "direction": "outbound", "content": "Called, left a voicemail"}
    key = {**owner.headers, "Idempotency-Key": "note-1"}
    logged = [await client.post(url, headers=key, json=note) for _ in range(3)]
    assert [r.status_code for r in logged] == [201, 201, 201]
    assert len({r.json()["id"] for r in logged}) == 1
    assert (await client.get(url, headers=owner.headers)).json()["meta"]["total_items"] == 1

    # A failed request stores nothing: the key can be used again once the body is right.
    bad_key = {**owner.headers, "Idempotency-Key": "bob-1"}
    bad = await client.post("/v1/leads", headers=bad_key, json={"name": "Bob", "email": "bob@"})
    assert bad.status_code == 422
    bob = {"name": "Bob", "email": "bob@example.com"}
    no_contact = await client.post("/v1/leads", headers=bad_key, json={"name": "Bob"})
    assert no_contact.status_code == 422
    assert (await client.post("/v1/leads", headers=bad_key, json=bob)).status_code == 201

    # Keys are per company.
    other = await register(client, company="Other Co")
    theirs = await client.post("/v1/leads", headers={**other.headers, "Idempotency-Key": "create-alice-1"}, json=ALICE)
    assert theirs.status_code == 201 and theirs.json()["id"] != first.json()["id"]
