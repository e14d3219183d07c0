"""The console's lead pages: the list (filters, search, sort, paging), adding, CSV import and export, a lead's
timeline and sequences, a reply that stops the follow-up, converting, losing and erasing; tenancy and CSRF."""

from __future__ import annotations

import asyncio
import html
import re
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import httpx2
import pytest
from fastapi import FastAPI
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.testing import WorkflowEnvironment

from api.main import create_app
from core.config import Settings
from db.base import utcnow
from db.models import LeadImport, User
from db.session import transaction
from tests.console.conftest import csrf_of, sign_up

PASSWORD = "correct horse battery"
LEAD_LINK = re.compile(r'href="/app/leads/(lead_[a-z0-9]+)"')
ROW = re.compile(r'<tr data-lead="(lead_[a-z0-9]+)">')


async def _api_headers(browser: httpx2.AsyncClient, email: str) -> dict[str, str]:
    """An API token for the same person (``/token``), to seed data the way an integration would."""
    answer = await browser.post("/token", json={"username": email, "password": PASSWORD})
    assert answer.status_code == 200, answer.text
    return {"Authorization": f"Bearer {answer.json()['access_token']}"}


async def _add_lead(browser: httpx2.AsyncClient, **fields: str) -> httpx2.Response:
    form = await browser.get("/app/leads/new")
    return await browser.post("/app/leads", data={"csrf_token": csrf_of(form), **fields})


def _lead_id(answer: httpx2.Response) -> str:
    assert answer.status_code == 303, answer.text
    found = re.fullmatch(r"/app/leads/(lead_[a-z0-9]+)\?notice=\w+", answer.headers["location"])
    assert found, answer.headers["location"]
    return found.group(1)


def _total(page: httpx2.Response) -> int:
    found = re.search(r'data-total="(\d+)"', page.text)
    assert found, page.text
    return int(found.group(1))


def _names(page: httpx2.Response) -> list[str]:
    return [html.unescape(name) for name in re.findall(r'href="/app/leads/lead_[a-z0-9]+">([^<]+)</a>', page.text)]


@pytest.fixture
async def second_browser(app: FastAPI) -> AsyncIterator[httpx2.AsyncClient]:
    async with httpx2.AsyncClient(transport=httpx2.ASGITransport(app=app), base_url="https://testserver") as http:
        yield http


async def test_the_list_filters_searches_sorts_and_pages(browser: httpx2.AsyncClient) -> None:
    await sign_up(browser, "lister@example.com")
    api = await _api_headers(browser, "lister@example.com")
    for number in range(23):
        body: dict[str, Any] = {
            "name": f"Lead {number:02d}",
            "email": f"lead{number:02d}@example.com",
            "source": "referral" if number % 2 else "website_form",
            "tags": ["vip"] if number % 3 == 0 else [],
        }
        assert (await browser.post("/v1/leads", headers=api, json=body)).status_code == 201
    leads = (await browser.get("/v1/leads", headers=api, params={"per_page": 100})).json()["data"]
    converted = next(lead for lead in leads if lead["name"] == "Lead 05")
    patched = await browser.patch(f"/v1/leads/{converted['id']}", headers=api, json={"status": "converted"})
    assert patched.status_code == 200

    first = await browser.get("/app/leads")
    assert first.status_code == 200 and "<h1>Leads</h1>" in first.text
    assert _total(first) == 23 and "page 1 of 2" in first.text
    assert len(ROW.findall(first.text)) == 20
    assert _names(first)[0] == "Lead 22"  # newest first by default
    assert 'href="/app/leads?page=2"' in first.text and 'rel="next"' in first.text
    second = await browser.get("/app/leads?page=2")
    assert len(ROW.findall(second.text)) == 3 and 'rel="prev"' in second.text
    assert 'aria-current="page">2<' in second.text

    # Search is case-insensitive over name and email; a typed % is a character, not a wildcard.
    assert _names(await browser.get("/app/leads", params={"q": "LEAD 07"})) == ["Lead 07"]
    assert _total(await browser.get("/app/leads", params={"q": "lead1"})) == 10
    assert _total(await browser.get("/app/leads", params={"q": "%"})) == 0
    # Filters combine, as on GET /v1/leads.
    assert _names(await browser.get("/app/leads", params={"status": "converted"})) == ["Lead 05"]
    vip_referrals = await browser.get("/app/leads", params={"source": "referral", "tags": "vip", "sort_dir": "asc"})
    assert _names(vip_referrals) == ["Lead 03", "Lead 09", "Lead 15", "Lead 21"]
    by_name = await browser.get("/app/leads", params={"sort_by": "name", "sort_dir": "asc", "per_page": "10"})
    assert _names(by_name)[:2] == ["Lead 00", "Lead 01"] and "page 1 of 3" in by_name.text
    assert 'aria-sort="ascending"' in by_name.text and '<option value="name" selected>' in by_name.text
    # The pager keeps the filters and the sort in its links.
    assert 'href="/app/leads?sort_by=name&amp;sort_dir=asc&amp;per_page=10&amp;page=2"' in by_name.text

    # htmx asks for the table only; the same URL without htmx is the whole page (bookmarkable).
    fragment = await browser.get("/app/leads", params={"q": "lead0"}, headers={"HX-Request": "true"})
    assert fragment.status_code == 200 and "<html" not in fragment.text and _total(fragment) == 10
    assert "HX-Request" in fragment.headers["vary"]
    form = first.text
    assert 'hx-get="/app/leads"' in form and 'hx-target="#lead-table"' in form and 'hx-push-url="true"' in form

    refused = await browser.get("/app/leads", params={"sort_by": "password", "status": "happy"})
    assert refused.status_code == 422
    assert "cannot be used" in refused.text and "status" in refused.text

    # The same search on the API.
    searched = await browser.get("/v1/leads", headers=api, params={"q": "LEAD0"})
    assert searched.json()["meta"]["total_items"] == 10


