"""Generating content on both surfaces through the real worker and Temporal dev server, with the offline writer
and with the real ``openai`` client against a loopback server; the content records, editing and approval."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx2
import pytest

from core.config import Settings
from tests.api.test_workflow_configs import add_member
from tests.conftest import Account, register

V1_GENERATE = {
    "type": "blog",
    "title": "5 Benefits of Business Automation",
    "keywords": ["automation", "efficiency", "business"],
    "tone": "professional",
    "length": "medium",
}
SPEC_BODIES = {
    "blog-post": (
        {
            "topic": "custom software",
            "word_count": 800,
            "keywords": "software development, custom solutions, business growth",
            "call_to_action": "Contact us for a free consultation",
        },
        "Generating blog post on topic 'custom software' in the background",
        "blog_post",
    ),
    "social-media": (
        {
            "topic": "custom software",
            "platform": "linkedin",
            "hashtags": "#software #development #business",
            "call_to_action": "Visit our website",
        },
        "Generating linkedin post on topic 'custom software' in the background",
        "social_media",
    ),
    "email-newsletter": (
        {
            "topic": "monthly update",
            "newsletter_type": "monthly update",
            "content_sections": "company news, industry insights, tips",
            "primary_goal": "nurture relationships",
            "call_to_action": "Schedule a call",
            "word_count": 500,
        },
        "Generating email newsletter on topic 'monthly update' in the background",
        "email_newsletter",
    ),
    "product-description": (
        {
            "product_name": "Custom CRM Solution",
            "product_category": "CRM",
            "key_features": "Contact management, Sales pipeline, Reporting",
            "primary_benefits": "Increased productivity, Better customer insights",
            "technical_specifications": "Cloud-based, Mobile app, API integration",
            "price_point": "Starting at $99/month",
            "unique_selling_proposition": "Fully customizable to your business processes",
            "platform": "website",
            "keywords": "CRM, customer relationship management, sales",
        },
        "Generating product description for 'Custom CRM Solution' in the background",
        "product_description",
    ),
}
CONTENT_FIELDS = {
    "id",
    "title",
    "type",
    "body",
    "status",
    "created_at",
    "published_at",
    "created_by",
    "platform",
    "url",
    "tags",
    "metadata",
}


async def content_when(client: httpx2.AsyncClient, account: Account, content_id: str, *statuses: str) -> dict[str, Any]:
    """The content item once it is in one of ``statuses`` (30 s at most)."""
    async with asyncio.timeout(30):
        while True:
            item: dict[str, Any] = (await client.get(f"/v1/content/{content_id}", headers=account.headers)).json()
            if item["status"] in statuses:
                return item
            await asyncio.sleep(0.1)


@pytest.mark.usefixtures("worker")
async def test_v1_generate_answers_with_the_finished_draft(client: httpx2.AsyncClient, owner: Account) -> None:
    response = await client.post("/v1/content/generate", headers=owner.headers, json=V1_GENERATE)
    assert response.status_code == 201, response.text
    draft = response.json()
    assert set(draft) == CONTENT_FIELDS
    assert (draft["title"], draft["type"], draft["status"], draft["published_at"]) == (
        "5 Benefits of Business Automation",
        "blog",
        "draft",
        None,
    )
    assert draft["tags"] == ["automation", "efficiency", "business"]
    # Medium is about 750 words; the figures are counted from the text.
    assert 650 <= draft["metadata"]["word_count"] <= 850
    assert draft["metadata"]["reading_time"] == -(-draft["metadata"]["word_count"] // 200)
    assert draft["metadata"]["writer"] == "offline"

    detail = (await client.get(f"/v1/content/{draft['id']}", headers=owner.headers)).json()
    assert detail["metrics"] == {"views": 0, "clicks": 0, "shares": 0, "comments": 0, "conversions": 0}
    runs = (await client.get("/v1/workflow-runs", headers=owner.headers)).json()["data"]
    assert [(run["trigger_id"], run["status"]) for run in runs] == [(draft["id"], "completed")]


@pytest.mark.usefixtures("worker")
async def test_v1_generate_answers_202_when_the_draft_takes_longer_than_the_wait(
    client: httpx2.AsyncClient, owner: Account, settings: Settings
) -> None:
    settings.content_generation_wait_seconds = 0  # the app reads its settings per request
    response = await client.post("/v1/content/generate", headers=owner.headers, json=V1_GENERATE)
    assert response.status_code == 202, response.text
    accepted = response.json()
    assert set(accepted) == {"id", "status", "run_id", "message"}
    assert accepted["status"] == "generating"
    done = await content_when(client, owner, accepted["id"], "draft")
    assert done["title"] == "5 Benefits of Business Automation"


@pytest.mark.usefixtures("worker")
@pytest.mark.parametrize("endpoint", list(SPEC_BODIES))
async def test_api_generation_endpoints_answer_pending_at_once_with_ids_to_poll(
    client: httpx2.AsyncClient, owner: Account, endpoint: str
) -> None:
    body, message, type_word = SPEC_BODIES[endpoint]
    response = await client.post(f"/api/content-generation/{endpoint}", headers=owner.headers, json=body)
    assert response.status_code == 202, response.text
    accepted = response.json()
    assert (accepted["message"], accepted["status"]) == (message, "pending")
    assert accepted["content_id"].startswith("content-") and accepted["run_id"].startswith("run-")

    content_id = accepted["content_id"].replace("content-", "cont_")
    await content_when(client, owner, content_id, "draft")
    read = (await client.get(f"/api/content-generation/content/{accepted['content_id']}", headers=owner.headers)).json()
    assert read["message"] == f"Content {accepted['content_id']} retrieved successfully"
    item = read["content"]
    assert (item["id"], item["type"], item["status"]) == (accepted["content_id"], type_word, "draft")
    assert item["title"] and item["content"]
    if endpoint == "social-media":
        assert item["content"].endswith("\n\n#software #development #business")
        assert len(item["content"]) <= 3000
    if endpoint == "product-description":
        assert "Starting at $99/month" in item["content"]


async def test_bad_generation_requests_are_refused_and_start_nothing(
    client: httpx2.AsyncClient, owner: Account
) -> None:
    no_topic = await client.post("/v1/content/generate", headers=owner.headers, json={"type": "blog"})
    assert no_topic.status_code == 422 and list(no_topic.json()["details"]) == ["topic"]
    bad_type = await client.post("/v1/content/generate", headers=owner.headers, json={**V1_GENERATE, "type": "poem"})
    assert bad_type.status_code == 422 and list(bad_type.json()["details"]) == ["type"]
    no_network = await client.post(
        "/api/content-generation/social-media", headers=owner.headers, json={"topic": "custom software"}
    )
    assert no_network.status_code == 422
    assert [error["loc"][-1] for error in no_network.json()["detail"]] == ["platform"]
    assert (await client.get("/v1/content", headers=owner.headers)).json()["meta"]["total_items"] == 0
    assert (await client.get("/v1/workflow-runs", headers=owner.headers)).json()["meta"]["total_items"] == 0


# ---------------------------------------------------------------- records, editing and approval


@pytest.mark.usefixtures("worker")
async def test_list_edit_and_approve_with_roles_and_tenancy(client: httpx2.AsyncClient, owner: Account) -> None:
    await client.patch(
        "/v1/companies/current", headers=owner.headers, json={"settings": {"content_requires_approval": True}}
    )
    blog = (await client.post("/v1/content/generate", headers=owner.headers, json=V1_GENERATE)).json()
    social = (
        await client.post(
            "/v1/content/generate",
            headers=owner.headers,
            json={"type": "social_media", "topic": "tips", "platform": "linkedin"},
        )
    ).json()
    await content_when(client, owner, blog["id"], "draft")
    await content_when(client, owner, social["id"], "draft")

    listed = (await client.get("/v1/content", headers=owner.headers, params={"type": "blog_post"})).json()
    assert [item["id"] for item in listed["data"]] == [blog["id"]]
    assert set(listed["data"][0]) == {"id", "title", "type", "status", "created_at", "published_at", "platform", "url"}
    by_title = (
        await client.get("/v1/content", headers=owner.headers, params={"sort_by": "title", "sort_dir": "asc"})
    ).json()
    assert [item["id"] for item in by_title["data"]] == [blog["id"], social["id"]]
    page = (await client.get("/v1/content", headers=owner.headers, params={"per_page": 1, "page": 2})).json()
    assert page["meta"] == {"current_page": 2, "per_page": 1, "total_items": 2, "total_pages": 2}

    edited = await client.patch(
        f"/v1/content/{blog['id']}", headers=owner.headers, json={"title": "10 Proven Ways", "tags": ["tips"]}
    )
    assert edited.status_code == 200 and (edited.json()["title"], edited.json()["tags"]) == ("10 Proven Ways", ["tips"])

    member = await add_member(client, owner, "writer@example.com", "user")
    refused = await client.post(f"/v1/content/{blog['id']}/approve", headers=member)
    assert refused.status_code == 403
    approved = await client.patch(f"/v1/content/{blog['id']}", headers=owner.headers, json={"status": "approved"})
    assert approved.status_code == 200 and approved.json()["status"] == "approved"
    # Changing approved text sends it back for approval: what was approved is not what it says now.
    changed = await client.patch(f"/v1/content/{blog['id']}", headers=owner.headers, json={"body": "New text."})
    assert changed.json()["status"] == "draft"
    again = await client.post(f"/v1/content/{blog['id']}/approve", headers=owner.headers)
    assert again.status_code == 200 and again.json()["status"] == "approved"
    bad_status = await client.patch(f"/v1/content/{blog['id']}", headers=owner.headers, json={"status": "published"})
    assert bad_status.status_code == 422 and list(bad_status.json()["details"]) == ["status"]

    other = await register(client, company="Globex")
    for path in (f"/v1/content/{blog['id']}", f"/api/content-generation/content/{blog['id']}"):
        assert (await client.get(path, headers=other.headers)).status_code == 404
    assert (
        await client.patch(f"/v1/content/{blog['id']}", headers=other.headers, json={"title": "x"})
    ).status_code == 404
    assert (await client.get("/v1/content", headers=other.headers)).json()["data"] == []
