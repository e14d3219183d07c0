"""Writing content through the real ``openai`` client against a loopback OpenAI-compatible server, the offline
writer, and the platform rules applied to whatever either wrote."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import openai
import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from activities.content.generation import REFUSED, ContentActivities
from activities.content.writer import (
    Company,
    OfflineContentWriter,
    OpenAIContentWriter,
    Written,
    count_words,
    finish,
    prompts,
)
from core.config import Settings
from core.ids import new_id
from db.content import new_content
from db.models import Company as CompanyRow
from db.models import Content
from db.session import transaction
from schemas.content import BlogPostRequest, ContentBrief, ContentType, SocialMediaRequest
from schemas.content_workflows import GenerateStep
from tests.support.openai_server import OpenAIServer

ACME = Company(name="Acme Plumbing", industry="home services")
BLOG = BlogPostRequest(
    topic="custom software",
    word_count=800,
    keywords="software development, custom solutions, business growth",
    call_to_action="Contact us for a free consultation",
).to_brief()


def json_reply(title: str, body: str, **extra: Any) -> Any:
    return lambda _request: json.dumps({"title": title, "body": body, "tags": ["software"], "sections": [], **extra})


@pytest.fixture
def llm() -> Iterator[OpenAIServer]:
    with OpenAIServer() as server:
        yield server


def llm_settings(settings: Settings, llm: OpenAIServer) -> Settings:
    return settings.model_copy(update={"llm_base_url": llm.base_url, "llm_model": "test-model"})


async def test_the_model_writes_title_and_body_with_structured_output_and_tokens_are_recorded(
    settings: Settings, llm: OpenAIServer
) -> None:
    llm.reply = json_reply("Why custom software pays off", "Off-the-shelf tools fit nobody exactly.\n\nCall us.")
    written = await OpenAIContentWriter(llm_settings(settings, llm)).write(BLOG, ACME)

    assert (written.title, written.body) == (
        "Why custom software pays off",
        "Off-the-shelf tools fit nobody exactly.\n\nCall us.",
    )
    assert (written.writer, written.model, written.tokens, written.structured) == ("openai", "test-model", 2, True)
    [call] = llm.requests
    assert call["body"]["response_format"]["type"] == "json_schema"
    system, user = (message["content"] for message in call["body"]["messages"])
    assert "Acme Plumbing" in system and "home services" in system
    assert "custom software" in user and "about 800 words" in user
    assert "software development, custom solutions, business growth" in user
    assert "Contact us for a free consultation" in user


async def test_a_server_without_structured_output_gets_a_plain_request_and_the_text_is_parsed(
    settings: Settings, llm: OpenAIServer
) -> None:
    llm.structured_output = False
    llm.reply = lambda _request: "# Custom software, plainly\nMost tools fit nobody exactly."
    written = await OpenAIContentWriter(llm_settings(settings, llm)).write(BLOG, ACME)

    assert (written.title, written.body, written.structured) == (
        "Custom software, plainly",
        "Most tools fit nobody exactly.",
        False,
    )
    assert ["response_format" in call["body"] for call in llm.requests] == [True, False]


def test_word_count_and_reading_time_are_counted_never_taken_from_the_model() -> None:
    body = " ".join(["word"] * 450)
    written, metadata = finish(BLOG, Written(title="t", body=body))
    assert (metadata["word_count"], metadata["reading_time"]) == (450, 3)  # 450 / 200 words a minute, rounded up
    assert count_words("It's a well-known fact: don\u2019t guess.") == 6
    assert written.tags == ["software development", "custom solutions", "business growth"]


@pytest.mark.parametrize(("network", "limit"), [("x", 280), ("linkedin", 3000)])
def test_a_social_post_is_cut_to_its_network_limit_with_the_hashtags_kept_whole(network: str, limit: int) -> None:
    brief = SocialMediaRequest(topic="custom software", platform=network, hashtags="#software #business").to_brief()
    long_text = "Custom software saves time for every team that tries it. " * 100
    written, metadata = finish(brief, Written(title="t", body=long_text))

    assert len(written.body) <= limit
    assert written.body.endswith("\n\n#software #business")
    text = written.body.removesuffix("\n\n#software #business")
    assert text.endswith("…") and not text.endswith(" …")
    assert long_text.startswith(text.removesuffix("…"))  # cut at a word, nothing rewritten
    assert (metadata["characters"], metadata["character_limit"]) == (len(written.body), limit)
    assert metadata["hashtags"] == ["#software", "#business"]
    short, _ = finish(brief, Written(title="t", body="Short and sweet."))
    assert short.body == "Short and sweet.\n\n#software #business"


async def test_the_offline_writer_is_deterministic_and_uses_the_brief() -> None:
    writer = OfflineContentWriter()
    first, second = await writer.write(BLOG, ACME), await writer.write(BLOG, ACME)
    assert first == second
    assert first.title == "Custom software: a practical guide"
    assert first.body.endswith("Contact us for a free consultation")
    assert abs(count_words(first.body) - 800) < 80
    assert all(keyword in first.body for keyword in BLOG.keywords)


def test_every_content_type_has_a_prompt_file() -> None:
    for kind in ContentType:
        brief = ContentBrief(type=kind, topic="autumn offers", product={"name": "Boiler service"})
        system, user = prompts(brief, ACME)
        assert system and user and "{{" not in user


# ---------------------------------------------------------------- the activity: retries and refusals


async def seed(db: async_sessionmaker[AsyncSession], brief: ContentBrief) -> GenerateStep:
    async with transaction(db) as session:
        company = CompanyRow(id=new_id("cmp"), name="Acme Plumbing", timezone="UTC", settings={})
        session.add(company)
        await session.flush()
        content = new_content(session, company, brief, created_by="usr_test")
    return GenerateStep(company_id=company.id, content_id=content.id, run_id="run_test")


@pytest.mark.parametrize("status", [429, 500, 503])
async def test_a_rate_limited_or_broken_model_service_is_left_to_temporal_to_retry(
    settings: Settings, db: async_sessionmaker[AsyncSession], llm: OpenAIServer, status: int
) -> None:
    llm.failures = [status]
    llm.reply = json_reply("Second time lucky", "Written on the retry.")
    activities = ContentActivities(db, llm_settings(settings, llm))
    step = await seed(db, BLOG)

    with pytest.raises((openai.RateLimitError, openai.InternalServerError)):
        await ActivityEnvironment().run(activities.write_content, step)
    result = await ActivityEnvironment().run(activities.write_content, step)  # Temporal's retry
    assert result.status == "draft"
    async with db() as session:
        content = await session.get(Content, step.content_id)
        assert content is not None
        assert (content.title, content.body, content.status) == ("Second time lucky", "Written on the retry.", "draft")
        assert content.meta["tokens_used"] == 2 and content.meta["word_count"] == 4


async def test_a_bad_request_fails_at_once_with_the_reason(
    settings: Settings, db: async_sessionmaker[AsyncSession], llm: OpenAIServer
) -> None:
    llm.failures = [400]
    activities = ContentActivities(db, llm_settings(settings, llm))
    step = await seed(db, BLOG)

    with pytest.raises(ApplicationError) as raised:
        await ActivityEnvironment().run(activities.write_content, step)
    assert raised.value.non_retryable and raised.value.type == REFUSED
    assert "test server answers 400" in raised.value.message
    assert len(llm.requests) == 1


async def test_a_retry_after_the_text_was_stored_writes_nothing_again(
    settings: Settings, db: async_sessionmaker[AsyncSession], llm: OpenAIServer
) -> None:
    llm.reply = json_reply("Once", "Only once.")
    activities = ContentActivities(db, llm_settings(settings, llm))
    step = await seed(db, BLOG)
    await ActivityEnvironment().run(activities.write_content, step)
    again = await ActivityEnvironment().run(activities.write_content, step)
    assert again.status == "draft" and len(llm.requests) == 1
