"""Automations in the console: sequences built from form posts, live previews, activate/pause, roles, scoping."""

from __future__ import annotations

import re
from typing import Any

import httpx2

from tests.console.conftest import csrf_of, sign_up

PASSWORD = "correct horse battery"
CONFIG_URL = re.compile(r"^/app/sequences/(wf_[A-Za-z0-9_-]+)\?done=saved$")


def lead_form(csrf: str, **changes: Any) -> dict[str, Any]:
    """A two-step sequence as the builder posts it: the first message and one follow-up."""
    form: dict[str, Any] = {
        "csrf_token": csrf,
        "workflow_type": "lead_nurturing",
        "form_action": "save",
        "name": "Website leads",
        "active": "1",
        "sources": ["website_form", "landing_page"],
        "tags": "vip, hot",
        "first-key": "first_message",
        "first-delay": "5",
        "first-channel": "email",
        "first-subject": "Welcome, {{ first_name }}",
        "first-template": "Hello {{ first_name }}, thanks for asking {{ company_name }}.",
        "steps-1-key": "follow_up_1",
        "steps-1-delay": "1.5",
        "steps-1-channel": "sms",
        "steps-1-subject": "",
        "steps-1-template": "Still interested, {{ first_name }}?",
        "window_on": "1",
        "window_days": ["0", "1", "2", "3", "4"],
        "window_start": "09:00",
        "window_end": "17:00",
        "personalize": "1",
    }
    form.update(changes)
    return form


def review_form(csrf: str, **changes: Any) -> dict[str, Any]:
    form: dict[str, Any] = {
        "csrf_token": csrf,
        "workflow_type": "review_referral",
        "form_action": "save",
        "name": "After every sale",
        "active": "1",
        "channel": "email",
        "platform": "google",
        "first-key": "review_request",
        "first-delay": "2",
        "first-subject": "How was {{ service_name }}?",
        "first-template": "Hi {{ first_name }}, tell others about us: {{ review_link }}",
        "steps-1-key": "review_reminder_1",
        "steps-1-delay": "48",
        "steps-1-template": "A gentle reminder, {{ first_name }}: {{ review_link }}",
        "referral_on": "1",
        "referral-key": "referral_offer",
        "referral-delay": "24",
        "referral-subject": "A gift for your friends",
        "referral-template": "Share {{ referral_code }}: {{ referral_offer }}",
        "referral-offer": "20% off the first order",
        "referral-referrer_offer": "A free month",
        "referral-expires_in_days": "",
        "referral-max_uses": "5",
    }
    form.update(changes)
    return form


async def api_headers(browser: httpx2.AsyncClient, email: str) -> dict[str, str]:
    token = await browser.post("/token", data={"username": email, "password": PASSWORD})
    assert token.status_code == 200, token.text
    return {"Authorization": f"Bearer {token.json()['access_token']}"}


async def stored_config(browser: httpx2.AsyncClient, headers: dict[str, str], config_id: str) -> dict[str, Any]:
    response = await browser.get(f"/v1/workflow-configs/{config_id}", headers=headers)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def create(browser: httpx2.AsyncClient, form: dict[str, Any]) -> str:
    answer = await browser.post("/app/sequences", data=form)
    assert answer.status_code == 303, answer.text
    found = CONFIG_URL.match(answer.headers["location"])
    assert found, answer.headers["location"]
    return found.group(1)


def htmx(page: httpx2.Response) -> dict[str, str]:
    return {"HX-Request": "true", "X-CSRF-Token": csrf_of(page)}


