"""The console's content pages against the real stack (both databases, the Temporal dev server, the real worker):
generate with the offline writer and watch the pending draft arrive, edit, approve as a manager, publish
(``recorded`` without a configured publisher), settle an unknown outcome, and run content schedules."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx2
from fastapi import FastAPI
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from core.config import Settings
from core.ids import new_id
from db.models import Content, ContentSchedule, Publication, User
from tests.api.test_content_schedules import (
    is_paused,
    is_running,
    no_schedule_left_behind,  # noqa: F401  (autouse: no schedule left)
    settled,
)
from tests.console.conftest import csrf_of, sign_up
from worker.main import build_workers

PASSWORD = "password123"
CONTENT_LINK = re.compile(r'href="/app/content/(cont_[0-9a-z]+)"')


# ---------------------------------------------------------------- helpers


def bearer(browser: httpx2.AsyncClient) -> dict[str, str]:
    """The console's own access token (its cookie) used on the API, to set up what a test needs."""
    return {"Authorization": f"Bearer {browser.cookies.get('bas_access')}"}


async def add_member(browser: httpx2.AsyncClient, email: str, role: str) -> None:
    created = await browser.post(
        "/api/users", headers=bearer(browser), json={"email": email, "password": PASSWORD, "role": role}
    )
    assert created.status_code == 201, created.text


@asynccontextmanager
async def signed_in(app: FastAPI, email: str, password: str = PASSWORD) -> AsyncIterator[httpx2.AsyncClient]:
    """Another person's browser."""
    async with httpx2.AsyncClient(transport=httpx2.ASGITransport(app=app), base_url="https://testserver") as other:
        form = await other.get("/app/login")
        answer = await other.post(
            "/app/login", data={"csrf_token": csrf_of(form), "email": email, "password": password, "next": "/app/"}
        )
        assert answer.status_code == 303, answer.text
        yield other


@asynccontextmanager
async def worker_started(
    temporal_dev: WorkflowEnvironment, settings: Settings, db: async_sessionmaker[AsyncSession]
) -> AsyncIterator[None]:
    """The real worker wiring, started mid-test (the ``worker`` fixture's): until then a draft stays pending."""
    workers = build_workers(temporal_dev.client, settings, db, "console-test-worker")
    tasks = [asyncio.create_task(w.run()) for w in workers]
    try:
        yield
    finally:
        await asyncio.gather(*(w.shutdown() for w in workers))
        await asyncio.gather(*tasks, return_exceptions=True)


async def company_of(db: async_sessionmaker[AsyncSession], email: str) -> str:
    async with db() as session:
        company_id = await session.scalar(select(User.company_id).where(User.email == email))
    assert company_id is not None
    return company_id


async def seed_content(db: async_sessionmaker[AsyncSession], company_id: str, **values: Any) -> str:
    content = Content(
        id=new_id("cont"),
        company_id=company_id,
        type="blog",
        title="Seeded post",
        body="What the seeded post says.",
        status="draft",
        tags=[],
        meta={},
        parameters={"type": "blog", "topic": "seeding"},
        created_by="system",
        requires_approval=True,
    )
    for name, value in values.items():
        setattr(content, name, value)
    async with db() as session:
        session.add(content)
        await session.commit()
    return content.id


async def status_of(db: async_sessionmaker[AsyncSession], content_id: str) -> str:
    async with db() as session:
        content = await session.get(Content, content_id)
    assert content is not None
    return content.status


def shown_status(page: httpx2.Response) -> str:
    found = re.search(r'class="badge status-[a-z_]+" data-status="([a-z_]+)"', page.text)
    assert found, page.text
    return found.group(1)


async def post(browser: httpx2.AsyncClient, path: str, form_page: httpx2.Response, /, **data: str) -> httpx2.Response:
    """A form post with the CSRF token of the page the form is on."""
    return await browser.post(path, data={"csrf_token": csrf_of(form_page), **data})


