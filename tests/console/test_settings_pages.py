"""The settings pages (admins only): the company profile and providers, API keys shown once, webhooks and their
delivery log, users and roles with the last-admin rule, the audit log; a ``user`` or ``manager`` is refused."""

from __future__ import annotations

import asyncio
import re
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta

import httpx2
import pytest
from fastapi import FastAPI
from pydantic import SecretStr
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from core import security
from core.config import Settings
from db.base import utcnow
from db.models import ApiKey, Company, DomainEvent, User, Webhook, WebhookDelivery
from tests.console.conftest import csrf_of, sign_up
from tests.support.webhook_receiver import WebhookReceiver

PUBLIC_URL = "https://93.184.216.34/hook"  # a public literal: passes the address check without DNS
PASSWORD = "correct horse battery"
NEW_KEY = re.compile(r'id="new-key" class="secret" readonly value="([^"]+)"')
NEW_SECRET = re.compile(r'id="new-secret" class="secret" readonly value="([^"]+)"')


async def _post(browser: httpx2.AsyncClient, path: str, data: dict[str, str | list[str]]) -> httpx2.Response:
    """Submit a settings form; its hidden CSRF field carries the value of the browser's CSRF cookie."""
    token = browser.cookies.get("bas_csrf")
    assert token, "no console page was loaded in this browser yet"
    return await browser.post(path, data={"csrf_token": token, **data})


async def _company(db: async_sessionmaker[AsyncSession], email: str) -> Company:
    async with db() as session:
        user = await session.scalar(select(User).where(User.email == email))
        assert user is not None
        company = await session.get(Company, user.company_id)
        assert company is not None
        return company


async def _user_id(db: async_sessionmaker[AsyncSession], email: str) -> str:
    async with db() as session:
        found = await session.scalar(select(User.id).where(User.email == email))
        assert found is not None
        return found


@asynccontextmanager
async def _signed_in(app: FastAPI, email: str) -> AsyncIterator[httpx2.AsyncClient]:
    """Another browser, signed in through the console's own sign-in page."""
    async with httpx2.AsyncClient(transport=httpx2.ASGITransport(app=app), base_url="https://testserver") as other:
        form = await other.get("/app/login")
        answer = await other.post(
            "/app/login", data={"csrf_token": csrf_of(form), "email": email, "password": PASSWORD}
        )
        assert answer.status_code == 303, answer.text
        yield other


async def _add_user(browser: httpx2.AsyncClient, email: str, role: str) -> None:
    added = await _post(
        browser,
        "/app/settings/users",
        {"email": email, "full_name": f"{role.title()} Person", "role": role, "password": PASSWORD},
    )
    assert added.status_code == 303, added.text


async def _register_webhook(browser: httpx2.AsyncClient, url: str = PUBLIC_URL) -> tuple[str, str]:
    """(webhook id, signing secret shown once)."""
    created = await _post(browser, "/app/settings/webhooks", {"url": url, "events": ["lead.created", "sale.created"]})
    assert created.status_code == 201, created.text
    secret = NEW_SECRET.search(created.text)
    webhook_id = re.search(r'data-webhook="(hook_[^"]+)"', created.text)
    assert secret and webhook_id
    return webhook_id.group(1), secret.group(1)


