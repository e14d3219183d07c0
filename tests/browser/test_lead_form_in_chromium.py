"""A real browser submits a company's lead form from another site: the visitor lands on the thank-you page,
the lead exists and its follow-up is running; a bot filling the honeypot creates nothing; a revoked key's
form is gone. The API and the website are two HTTP servers on loopback (two origins), the worker is real.
"""

from __future__ import annotations

import html
from collections.abc import Iterator
from typing import Any

import httpx2
import pytest
from fastapi import FastAPI
from playwright.async_api import Page
from sqlalchemy import select
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse
from starlette.routing import Route
from temporalio.client import Client, WorkflowExecutionStatus

from core.config import Settings
from db.models import Lead, WorkflowRun
from services.lead_follow_up import workflow_id_for
from tests.api.lead_support import add_lead_config, sessions
from tests.api.test_api_keys import create_key
from tests.conftest import Account
from tests.support.asgi_server import AsgiServer
from tests.support.browser import browser, page  # noqa: F401 (fixtures)
from workflows.lead_follow_up import LeadFollowUpWorkflow

THANKS_TEXT = "Thanks, we will be in touch"


def contact_page(form_url: str) -> str:
    """The README's snippet, as a company would paste it into its site."""
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Contact us</title></head><body>
<form id="contact" method="post" action="{html.escape(form_url)}">
  <label>Name <input name="name" required></label>
  <label>Email <input type="email" name="email" required></label>
  <label>Message <textarea name="message"></textarea></label>
  <!-- Honeypot: hidden from people, who leave it empty; bots fill in every field. -->
  <div style="position:absolute;left:-10000px" aria-hidden="true">
    <input type="text" name="website" tabindex="-1" autocomplete="off">
  </div>
  <button type="submit">Send</button>
</form>
</body></html>"""


class Website:
    """The company's own site on its own origin: a contact page posting to the API, and a thank-you page."""

    def __init__(self) -> None:
        self.form_url = ""
        self.server = AsgiServer(Starlette(routes=[Route("/contact", self._contact), Route("/thanks", self._thanks)]))

    async def _contact(self, request: Request) -> HTMLResponse:
        return HTMLResponse(contact_page(self.form_url))

    async def _thanks(self, request: Request) -> HTMLResponse:
        return HTMLResponse(f"<!doctype html><title>Thanks</title><h1>{THANKS_TEXT}</h1>")


@pytest.fixture
def api_server(app: FastAPI, settings: Settings) -> Iterator[AsgiServer]:
    """The API on a real port, so that the browser posts across origins as it would in production."""
    with AsgiServer(app) as server:
        settings.public_base_url = server.url
        yield server


@pytest.fixture
def website() -> Iterator[Website]:
    site = Website()
    with site.server:
        yield site


async def _leads(app: FastAPI, company_id: str) -> list[Lead]:
    async with sessions(app)() as session:
        return list(await session.scalars(select(Lead).where(Lead.company_id == company_id).order_by(Lead.created_at)))


async def _submit(page: Page, website: Website, fields: dict[str, str]) -> None:  # noqa: F811 (fixture type)
    await page.goto(f"{website.server.url}/contact")
    for name, value in fields.items():
        await page.fill(f"[name={name}]", value)
    await page.click("button[type=submit]")
    await page.wait_for_load_state()


async def test_a_visitor_submits_the_form_and_the_follow_up_starts(
    page: Page,  # noqa: F811 (fixture)
    api_server: AsgiServer,
    website: Website,
    worker: None,
    client: httpx2.AsyncClient,
    owner: Account,
    app: FastAPI,
    temporal_client: Client,
) -> None:
    config_id = await add_lead_config(app, owner.company_id, lead_source=["website_form"])
    key = await create_key(client, owner, thank_you_url=f"{website.server.url}/thanks")
    assert key["form_url"] == f"{api_server.url}/forms/{key['prefix']}"
    website.form_url = key["form_url"]

    await _submit(page, website, {"name": "Ann Lee", "email": "ann@example.com", "message": "Call me"})
    assert page.url == f"{website.server.url}/thanks"
    assert await page.text_content("h1") == THANKS_TEXT

    [lead] = await _leads(app, owner.company_id)
    assert (lead.name, lead.email, lead.source, lead.notes) == ("Ann Lee", "ann@example.com", "website_form", "Call me")
    assert lead.custom_fields == {"form_id": key["prefix"]}
    async with sessions(app)() as session:
        run = await session.scalar(select(WorkflowRun).where(WorkflowRun.trigger_id == lead.id))
    assert run is not None and run.workflow_config_id == config_id
    handle = temporal_client.get_workflow_handle(workflow_id_for(lead.id, config_id))
    assert (await handle.describe()).status == WorkflowExecutionStatus.RUNNING
    # The worker has picked it up: the sequence is waiting for its first message (ten hours away).
    progress = await handle.query(LeadFollowUpWorkflow.progress)
    assert (progress.steps_total, progress.steps_sent, progress.next_step) == (2, 0, 0)

    # A bot fills every input, the hidden honeypot too: it is shown the thank-you page, and nothing is kept.
    await page.goto(f"{website.server.url}/contact")
    await page.fill("[name=name]", "Bot")
    await page.fill("[name=email]", "bot@example.com")
    await page.evaluate("document.querySelector('[name=website]').value = 'https://spam.example.com'")
    await page.click("button[type=submit]")
    await page.wait_for_url(f"{website.server.url}/thanks")
    assert [lead.email for lead in await _leads(app, owner.company_id)] == ["ann@example.com"]

    # A script on the site may post with fetch(): any origin may read the JSON answer.
    answer: dict[str, Any] = await page.evaluate(
        """async (url) => {
            const body = new FormData();
            body.append("name", "Bo Yang");
            body.append("email", "bo@example.com");
            const response = await fetch(url, {method: "POST", body, headers: {Accept: "application/json"}});
            return {status: response.status, body: await response.json()};
        }""",
        key["form_url"],
    )
    assert answer == {"status": 201, "body": {"success": True}}
    assert [lead.email for lead in await _leads(app, owner.company_id)] == ["ann@example.com", "bo@example.com"]

    # Revoked: the form is gone, and the key no longer works server to server either.
    assert (await client.delete(f"/api/api-keys/{key['id']}", headers=owner.headers)).status_code == 200
    await _submit(page, website, {"name": "Cy", "email": "cy@example.com"})
    assert await page.text_content("body") == "This form does not exist or no longer accepts submissions"
    async with httpx2.AsyncClient(base_url=api_server.url) as http:
        refused = await http.post(
            "/v1/leads",
            headers={"Authorization": f"Bearer {key['key']}"},
            json={"name": "Cy", "email": "cy@example.com"},
        )
    assert refused.status_code == 401
    assert len(await _leads(app, owner.company_id)) == 2
