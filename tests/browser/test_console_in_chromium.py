"""The web console in a real browser, against the real stack: the app on a loopback port, a real worker on a real
Temporal dev server, the test's database.

- A new owner signs up, builds a two-step follow-up sequence, adds a lead, sees the first message in the lead's
  timeline, logs a reply and sees the sequence stop.
- An owner adds a manager and a user; content is generated; the manager approves and publishes it; the user is
  refused the settings pages and is not offered them.
- Keyboard and screen-reader basics on the sign-in page and the lead form, and no sideways scrolling at 360 px.

A full-page screenshot of every page visited is kept as a test artefact (see ``Screenshots``).
"""

from __future__ import annotations

import asyncio
import os
import re
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from fastapi import FastAPI
from playwright.async_api import Browser, BrowserContext, Locator, Page, StorageState, ViewportSize, expect

from core.config import Settings
from core.templates import LEAD_SAMPLE
from tests.support.asgi_server import AsgiServer
from tests.support.browser import browser  # noqa: F401 (fixture)

REPOSITORY = Path(__file__).resolve().parents[2]
PASSWORD = "correct horse battery"
PHONE: ViewportSize = {"width": 360, "height": 740}
WORKER_WAIT_SECONDS = 20
"""How long a page may take to show what the worker did (a message sent, a sequence stopped)."""


@dataclass(frozen=True)
class Console:
    base: str

    def url(self, path: str = "/") -> str:
        return f"{self.base}/app{path}"


@pytest.fixture
def console(app: FastAPI, settings: Settings) -> Iterator[Console]:
    """The test's app on a real port, reached as ``localhost`` (what ``bas dev`` prints): Chromium treats it as a
    secure context, so it keeps the console's Secure cookies over plain http."""
    with AsgiServer(app) as server:
        base = f"http://localhost:{server.port}"
        settings.public_base_url = base
        yield Console(base)


class Screenshots:
    """One full-page PNG per page, named after it, in ``$BAS_TEST_ARTIFACTS`` (default
    ``test-artifacts/screenshots`` under the repository); a later visit of the same page replaces it."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    async def take(self, page: Page, name: str) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        path = self.folder / f"{name}.png"
        await page.screenshot(path=str(path), full_page=True)
        assert path.stat().st_size > 0


@pytest.fixture(scope="session")
def screenshots() -> Screenshots:
    return Screenshots(Path(os.environ.get("BAS_TEST_ARTIFACTS") or REPOSITORY / "test-artifacts" / "screenshots"))


class People:
    """One browser context per person (own cookies), all closed when the test ends."""

    def __init__(self, chromium: Browser) -> None:
        self.chromium = chromium
        self.contexts: list[BrowserContext] = []

    async def page(self, viewport: ViewportSize | None = None, storage_state: StorageState | None = None) -> Page:
        context = await self.chromium.new_context(viewport=viewport, storage_state=storage_state)
        context.set_default_timeout(10_000)
        self.contexts.append(context)
        return await context.new_page()


@pytest.fixture
async def people(browser: Browser) -> AsyncIterator[People]:  # noqa: F811 (the fixture)
    opened = People(browser)
    try:
        yield opened
    finally:
        for context in opened.contexts:
            await context.close()


# ---------------------------------------------------------------- what a person does


async def sign_up(page: Page, console: Console, email: str, company: str) -> None:
    """From the sign-in page, as a new owner finds it."""
    await page.goto(console.url("/"))
    await expect(page).to_have_url(re.compile(r"/app/login\?next="))
    await page.get_by_role("link", name="Create your company's account").click()
    await page.get_by_label("Company name").fill(company)
    await page.get_by_label("Your name").fill("Olive Owner")
    await page.get_by_label("Email").fill(email)
    await page.get_by_label("Password").fill(PASSWORD)
    await page.get_by_role("button", name="Create account").click()
    await expect(page.get_by_role("heading", level=1)).to_have_text("Dashboard")
    assert page.url == console.url("/")


async def sign_in(page: Page, console: Console, email: str) -> None:
    await page.goto(console.url("/"))
    await page.get_by_label("Email").fill(email)
    await page.get_by_label("Password").fill(PASSWORD)
    await page.get_by_role("button", name="Sign in").click()
    await expect(page.get_by_role("heading", level=1)).to_have_text("Dashboard")


def main_nav(page: Page) -> Locator:
    return page.get_by_role("navigation", name="Main")


async def go(page: Page, link: str) -> None:
    """Follow one of the main navigation's links, as a person would."""
    await main_nav(page).get_by_role("link", name=link, exact=True).click()
    await page.wait_for_load_state()