async def test_the_company_profile_saves_through_the_company_service(
    browser: httpx2.AsyncClient, db: async_sessionmaker[AsyncSession]
) -> None:
    await sign_up(browser, "profile@example.com")
    shown = await browser.get("/app/settings")
    assert shown.status_code == 200
    assert "<option selected>UTC</option>" in shown.text and "<option>Europe/Paris</option>" in shown.text
    assert 'name="review_links.google"' in shown.text and 'name="review_links.yelp"' not in shown.text

    saved = await _post(
        browser,
        "/app/settings",
        {
            "name": "Acme Cleaning",
            "industry": "Cleaning",
            "website": "https://acme-cleaning.example",
            "postal_address": "1 Main St, Springfield",
            "timezone": "Europe/Paris",
            "review_links.google": "https://g.page/r/acme/review",
            "review_links.facebook": "",
            "send_window.start": "08:30",
            "send_window.end": "18:00",
            "send_window.days": ["0", "1", "2", "3", "4", "5"],
            "content_requires_approval": "true",
        },
    )
    assert saved.status_code == 303 and saved.headers["location"] == "/app/settings?done=saved"
    company = await _company(db, "profile@example.com")
    assert (company.name, company.industry, company.timezone) == ("Acme Cleaning", "Cleaning", "Europe/Paris")
    assert company.website == "https://acme-cleaning.example/" and company.postal_address == "1 Main St, Springfield"
    assert company.settings["review_links"] == {"google": "https://g.page/r/acme/review"}
    assert company.settings["send_window"] == {"start": "08:30", "end": "18:00", "days": [0, 1, 2, 3, 4, 5]}
    assert company.settings["content_requires_approval"] is True

    again = await browser.get("/app/settings?done=saved")
    assert 'role="status">The company profile is saved.' in again.text
    assert "<option selected>Europe/Paris</option>" in again.text and 'value="08:30"' in again.text
    assert 'value="https://g.page/r/acme/review"' in again.text
    assert 'id="day-5" name="send_window.days" value="5" checked' in again.text
    assert 'id="day-6" name="send_window.days" value="6">' in again.text

    refused = await _post(
        browser,
        "/app/settings",
        {
            "name": "",
            "website": "not a url",
            "timezone": "Mars/Olympus",
            "review_links.google": "nope",
            "send_window.start": "9am",
            "send_window.end": "17:00",
        },
    )
    assert refused.status_code == 422
    for field in ("name", "website", "timezone", "review_links.google", "send_window.start", "send_window.days"):
        assert f'id="e-{field}"' in refused.text, field
    assert "a time as HH:MM" in refused.text and "choose one or more days" in refused.text
    assert "unknown time zone" in refused.text and 'value="not a url"' in refused.text
    unchanged = await _company(db, "profile@example.com")
    assert unchanged.name == "Acme Cleaning" and unchanged.settings == company.settings


async def test_providers_show_their_state_and_nothing_secret(
    browser: httpx2.AsyncClient, settings: Settings, db: async_sessionmaker[AsyncSession]
) -> None:
    await sign_up(browser, "providers@example.com")
    settings.llm_base_url = "http://10.20.30.40:11434/v1"
    settings.llm_api_key = SecretStr("sk-llm-very-secret")
    settings.sms_auth_token = SecretStr("sms-token-very-secret")
    settings.smtp_username = "mailer-login"
    company = await _company(db, "providers@example.com")
    async with db() as session, session.begin():
        stored = await session.get(Company, company.id)
        assert stored is not None
        stored.integrations = {
            "wordpress": {"url": "https://blog.acme.test/", "username": "wp-editor", "app_password": "wp-app-pw-1234"}
        }
    shown = await browser.get("/app/settings")
    states = dict(
        re.findall(
            r'data-provider="([^"]+)">\s*<th scope="row">[^<]+</th>\s*<td><span class="badge state-(\w+)"', shown.text
        )
    )
    assert states == {
        "Email": "recorded",
        "SMS": "recorded",
        "Writing (LLM)": "operational",
        "Publishing: WordPress": "operational",
        "Publishing: webhook": "recorded",
        "Publishing: recorded": "recorded",
    }
    for leak in (
        "10.20.30.40",
        "sk-llm-very-secret",
        "sms-token-very-secret",
        "mailer-login",
        "blog.acme.test",
        "wp-editor",
        "wp-app-pw-1234",
    ):
        assert leak not in shown.text, leak