async def test_a_two_step_sequence_built_in_the_console_is_the_stored_config(browser: httpx2.AsyncClient) -> None:
    await sign_up(browser, "builder@example.com")
    new = await browser.get("/app/sequences/new?type=lead_nurturing")
    assert new.status_code == 200
    assert "First message" in new.text and 'name="steps-1-template"' in new.text
    assert "thanks for your interest in Acme Inc. How can we help?" in new.text  # the starter text's preview
    assert 'hx-trigger="keyup changed delay:400ms, change"' in new.text

    # htmx "add a step": the next fieldset, numbered after the ones posted.
    added = await browser.post(
        "/app/sequences/steps?type=lead_nurturing", data=lead_form(csrf_of(new)), headers=htmx(new)
    )
    assert added.status_code == 200 and "<html" not in added.text
    assert 'name="steps-2-key" value="follow_up_2"' in added.text and "Follow-up 2" in added.text

    # The added step is then removed with its checkbox (the no-JavaScript way): it is not saved.
    form = lead_form(csrf_of(new), **{"steps-2-key": "follow_up_2", "steps-2-delay": "24", "steps-2-remove": "1"})
    config_id = await create(browser, form)
    page = await browser.get(f"/app/sequences/{config_id}?done=saved")
    assert page.status_code == 200 and "Saved." in page.text
    assert "Hello Jane, thanks for asking Acme Inc." in page.text  # the stored steps' previews
    assert 'value="1.5"' in page.text and "steps-2-key" not in page.text

    headers = await api_headers(browser, "builder@example.com")
    listed = (await browser.get("/v1/workflow-configs", headers=headers)).json()
    assert [item["id"] for item in listed["data"]] == [config_id]
    config = await stored_config(browser, headers, config_id)
    assert config["name"] == "Website leads" and config["active"] is True
    assert config["triggers"] == {"lead_source": ["website_form", "landing_page"], "tags": ["vip", "hot"]}
    actions = config["actions"]
    assert actions["initial_delay_minutes"] == 5 and actions["channel"] == "email"
    assert actions["subject"] == "Welcome, {{ first_name }}"
    assert actions["follow_up"] == [{"delay_hours": 1.5, "message_template": "follow_up_1", "channel": "sms"}]
    assert actions["personalize"] is True
    assert actions["send_window"] == {"start": "09:00", "end": "17:00", "days": [0, 1, 2, 3, 4]}
    assert config["templates"] == {
        "first_message": "Hello {{ first_name }}, thanks for asking {{ company_name }}.",
        "follow_up_1": "Still interested, {{ first_name }}?",
    }

    listing = await browser.get("/app/sequences")
    assert listing.status_code == 200
    row = listing.text.split(f'data-config="{config_id}"')[1].split("</tr>")[0]
    assert "Website leads" in row and "active" in row and "<td>0</td>" in row


async def test_the_preview_renders_with_the_sample_lead_and_shows_template_errors(
    browser: httpx2.AsyncClient,
) -> None:
    await sign_up(browser, "preview@example.com")
    new = await browser.get("/app/sequences/new?type=lead_nurturing")
    url = "/app/sequences/preview?type=lead_nurturing&prefix=steps-1"
    fields = {
        "steps-1-subject": "Hi {{ first_name }}",
        "steps-1-template": "Dear {{ name }} ({{ email }}) from {{ source }}",
    }
    shown = await browser.post(url, data=fields, headers=htmx(new))
    assert shown.status_code == 200
    assert "Hi Jane" in shown.text and "Dear Jane Smith (jane@example.com) from website_form" in shown.text

    broken = await browser.post(url, data={"steps-1-template": "Hello {{ nickname }}"}, headers=htmx(new))
    assert broken.status_code == 200 and "&#39;nickname&#39; is undefined" in broken.text
    escape = await browser.post(url, data={"steps-1-template": "{{ ''.__class__.__mro__ }}"}, headers=htmx(new))
    assert "may not" in escape.text and "&lt;class" not in escape.text
    sms = await browser.post(
        url,
        data={"first-channel": "sms", "steps-1-subject": "Hi {{ first_name }}", "steps-1-template": "Hi"},
        headers=htmx(new),
    )
    assert "SMS: no subject" in sms.text and "Hi Jane" not in sms.text
    html = await browser.post(url, data={"steps-1-template": "<b>{{ first_name }}</b>"}, headers=htmx(new))
    assert "&lt;b&gt;Jane&lt;/b&gt;" in html.text  # shown as text, never as markup

    review = await browser.post(
        "/app/sequences/preview?type=review_referral&prefix=first",
        data={"first-template": "Review {{ service_name }} at {{ review_link }}"},
        headers=htmx(new),
    )
    assert "Review Premium Package at https://g.page/r/acme/review" in review.text
    bad_prefix = await browser.post("/app/sequences/preview?type=lead_nurturing&prefix=x", headers=htmx(new))
    assert bad_prefix.status_code == 422