async def test_adding_a_lead_shows_errors_by_the_fields_and_a_known_email_goes_to_that_lead(
    browser: httpx2.AsyncClient,
) -> None:
    await sign_up(browser, "adder@example.com")
    invalid = await _add_lead(browser, name="", email="not-an-email", phone="12", tags="a, b", notes="hi")
    assert invalid.status_code == 422
    for name in ("name", "email", "phone"):
        assert f'id="e-{name}"' in invalid.text, name
    assert 'value="not-an-email"' in invalid.text and 'value="a, b"' in invalid.text  # what was typed stays
    assert ">hi</textarea>" in invalid.text
    no_contact = await _add_lead(browser, name="Nobody")
    assert no_contact.status_code == 422 and "an email address or a phone number" in no_contact.text

    lead_id = _lead_id(
        await _add_lead(
            browser, name="Jane Smith", email="Jane@Example.com", phone="+1 415 555 0123", source="referral", tags="vip"
        )
    )
    page = await browser.get(f"/app/leads/{lead_id}?notice=created")
    assert page.status_code == 200 and "Jane Smith" in page.text and "Lead added" in page.text
    assert "jane@example.com" in page.text and "+14155550123" in page.text and ">vip</span>" in page.text

    again = await _add_lead(browser, name="Jane S.", email="jane@example.com", tags="returning")
    assert again.headers["location"] == f"/app/leads/{lead_id}?notice=duplicate"
    merged = await browser.get(again.headers["location"])
    assert "already exists" in merged.text and ">returning</span>" in merged.text
    listed = await browser.get("/app/leads")
    assert _total(listed) == 1