async def test_an_api_key_is_shown_once_listed_by_prefix_and_revoked(
    browser: httpx2.AsyncClient, settings: Settings, db: async_sessionmaker[AsyncSession]
) -> None:
    await sign_up(browser, "keys@example.com")
    created = await _post(
        browser,
        "/app/settings/api-keys",
        {"name": "Contact form", "scope": "lead_capture", "thank_you_url": "https://acme.example/thanks"},
    )
    assert created.status_code == 201, created.text
    assert created.headers["cache-control"] == "no-store"
    found = NEW_KEY.search(created.text)
    assert found
    secret = found.group(1)
    async with db() as session:
        key = await session.scalar(select(ApiKey).where(ApiKey.name == "Contact form"))
    assert key is not None and security.api_key_matches(secret, key.secret_hash)
    assert key.settings["thank_you_url"] == "https://acme.example/thanks"
    form_url = f"{settings.public_base_url.rstrip('/')}/forms/{key.prefix}"
    assert f'id="form-url" readonly value="{form_url}"' in created.text
    # The snippet is text in a textarea: escaped once for the page, and the form URL once inside the HTML.
    assert f"&lt;form method=&#34;post&#34; action=&#34;{form_url}&#34;&gt;" in created.text
    assert "name=&#34;website&#34; tabindex=&#34;-1&#34;" in created.text

    listed = await browser.get("/app/settings/api-keys")
    assert secret not in listed.text and f"<code>{key.prefix}</code>" in listed.text
    assert f'data-key="{key.id}"' in listed.text and "never" in listed.text

    wrong = await _post(
        browser, "/app/settings/api-keys", {"name": "", "scope": "full", "thank_you_url": "https://x.example/"}
    )
    assert wrong.status_code == 422
    assert (
        'id="e-name"' in wrong.text and 'id="e-thank_you_url"' in wrong.text and "only lead_capture keys" in wrong.text
    )
    assert not NEW_KEY.search(wrong.text)

    revoked = await _post(browser, f"/app/settings/api-keys/{key.id}/revoke", {})
    assert revoked.status_code == 303 and revoked.headers["location"] == "/app/settings/api-keys?done=key-revoked"
    after = await browser.get(revoked.headers["location"])
    assert f'data-key="{key.id}"' not in after.text and 'role="status">The API key is revoked' in after.text
    with_revoked = await browser.get("/app/settings/api-keys?include_revoked=true")
    assert f'data-key="{key.id}"' in with_revoked.text and "revoked <time" in with_revoked.text
    assert secret not in with_revoked.text
    async with db() as session:
        stored = await session.get(ApiKey, key.id)
    assert stored is not None and stored.revoked_at is not None


async def _seed_deliveries(db: async_sessionmaker[AsyncSession], webhook_id: str, count: int) -> None:
    """Deliveries as the relay and the delivery workflow would have written them (one failing, the rest fine)."""
    async with db() as session, session.begin():
        webhook = await session.get(Webhook, webhook_id)
        assert webhook is not None
        for number in range(count):
            at = utcnow() - timedelta(minutes=count - number)
            failing = number == count - 1
            event = DomainEvent(
                id=f"evt_{uuid.uuid4().hex[:16]}",
                company_id=webhook.company_id,
                type="lead.created",
                entity_id="lead_x",
                payload={"id": "lead_x"},
                created_at=at,
                dispatched_at=at,
            )
            session.add(event)
            await session.flush()
            log = [{"at": at.isoformat(), "status_code": 503, "error": None, "duration_ms": 41}] if failing else []
            session.add(
                WebhookDelivery(
                    id=f"whd_{uuid.uuid4().hex[:16]}",
                    webhook_id=webhook.id,
                    event_id=event.id,
                    event_type=event.type,
                    status="pending" if failing else "delivered",
                    attempts=1,
                    response_status=503 if failing else 200,
                    last_error="the receiver answered 503" if failing else None,
                    attempt_log=log,
                    created_at=at,
                    delivered_at=None if failing else at,
                )
            )