async def test_errors_are_shown_at_the_step_they_are_about_with_the_typed_values_kept(
    browser: httpx2.AsyncClient,
) -> None:
    await sign_up(browser, "errors@example.com")
    new = await browser.get("/app/sequences/new?type=lead_nurturing")
    csrf = csrf_of(new)

    bad_template = await browser.post(
        "/app/sequences", data=lead_form(csrf, **{"steps-1-template": "Hi {{ nickname }}"})
    )
    assert bad_template.status_code == 422
    assert 'id="e-steps-1-template"' in bad_template.text and "nickname" in bad_template.text
    assert 'value="Website leads"' in bad_template.text and "Hi {{ nickname }}</textarea>" in bad_template.text
    assert 'value="1.5"' in bad_template.text and 'value="landing_page" checked' in bad_template.text

    bad_delay = await browser.post("/app/sequences", data=lead_form(csrf, **{"steps-1-delay": "soon"}))
    assert bad_delay.status_code == 422
    assert 'id="e-steps-1-delay"' in bad_delay.text and 'value="soon"' in bad_delay.text

    no_name = await browser.post("/app/sequences", data=lead_form(csrf, name=""))
    assert no_name.status_code == 422 and 'id="e-name"' in no_name.text

    sms_at_night = await browser.post("/app/sequences", data=lead_form(csrf, window_start="22:00", window_end="23:00"))
    assert sms_at_night.status_code == 422 and "SMS hours" in sms_at_night.text

    # Without JavaScript "add a follow-up" posts the form: it comes back with one more step, nothing saved.
    redrawn = await browser.post("/app/sequences", data=lead_form(csrf, form_action="add_step"))
    assert redrawn.status_code == 200
    assert 'name="steps-2-key"' in redrawn.text and "Still interested, {{ first_name }}?</textarea>" in redrawn.text

    headers = await api_headers(browser, "errors@example.com")
    assert (await browser.get("/v1/workflow-configs", headers=headers)).json()["data"] == []

    # A refused edit of a stored config changes nothing.
    config_id = await create(browser, lead_form(csrf))
    edit = await browser.post(
        f"/app/sequences/{config_id}", data=lead_form(csrf, **{"first-template": "{{ first_name", "name": "Renamed"})
    )
    assert edit.status_code == 422 and 'id="e-first-template"' in edit.text and 'value="Renamed"' in edit.text
    assert (await stored_config(browser, headers, config_id))["name"] == "Website leads"

    # An accepted edit: a step removed, its template goes with it.
    saved = await browser.post(
        f"/app/sequences/{config_id}", data=lead_form(csrf, name="Renamed", **{"steps-1-remove": "1"})
    )
    assert saved.status_code == 303
    config = await stored_config(browser, headers, config_id)
    assert config["name"] == "Renamed" and config["actions"]["follow_up"] == []
    assert set(config["templates"]) == {"first_message"}