async def test_a_csv_import_shows_progress_and_the_rows_it_refused_and_export_downloads_csv(
    browser: httpx2.AsyncClient,
) -> None:
    await sign_up(browser, "importer@example.com")
    form = await browser.get("/app/leads/import")
    assert form.status_code == 200 and 'enctype="multipart/form-data"' in form.text
    csrf = csrf_of(form)
    rows = (
        "name,email,phone,tags,favourite_colour\n"
        "Ann Able,ann@example.com,,vip;new,green\n"
        "Bob Bad,not-an-email,,,\n"
        "Cy Clear,cy@example.com,+14155550111,,\n"
        ",nameless@example.com,,,\n"
        "Ann Again,ann@example.com,,returning,\n"
    )
    started = await browser.post(
        "/app/leads/import", data={"csrf_token": csrf}, files={"file": ("leads.csv", rows.encode(), "text/csv")}
    )
    assert started.status_code == 303, started.text
    job_url = started.headers["location"]
    first = await browser.get(job_url)
    assert first.status_code == 200 and '<progress id="import-progress" max="5"' in first.text
    async with asyncio.timeout(20):
        while 'data-finished="true"' not in (status := await browser.get(job_url, headers={"HX-Request": "true"})).text:
            assert 'hx-trigger="every 1s"' in status.text  # htmx keeps polling while it runs
            await asyncio.sleep(0.1)
    report = status.text
    assert "hx-trigger" not in report  # done: polling stops
    assert '<progress id="import-progress" max="5" value="5">' in report
    assert '<strong data-count="created">2</strong>' in report
    assert '<strong data-count="merged">1</strong>' in report
    assert '<strong data-count="failed">2</strong>' in report
    assert re.search(r"<tr><td>3</td><td>email</td><td>[^<]*email address", report), report
    assert re.search(r"<tr><td>5</td><td>name</td><td>", report), report
    # The merged row's name wins (a merge keeps the newest non-empty values).
    listed = await browser.get("/app/leads", params={"sort_by": "name", "sort_dir": "asc"})
    assert _names(listed) == ["Ann Again", "Cy Clear"]

    nothing = await browser.post("/app/leads/import", data={"csrf_token": csrf})
    assert nothing.status_code == 422 and 'id="e-file"' in nothing.text
    no_header = await browser.post(
        "/app/leads/import", data={"csrf_token": csrf}, files={"file": ("x.csv", b"email\na@example.com\n")}
    )
    assert no_header.status_code == 422 and "at least a &#39;name&#39; column" in no_header.text
    too_big = await browser.post(
        "/app/leads/import",
        data={"csrf_token": csrf},
        files={"file": ("big.csv", b"name\n" + b"x" * (6 * 1024 * 1024))},
    )
    assert too_big.status_code == 413 and "larger than 5 MB" in too_big.text

    export = await browser.get("/app/leads/export")
    assert export.status_code == 200 and export.headers["content-type"].startswith("text/csv")
    assert export.headers["content-disposition"].startswith('attachment; filename="leads-')
    lines = export.text.splitlines()
    assert lines[0].startswith("id,name,email,phone,source,status")
    assert len(lines) == 3 and "ann@example.com" in export.text and "vip;new;returning" in export.text


async def test_an_import_is_followed_from_another_api_process_and_a_stopped_one_is_reported(
    browser: httpx2.AsyncClient,
    settings: Settings,
    temporal_dev: WorkflowEnvironment,
    db: async_sessionmaker[AsyncSession],
) -> None:
    """Behind a load balancer the polls land on any process: the job's progress and report are in the database."""
    await sign_up(browser, "importer@example.com")
    csrf = csrf_of(await browser.get("/app/leads/import"))
    rows = "name,email\n" + "".join(f"Lead {n},lead{n}@example.com\n" for n in range(30))
    started = await browser.post(
        "/app/leads/import", data={"csrf_token": csrf}, files={"file": ("leads.csv", rows.encode(), "text/csv")}
    )
    assert started.status_code == 303, started.text
    other = create_app(settings, temporal_client=temporal_dev.client)
    async with (
        other.router.lifespan_context(other),
        httpx2.AsyncClient(
            transport=httpx2.ASGITransport(app=other), base_url="https://testserver", cookies=browser.cookies
        ) as elsewhere,
    ):
        async with asyncio.timeout(30):
            while 'data-finished="true"' not in (status := await elsewhere.get(started.headers["location"])).text:
                assert status.status_code == 200, status.text
                await asyncio.sleep(0.1)
    assert '<strong data-count="created">30</strong>' in status.text

    # An import whose process died mid-file (a deploy, a crash) stops moving: after a minute it is reported as
    # stopped, with what it saved, and no longer blocks the next upload.
    async with transaction(db) as session:
        user = await session.scalar(select(User).where(User.email == "importer@example.com"))
        assert user is not None
        session.add(
            LeadImport(
                id="imp_interrupted",
                company_id=user.company_id,
                user_id=user.id,
                filename="big.csv",
                total=1000,
                done=400,
                progressed_at=utcnow() - timedelta(minutes=2),
            )
        )
    stopped = await browser.get("/app/leads/import/imp_interrupted")
    assert 'data-finished="true"' in stopped.text and "stopped after about 400 of 1000 rows" in stopped.text
    again = await browser.post(
        "/app/leads/import", data={"csrf_token": csrf}, files={"file": ("one.csv", b"name\nOne More\n", "text/csv")}
    )
    assert again.status_code == 303, again.text
    assert (await browser.get("/app/leads/import/imp_nobodys")).status_code == 404