def flash(page: Page) -> Locator:
    """The message a page shows after an action (base.html's status line)."""
    return page.locator("main > p.notice[role=status]")


async def reload_until(page: Page, shown: Locator, what: str) -> None:
    """The worker's effect appears on the next load of the page (a person presses reload)."""
    deadline = time.monotonic() + WORKER_WAIT_SECONDS
    while await shown.count() == 0:
        assert time.monotonic() < deadline, f"{what} not shown within {WORKER_WAIT_SECONDS}s"
        await asyncio.sleep(0.3)
        await page.reload()


async def page_width(page: Page) -> int:
    width: int = await page.evaluate("document.documentElement.scrollWidth")
    return width


async def tab_path(page: Page, last: Locator, limit: int = 40) -> list[str]:
    """Press Tab from the top of the page until ``last`` has focus: what each press focused (id, else text)."""
    focused: list[str] = []
    for _ in range(limit):
        await page.keyboard.press("Tab")
        focused.append(
            await page.evaluate("() => document.activeElement.id || document.activeElement.textContent.trim()")
        )
        if await last.evaluate("element => element === document.activeElement"):
            return focused
    raise AssertionError(f"Tab never reached {last} in {limit} presses: {focused}")


async def assert_landmarks(page: Page) -> None:
    """One h1, one main landmark, and no form control without an accessible name."""
    assert await page.locator("h1").count() == 1
    assert await page.get_by_role("main").count() == 1
    unnamed = await page.evaluate(
        """() => [...document.querySelectorAll("input:not([type=hidden]), select, textarea")]
            .filter((e) => !e.labels.length && !e.getAttribute("aria-label") && !e.getAttribute("aria-labelledby"))
            .map((e) => e.name)"""
    )
    assert unnamed == []


# ---------------------------------------------------------------- scenarios