async def test_activate_and_pause_change_the_config(browser: httpx2.AsyncClient) -> None:
    await sign_up(browser, "pause@example.com")
    new = await browser.get("/app/sequences/new?type=lead_nurturing")
    config_id = await create(browser, lead_form(csrf_of(new)))
    headers = await api_headers(browser, "pause@example.com")

    paused = await browser.post(
        f"/app/sequences/{config_id}/active", data={"csrf_token": csrf_of(new), "active": "false"}
    )
    assert paused.status_code == 303 and paused.headers["location"] == "/app/sequences?done=paused"
    assert (await stored_config(browser, headers, config_id))["active"] is False
    listing = await browser.get(paused.headers["location"])
    assert "Paused: no new runs start" in listing.text
    assert "Activate Website leads" in listing.text

    activated = await browser.post(
        f"/app/sequences/{config_id}/active",
        data={"csrf_token": csrf_of(new), "active": "true", "back": "config"},
    )
    assert activated.headers["location"] == f"/app/sequences/{config_id}?done=activated"
    assert (await stored_config(browser, headers, config_id))["active"] is True
    page = await browser.get(activated.headers["location"])
    assert ">Pause</button>" in page.text and "Turned on" in page.text


async def test_a_review_config_is_created_and_its_referral_offer_replaced_on_edit(
    browser: httpx2.AsyncClient,
) -> None:
    await sign_up(browser, "reviews@example.com")
    new = await browser.get("/app/sequences/new?type=review_referral")
    assert new.status_code == 200 and "Review request" in new.text and 'value="yelp"' not in new.text
    csrf = csrf_of(new)

    yelp = await browser.post("/app/sequences", data=review_form(csrf, platform="yelp"))
    assert yelp.status_code == 422 and 'id="e-platform"' in yelp.text

    config_id = await create(browser, review_form(csrf))
    headers = await api_headers(browser, "reviews@example.com")
    config = await stored_config(browser, headers, config_id)
    assert config["workflow_type"] == "review_referral" and config["triggers"] == {}
    actions = config["actions"]
    assert (
        actions["delay_hours"] == 2
        and actions["platform"] == "google"
        and actions["message_template"] == "review_request"
    )
    assert actions["reminders"] == [{"delay_hours": 48, "message_template": "review_reminder_1"}]
    assert actions["referral"]["expires_in_days"] is None and actions["referral"]["max_uses"] == 5
    assert config["templates"]["referral_offer"] == "Share {{ referral_code }}: {{ referral_offer }}"

    page = await browser.get(f"/app/sequences/{config_id}")
    assert "tell others about us: https://g.page/r/acme/review" in page.text

    # The form holds the whole offer: emptied fields become "none"/"never", not the defaults they would merge into.
    edited = review_form(
        csrf, **{"referral-expires_in_days": "30", "referral-referrer_offer": "", "referral-max_uses": ""}
    )
    assert (await browser.post(f"/app/sequences/{config_id}", data=edited)).status_code == 303
    referral = (await stored_config(browser, headers, config_id))["actions"]["referral"]
    assert referral["expires_in_days"] == 30 and referral["referrer_offer"] is None and referral["max_uses"] is None

    no_offer = review_form(csrf)
    del no_offer["referral_on"]
    assert (await browser.post(f"/app/sequences/{config_id}", data=no_offer)).status_code == 303
    config = await stored_config(browser, headers, config_id)
    assert "referral" not in config["actions"] and "referral_offer" not in config["templates"]


async def test_a_content_schedule_config_from_its_form(browser: httpx2.AsyncClient) -> None:
    await sign_up(browser, "content@example.com")
    new = await browser.get("/app/sequences/new?type=content_generation")
    assert new.status_code == 200 and 'name="topics"' in new.text
    form = {
        "csrf_token": csrf_of(new),
        "workflow_type": "content_generation",
        "name": "Weekly blog",
        "active": "1",
        "content_type": "blog",
        "frequency": "weekly",
        "day_of_week": "",
        "time_of_day": "08:30",
        "topics": "Spring offers\nHow we work\n",
        "word_count": "600",
        "keywords": "plumbing, repairs",
        "require_approval": "1",
    }
    weekly_without_day = await browser.post("/app/sequences", data=form)
    assert weekly_without_day.status_code == 422 and 'id="e-day_of_week"' in weekly_without_day.text
    assert "Spring offers\nHow we work</textarea>" in weekly_without_day.text

    config_id = await create(browser, {**form, "day_of_week": "Monday"})
    headers = await api_headers(browser, "content@example.com")
    actions = (await stored_config(browser, headers, config_id))["actions"]
    assert actions["topics"] == ["Spring offers", "How we work"] and actions["day_of_week"] == "Monday"
    assert actions["parameters"] == {"word_count": 600, "keywords": ["plumbing", "repairs"]}
    assert actions["time_of_day"] == "08:30" and actions["require_approval"] is True

    cleared = {**form, "day_of_week": "Monday", "word_count": "", "keywords": ""}
    assert (await browser.post(f"/app/sequences/{config_id}", data=cleared)).status_code == 303
    assert (await stored_config(browser, headers, config_id))["actions"]["parameters"] == {}