async def test_a_user_may_not_import_or_export(browser: httpx2.AsyncClient, second_browser: httpx2.AsyncClient) -> None:
    await sign_up(browser, "boss@example.com")
    api = await _api_headers(browser, "boss@example.com")
    body = {"email": "staff@example.com", "password": PASSWORD, "full_name": "Sam Staff", "role": "user"}
    assert (await browser.post("/api/users", headers=api, json=body)).status_code == 201
    login = await second_browser.get("/app/login")
    signed_in = await second_browser.post(
        "/app/login", data={"csrf_token": csrf_of(login), "email": "staff@example.com", "password": PASSWORD}
    )
    assert signed_in.status_code == 303
    listed = await second_browser.get("/app/leads")
    assert listed.status_code == 200 and "/app/leads/import" not in listed.text and "Add a lead" in listed.text
    assert (await second_browser.get("/app/leads/import")).status_code == 403
    assert (await second_browser.get("/app/leads/export")).status_code == 403


@pytest.mark.usefixtures("worker")
async def test_the_lead_page_shows_the_first_message_and_a_logged_reply_stops_the_sequence(
    browser: httpx2.AsyncClient,
) -> None:
    await sign_up(browser, "seq@example.com")
    api = await _api_headers(browser, "seq@example.com")
    config = await browser.post(
        "/v1/workflow-configs",
        headers=api,
        json={
            "name": "Welcome sequence",
            "workflow_type": "lead_nurturing",
            "active": True,
            "triggers": {"lead_source": [], "tags": []},
            # The first message at once; the follow-up waits long enough that only a reply ends the run.
            "actions": {
                "initial_delay_minutes": 0,
                "message_template": "hello",
                "channel": "email",
                "subject": "Welcome, {{name}}",
                "follow_up": [{"delay_hours": 100, "message_template": "again"}],
            },
            "templates": {"hello": "Hello {{name}}, thanks for asking.", "again": "Still interested, {{name}}?"},
        },
    )
    assert config.status_code == 201, config.text
    lead_id = _lead_id(await _add_lead(browser, name="Rita Reply", email="rita@example.com"))

    async with asyncio.timeout(30):
        while 'data-entry="message"' not in (page := await browser.get(f"/app/leads/{lead_id}")).text:
            await asyncio.sleep(0.2)
        while "message 2 (again), due" not in page.text:  # the run reports its next step once the send is done
            await asyncio.sleep(0.2)
            page = await browser.get(f"/app/leads/{lead_id}")
    assert "Welcome, Rita Reply" in page.text and "Hello Rita Reply, thanks for asking." in page.text
    assert page.text.count('data-entry="message"') == 1 and 'data-entry="interaction"' not in page.text
    assert 'data-status="recorded"' in page.text  # no SMTP configured: the delivery is recorded
    assert "Welcome sequence" in page.text and 'data-run-status="running"' in page.text and "1 of 2 sent" in page.text
    ui_link = f"http://localhost:8233/namespaces/default/workflows/lead-follow-up%2F{lead_id}%2F"
    assert ui_link in page.text
    assert 'data-status="contacted"' in page.text

    logged = await browser.post(
        f"/app/leads/{lead_id}/reply", data={"csrf_token": csrf_of(page), "type": "email", "content": "Yes, call me!"}
    )
    assert logged.headers["location"] == f"/app/leads/{lead_id}?notice=reply"
    async with asyncio.timeout(30):
        while 'data-run-status="stopped"' not in (page := await browser.get(logged.headers["location"])).text:
            await asyncio.sleep(0.2)
    assert "Reply logged" in page.text and "stopped: replied" in page.text
    assert 'data-status="engaged"' in page.text
    timeline = page.text[page.text.index('id="timeline-h"') :]
    assert timeline.index('data-entry="message"') < timeline.index('class="interaction inbound"')
    assert "Yes, call me!" in timeline