async def test_webhooks_register_change_rotate_and_show_their_delivery_log(
    app: FastAPI, browser: httpx2.AsyncClient, db: async_sessionmaker[AsyncSession]
) -> None:
    await sign_up(browser, "hooks@example.com")
    loopback = await _post(
        browser, "/app/settings/webhooks", {"url": "https://127.0.0.1/hook", "events": ["lead.created"]}
    )
    assert loopback.status_code == 422 and 'id="e-url"' in loopback.text and "loopback" in loopback.text
    no_events = await _post(browser, "/app/settings/webhooks", {"url": PUBLIC_URL})
    assert no_events.status_code == 422 and 'id="e-events"' in no_events.text

    webhook_id, secret = await _register_webhook(browser)
    assert secret.startswith("whsec_")
    listed = await browser.get("/app/settings/webhooks")
    assert secret not in listed.text and f'data-webhook="{webhook_id}"' in listed.text and ">active<" in listed.text

    await _seed_deliveries(db, webhook_id, 21)
    detail = await browser.get(f"/app/settings/webhooks/{webhook_id}")
    assert detail.status_code == 200 and secret not in detail.text
    assert detail.text.count("data-delivery=") == 20 and "Page 1 of 2 (21 in all)" in detail.text
    assert "the receiver answered 503" in detail.text and "HTTP 503" in detail.text and "(41 ms)" in detail.text
    second = await browser.get(f"/app/settings/webhooks/{webhook_id}?page=2")
    assert second.text.count("data-delivery=") == 1 and 'rel="prev"' in second.text
    pending = await browser.get(f"/app/settings/webhooks/{webhook_id}?status=pending")
    assert pending.text.count("data-delivery=") == 1 and "<option selected>pending</option>" in pending.text

    changed = await _post(
        browser,
        f"/app/settings/webhooks/{webhook_id}",
        {"url": PUBLIC_URL, "events": ["review.submitted"], "description": "CRM"},  # "active" left unticked
    )
    assert changed.status_code == 303 and changed.headers["location"].endswith("?done=webhook-saved")
    async with db() as session:
        stored = await session.get(Webhook, webhook_id)
    assert stored is not None and stored.events == ["review.submitted"] and stored.active is False
    test_refused = await _post(browser, f"/app/settings/webhooks/{webhook_id}/test", {})
    assert test_refused.status_code == 409 and "is disabled" in test_refused.text

    rotated = await _post(browser, f"/app/settings/webhooks/{webhook_id}/rotate-secret", {})
    new_secret = NEW_SECRET.search(rotated.text)
    assert rotated.status_code == 200 and new_secret and new_secret.group(1) != secret
    assert rotated.headers["cache-control"] == "no-store"
    async with db() as session:
        stored = await session.get(Webhook, webhook_id)
    assert stored is not None and stored.secret == new_secret.group(1)
    assert new_secret.group(1) not in (await browser.get(f"/app/settings/webhooks/{webhook_id}")).text

    async with httpx2.AsyncClient(transport=httpx2.ASGITransport(app=app), base_url="https://testserver") as rival:
        await sign_up(rival, "rival@example.com", "Rival Ltd")
        assert (await rival.get(f"/app/settings/webhooks/{webhook_id}")).status_code == 404
        taken = await _post(rival, f"/app/settings/webhooks/{webhook_id}/delete", {})
        assert taken.status_code == 404

    deleted = await _post(browser, f"/app/settings/webhooks/{webhook_id}/delete", {})
    assert deleted.status_code == 303 and deleted.headers["location"] == "/app/settings/webhooks?done=webhook-deleted"
    assert (await browser.get(f"/app/settings/webhooks/{webhook_id}")).status_code == 404


@pytest.mark.usefixtures("worker")
async def test_a_test_event_reaches_a_loopback_receiver_and_its_delivery_log(
    browser: httpx2.AsyncClient, settings: Settings
) -> None:
    await sign_up(browser, "test-event@example.com")
    settings.webhook_allowed_networks = ["127.0.0.0/8"]
    with WebhookReceiver() as receiver:
        webhook_id, _ = await _register_webhook(browser, f"{receiver.url}/hook")
        sent = await _post(browser, f"/app/settings/webhooks/{webhook_id}/test", {})
        assert sent.status_code == 303 and sent.headers["location"].endswith("?done=test-sent")
        await asyncio.wait_for(receiver.wait_for(lambda r: r.headers.get("x-bas-event") == "webhook.test"), 20)
        for _ in range(100):
            log = await browser.get(f"/app/settings/webhooks/{webhook_id}")
            if "status-delivered" in log.text:
                break
            await asyncio.sleep(0.1)
    assert "<code>webhook.test</code>" in log.text and ">delivered<" in log.text and "HTTP 200" in log.text