async def eventually_page(browser: httpx2.AsyncClient, url: str, shows: str, seconds: float = 20) -> httpx2.Response:
    async with asyncio.timeout(seconds):
        while shows not in (page := await browser.get(url)).text:
            await asyncio.sleep(0.2)
    return page


# ---------------------------------------------------------------- generate, edit, approve, publish


async def test_a_blog_post_is_written_while_the_page_polls_then_edited_approved_and_published(
    app: FastAPI,
    browser: httpx2.AsyncClient,
    settings: Settings,
    temporal_dev: WorkflowEnvironment,
    db: async_sessionmaker[AsyncSession],
) -> None:
    await sign_up(browser, "owner@content.example", "Content Co")
    await add_member(browser, "manager@content.example", "manager")
    approval = await browser.patch(
        "/v1/companies/current", headers=bearer(browser), json={"settings": {"content_requires_approval": True}}
    )
    assert approval.status_code == 200, approval.text

    form = await browser.get("/app/content/new?type=blog")
    assert form.status_code == 200
    assert 'name="topic"' in form.text and 'name="word_count"' in form.text and 'value="800"' in form.text
    assert '<option value="professional" selected>' in form.text
    settings.content_generation_wait_seconds = 0  # the draft cannot be ready within the wait: the page polls
    generated = await post(
        browser, "/app/content/new", form, type="blog", topic="Spring garden care", keywords="garden, spring"
    )
    assert generated.status_code == 303, generated.text
    detail_url = generated.headers["location"]
    assert re.fullmatch(r"/app/content/cont_[0-9a-z]+", detail_url)

    pending = await browser.get(detail_url)
    assert shown_status(pending) == "generating" and "Being written" in pending.text
    assert f'hx-get="{detail_url}/progress" hx-trigger="every 2s"' in pending.text
    assert 'name="body"' not in pending.text  # nothing to edit yet
    poll = {"HX-Request": "true"}
    still = await browser.get(f"{detail_url}/progress", headers=poll)
    assert still.status_code == 200 and 'hx-trigger="every 2s"' in still.text

    async with worker_started(temporal_dev, settings, db):
        async with asyncio.timeout(20):
            while (fragment := await browser.get(f"{detail_url}/progress", headers=poll)).status_code == 200:
                await asyncio.sleep(0.2)
        assert fragment.status_code == 204 and fragment.headers["HX-Redirect"] == detail_url

        draft = await browser.get(detail_url)
        assert shown_status(draft) == "draft" and "required before it is published" in draft.text
        assert 'name="body"' in draft.text and "Spring garden care" in draft.text
        assert 'hx-trigger="every 2s"' not in draft.text
        content_id = detail_url.rsplit("/", 1)[1]
        listed = await browser.get("/app/content?type=blog")
        assert f'href="/app/content/{content_id}"' in listed.text and "needs approval" in listed.text

        edited = await post(
            browser, f"{detail_url}/edit", draft, title="Spring care", body="Prune in March.", tags="a, b"
        )
        assert edited.status_code == 303 and edited.headers["location"] == f"{detail_url}?done=saved"
        saved = await browser.get(edited.headers["location"])
        assert "Your changes are saved." in saved.text and "Prune in March.</textarea>" in saved.text
        assert 'value="a, b"' in saved.text and "<h1>Spring care</h1>" in saved.text

        async with signed_in(app, "manager@content.example") as manager:
            queue = await manager.get("/app/content?view=queue")
            assert queue.status_code == 200 and content_id in CONTENT_LINK.findall(queue.text)
            page = await manager.get(detail_url)
            assert f'action="{detail_url}/approve"' in page.text
            approved = await post(manager, f"{detail_url}/approve", page)
            assert approved.status_code == 303
            assert shown_status(await manager.get(detail_url)) == "approved"

            # Approved text edited is approved no more: the service sends it back, the page says so.
            again = await post(browser, f"{detail_url}/edit", saved, title="Spring care", body="Prune in April.")
            assert again.status_code == 303 and shown_status(await manager.get(detail_url)) == "draft"
            page = await manager.get(detail_url)
            held = await post(manager, f"{detail_url}/publish", page, platform="", when="now")
            assert held.status_code == 409 and "must be approved" in held.text
            assert (await post(manager, f"{detail_url}/approve", page)).status_code == 303

            page = await manager.get(detail_url)
            assert "Default: Recorded" in page.text  # no WordPress or webhook configured
            published = await post(manager, f"{detail_url}/publish", page, platform="", when="now")
            assert published.status_code == 303, published.text
            assert published.headers["location"] == f"{detail_url}?done=published"
            out = await manager.get(published.headers["location"])
            assert shown_status(out) == "published" and "<dd>Recorded</dd>" in out.text
            row = r'<th scope="row">Recorded</th>\s*<td><span class="badge status-published" data-status="published">'
            assert re.search(row, out.text)
            assert "published to the recorded publisher: nothing was sent" in out.text
            assert content_id not in CONTENT_LINK.findall((await manager.get("/app/content?view=queue")).text)


