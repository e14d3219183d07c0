"""Publishing content on both surfaces (``/v1/content/{id}/publish...`` and ``/api/content-generation/publish``),
on SQLite and PostgreSQL, through the real worker and a WordPress-like server on loopback.

Also here: the click-tracked links (``GET /c/{link_id}``) and the company's publishing integrations, whose
secrets never come back out of the API.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import datetime, timedelta
from typing import Any

import httpx2
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.client import Client
from temporalio.service import RPCError

from core.config import Settings
from db.base import utcnow
from db.models import Company, Publication
from schemas.ids import to_api_id
from tests.conftest import Account, register
from tests.support.wordpress_server import APP_PASSWORD, USERNAME, WordPressServer
from workflows.publishing import PublishContentWorkflow

pytestmark = pytest.mark.usefixtures("worker")

GUIDE = "https://acme.example.com/guide"
BODY = f"## Start here\n\nOur [step-by-step guide]({GUIDE}) shows how, and {GUIDE} again for the skimmers."
# The spec's Publish Content answer, plus the publication that carries it out.
PUBLISHED_KEYS = {"id", "title", "type", "status", "created_at", "published_at", "platform", "url", "publication"}
CONTENT_KEYS = {
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
PUBLICATION_KEYS = {
    "id",
    "content_id",
    "platform",
    "status",
    "publish_at",
    "published_at",
    "url",
    "external_id",
    "error",
    "attempts",
    "progress",
    "run_id",
    "created_at",
    "updated_at",
}


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"publish_timeout_seconds": 1.0, "public_base_url": "http://testserver"})


@pytest.fixture
def wordpress() -> Iterator[WordPressServer]:
    with WordPressServer() as server:
        yield server


@pytest.fixture(autouse=True)
async def _end_publish_runs(temporal_client: Client, db: async_sessionmaker[AsyncSession]) -> AsyncIterator[None]:
    """Scheduled publishes wait for days: terminate what the test left on the shared dev server."""
    try:
        yield
    finally:
        async with db() as session:
            publication_ids = list(await session.scalars(select(Publication.id)))
        for publication_id in publication_ids:
            with contextlib.suppress(RPCError):  # closed already
                await temporal_client.get_workflow_handle(f"content-publish/{publication_id}").terminate("test over")


async def use_wordpress(client: httpx2.AsyncClient, owner: Account, server: WordPressServer) -> None:
    response = await client.patch(
        "/v1/companies/current",
        headers=owner.headers,
        json={"integrations": {"wordpress": {"url": server.url, "username": USERNAME, "app_password": APP_PASSWORD}}},
    )
    assert response.status_code == 200, response.text


async def written(client: httpx2.AsyncClient, owner: Account, body: str = BODY) -> dict[str, Any]:
    """A blog draft written by the worker (offline writer), its text then edited to ``body``."""
    generated = await client.post(
        "/v1/content/generate",
        headers=owner.headers,
        json={"type": "blog", "title": "10 Proven Ways to Improve Your Business", "keywords": ["business"]},
    )
    assert generated.status_code == 201, generated.text
    edited = await client.patch(f"/v1/content/{generated.json()['id']}", headers=owner.headers, json={"body": body})
    assert edited.status_code == 200, edited.text
    content: dict[str, Any] = edited.json()
    return content


async def wait_for(
    client: httpx2.AsyncClient, owner: Account, url: str, done: Callable[[dict[str, Any]], bool]
) -> dict[str, Any]:
    async with asyncio.timeout(30):
        while True:
            body: dict[str, Any] = (await client.get(url, headers=owner.headers)).json()
            if done(body):
                return body
            await asyncio.sleep(0.1)


async def publications_of(client: httpx2.AsyncClient, owner: Account, content_id: str) -> list[dict[str, Any]]:
    listed = await client.get(f"/v1/content/{content_id}/publications", headers=owner.headers)
    assert listed.status_code == 200, listed.text
    assert listed.json()["meta"]["total_items"] == len(listed.json()["data"])
    data: list[dict[str, Any]] = listed.json()["data"]
    return data


def moment(value: str) -> datetime:
    return datetime.fromisoformat(value)


# ---------------------------------------------------------------- publishing


async def test_v1_publish_to_wordpress_creates_exactly_one_post_and_stores_its_url(
    client: httpx2.AsyncClient, owner: Account, wordpress: WordPressServer
) -> None:
    await use_wordpress(client, owner, wordpress)
    content = await written(client, owner)

    response = await client.post(
        f"/v1/content/{content['id']}/publish", headers=owner.headers, json={"platform": "WordPress", "schedule": False}
    )

    assert response.status_code == 200, response.text
    body = response.json()
    [post] = wordpress.posts
    assert set(body) == PUBLISHED_KEYS and set(body["publication"]) == PUBLICATION_KEYS
    assert (body["id"], body["type"], body["status"], body["platform"]) == (
        content["id"],
        "blog",
        "published",
        "WordPress",
    )
    assert body["url"] == post["link"] and body["title"] == "10 Proven Ways to Improve Your Business"
    assert moment(body["published_at"]) <= utcnow()
    assert body["publication"]["status"] == "published" and body["publication"]["external_id"] == str(post["id"])
    shown = (await client.get(f"/v1/content/{content['id']}", headers=owner.headers)).json()
    assert (shown["status"], shown["url"], shown["platform"]) == ("published", post["link"], "WordPress")
    assert shown["body"] == BODY  # the stored text keeps the real address; the post carries the tracked one
    [publication] = await publications_of(client, owner, content["id"])
    assert publication["id"] == body["publication"]["id"] and publication["attempts"] == 1

    again = await client.post(f"/v1/content/{content['id']}/publish", headers=owner.headers, json={"platform": "wp"})
    assert again.status_code == 409 and again.json()["error"] == "conflict"
    assert post["link"] in again.json()["message"]
    assert len(wordpress.creates) == 1


async def test_api_publish_answers_at_once_and_publishes_in_the_background(
    client: httpx2.AsyncClient, owner: Account, wordpress: WordPressServer
) -> None:
    await use_wordpress(client, owner, wordpress)
    started = await client.post(
        "/api/content-generation/blog-post",
        headers=owner.headers,
        json={"topic": "How Custom Software Can Boost Your Business", "word_count": 300},
    )
    assert started.status_code == 202, started.text
    api_content_id = started.json()["content_id"]
    await wait_for(
        client, owner, f"/api/content-generation/content/{api_content_id}", lambda b: b["content"]["status"] == "draft"
    )

    response = await client.post(
        f"/api/content-generation/publish/{api_content_id}", headers=owner.headers, json={"platform": "wordpress"}
    )

    assert response.status_code == 202, response.text
    body = response.json()
    assert body["message"] == f"Publishing content {api_content_id} to wordpress in the background"
    assert body["status"] == "pending" and body["content_id"] == api_content_id
    assert body["publication_id"].startswith("publication-") and body["run_id"].startswith("run-")
    done = await wait_for(
        client,
        owner,
        f"/api/content-generation/content/{api_content_id}",
        lambda b: b["content"]["status"] == "published",
    )
    [post] = wordpress.posts
    assert done["content"]["url"] == post["link"] and done["content"]["platform"] == "WordPress"
    run = await wait_for(
        client, owner, f"/v1/workflow-runs/{body['run_id'].replace('run-', 'run_')}", lambda b: b["status"] != "running"
    )
    assert run["status"] == "completed"
    twice = await client.post(
        f"/api/content-generation/publish/{api_content_id}", headers=owner.headers, json={"platform": "WordPress"}
    )
    assert twice.status_code == 409 and set(twice.json()) == {"detail"}


async def test_content_that_requires_approval_is_not_published_until_approved(
    client: httpx2.AsyncClient, owner: Account
) -> None:
    settings = await client.patch(
        "/v1/companies/current", headers=owner.headers, json={"settings": {"content_requires_approval": True}}
    )
    assert settings.status_code == 200, settings.text
    content = await written(client, owner)
    path = f"/v1/content/{content['id']}/publish"

    refused = await client.post(path, headers=owner.headers, json={"platform": "recorded"})
    assert refused.status_code == 409 and "approved" in refused.json()["message"]
    api_refused = await client.post(
        f"/api/content-generation/publish/{to_api_id(content['id'])}",
        headers=owner.headers,
        json={"platform": "webhook"},
    )
    assert api_refused.status_code == 409 and "approved" in api_refused.json()["detail"]
    assert await publications_of(client, owner, content["id"]) == []

    approved = await client.post(f"/v1/content/{content['id']}/approve", headers=owner.headers)
    assert approved.status_code == 200 and approved.json()["status"] == "approved"
    published = await client.post(path, headers=owner.headers, json={})  # nothing configured: recorded
    assert published.status_code == 200, published.text
    assert (published.json()["status"], published.json()["platform"], published.json()["url"]) == (
        "published",
        "Recorded",
        None,
    )
    assert "nothing was sent" in published.json()["publication"]["progress"]["recorded"]


async def test_a_scheduled_publish_waits_and_a_cancelled_one_publishes_nothing(
    client: httpx2.AsyncClient, owner: Account, wordpress: WordPressServer, temporal_client: Client
) -> None:
    await use_wordpress(client, owner, wordpress)
    content = await written(client, owner)
    path = f"/v1/content/{content['id']}/publish"
    tomorrow = (utcnow() + timedelta(days=1)).replace(microsecond=0)

    no_time = await client.post(path, headers=owner.headers, json={"platform": "WordPress", "schedule": True})
    assert no_time.status_code == 422 and "published_at" in no_time.json()["details"]
    past = (utcnow() - timedelta(hours=1)).isoformat()
    in_the_past = await client.post(
        path, headers=owner.headers, json={"platform": "WordPress", "schedule": True, "published_at": past}
    )
    assert in_the_past.status_code == 422 and "future" in in_the_past.json()["details"]["published_at"][0]

    scheduled = await client.post(
        path,
        headers=owner.headers,
        json={"platform": "WordPress", "schedule": True, "published_at": tomorrow.isoformat()},
    )
    assert scheduled.status_code == 202, scheduled.text
    body = scheduled.json()
    assert (body["status"], moment(body["published_at"]), body["url"]) == ("scheduled", tomorrow, None)
    assert body["publication"]["status"] == "scheduled" and moment(body["publication"]["publish_at"]) == tomorrow
    second = await client.post(path, headers=owner.headers, json={"platform": "WordPress"})
    assert second.status_code == 409 and "scheduled" in second.json()["message"]

    cancelled = await client.post(f"{path}/cancel", headers=owner.headers)
    assert cancelled.status_code == 200, cancelled.text
    assert cancelled.json()["content"]["status"] == "draft" and cancelled.json()["content"]["published_at"] is None
    assert [p["status"] for p in cancelled.json()["cancelled"]] == ["cancelled"]
    handle = temporal_client.get_workflow_handle_for(
        PublishContentWorkflow.run, f"content-publish/{body['publication']['id']}"
    )
    async with asyncio.timeout(15):
        outcome = await handle.result()
    assert outcome.status == "cancelled"
    run = await wait_for(client, owner, f"/v1/workflow-runs/{body['publication']['run_id']}", lambda b: True)
    assert run["status"] == "stopped"
    assert wordpress.creates == []
    again = await client.post(f"{path}/cancel", headers=owner.headers, json={"platform": "WordPress"})
    assert again.status_code == 409


async def test_patch_with_status_scheduled_schedules_the_publish_and_reschedules_it(
    client: httpx2.AsyncClient, owner: Account, wordpress: WordPressServer
) -> None:
    await use_wordpress(client, owner, wordpress)
    content = await written(client, owner)
    monday = (utcnow() + timedelta(days=3)).replace(microsecond=0)

    patched = await client.patch(
        f"/v1/content/{content['id']}",
        headers=owner.headers,
        json={
            "title": "10 Proven Ways to Improve Your Business",
            "body": "In the competitive landscape of modern business...",
            "status": "scheduled",
            "published_at": monday.isoformat(),
        },
    )

    assert patched.status_code == 200, patched.text
    body = patched.json()
    assert set(body) == CONTENT_KEYS
    assert (body["status"], moment(body["published_at"]), body["platform"], body["url"]) == (
        "scheduled",
        monday,
        "WordPress",  # the company's configured publisher
        None,
    )
    assert body["body"] == "In the competitive landscape of modern business..."
    tuesday = monday + timedelta(days=1)
    moved = await client.patch(
        f"/v1/content/{content['id']}",
        headers=owner.headers,
        json={"status": "scheduled", "published_at": tuesday.isoformat(), "platform": "wordpress"},
    )
    assert moved.status_code == 200, moved.text
    assert moment(moved.json()["published_at"]) == tuesday
    newest, earlier = await publications_of(client, owner, content["id"])
    assert (newest["status"], moment(newest["publish_at"])) == ("scheduled", tuesday)
    assert earlier["status"] == "cancelled"
    editing = await client.patch(f"/v1/content/{content['id']}", headers=owner.headers, json={"title": "Changed"})
    assert editing.status_code == 409  # what is scheduled is what goes out
    bad = await client.patch(
        f"/v1/content/{content['id']}",
        headers=owner.headers,
        json={"status": "scheduled", "published_at": tuesday.isoformat(), "platform": "MySpace"},
    )
    assert bad.status_code == 422 and "platform" in bad.json()["details"]
    assert wordpress.creates == []


async def test_no_answer_after_the_post_is_an_unknown_outcome_that_a_person_resolves(
    client: httpx2.AsyncClient, owner: Account, wordpress: WordPressServer
) -> None:
    await use_wordpress(client, owner, wordpress)
    wordpress.hang_seconds = 3  # takes the post, answers after the 1s timeout
    first, second = await written(client, owner), await written(client, owner)

    timed_out = await client.post(f"/v1/content/{first['id']}/publish", headers=owner.headers, json={})
    assert timed_out.status_code == 200, timed_out.text
    assert timed_out.json()["status"] == "unknown_outcome" and timed_out.json()["publication"]["status"] == "unknown"
    unknown = timed_out.json()["publication"]
    assert "did not answer" in unknown["error"]
    blocked = await client.post(f"/v1/content/{first['id']}/publish", headers=owner.headers, json={})
    assert blocked.status_code == 409 and f"publications/{unknown['id']}/resolve" in blocked.json()["message"]
    await asyncio.sleep(2.5)  # let the hung request finish
    assert len(wordpress.creates) == 1  # never retried blindly

    # Retry: WordPress is asked first, has the post, and the publication takes its address: still one post.
    wordpress.hang_seconds = 0
    retried = await client.post(
        f"/v1/content/{first['id']}/publications/{unknown['id']}/resolve",
        headers=owner.headers,
        json={"action": "retry"},
    )
    assert retried.status_code == 200, retried.text
    assert retried.json()["publication"]["run_id"] != unknown["run_id"]
    done = await wait_for(client, owner, f"/v1/content/{first['id']}", lambda b: b["status"] == "published")
    [post] = wordpress.posts
    assert done["url"] == post["link"] and len(wordpress.creates) == 1 and len(wordpress.lookups) == 1
    [publication] = await publications_of(client, owner, first["id"])
    assert (publication["status"], publication["attempts"]) == ("published", 2)  # two attempts, one post

    # Confirm: a person checked the site and says where it is.
    wordpress.hang_seconds = 3
    other = await client.post(f"/v1/content/{second['id']}/publish", headers=owner.headers, json={})
    assert other.json()["status"] == "unknown_outcome", other.text
    confirmed = await client.post(
        f"/v1/content/{second['id']}/publications/{other.json()['publication']['id']}/resolve",
        headers=owner.headers,
        json={"action": "confirm", "url": "https://blog.example.com/found-it/"},
    )
    assert confirmed.status_code == 200, confirmed.text
    assert (confirmed.json()["status"], confirmed.json()["url"]) == ("published", "https://blog.example.com/found-it/")
    assert confirmed.json()["publication"]["progress"]["confirmed_by"] == owner.user_id
    twice = await client.post(
        f"/v1/content/{second['id']}/publications/{other.json()['publication']['id']}/resolve",
        headers=owner.headers,
        json={"action": "retry"},
    )
    assert twice.status_code == 409


# ---------------------------------------------------------------- tracked links


async def test_a_tracked_link_counts_the_click_and_redirects_only_to_its_address(
    client: httpx2.AsyncClient, owner: Account, wordpress: WordPressServer
) -> None:
    await use_wordpress(client, owner, wordpress)
    content = await written(client, owner)
    published = await client.post(f"/v1/content/{content['id']}/publish", headers=owner.headers, json={})
    assert published.status_code == 200, published.text
    [post] = wordpress.posts
    link_ids = set(re.findall(r'href="http://testserver/c/(link_[a-z0-9]+)"', post["content"]["raw"]))
    assert len(link_ids) == 1  # the same address twice is one link
    [link_id] = link_ids

    for _ in range(2):
        clicked = await client.get(f"/c/{link_id}")
        assert clicked.status_code == 302 and clicked.headers["location"] == GUIDE
    smuggled = await client.get(f"/c/{link_id}", params={"url": "https://evil.example.com", "next": "//evil"})
    assert smuggled.status_code == 302 and smuggled.headers["location"] == GUIDE
    previewed = await client.head(f"/c/{link_id}")
    assert previewed.status_code == 302 and previewed.headers["location"] == GUIDE
    metrics = (await client.get(f"/v1/content/{content['id']}", headers=owner.headers)).json()["metrics"]
    assert metrics["clicks"] == 3  # a preview's HEAD is not a click

    unknown = await client.get("/c/link_doesnotexist0000")
    assert unknown.status_code == 404 and "location" not in unknown.headers
    assert (await client.get("/c/https:%2F%2Fevil.example.com")).status_code == 404


# ---------------------------------------------------------------- tenants and integrations


async def test_another_companys_content_and_publications_are_404(
    client: httpx2.AsyncClient, owner: Account, wordpress: WordPressServer
) -> None:
    content = await written(client, owner)
    published = await client.post(f"/v1/content/{content['id']}/publish", headers=owner.headers, json={})
    publication_id = published.json()["publication"]["id"]
    other = await register(client, "Other Co")
    own = await written(client, other)
    v1 = f"/v1/content/{content['id']}"

    attempts = [
        await client.post(f"{v1}/publish", headers=other.headers, json={"platform": "WordPress"}),
        await client.post(f"{v1}/publish/cancel", headers=other.headers),
        await client.get(f"{v1}/publications", headers=other.headers),
        await client.post(
            f"{v1}/publications/{publication_id}/resolve", headers=other.headers, json={"action": "retry"}
        ),
        await client.post(
            f"/v1/content/{own['id']}/publications/{publication_id}/resolve",
            headers=other.headers,
            json={"action": "confirm"},
        ),
    ]
    assert [response.status_code for response in attempts] == [404] * 5
    assert [response.json()["error"] for response in attempts] == ["not_found"] * 5
    api = await client.post(
        f"/api/content-generation/publish/{to_api_id(content['id'])}", headers=other.headers, json={"platform": "wp"}
    )
    assert api.status_code == 404 and api.json() == {"detail": "Content not found"}
    assert len(await publications_of(client, owner, content["id"])) == 1


async def test_publishing_integrations_are_for_admins_and_their_secrets_never_come_back(
    client: httpx2.AsyncClient, owner: Account, wordpress: WordPressServer, db: async_sessionmaker[AsyncSession]
) -> None:
    await use_wordpress(client, owner, wordpress)
    secret = "whsec-0123456789abcdef"
    hooked = await client.patch(
        "/v1/companies/current",
        headers=owner.headers,
        json={"integrations": {"webhook": {"url": "https://hooks.example.com/bas", "secret": secret}}},
    )
    assert hooked.status_code == 200, hooked.text
    shown = (await client.get("/v1/companies/current", headers=owner.headers)).json()["integrations"]
    assert shown == {
        "wordpress": {"url": f"{wordpress.url}/", "username": USERNAME, "app_password": "********"},
        "webhook": {"url": "https://hooks.example.com/bas", "secret": "********"},
    }
    assert secret not in hooked.text and APP_PASSWORD not in hooked.text

    # The mask sent back (a form saving what it was shown) keeps the stored secret.
    echoed = await client.patch(
        "/v1/companies/current",
        headers=owner.headers,
        json={"integrations": {"wordpress": {**shown["wordpress"], "username": "publisher"}}},
    )
    assert echoed.status_code == 200, echoed.text
    async with db() as session:
        company = await session.get(Company, owner.company_id)
        assert company is not None
        assert company.integrations["wordpress"]["app_password"] == APP_PASSWORD
        assert company.integrations["wordpress"]["username"] == "publisher"
        assert company.integrations["webhook"]["secret"] == secret

    weak = await client.patch(
        "/v1/companies/current", headers=owner.headers, json={"integrations": {"webhook": {"secret": "short"}}}
    )
    assert weak.status_code == 422 and "integrations.webhook.secret" in weak.json()["details"]
    removed = await client.patch(
        "/v1/companies/current", headers=owner.headers, json={"integrations": {"webhook": None}}
    )
    assert set(removed.json()["integrations"]) == {"wordpress"}

    created = await client.post(
        "/api/users",
        headers=owner.headers,
        json={"username": "m@example.com", "email": "m@example.com", "password": "password123", "role": "manager"},
    )
    assert created.status_code == 201, created.text
    token = (await client.post("/token", json={"username": "m@example.com", "password": "password123"})).json()
    manager = {"Authorization": f"Bearer {token['access_token']}"}
    denied = await client.patch(
        "/v1/companies/current", headers=manager, json={"integrations": {"wordpress": {"username": "me"}}}
    )
    assert denied.status_code == 403
    assert (await client.get("/v1/companies/current", headers=manager)).json()["integrations"]["wordpress"][
        "app_password"
    ] == "********"