async def test_an_owner_builds_a_sequence_and_a_reply_stops_it(
    people: People, console: Console, worker: None, screenshots: Screenshots
) -> None:
    owner = await people.page()
    await sign_up(owner, console, "olive@example.com", "Olive's Bakery")
    await screenshots.take(owner, "dashboard")

    # The builder: the first message goes at once; the suggested follow-up is replaced by one added step by step.
    await go(owner, "Automations")
    await owner.get_by_role("link", name="New follow-up sequence").click()
    await owner.get_by_label("Sequence name").fill("Welcome")
    await owner.get_by_label("Turn on when saved").uncheck()
    first = owner.get_by_role("group", name="First message")
    await expect(first.get_by_label("Wait after the lead arrives (minutes)")).to_have_value("0")
    await first.get_by_label("Subject (email)").fill("Welcome, {{ first_name }}")
    await first.get_by_label("Message", exact=True).fill("Hello {{ name }}, thanks for asking about our cakes.")
    await first.get_by_label("Message", exact=True).press("End")  # the live preview follows the typing
    await expect(first.get_by_role("status")).to_contain_text(f"Hello {LEAD_SAMPLE['name']}, thanks for asking")
    await owner.get_by_label("Remove this step").click()  # ticked, the step goes at once (check() would wait)
    await expect(owner.get_by_role("group", name="Follow-up 1")).to_have_count(0)
    await owner.get_by_role("button", name="Add a follow-up").click()
    follow_up = owner.get_by_role("group", name="Follow-up 1")
    await expect(follow_up.get_by_label("Wait after the previous message (hours)")).to_be_focused()
    await follow_up.get_by_label("Wait after the previous message (hours)").fill("48")
    await follow_up.get_by_label("Message", exact=True).fill("Still thinking about a cake, {{ first_name }}?")
    await owner.get_by_role("button", name="Save", exact=True).click()
    await expect(flash(owner)).to_contain_text("Saved.")
    state = owner.get_by_role("region", name="State and runs")
    await expect(state.locator(".badge")).to_have_text("paused")
    await state.get_by_role("button", name="Activate").click()
    await expect(state.locator(".badge")).to_have_text("active")
    await screenshots.take(owner, "automations-builder")
    await go(owner, "Automations")
    await expect(owner.get_by_role("row", name=re.compile("^Welcome active"))).to_have_count(1)
    await screenshots.take(owner, "automations")

    await go(owner, "Leads")
    await owner.get_by_role("link", name="Add a lead").click()
    await owner.get_by_label("Name", exact=True).fill("Rita Reply")
    await owner.get_by_label("Email").fill("rita@example.com")
    await owner.get_by_role("button", name="Add lead").click()
    await expect(owner.get_by_role("heading", level=1)).to_contain_text("Rita Reply")
    lead_path = urlsplit(owner.url).path
    assert re.fullmatch(r"/app/leads/lead_\w+", lead_path), lead_path

    timeline = owner.get_by_role("region", name="Timeline")
    await reload_until(owner, timeline.locator('[data-entry="message"]'), "the first message")
    message = timeline.locator('[data-entry="message"]')
    await expect(message).to_have_count(1)
    await expect(message).to_contain_text("Welcome, Rita")
    await expect(message).to_contain_text("Hello Rita Reply, thanks for asking about our cakes.")
    await expect(message).to_have_attribute("data-status", "recorded")  # no SMTP configured: kept, not sent
    sequences = owner.get_by_role("region", name="Sequences")
    await reload_until(owner, sequences.get_by_text("message 2 (follow_up_1), due"), "the next step")
    await expect(sequences.locator("[data-run-status]")).to_have_attribute("data-run-status", "running")
    await expect(sequences.get_by_role("link", name=re.compile("Open in Temporal UI"))).to_have_attribute(
        "href", re.compile(r"/workflows/lead-follow-up%2Flead_")
    )
    await screenshots.take(owner, "lead")

    reply = owner.get_by_role("region", name="Log a reply")
    await reply.get_by_label("How they replied").select_option("email")
    await reply.get_by_label("What they said (optional)").fill("Yes please, call me!")
    await reply.get_by_role("button", name="Log reply").click()
    await expect(flash(owner)).to_contain_text("Reply logged")
    await reload_until(owner, sequences.locator('[data-run-status="stopped"]'), "the stopped sequence")
    await expect(sequences).to_contain_text("stopped: replied")
    await expect(owner.locator("h1 .badge")).to_have_text("engaged")
    await expect(timeline.locator(".interaction.inbound")).to_contain_text("Yes please, call me!")
    await screenshots.take(owner, "lead")

    await go(owner, "Leads")
    await expect(owner.get_by_role("link", name="Rita Reply")).to_have_attribute("href", lead_path)
    await screenshots.take(owner, "leads")
    await go(owner, "Customers")
    await expect(owner.get_by_role("heading", level=1)).to_have_text("Customers")
    await screenshots.take(owner, "customers")

    # On a phone: the same session, nothing wider than the screen.
    phone = await people.page(viewport=PHONE, storage_state=await owner.context.storage_state())
    phone_pages = {"dashboard": console.url("/"), "leads": console.url("/leads"), "lead": console.base + lead_path}
    for name, url in phone_pages.items():
        await phone.goto(url)
        await expect(phone.get_by_role("main")).to_be_visible()
        assert await page_width(phone) <= PHONE["width"], f"{url} scrolls sideways at {PHONE['width']} px"
        await screenshots.take(phone, f"{name}-phone")