async def test_users_are_added_and_changed_and_the_audit_log_shows_it(
    browser: httpx2.AsyncClient, db: async_sessionmaker[AsyncSession]
) -> None:
    await sign_up(browser, "people@example.com")
    await _add_user(browser, "sam@example.com", "user")
    sam = await _user_id(db, "sam@example.com")
    listed = await browser.get("/app/settings/users?done=user-added")
    assert f'data-user="{sam}"' in listed.text and "User Person" in listed.text and "The user is added" in listed.text

    duplicate = await _post(
        browser, "/app/settings/users", {"email": "sam@example.com", "role": "user", "password": PASSWORD}
    )
    assert duplicate.status_code == 409 and 'id="e-email"' in duplicate.text and "already exists" in duplicate.text
    weak = await _post(browser, "/app/settings/users", {"email": "x@example.com", "role": "user", "password": "short"})
    assert weak.status_code == 422 and 'id="e-password"' in weak.text and 'value="x@example.com"' in weak.text

    promoted = await _post(browser, f"/app/settings/users/{sam}", {"role": "manager"})
    assert promoted.status_code == 303
    deactivated = await _post(browser, f"/app/settings/users/{sam}", {"is_active": "false"})
    assert deactivated.status_code == 303
    async with db() as session:
        stored = await session.get(User, sam)
    assert stored is not None and (stored.role, stored.is_active) == ("manager", False)
    shown = await browser.get("/app/settings/users")
    assert ">deactivated<" in shown.text and ">Reactivate<" in shown.text

    # The rules on the admin's own account answer on the page, not as a crash.
    me = await _user_id(db, "people@example.com")
    self_delete = await _post(browser, f"/app/settings/users/{me}/delete", {})
    assert self_delete.status_code == 409 and 'role="alert">You cannot delete your own account' in self_delete.text
    self_demote = await _post(browser, f"/app/settings/users/{me}", {"role": "user"})
    assert self_demote.status_code == 422 and "admins cannot demote or deactivate themselves" in self_demote.text

    audit = await browser.get("/app/settings/audit")
    actions = re.findall(r"<code>(user\.\w+)</code></a>", audit.text)
    assert actions[:3] == ["user.updated", "user.updated", "user.created"]  # newest first
    assert "manager" in audit.text and "Olive Owner" in audit.text
    only_created = await browser.get("/app/settings/audit?action=user.created")
    assert re.findall(r"<code>(user\.\w+)</code></a>", only_created.text) == ["user.created"]

    removed = await _post(browser, f"/app/settings/users/{sam}/delete", {})
    assert removed.status_code == 303
    assert f'data-user="{sam}"' not in (await browser.get("/app/settings/users")).text


# PostgreSQL only: the race needs a row lock to hold both requests at the rule's check, which SQLite lacks.
@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
async def test_the_last_admin_rule_is_shown_when_two_admins_demote_each_other(
    app: FastAPI, browser: httpx2.AsyncClient, db: async_sessionmaker[AsyncSession]
) -> None:
    await sign_up(browser, "first-admin@example.com")
    await _add_user(browser, "second-admin@example.com", "admin")
    first = await _user_id(db, "first-admin@example.com")
    second = await _user_id(db, "second-admin@example.com")
    async with _signed_in(app, "second-admin@example.com") as other:
        first_form = csrf_of(await browser.get("/app/settings/users"))
        second_form = csrf_of(await other.get("/app/settings/users"))
        async with db() as holder, db() as watcher:
            # Both requests pass their role check, then wait at the rule's row lock until this one lets go.
            await holder.execute(select(User.id).where(User.role == "admin").with_for_update())
            requests = [
                asyncio.create_task(
                    browser.post(f"/app/settings/users/{second}", data={"csrf_token": first_form, "role": "manager"})
                ),
                asyncio.create_task(
                    other.post(f"/app/settings/users/{first}", data={"csrf_token": second_form, "role": "user"})
                ),
            ]
            waiting = (
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'"
            )
            for _ in range(200):
                if await watcher.scalar(text(waiting)) == 2:
                    break
                await asyncio.sleep(0.05)
            await holder.commit()
            answers = await asyncio.wait_for(asyncio.gather(*requests), 10)
    assert sorted(answer.status_code for answer in answers) == [303, 409]
    refused = next(answer for answer in answers if answer.status_code == 409)
    assert 'role="alert">Cannot demote the last active admin of the company' in refused.text
    async with db() as session:
        admins = list(await session.scalars(select(User.id).where(User.role == "admin")))
    assert len(admins) == 1