async def test_a_user_sees_no_approve_button_and_a_forged_approve_is_refused(
    app: FastAPI, browser: httpx2.AsyncClient, db: async_sessionmaker[AsyncSession]
) -> None:
    await sign_up(browser, "owner@users.example", "Users Co")
    await add_member(browser, "user@users.example", "user")
    content_id = await seed_content(db, await company_of(db, "owner@users.example"))

    async with signed_in(app, "user@users.example") as member:
        page = await member.get(f"/app/content/{content_id}")
        assert page.status_code == 200 and shown_status(page) == "draft"
        assert "/approve" not in page.text and "waits for a manager or an admin" in page.text
        assert "Approval queue" not in page.text
        forged = await post(member, f"/app/content/{content_id}/approve", page)
        assert forged.status_code == 403 and "manager or an admin" in forged.text
        assert await status_of(db, content_id) == "draft"
        assert (await member.get("/app/content?view=queue")).status_code == 403
        schedules = await member.get("/app/content/schedules")
        assert schedules.status_code == 200 and "New schedule" not in schedules.text
        body = {"content_type": "blog_post", "frequency": "daily", "time_of_day": "09:00", "topics": "x"}
        refused = await post(member, "/app/content/schedules", schedules, **body)
        assert refused.status_code == 403


# ---------------------------------------------------------------- forms, list, tenancy, CSRF


async def test_forms_keep_what_was_typed_and_the_list_filters_and_pages(
    browser: httpx2.AsyncClient, db: async_sessionmaker[AsyncSession]
) -> None:
    await sign_up(browser, "forms@content.example", "Forms Co")
    form = await browser.get("/app/content/new?type=social")
    assert 'name="platform"' in form.text and 'name="hashtags"' in form.text
    missing = await post(browser, "/app/content/new", form, type="social", topic="Launch day", hashtags="#launch")
    assert missing.status_code == 422
    assert 'id="e-platform"' in missing.text and 'value="Launch day"' in missing.text
    assert (await browser.get("/app/content/new?type=poem")).status_code == 422
    for kind, field in (("email", "content_sections"), ("product", "unique_selling_proposition")):
        other_form = await browser.get(f"/app/content/new?type={kind}")
        assert other_form.status_code == 200 and f'name="{field}"' in other_form.text

    company_id = await company_of(db, "forms@content.example")
    for number in range(21):
        await seed_content(db, company_id, title=f"Blog {number:02d}")
    social = await seed_content(db, company_id, type="social", title="A social post", status="approved")
    blogs = await browser.get("/app/content?type=blog")
    assert len(CONTENT_LINK.findall(blogs.text)) == 20 and social not in blogs.text
    assert "21 items" in blogs.text and "Page 1 of 2" in blogs.text and 'rel="next"' in blogs.text
    second = await browser.get("/app/content?type=blog&status=&page=2")
    assert len(CONTENT_LINK.findall(second.text)) == 1 and 'rel="prev"' in second.text
    approved = await browser.get("/app/content?status=approved")
    assert CONTENT_LINK.findall(approved.text) == [social]
    bad = await browser.get("/app/content?status=lost")
    assert bad.status_code == 422 and 'id="e-status"' in bad.text

    detail = await browser.get(f"/app/content/{social}")
    emptied = await post(browser, f"/app/content/{social}/edit", detail, title="A social post", body="")
    assert emptied.status_code == 422 and 'id="e-body"' in emptied.text
    past = await post(browser, f"/app/content/{social}/publish", detail, when="later", published_at="2001-01-01T09:00")
    assert past.status_code == 422 and "must be in the future" in past.text
    nowhere = await post(browser, f"/app/content/{social}/publish", detail, platform="MySpace", when="now")
    assert nowhere.status_code == 422 and "unknown platform" in nowhere.text
    assert await status_of(db, social) == "approved"