async def test_a_manager_approves_and_publishes_and_a_user_is_refused_settings(
    people: People, console: Console, worker: None, screenshots: Screenshots
) -> None:
    owner = await people.page()
    await sign_up(owner, console, "owen@example.com", "Owen's Garage")
    await go(owner, "Settings")
    await expect(owner.get_by_role("heading", level=1)).to_have_text("Settings")
    await screenshots.take(owner, "settings-company")
    settings_tabs = owner.get_by_role("navigation", name="Settings sections")
    await settings_tabs.get_by_role("link", name="Users").click()
    for email, name, role in (("mia@example.com", "Mia Manager", "manager"), ("ulla@example.com", "Ulla User", "user")):
        await owner.get_by_label("Email").fill(email)
        await owner.get_by_label("Name", exact=True).fill(name)
        await owner.get_by_label("Role", exact=True).select_option(role)
        await owner.get_by_label("Initial password").fill(PASSWORD)
        await owner.get_by_role("button", name="Add the user").click()
        await expect(flash(owner)).to_contain_text("The user is added")
        await expect(owner.get_by_role("row", name=re.compile(name))).to_have_count(1)
    await screenshots.take(owner, "settings-users")
    for tab, shot in (
        ("API keys", "settings-api-keys"),
        ("Webhooks", "settings-webhooks"),
        ("Audit log", "settings-audit"),
    ):
        await settings_tabs.get_by_role("link", name=tab).click()
        await expect(owner.get_by_role("heading", level=1)).to_have_text(tab)
        await screenshots.take(owner, shot)

    # The owner has the offline writer draft a post from the Content page.
    await go(owner, "Content")
    await owner.get_by_role("navigation", name="Content sections").get_by_role("link", name="Generate").click()
    await owner.get_by_label("Topic").fill("Winter tyres")
    await owner.get_by_role("button", name="Write it").click()
    status = owner.get_by_role("region", name="About this piece").locator("[data-status]")
    await expect(status).to_have_attribute("data-status", "draft", timeout=WORKER_WAIT_SECONDS * 1000)
    title = (await owner.get_by_role("heading", level=1).text_content() or "").strip()
    assert "Winter tyres" in title
    await go(owner, "Content")
    await expect(owner.get_by_role("link", name=title)).to_have_count(1)
    await screenshots.take(owner, "content")

    manager = await people.page()
    await sign_in(manager, console, "mia@example.com")
    await expect(main_nav(manager).get_by_role("link", name="Settings")).to_have_count(0)
    await go(manager, "Content")
    await manager.get_by_role("link", name="Approval queue").click()
    await expect(manager.get_by_role("heading", level=1)).to_have_text("Approval queue")
    await screenshots.take(manager, "approval-queue")
    await manager.get_by_role("link", name=title).click()
    await manager.get_by_role("button", name="Approve").click()
    await expect(flash(manager)).to_contain_text("Approved")
    status = manager.get_by_role("region", name="About this piece").locator("[data-status]")
    await expect(status).to_have_attribute("data-status", "approved")
    publish = manager.get_by_role("region", name="Publish")
    await expect(publish.get_by_label("Platform")).to_contain_text("Default: Recorded")
    await publish.get_by_role("button", name="Publish").click()
    await expect(status).to_have_attribute("data-status", "published", timeout=WORKER_WAIT_SECONDS * 1000)
    publication = manager.locator("tr[data-publication]")
    await expect(publication).to_have_count(1)
    await expect(publication.get_by_role("rowheader")).to_have_text("Recorded")
    await expect(publication.locator("[data-status]")).to_have_text("published")
    await screenshots.take(manager, "content-piece")
    # Nothing waits any more.
    await manager.get_by_role("link", name="Approval queue").click()
    await expect(manager.get_by_role("main").get_by_role("status")).to_have_text("Nothing waits for approval.")

    user = await people.page()
    await sign_in(user, console, "ulla@example.com")
    await expect(main_nav(user).get_by_role("link", name="Settings")).to_have_count(0)
    for path in ("/settings", "/settings/users", "/settings/api-keys", "/settings/webhooks", "/settings/audit"):
        response = await user.goto(console.url(path))
        assert response is not None and response.status == 403, path
        await expect(user.get_by_role("heading", level=1)).to_have_text("Not for your role")
    await screenshots.take(user, "settings-refused")
    # The manager is not an admin either.
    response = await manager.goto(console.url("/settings/users"))
    assert response is not None and response.status == 403


# Templates only, no worker: one database is enough.
@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_keyboard_labels_and_landmarks_on_sign_in_and_the_lead_form(
    people: People, console: Console, screenshots: Screenshots
) -> None:
    visitor = await people.page()
    await visitor.goto(console.url("/login"))
    await assert_landmarks(visitor)
    submit = visitor.get_by_role("button", name="Sign in")
    assert await tab_path(visitor, submit) == ["Skip to content", "f-email", "f-password", "Sign in"]
    for label in ("Email", "Password"):
        await expect(visitor.get_by_label(label, exact=True)).to_have_count(1)
    await screenshots.take(visitor, "login")

    await visitor.get_by_role("link", name="Create your company's account").click()
    await assert_landmarks(visitor)
    await screenshots.take(visitor, "signup")
    await sign_up(visitor, console, "kim@example.com", "Kim's Keys")
    await assert_landmarks(visitor)

    await visitor.goto(console.url("/leads/new"))
    await assert_landmarks(visitor)
    labels = ["Name", "Email", "Phone", "Source", "Tags", "Notes"]
    inputs = [visitor.get_by_label(label, exact=True) for label in labels]
    for found in inputs:
        await expect(found).to_have_count(1)
    ids = [await found.get_attribute("id") for found in inputs]
    path = await tab_path(visitor, visitor.get_by_role("button", name="Add lead"))
    # The skip link first, the navigation next, then every field of the form in order and its button.
    assert path[0] == "Skip to content"
    assert path[-len(labels) - 1 :] == [*ids, "Add lead"]
    await screenshots.take(visitor, "lead-new")