async def test_a_user_and_a_manager_are_refused_every_settings_page(
    app: FastAPI, browser: httpx2.AsyncClient, db: async_sessionmaker[AsyncSession]
) -> None:
    await sign_up(browser, "boss@example.com")
    await _add_user(browser, "staff@example.com", "user")
    await _add_user(browser, "lead-manager@example.com", "manager")
    webhook_id, _ = await _register_webhook(browser)
    staff = await _user_id(db, "staff@example.com")
    assert (await _post(browser, "/app/settings/api-keys", {"name": "Site form"})).status_code == 201
    async with db() as session:
        key_id = await session.scalar(select(ApiKey.id))
    pages = ["", "/api-keys", "/webhooks", f"/webhooks/{webhook_id}", "/users", "/audit"]
    posts: list[tuple[str, dict[str, str | list[str]]]] = [
        ("", {"name": "Taken over"}),
        ("/api-keys", {"name": "Mine now", "scope": "full"}),
        (f"/api-keys/{key_id}/revoke", {}),
        ("/webhooks", {"url": PUBLIC_URL, "events": ["lead.created"]}),
        (f"/webhooks/{webhook_id}", {"url": PUBLIC_URL, "events": ["lead.created"], "active": "true"}),
        (f"/webhooks/{webhook_id}/rotate-secret", {}),
        (f"/webhooks/{webhook_id}/test", {}),
        (f"/webhooks/{webhook_id}/delete", {}),
        ("/users", {"email": "intruder@example.com", "role": "admin", "password": PASSWORD}),
        (f"/users/{staff}", {"role": "admin"}),
        (f"/users/{staff}/delete", {}),
    ]
    for email in ("staff@example.com", "lead-manager@example.com"):
        async with _signed_in(app, email) as other:
            home = await other.get("/app/")
            assert home.status_code == 200 and 'href="/app/settings"' not in home.text
            for path in pages:
                refused = await other.get(f"/app/settings{path}")
                assert refused.status_code == 403 and "Not for your role" in refused.text, (email, path)
            token = csrf_of(home)
            for path, data in posts:
                refused = await other.post(f"/app/settings{path}", data={"csrf_token": token, **data})
                assert refused.status_code == 403, (email, path)
    async with db() as session:
        assert await session.scalar(select(User).where(User.email == "intruder@example.com")) is None
        stored = await session.get(User, staff)
        webhook = await session.get(Webhook, webhook_id)
        keys = list(await session.scalars(select(ApiKey)))
    assert stored is not None and stored.role == "user" and webhook is not None
    assert [(key.name, key.revoked_at) for key in keys] == [("Site form", None)]
    assert (await _company(db, "boss@example.com")).name == "Acme Inc"


async def test_settings_forms_without_the_csrf_token_are_refused(
    browser: httpx2.AsyncClient, db: async_sessionmaker[AsyncSession]
) -> None:
    await sign_up(browser, "csrf@example.com")
    await browser.get("/app/settings")
    for path, data in (
        ("/app/settings", {"name": "Forged"}),
        ("/app/settings/api-keys", {"name": "Forged", "scope": "full"}),
        ("/app/settings/webhooks", {"url": PUBLIC_URL, "events": "lead.created"}),
        ("/app/settings/users", {"email": "forged@example.com", "role": "admin", "password": PASSWORD}),
    ):
        refused = await browser.post(path, data=data)
        assert refused.status_code == 403 and "did not come from this site" in refused.text, path
        forged = await browser.post(path, data={"csrf_token": "forged", **data})
        assert forged.status_code == 403, path
    async with db() as session:
        assert list(await session.scalars(select(ApiKey))) == []
        assert list(await session.scalars(select(Webhook))) == []
        assert await session.scalar(select(User).where(User.email == "forged@example.com")) is None
    assert (await _company(db, "csrf@example.com")).name == "Acme Inc"