async def test_another_companys_content_is_a_404_and_posts_need_the_csrf_token(
    app: FastAPI, browser: httpx2.AsyncClient, db: async_sessionmaker[AsyncSession]
) -> None:
    await sign_up(browser, "first@tenant.example", "First Co")
    content_id = await seed_content(db, await company_of(db, "first@tenant.example"))
    own = await browser.get(f"/app/content/{content_id}")
    assert own.status_code == 200

    async with httpx2.AsyncClient(transport=httpx2.ASGITransport(app=app), base_url="https://testserver") as other:
        await sign_up(other, "second@tenant.example", "Second Co")
        assert (await other.get(f"/app/content/{content_id}")).status_code == 404
        page = await other.get("/app/content")
        assert content_id not in page.text
        for action in ("approve", "edit", "publish"):
            answer = await post(other, f"/app/content/{content_id}/{action}", page, body="mine now")
            assert answer.status_code == 404, action

    for url in (f"/app/content/{content_id}/edit", f"/app/content/{content_id}/approve", "/app/content/new"):
        refused = await browser.post(url, data={"body": "no token", "type": "blog", "topic": "x"})
        assert refused.status_code == 403 and "did not come from this site" in refused.text
    async with db() as session:
        content = await session.get(Content, content_id)
        assert content is not None and content.status == "draft" and content.body == "What the seeded post says."


# ---------------------------------------------------------------- unknown outcome


async def test_an_unknown_outcome_is_confirmed_with_its_address_or_published_again(
    browser: httpx2.AsyncClient, db: async_sessionmaker[AsyncSession], worker: None
) -> None:
    await sign_up(browser, "unknown@content.example", "Unknown Co")
    company_id = await company_of(db, "unknown@content.example")
    seeded = {}
    for name in ("confirm", "retry"):
        content_id = await seed_content(
            db, company_id, status="unknown_outcome", platform="Recorded", approved_at=None, requires_approval=False
        )
        publication = Publication(
            id=new_id("pub"),
            company_id=company_id,
            content_id=content_id,
            platform="recorded",
            status="unknown",
            attempts=1,
            progress={},
            error="the platform did not answer in time",
        )
        async with db() as session:
            session.add(publication)
            await session.commit()
        seeded[name] = (content_id, publication.id)

    content_id, publication_id = seeded["confirm"]
    detail_url = f"/app/content/{content_id}"
    page = await browser.get(detail_url)
    assert shown_status(page) == "unknown_outcome" and "Nobody knows whether it reached Recorded" in page.text
    resolve_url = f"{detail_url}/publications/{publication_id}/resolve"
    bad = await post(browser, resolve_url, page, action="confirm", url="not an address")
    assert (
        bad.status_code == 422 and f'id="e-url-{publication_id}"' in bad.text and 'value="not an address"' in bad.text
    )
    confirmed = await post(browser, resolve_url, page, action="confirm", url="https://blog.example.com/found-it/")
    assert confirmed.status_code == 303 and confirmed.headers["location"] == f"{detail_url}?done=resolved"
    settled_page = await browser.get(detail_url)
    assert shown_status(settled_page) == "published" and "confirmed by a person" in settled_page.text
    assert 'href="https://blog.example.com/found-it/"' in settled_page.text
    twice = await post(browser, resolve_url, settled_page, action="retry")
    assert twice.status_code == 409 and "only an unknown outcome is resolved" in twice.text

    content_id, publication_id = seeded["retry"]
    page = await browser.get(f"/app/content/{content_id}")
    retried = await post(
        browser, f"/app/content/{content_id}/publications/{publication_id}/resolve", page, action="retry"
    )
    assert retried.status_code == 303 and retried.headers["location"].endswith("?done=retrying")
    # The content's own badge (the page reads the content, then its publications: on PostgreSQL the worker may
    # commit in between, and the publication would show published a moment before the content does).
    done = await eventually_page(browser, f"/app/content/{content_id}", '<dd><span class="badge status-published"')
    assert shown_status(done) == "published" and "published to the recorded publisher" in done.text