async def test_another_companys_config_is_a_404(browser: httpx2.AsyncClient) -> None:
    await sign_up(browser, "first@example.com", "First Co")
    new = await browser.get("/app/sequences/new")
    config_id = await create(browser, lead_form(csrf_of(new)))
    browser.cookies.clear()
    await sign_up(browser, "second@example.com", "Second Co")
    assert (await browser.get(f"/app/sequences/{config_id}")).status_code == 404
    page = await browser.get("/app/sequences")
    assert config_id not in page.text
    for url, data in ((f"/app/sequences/{config_id}/active", {"active": "false"}), (f"/app/sequences/{config_id}", {})):
        answer = await browser.post(url, data={"csrf_token": csrf_of(page), **data})
        assert answer.status_code == 404 and "Not found" in answer.text


async def test_a_user_role_sees_automations_but_cannot_change_them(browser: httpx2.AsyncClient) -> None:
    await sign_up(browser, "admin@example.com")
    new = await browser.get("/app/sequences/new")
    config_id = await create(browser, lead_form(csrf_of(new)))
    admin = await api_headers(browser, "admin@example.com")
    member = {"email": "member@example.com", "password": PASSWORD, "role": "user"}
    assert (await browser.post("/api/users", headers=admin, json=member)).status_code == 201

    browser.cookies.clear()
    login = await browser.get("/app/login")
    signed_in = await browser.post(
        "/app/login", data={"csrf_token": csrf_of(login), "email": "member@example.com", "password": PASSWORD}
    )
    assert signed_in.status_code == 303
    listing = await browser.get("/app/sequences")
    assert listing.status_code == 200 and "Website leads" in listing.text
    assert "Pause" not in listing.text and "/sequences/new" not in listing.text
    page = await browser.get(f"/app/sequences/{config_id}")
    assert page.status_code == 200 and "Only admins and managers can change automations." in page.text

    csrf = csrf_of(page)
    refused = await browser.post(f"/app/sequences/{config_id}/active", data={"csrf_token": csrf, "active": "false"})
    assert refused.status_code == 403
    assert (await browser.post("/app/sequences", data=lead_form(csrf))).status_code == 403
    assert (await browser.post(f"/app/sequences/{config_id}", data=lead_form(csrf, name="Mine"))).status_code == 403
    config = await stored_config(browser, admin, config_id)
    assert config["active"] is True and config["name"] == "Website leads"


async def test_posts_without_the_csrf_token_are_refused(browser: httpx2.AsyncClient) -> None:
    await sign_up(browser, "csrf@example.com")
    new = await browser.get("/app/sequences/new")
    form = lead_form(csrf_of(new))
    del form["csrf_token"]
    assert (await browser.post("/app/sequences", data=form)).status_code == 403
    preview = await browser.post(
        "/app/sequences/preview?type=lead_nurturing&prefix=first",
        data={"first-template": "Hi"},
        headers={"HX-Request": "true"},
    )
    assert preview.status_code == 403
    headers = await api_headers(browser, "csrf@example.com")
    assert (await browser.get("/v1/workflow-configs", headers=headers)).json()["data"] == []
