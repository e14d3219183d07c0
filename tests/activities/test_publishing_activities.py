"""The publishing activities against real parts: a database (SQLite and PostgreSQL), a WordPress-like REST API
and a webhook receiver on 127.0.0.1.

The publications row is the protocol: ``sending`` is committed before the platform is called; no answer after
the request left is ``unknown`` and never resent; an attempt that finds ``sending`` asks WordPress first.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.testing import ActivityEnvironment

from activities.content.publishers import post_slug
from activities.content.publishing import PublishingActivities
from activities.messaging.outcome import ProviderUnavailable
from core.config import Settings
from core.ids import new_id
from db.base import utcnow
from db.content_links import addresses
from db.models import Company, Content, ContentLink, DomainEvent, Publication, WorkflowRun
from db.session import transaction
from schemas.content_workflows import Publisher, PublishStep
from schemas.publishing import AutoPublishInput
from tests.support.processes import free_port
from tests.support.wordpress_server import APP_PASSWORD, USERNAME, WebhookReceiver, WordPressServer

PUBLIC = "https://bas.example.com"
OFFER = "https://acme.example.com/offer?utm_source=blog"
GUIDE = "https://acme.example.com/guide"
BODY = (
    "## Why it matters\n\n"
    f"Read [the guide]({GUIDE}) first. Then claim the offer at {OFFER}.\n\n"
    f"The offer again: <{OFFER}>. Already tracked: {PUBLIC}/c/link_existing."
)
SECRET = "whsec-0123456789abcdef"


@dataclass
class Seeded:
    company_id: str
    content_id: str
    publication_id: str

    @property
    def step(self) -> PublishStep:
        return PublishStep(publication_id=self.publication_id)


@pytest.fixture
def sessions(db: async_sessionmaker[AsyncSession]) -> async_sessionmaker[AsyncSession]:
    return db


@pytest.fixture
def env() -> ActivityEnvironment:
    return ActivityEnvironment()


@pytest.fixture
def wordpress() -> Iterator[WordPressServer]:
    with WordPressServer() as server:
        yield server


@pytest.fixture
def activities(settings: Settings, sessions: async_sessionmaker[AsyncSession]) -> PublishingActivities:
    configured = settings.model_copy(update={"public_base_url": PUBLIC + "/", "publish_timeout_seconds": 1.0})
    return PublishingActivities(sessions, configured)


def wordpress_of(server: WordPressServer, password: str = APP_PASSWORD) -> dict[str, Any]:
    return {"wordpress": {"url": server.url, "username": USERNAME, "app_password": password}}


async def seed(
    sessions: async_sessionmaker[AsyncSession],
    integrations: dict[str, Any],
    *,
    platform: Publisher = Publisher.wordpress,
    publication_status: str = "pending",
    attempts: int = 0,
    content_status: str = "approved",
    requires_approval: bool = False,
    with_publication: bool = True,
) -> Seeded:
    company = Company(id=new_id("cmp"), name="Acme Inc", integrations=integrations)
    content = Content(
        id=new_id("cont"),
        company_id=company.id,
        type="blog",
        title="Ten Ways to Grow",
        body=BODY,
        status=content_status,
        tags=["growth"],
        meta={"word_count": 30},
        parameters={"type": "blog", "topic": "growth", "hashtags": ["#growth"]},
        requires_approval=requires_approval,
        approved_by="usr_test" if content_status == "approved" else None,
        approved_at=utcnow() if content_status == "approved" else None,
    )
    publication = Publication(
        id=new_id("pub"),
        company_id=company.id,
        content_id=content.id,
        platform=platform.value,
        status=publication_status,
        attempts=attempts,
        progress={},
    )
    async with transaction(sessions) as session:
        session.add(company)
        await session.flush()
        session.add(content)
        await session.flush()
        if with_publication:
            session.add(publication)
    return Seeded(company.id, content.id, publication.id)


async def rows(sessions: async_sessionmaker[AsyncSession], seeded: Seeded) -> tuple[Publication, Content]:
    async with sessions() as session:
        publication = await session.get(Publication, seeded.publication_id)
        content = await session.get(Content, seeded.content_id)
        assert publication is not None and content is not None
        return publication, content


async def events(sessions: async_sessionmaker[AsyncSession], content_id: str) -> list[DomainEvent]:
    async with sessions() as session:
        return list(await session.scalars(select(DomainEvent).where(DomainEvent.entity_id == content_id)))


async def links(sessions: async_sessionmaker[AsyncSession], content_id: str) -> dict[str, str]:
    async with sessions() as session:
        found = await session.scalars(select(ContentLink).where(ContentLink.content_id == content_id))
        return {link.url: link.id for link in found}


# ---------------------------------------------------------------- WordPress


async def test_a_publish_creates_one_post_with_tracked_links_and_stores_its_address(
    sessions: async_sessionmaker[AsyncSession],
    activities: PublishingActivities,
    wordpress: WordPressServer,
    env: ActivityEnvironment,
) -> None:
    seeded = await seed(sessions, wordpress_of(wordpress))

    outcome = await env.run(activities.publish, seeded.step)

    [post] = wordpress.posts
    assert (outcome.status, outcome.url) == ("published", post["link"])
    assert post["status"] == "publish" and post["title"]["raw"] == "Ten Ways to Grow"
    assert post["slug"] == post_slug("Ten Ways to Grow", seeded.publication_id)
    assert seeded.publication_id.removeprefix("pub_") in post["slug"]
    # Every address became a tracked link (one per address), the already-tracked one stayed as it was.
    tracked = await links(sessions, seeded.content_id)
    assert set(tracked) == {GUIDE, OFFER}
    html = post["content"]["raw"]
    assert OFFER not in html and GUIDE not in html
    assert f'<a href="{PUBLIC}/c/{tracked[GUIDE]}">the guide</a>' in html
    assert html.count(f'href="{PUBLIC}/c/{tracked[OFFER]}"') == 2
    assert f"{PUBLIC}/c/link_existing" in html
    assert "<h2>Why it matters</h2>" in html

    publication, content = await rows(sessions, seeded)
    assert (publication.status, publication.url, publication.external_id, publication.attempts) == (
        "published",
        post["link"],
        str(post["id"]),
        1,
    )
    assert (content.status, content.url, content.platform) == ("published", post["link"], "WordPress")
    assert content.published_at is not None and content.body == BODY  # the stored text keeps the real addresses
    [event] = await events(sessions, seeded.content_id)
    assert event.type == "content.published" and event.payload["url"] == post["link"]

    # A retried attempt (its first try committed) returns what is stored: no second post.
    again = await env.run(activities.publish, seeded.step)
    assert (again.status, again.url) == ("published", post["link"])
    assert len(wordpress.creates) == 1 and len(wordpress.posts) == 1


async def test_an_attempt_that_finds_sending_asks_wordpress_and_does_not_post_twice(
    sessions: async_sessionmaker[AsyncSession],
    activities: PublishingActivities,
    wordpress: WordPressServer,
    env: ActivityEnvironment,
) -> None:
    """The worker died after posting: the post exists, so the retry takes its address instead of posting."""
    seeded = await seed(sessions, wordpress_of(wordpress), publication_status="sending", attempts=1)
    earlier = wordpress.add_post(post_slug("Ten Ways to Grow", seeded.publication_id))

    outcome = await env.run(activities.publish, seeded.step)

    assert (outcome.status, outcome.url) == ("published", earlier["link"])
    assert wordpress.creates == [] and len(wordpress.posts) == 1
    [lookup] = wordpress.lookups
    assert lookup["slug"] == earlier["slug"] and lookup["status"] == "any"
    publication, content = await rows(sessions, seeded)
    assert (publication.external_id, publication.attempts) == (str(earlier["id"]), 1)
    assert (content.status, content.url) == ("published", earlier["link"])


async def test_an_attempt_that_finds_sending_posts_again_when_wordpress_has_no_such_post(
    sessions: async_sessionmaker[AsyncSession],
    activities: PublishingActivities,
    wordpress: WordPressServer,
    env: ActivityEnvironment,
) -> None:
    seeded = await seed(sessions, wordpress_of(wordpress), publication_status="sending", attempts=1)

    outcome = await env.run(activities.publish, seeded.step)

    [post] = wordpress.posts
    assert (outcome.status, outcome.url) == ("published", post["link"])
    assert len(wordpress.lookups) == 1 and len(wordpress.creates) == 1
    publication, _ = await rows(sessions, seeded)
    assert publication.attempts == 2


@pytest.mark.parametrize("lookup", ["unreachable", "server_error"])
async def test_an_attempt_that_finds_sending_records_unknown_when_wordpress_cannot_say(
    sessions: async_sessionmaker[AsyncSession],
    activities: PublishingActivities,
    wordpress: WordPressServer,
    env: ActivityEnvironment,
    lookup: str,
) -> None:
    integrations = wordpress_of(wordpress)
    if lookup == "unreachable":
        integrations["wordpress"]["url"] = f"http://127.0.0.1:{free_port()}"
    wordpress.lookups_fail = True
    seeded = await seed(sessions, integrations, publication_status="sending", attempts=1)

    outcome = await env.run(activities.publish, seeded.step)

    assert outcome.status == "unknown"
    assert wordpress.creates == []
    publication, content = await rows(sessions, seeded)
    assert publication.status == "unknown" and "cannot say whether the post exists" in (publication.error or "")
    assert content.status == "unknown_outcome"


async def test_no_answer_after_the_post_left_is_unknown_and_never_posted_again(
    sessions: async_sessionmaker[AsyncSession],
    activities: PublishingActivities,
    wordpress: WordPressServer,
    env: ActivityEnvironment,
) -> None:
    wordpress.hang_seconds = 3  # the client gives up after 1s
    seeded = await seed(sessions, wordpress_of(wordpress))

    outcome = await env.run(activities.publish, seeded.step)

    assert outcome.status == "unknown"
    publication, content = await rows(sessions, seeded)
    assert publication.status == "unknown" and "did not answer" in (publication.error or "")
    assert content.status == "unknown_outcome"
    [event] = await events(sessions, seeded.content_id)
    assert (event.type, event.payload["status"]) == ("content.publish_failed", "unknown")
    # Temporal retrying the activity changes nothing: a person must confirm or retry.
    assert (await env.run(activities.publish, seeded.step)).status == "unknown"
    assert len(wordpress.creates) == 1


async def test_a_platform_asking_to_come_back_later_is_retried_and_then_posted_once(
    sessions: async_sessionmaker[AsyncSession],
    activities: PublishingActivities,
    wordpress: WordPressServer,
    env: ActivityEnvironment,
) -> None:
    wordpress.refuse_with = 503
    seeded = await seed(sessions, wordpress_of(wordpress))

    with pytest.raises(ProviderUnavailable):
        await env.run(activities.publish, seeded.step)
    publication, content = await rows(sessions, seeded)
    assert (publication.status, publication.attempts, content.status) == ("pending", 1, "publishing")

    wordpress.refuse_with = None
    outcome = await env.run(activities.publish, seeded.step)  # Temporal's next attempt
    assert outcome.status == "published"
    assert len(wordpress.lookups) == 1  # an earlier attempt had called WordPress: it was asked first
    assert len(wordpress.posts) == 1


async def test_an_unreachable_wordpress_sends_the_publication_back_to_pending(
    sessions: async_sessionmaker[AsyncSession], activities: PublishingActivities, env: ActivityEnvironment
) -> None:
    nowhere = {"wordpress": {"url": f"http://127.0.0.1:{free_port()}", "username": USERNAME, "app_password": "x"}}
    seeded = await seed(sessions, nowhere)

    with pytest.raises(ProviderUnavailable, match="unreachable"):
        await env.run(activities.publish, seeded.step)

    publication, _ = await rows(sessions, seeded)
    assert (publication.status, publication.attempts) == ("pending", 1)


async def test_a_refused_application_password_fails_the_publish(
    sessions: async_sessionmaker[AsyncSession],
    activities: PublishingActivities,
    wordpress: WordPressServer,
    env: ActivityEnvironment,
) -> None:
    seeded = await seed(sessions, wordpress_of(wordpress, password="wrong password"))

    outcome = await env.run(activities.publish, seeded.step)

    assert outcome.status == "failed"
    publication, content = await rows(sessions, seeded)
    assert "application password" in (publication.error or "") and "401" in (publication.error or "")
    assert content.status == "failed" and "401" in content.meta["publish_error"]
    assert wordpress.posts == []
    [event] = await events(sessions, seeded.content_id)
    assert (event.type, event.payload["status"]) == ("content.publish_failed", "failed")


# ---------------------------------------------------------------- webhook and recorded


async def test_the_webhook_publisher_signs_its_post_and_names_the_delivery(
    sessions: async_sessionmaker[AsyncSession], activities: PublishingActivities, env: ActivityEnvironment
) -> None:
    with WebhookReceiver(reply={"url": "https://social.example.com/p/42", "id": 42}) as receiver:
        seeded = await seed(
            sessions, {"webhook": {"url": receiver.hook_url, "secret": SECRET}}, platform=Publisher.webhook
        )
        outcome = await env.run(activities.publish, seeded.step)

    assert (outcome.status, outcome.url) == ("published", "https://social.example.com/p/42")
    [(headers, raw)] = receiver.requests
    timestamp = headers["x-bas-timestamp"]
    expected = hmac.new(SECRET.encode(), f"{timestamp}.".encode() + raw, hashlib.sha256).hexdigest()
    assert hmac.compare_digest(headers["x-bas-signature"], f"sha256={expected}")
    assert abs(int(timestamp) - int(utcnow().timestamp())) < 60
    assert headers["x-bas-delivery"] == seeded.publication_id
    assert headers["content-type"] == "application/json"
    payload = json.loads(raw)
    assert payload["delivery_id"] == seeded.publication_id and payload["event"] == "content.publish"
    assert payload["content"]["title"] == "Ten Ways to Grow" and payload["content"]["hashtags"] == ["#growth"]
    tracked = await links(sessions, seeded.content_id)
    assert f"{PUBLIC}/c/{tracked[OFFER]}" in payload["content"]["body"] and OFFER not in payload["content"]["body"]
    # A tampered body does not verify.
    forged = hmac.new(SECRET.encode(), f"{timestamp}.".encode() + raw.replace(b"Ten", b"Six"), hashlib.sha256)
    assert headers["x-bas-signature"] != f"sha256={forged.hexdigest()}"
    publication, content = await rows(sessions, seeded)
    assert (publication.external_id, content.platform, content.url) == ("42", "Webhook", outcome.url)


async def test_a_webhook_left_sending_is_unknown_and_not_sent_again(
    sessions: async_sessionmaker[AsyncSession], activities: PublishingActivities, env: ActivityEnvironment
) -> None:
    with WebhookReceiver() as receiver:
        seeded = await seed(
            sessions,
            {"webhook": {"url": receiver.hook_url, "secret": SECRET}},
            platform=Publisher.webhook,
            publication_status="sending",
            attempts=1,
        )
        outcome = await env.run(activities.publish, seeded.step)
        assert receiver.requests == []
    assert outcome.status == "unknown"
    publication, content = await rows(sessions, seeded)
    assert seeded.publication_id in (publication.error or "") and content.status == "unknown_outcome"


async def test_a_platform_without_configuration_is_recorded(
    sessions: async_sessionmaker[AsyncSession], activities: PublishingActivities, env: ActivityEnvironment
) -> None:
    seeded = await seed(sessions, {})

    outcome = await env.run(activities.publish, seeded.step)

    assert (outcome.status, outcome.url) == ("published", None)
    publication, content = await rows(sessions, seeded)
    assert "WordPress is not configured" in publication.progress["recorded"]
    assert (content.status, content.platform, content.url) == ("published", "WordPress", None)
    assert [event.type for event in await events(sessions, seeded.content_id)] == ["content.published"]


# ---------------------------------------------------------------- around the publish


async def test_cancelling_a_scheduled_publication_returns_the_content_to_approved(
    sessions: async_sessionmaker[AsyncSession], activities: PublishingActivities, env: ActivityEnvironment
) -> None:
    seeded = await seed(sessions, {}, publication_status="scheduled", content_status="scheduled")
    async with transaction(sessions) as session:
        content = await session.get(Content, seeded.content_id)
        assert content is not None
        content.approved_at, content.published_at = utcnow(), utcnow() + timedelta(days=1)

    outcome = await env.run(activities.cancel_publication, seeded.step)

    assert outcome.status == "cancelled"
    publication, content = await rows(sessions, seeded)
    assert (publication.status, content.status, content.published_at) == ("cancelled", "approved", None)
    # Once cancelled, a publish that wakes up anyway sends nothing.
    assert (await env.run(activities.publish, seeded.step)).status == "cancelled"


async def test_a_generation_prepares_its_publication_once_and_not_before_approval(
    sessions: async_sessionmaker[AsyncSession], activities: PublishingActivities, env: ActivityEnvironment
) -> None:
    seeded = await seed(sessions, {}, content_status="draft", with_publication=False)
    prepare = AutoPublishInput(
        company_id=seeded.company_id,
        content_id=seeded.content_id,
        platform=Publisher.wordpress,
        generation_run_id="run_gen",
    )

    first = await env.run(activities.prepare_publication, prepare)
    second = await env.run(activities.prepare_publication, prepare)

    assert first is not None and second is not None
    assert (second.publication_id, second.run_id) == (first.publication_id, first.run_id)
    async with sessions() as session:
        [publication] = await session.scalars(select(Publication).where(Publication.content_id == seeded.content_id))
        run = await session.get(WorkflowRun, first.run_id)
        content = await session.get(Content, seeded.content_id)
    assert run is not None and run.temporal_workflow_id == f"content-publish/{first.publication_id}"
    assert publication.status == "pending" and content is not None and content.status == "publishing"

    waiting = await seed(sessions, {}, content_status="draft", requires_approval=True, with_publication=False)
    held = prepare.model_copy(update={"company_id": waiting.company_id, "content_id": waiting.content_id})
    assert await env.run(activities.prepare_publication, held) is None


def test_addresses_are_found_in_prose_markdown_and_autolinks() -> None:
    text = f"See {OFFER}. Or ({GUIDE}), or [x](https://a.example/p?q=1#top)! {PUBLIC}/c/link_1 http://b.example"
    assert addresses(text, PUBLIC) == [OFFER, GUIDE, "https://a.example/p?q=1#top", "http://b.example"]
    assert re.search(r"\s", "".join(addresses(BODY, PUBLIC))) is None