async def test_mark_converted_then_lost_then_erase(browser: httpx2.AsyncClient) -> None:
    await sign_up(browser, "closer@example.com")
    lead_id = _lead_id(await _add_lead(browser, name="Carl Close", phone="+14155550188"))
    page = await browser.get(f"/app/leads/{lead_id}")
    csrf = csrf_of(page)
    assert 'data-confirm="Erase Carl Close' in page.text

    converted = await browser.post(f"/app/leads/{lead_id}/status", data={"csrf_token": csrf, "status": "converted"})
    assert converted.headers["location"] == f"/app/leads/{lead_id}?notice=converted"
    page = await browser.get(converted.headers["location"])
    assert 'data-status="converted"' in page.text and "Marked converted" in page.text and "Converted</dt>" in page.text
    assert ">Mark converted<" not in page.text and ">Mark lost<" in page.text
    lost = await browser.post(f"/app/leads/{lead_id}/status", data={"csrf_token": csrf, "status": "lost"})
    assert 'data-status="lost"' in (await browser.get(lost.headers["location"])).text
    bogus = await browser.post(f"/app/leads/{lead_id}/status", data={"csrf_token": csrf, "status": "happy"})
    assert bogus.status_code == 422

    erased = await browser.post(f"/app/leads/{lead_id}/erase", data={"csrf_token": csrf})
    assert erased.status_code == 303 and erased.headers["location"] == "/app/leads?notice=erased"
    listed = await browser.get(erased.headers["location"])
    assert "erased" in listed.text and _total(listed) == 0
    gone = await browser.get(f"/app/leads/{lead_id}")
    assert gone.status_code == 404 and "Lead not found" in gone.text


async def test_another_companys_lead_is_a_404_and_a_post_without_csrf_is_refused(
    browser: httpx2.AsyncClient, second_browser: httpx2.AsyncClient
) -> None:
    await sign_up(browser, "alpha@example.com", "Alpha")
    lead_id = _lead_id(await _add_lead(browser, name="Alpha's lead", email="a-lead@example.com"))
    form = await browser.get("/app/leads/import")
    started = await browser.post(
        "/app/leads/import",
        data={"csrf_token": csrf_of(form)},
        files={"file": ("a.csv", b"name,email\nAl,al@example.com\n")},
    )
    job_url = started.headers["location"]
    async with asyncio.timeout(20):
        while 'data-finished="true"' not in (await browser.get(job_url)).text:
            await asyncio.sleep(0.1)

    await sign_up(second_browser, "beta@example.com", "Beta")
    own = await second_browser.get("/app/leads")
    assert _total(own) == 0 and lead_id not in own.text
    peek = await second_browser.get(f"/app/leads/{lead_id}")
    assert peek.status_code == 404 and peek.headers["content-type"].startswith("text/html")
    assert "Alpha&#39;s lead" not in peek.text and "a-lead@example.com" not in peek.text
    csrf = csrf_of(own)
    for action, data in (("erase", {}), ("status", {"status": "lost"}), ("reply", {"type": "note"})):
        answer = await second_browser.post(f"/app/leads/{lead_id}/{action}", data={"csrf_token": csrf, **data})
        assert answer.status_code == 404, action
    assert (await second_browser.get(job_url)).status_code == 404  # another user's import report

    # The owner's own forms, posted without the CSRF token (as another site would): refused, nothing changed.
    forged = await browser.post(f"/app/leads/{lead_id}/erase", data={})
    assert forged.status_code == 403 and "did not come from this site" in forged.text
    forged_add = await browser.post("/app/leads", data={"name": "Forged", "email": "forged@example.com"})
    assert forged_add.status_code == 403
    still = await browser.get(f"/app/leads/{lead_id}")
    assert still.status_code == 200 and 'data-status="new"' in still.text
    assert "Forged" not in (await browser.get("/app/leads")).text