# ---------------------------------------------------------------- schedules


async def test_a_schedule_is_created_paused_resumed_and_deleted(
    browser: httpx2.AsyncClient, db: async_sessionmaker[AsyncSession], temporal_client: Client
) -> None:
    await sign_up(browser, "schedules@content.example", "Schedules Co")
    page = await browser.get("/app/content/schedules")
    assert page.status_code == 200 and "No schedules yet." in page.text and "New schedule" in page.text
    invalid = await post(
        browser,
        "/app/content/schedules",
        page,
        content_type="blog_post",
        frequency="weekly",
        time_of_day="09:00",
        topics="Soil\nSeeds",
        require_approval="on",
        active="on",
    )
    assert (
        invalid.status_code == 422 and 'id="e-day_of_week"' in invalid.text and "Soil\nSeeds</textarea>" in invalid.text
    )

    created = await post(
        browser,
        "/app/content/schedules",
        page,
        content_type="blog_post",
        frequency="weekly",
        day_of_week="Monday",
        time_of_day="09:00",
        timezone="Europe/Paris",
        topics="Soil\nSeeds",
        word_count="600",
        require_approval="on",
        active="on",
    )
    assert created.status_code == 303 and created.headers["location"] == "/app/content/schedules?done=schedule_created"
    async with db() as session:
        [schedule] = list(await session.scalars(select(ContentSchedule)))
    assert (schedule.topics, schedule.parameters, schedule.require_approval) == (
        ["Soil", "Seeds"],
        {"word_count": 600},
        True,
    )
    listed = await eventually_page(browser, "/app/content/schedules", "Europe/Paris</time>")
    assert "weekly on Monday" in listed.text and "Soil; Seeds" in listed.text and 'data-state="active"' in listed.text
    assert re.search(r"\d{4}-\d\d-\d\d 09:00 Europe/Paris</time>", listed.text)

    paused = await post(browser, f"/app/content/schedules/{schedule.id}/pause", listed)
    assert paused.status_code == 303 and paused.headers["location"].endswith("done=schedule_paused")
    await settled(temporal_client, schedule.id, is_paused)
    shown = await eventually_page(browser, "/app/content/schedules", "none while paused")
    assert 'data-state="paused"' in shown.text and f"/schedules/{schedule.id}/resume" in shown.text

    resumed = await post(browser, f"/app/content/schedules/{schedule.id}/resume", shown)
    assert resumed.status_code == 303
    await settled(temporal_client, schedule.id, is_running)
    running = await eventually_page(browser, "/app/content/schedules", "Europe/Paris</time>")
    assert 'data-state="active"' in running.text

    deleted = await post(browser, f"/app/content/schedules/{schedule.id}/delete", running)
    assert deleted.status_code == 303
    assert "No schedules yet." in (await browser.get("/app/content/schedules")).text
