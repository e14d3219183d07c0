"""Oversized bodies, deep and huge free-form JSON, hostile text and template injection: a clear 4xx, nothing stored.

Every test runs on SQLite and PostgreSQL (PostgreSQL refuses NUL in text and jsonb: the reason both must
answer the same 422). The OpenAPI checks at the bottom make a new unbounded text field or an unchecked
free-form field fail here until it gets its bounds.
"""

from __future__ import annotations

import functools
import json
from collections.abc import AsyncIterator
from typing import Any

import httpx2
import pytest

from activities.content.writer import Company, prompts
from api.console.session import ACCESS_COOKIE, CSRF_COOKIE
from api.main import create_app
from core import templates
from core.config import Settings
from schemas.common import MAX_FREE_FORM_BYTES, MAX_FREE_FORM_DEPTH
from schemas.content import ContentBrief, ContentType
from tests.conftest import Account

MIB = 1024 * 1024


def nested(depth: int) -> dict[str, Any]:
    """``{"a": {"a": ... {}}}`` with ``depth`` objects, the outermost included."""
    value: dict[str, Any] = {}
    for _ in range(depth - 1):
        value = {"a": value}
    return value


async def lead_count(client: httpx2.AsyncClient, account: Account) -> int:
    listed = await client.get("/v1/leads", headers=account.headers)
    total: int = listed.json()["meta"]["total_items"]
    return total


# ---- body caps


async def test_a_body_over_the_cap_is_413_in_each_surface_format(client: httpx2.AsyncClient, owner: Account) -> None:
    """The issue's 5 MB custom_fields: refused from its Content-Length, before a byte is parsed."""
    huge = {"name": "Big", "email": "big@example.com", "custom_fields": {"blob": "x" * (5 * MIB)}}
    v1 = await client.post("/v1/leads", headers=owner.headers, json=huge)
    assert v1.status_code == 413
    assert v1.json() == {"error": "payload_too_large", "message": "The request body is larger than 1 MiB"}
    api = await client.post("/api/lead-nurturing/leads", headers=owner.headers, json=huge)
    assert api.status_code == 413 and api.json() == {"detail": "The request body is larger than 1 MiB"}
    console = await client.post("/app/leads", content=b"name=" + b"x" * (2 * MIB))
    assert console.status_code == 413 and "text/html" in console.headers["content-type"]
    assert await lead_count(client, owner) == 0


async def _chunks(total: int, size: int = 64 * 1024) -> AsyncIterator[bytes]:
    yield b'{"name": "Streamed", "email": "s@example.com", "notes": "'
    for _ in range(total // size):
        yield b"x" * size
    yield b'"}'


async def test_a_chunked_body_is_counted_as_it_arrives(client: httpx2.AsyncClient, owner: Account) -> None:
    """No Content-Length (chunked transfer): the bytes are counted, and the cap still holds."""
    for content_type in ("application/json", "application/octet-stream"):
        response = await client.post(
            "/v1/leads", headers={**owner.headers, "Content-Type": content_type}, content=_chunks(2 * MIB)
        )
        assert "content-length" not in response.request.headers
        assert response.status_code == 413, (content_type, response.text)
        assert response.json()["error"] == "payload_too_large"
    small = await client.post(
        "/v1/leads", headers={**owner.headers, "Content-Type": "application/json"}, content=_chunks(1024)
    )
    assert small.status_code == 201, small.text
    assert await lead_count(client, owner) == 1


async def test_upload_routes_take_the_larger_cap(
    client: httpx2.AsyncClient, owner: Account, settings: Settings
) -> None:
    settings.max_body_bytes = 64 * 1024  # read per request: no restart needed
    settings.max_upload_bytes = 256 * 1024
    body = {"from": "lead@example.com", "subject": "Re", "text": "y" * (100 * 1024)}
    webhooks = (await client.get("/api/lead-nurturing/inbound-webhooks", headers=owner.headers)).json()
    inbound = await client.post(webhooks["email_url"].split("8000", 1)[-1], json=body)
    assert inbound.status_code == 200, inbound.text  # 100 KiB: over the body cap, within the upload cap
    lead = await client.post("/v1/leads", headers=owner.headers, json={"name": "L", "notes": "y" * (100 * 1024)})
    assert lead.status_code == 413 and lead.json()["message"] == "The request body is larger than 64 KiB"
    too_big = await client.post(webhooks["email_url"].split("8000", 1)[-1], json={**body, "text": "y" * 300_000})
    assert too_big.status_code == 413 and too_big.json() == {"detail": "The request body is larger than 256 KiB"}


# ---- free-form JSON: depth and size, in every free-form field


FREE_FORM_FIELDS: dict[str, tuple[str, str, dict[str, Any]]] = {
    "LeadCreate.custom_fields": ("POST", "/v1/leads", {"name": "N", "email": "n@example.com"}),
    "LeadUpdate.custom_fields": ("PATCH", "/v1/leads/{lead_id}", {}),
    "CustomerCreate.custom_fields": ("POST", "/v1/customers", {"name": "C", "email": "c@example.com"}),
    "CustomerUpdate.custom_fields": ("PATCH", "/v1/customers/{customer_id}", {}),
    "InteractionCreate.metadata": (
        "POST",
        "/v1/leads/{lead_id}/interactions",
        {"type": "note", "direction": "inbound"},
    ),
    "InteractionEndpointsCreate.metadata": (
        "POST",
        "/api/lead-nurturing/interactions",
        {"type": "note", "direction": "inbound", "lead_id": "{lead_id}"},
    ),
    "UserSelfUpdate.settings": ("PATCH", "/v1/users/me", {}),
    "CompanyUpdate.settings": ("PATCH", "/v1/companies/current", {}),
    "WorkflowConfigCreate.triggers": ("POST", "/v1/workflow-configs", {"name": "W", "workflow_type": "lead_nurturing"}),
    "WorkflowConfigCreate.actions": ("POST", "/v1/workflow-configs", {"name": "W", "workflow_type": "lead_nurturing"}),
    "WorkflowConfigUpdate.triggers": ("PATCH", "/v1/workflow-configs/{workflow_id}", {}),
    "WorkflowConfigUpdate.actions": ("PATCH", "/v1/workflow-configs/{workflow_id}", {}),
}
"""Every free-form JSON field of a request body: (method, path, the rest of a valid body)."""


@pytest.fixture
async def records(client: httpx2.AsyncClient, owner: Account) -> dict[str, str]:
    lead = await client.post("/v1/leads", headers=owner.headers, json={"name": "Lee", "email": "lee@example.com"})
    customer = await client.post("/v1/customers", headers=owner.headers, json={"name": "Cy", "email": "cy@e.org"})
    config = await client.post(
        "/v1/workflow-configs",
        headers=owner.headers,
        json={
            "name": "Cfg",
            "workflow_type": "lead_nurturing",
            "active": False,
            "actions": {"message_template": "t"},
            "templates": {"t": "Hi {{ name }}"},
        },
    )
    return {"lead_id": lead.json()["id"], "customer_id": customer.json()["id"], "workflow_id": config.json()["id"]}


def _fill(text: str, records: dict[str, str]) -> str:
    for name, value in records.items():
        text = text.replace("{" + name + "}", value)
    return text


async def test_every_free_form_field_refuses_deep_and_oversized_json(
    client: httpx2.AsyncClient, owner: Account, records: dict[str, str]
) -> None:
    """500 levels deep (the issue's 500) and 100 KiB (within the body cap, over the field's): a 422 naming it."""
    before = await lead_count(client, owner)
    too_big = {"blob": "z" * (MAX_FREE_FORM_BYTES + 1)}
    for name, (method, path, base) in FREE_FORM_FIELDS.items():
        field = name.split(".")[1]
        url = _fill(path, records)
        body = {key: _fill(value, records) if isinstance(value, str) else value for key, value in base.items()}
        for value, problem in ((nested(500), "nested deeper than 20 levels"), (too_big, "larger than 64 KiB")):
            response = await client.request(method, url, headers=owner.headers, json={**body, field: value})
            assert response.status_code == 422, (name, response.text[:300])
            if url.startswith("/v1"):
                assert response.json()["details"][field][0].startswith(problem), (name, response.text[:300])
            else:
                assert response.json()["detail"][0]["field"] == field, (name, response.text[:300])
    assert await lead_count(client, owner) == before
    stored = (await client.get(f"/v1/leads/{records['lead_id']}", headers=owner.headers)).json()
    assert stored["custom_fields"] == {} and stored["interactions"] == []


async def test_free_form_json_at_its_limits_is_stored_and_read_back(client: httpx2.AsyncClient, owner: Account) -> None:
    deepest = nested(MAX_FREE_FORM_DEPTH)
    created = await client.post(
        "/v1/leads", headers=owner.headers, json={"name": "D", "email": "d@example.com", "custom_fields": deepest}
    )
    assert created.status_code == 201, created.text
    assert (await client.get(f"/v1/leads/{created.json()['id']}", headers=owner.headers)).json()[
        "custom_fields"
    ] == deepest
    one_deeper = await client.post(
        "/v1/leads",
        headers=owner.headers,
        json={"name": "E", "email": "e@example.com", "custom_fields": nested(MAX_FREE_FORM_DEPTH + 1)},
    )
    assert one_deeper.status_code == 422


def _free_form(option: dict[str, Any]) -> bool:
    untyped_values = option.get("additionalProperties", True) in (True, {})
    return option.get("type") == "object" and not option.get("properties") and untyped_values


def test_every_free_form_request_field_is_in_the_table() -> None:
    """A free-form object in a request body is only safe through FreeFormJson: list it above to prove it."""
    spec = _openapi()
    found = set()
    for name, schema in spec["components"]["schemas"].items():
        for field, definition in schema.get("properties", {}).items():
            if any(_free_form(option) for option in definition.get("anyOf", [definition])):
                found.add(f"{name}.{field}")
    request_models = {ref.rsplit("/", 1)[-1] for ref in _request_refs(spec)}
    assert {name for name in found if name.split(".")[0] in request_models} == FREE_FORM_FIELDS.keys()


@functools.cache
def _openapi() -> dict[str, Any]:
    # The document only: no lifespan, no database (these checks need neither, so they run once).
    spec: dict[str, Any] = create_app(Settings(environment="test")).openapi()
    return spec


def _request_refs(spec: dict[str, Any]) -> set[str]:
    refs = set()
    for operations in spec["paths"].values():
        for operation in operations.values():
            for content in operation.get("requestBody", {}).get("content", {}).values():
                if "$ref" in content.get("schema", {}):
                    refs.add(content["schema"]["$ref"])
    return refs


# ---- text: long, NUL, unicode


UNBOUNDED_BY_DESIGN = {
    "InboundEmail.subject": "a provider's email: truncated to 1000 characters, never refused",
    "InboundEmail.text": "a provider's email: truncated to 50,000 characters, never refused",
    "InboundEmail.headers": "a provider's header block, parsed and kept only in part",
    "InboundSms.Body": "a provider's SMS: truncated, never refused",
    "LeadFormFields.*": "the public form's fields go through LeadCreate (and 1000 characters per extra field)",
    "ContentScheduleCreate.time_of_day": "parsed as HH:MM",
    "ContentScheduleUpdate.time_of_day": "parsed as HH:MM",
    "SaleCreate.amount": "a decimal (12 digits), not text",
}


def test_every_text_field_of_a_request_body_has_a_max_length() -> None:
    spec = _openapi()
    schemas = spec["components"]["schemas"]
    unbounded = []
    for name in {ref.rsplit("/", 1)[-1] for ref in _request_refs(spec)}:
        for field, definition in schemas[name].get("properties", {}).items():
            for option in definition.get("anyOf", [definition]):
                if option.get("type") == "array":
                    option = option.get("items", {})
                constrained = {"maxLength", "enum", "format", "const", "pattern"} & option.keys()
                if option.get("type") == "string" and not constrained:
                    unbounded.append(f"{name}.{field}")
    explained = {
        key for key in unbounded if key in UNBOUNDED_BY_DESIGN or f"{key.split('.')[0]}.*" in UNBOUNDED_BY_DESIGN
    }
    assert sorted(set(unbounded) - explained) == []


async def test_long_strings_are_refused_by_field(client: httpx2.AsyncClient, owner: Account) -> None:
    cases = {"name": "n" * 201, "notes": "n" * 10_001, "tags": ["t" * 51], "timezone": "Z" * 65, "phone": "1" * 65}
    for field, value in cases.items():
        body = {"name": "Ok", "email": "long@example.com", field: value}
        v1 = await client.post("/v1/leads", headers=owner.headers, json=body)
        assert v1.status_code == 422 and field in v1.json()["details"].keys() | {
            key.split(".")[0] for key in v1.json()["details"]
        }, (field, v1.text[:200])
        api = await client.post("/api/lead-nurturing/leads", headers=owner.headers, json=body)
        assert api.status_code == 422 and api.json()["detail"][0]["loc"][0] == field, (field, api.text[:200])
    assert await lead_count(client, owner) == 0


async def test_nul_characters_are_a_422_on_every_database(client: httpx2.AsyncClient, owner: Account) -> None:
    """PostgreSQL cannot store NUL in text or jsonb; SQLite could, but both answer alike."""
    in_name = await client.post("/v1/leads", headers=owner.headers, json={"name": "a\x00b", "email": "n@example.com"})
    assert in_name.status_code == 422 and in_name.json()["details"] == {
        "name": ["may not contain NUL (\\u0000) characters"]
    }
    in_key = await client.post(
        "/api/lead-nurturing/leads",
        headers=owner.headers,
        json={"name": "K", "email": "k@example.com", "custom_fields": {"nested": {"k\x00": "v"}}},
    )
    assert in_key.status_code == 422 and in_key.json()["detail"][0]["field"] == "custom_fields.nested.k\x00"
    in_query = await client.get("/v1/leads", headers=owner.headers, params={"q": "x\x00"})
    assert in_query.status_code == 422 and list(in_query.json()["details"]) == ["q"]
    in_path = await client.get("/api/lead-nurturing/leads/lead-%00", headers=owner.headers)
    assert in_path.status_code == 422 and in_path.json()["detail"][0]["field"] == "path"
    in_form = await client.post("/token", data={"username": "a\x00", "password": "p"})
    assert in_form.status_code == 422 and in_form.json()["detail"][0]["field"] == "username"
    # An escaped backslash before "u0000" is text, not a NUL: accepted and kept as written.
    literal = await client.post(
        "/v1/leads",
        headers={**owner.headers, "Content-Type": "application/json"},
        content=b'{"name": "back\\\\u0000slash", "email": "b@example.com"}',
    )
    assert literal.status_code == 201 and literal.json()["name"] == "back\\u0000slash"
    assert await lead_count(client, owner) == 1


HOSTILE_TEXT = [
    "\u202egnp.exe",  # right-to-left override
    "Zoë 😀👩\u200d👩\u200d👧 naïve",  # emoji, a zero-width-joiner sequence, combining-free accents
    "e\u0301\u0301\u0301",  # stacked combining marks
    "日本語 العربية עברית",
    "\ufeffBOM and \u2028line separator",
]


async def test_unicode_is_stored_and_read_back_intact(client: httpx2.AsyncClient, owner: Account) -> None:
    for index, text in enumerate(HOSTILE_TEXT):
        body = {"name": text, "email": f"u{index}@example.com", "notes": text, "custom_fields": {text: text}}
        created = await client.post("/api/lead-nurturing/leads", headers=owner.headers, json=body)
        assert created.status_code == 201, created.text
        lead_id = created.json()["id"]
        for url in (f"/v1/leads/{lead_id.replace('lead-', 'lead_')}", f"/api/lead-nurturing/leads/{lead_id}"):
            stored = (await client.get(url, headers=owner.headers)).json()
            assert (stored["name"], stored["notes"], stored["custom_fields"]) == (text.strip(), text, {text: text})
        found = (await client.get("/v1/leads", headers=owner.headers, params={"q": text[:3]})).json()
        assert any(item["id"] == lead_id.replace("lead-", "lead_") for item in found["data"]), text


async def test_lone_surrogates_are_a_422(client: httpx2.AsyncClient, owner: Account) -> None:
    """``"\\ud800"`` is valid JSON but not Unicode: no database can store it, so it never gets that far."""
    for body in (
        b'{"name": "x\\ud800y", "email": "s@example.com"}',
        b'{"name": "ok", "email": "s@example.com", "custom_fields": {"k": "\\udfff"}}',
        b'{"name": "ok", "email": "s@example.com", "custom_fields": {"\\ud83d": 1}}',
    ):
        response = await client.post(
            "/v1/leads", headers={**owner.headers, "Content-Type": "application/json"}, content=body
        )
        assert response.status_code == 422, (body, response.text)
    paired = await client.post(
        "/v1/leads",
        headers={**owner.headers, "Content-Type": "application/json"},
        content=b'{"name": "pair \\ud83d\\ude00", "email": "s@example.com"}',
    )
    assert paired.status_code == 201 and paired.json()["name"] == "pair 😀"


# ---- template injection, in every template field


INJECTIONS = [
    "{{ ''.__class__.__mro__ }}",
    "{{ ''.__class__.__mro__[1].__subclasses__() }}",
    "{{ cycler.__init__.__globals__.os.popen('id').read() }}",
    "{{ lipsum.__globals__['os'] }}",
    "{{ name|attr('__class__') }}",
    "{{ '{0.__class__}'.format(name) }}",
    "{% include '/etc/passwd' %}",
    "{% import 'os' as os %}",
    "{{ custom_fields.update({'x': 1}) }}",
    "{{ 'a' * 1000000000 }}",
    "{{ 9 ** 9 ** 9 }}",
    "{{ range(1000000000)|list }}",
    "{% macro m() %}{{ m() }}{% endmacro %}{{ m() }}",
    # Each of these would take gigabytes of memory or minutes of CPU from the API (at save time) or the worker.
    "{{ 'x'|center(1000000000) }}",
    "{{ 'x'.center(1000000) }}",
    "{{ ('\\n' * 100000)|indent(1000) }}",
    "{{ ('x' * 100000)|replace('x', 'y' * 1000) }}",
    "{{ range(100000)|join('x' * 1000) }}",
    "{{ '%999999999s'|format('x') }}",
    "{{ ('%' ~ '9' * 9 ~ 's') % 'x' }}",
    "{{ '{:>999999999}'.format('x') }}",
    "{{ lipsum(100000) }}",
    "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}",
    "{% for i in range(100000) %}{% set y = ('x' * 99999)|replace('x', 'y') %}{% endfor %}",
    "{% for i in range(100000) %}{{ 'x' * 1000 }}{% endfor %}",
]

LEAD_CONFIG: dict[str, Any] = {
    "name": "Lead",
    "workflow_type": "lead_nurturing",
    "actions": {
        "message_template": "first",
        "subject": "Hello",
        "follow_up": [{"delay_hours": 1, "message_template": "first", "subject": "Again"}],
    },
    "templates": {"first": "Hi {{ first_name }}"},
}
REVIEW_CONFIG: dict[str, Any] = {
    "name": "Review",
    "workflow_type": "review_referral",
    "actions": {
        "message_template": "ask",
        "subject": "How did we do?",
        "reminders": [{"delay_hours": 24, "message_template": "ask", "subject": "A reminder"}],
        "referral": {"message_template": "ask", "subject": "A gift"},
    },
    "templates": {"ask": "Hi {{ first_name }}, review us: {{ review_link }}"},
}
TEMPLATE_FIELDS: dict[str, tuple[dict[str, Any], tuple[str | int, ...]]] = {
    "lead_nurturing templates.first": (LEAD_CONFIG, ("templates", "first")),
    "lead_nurturing actions.subject": (LEAD_CONFIG, ("actions", "subject")),
    "lead_nurturing actions.follow_up.0.subject": (LEAD_CONFIG, ("actions", "follow_up", 0, "subject")),
    "review_referral templates.ask": (REVIEW_CONFIG, ("templates", "ask")),
    "review_referral actions.subject": (REVIEW_CONFIG, ("actions", "subject")),
    "review_referral actions.reminders.0.subject": (REVIEW_CONFIG, ("actions", "reminders", 0, "subject")),
    "review_referral actions.referral.subject": (REVIEW_CONFIG, ("actions", "referral", "subject")),
}
"""Every field a template is rendered from: a config's templates, and every subject (a template too)."""


def _with(config: dict[str, Any], path: tuple[str | int, ...], text: str) -> dict[str, Any]:
    copy: Any = json.loads(json.dumps(config))
    target = copy
    for part in path[:-1]:
        target = target[part]
    target[path[-1]] = text
    result: dict[str, Any] = copy
    return result


async def test_template_injection_is_refused_at_save_time_in_every_template_field(
    client: httpx2.AsyncClient, owner: Account
) -> None:
    for label, (config, path) in TEMPLATE_FIELDS.items():
        accepted = await client.post("/v1/workflow-configs", headers=owner.headers, json=_with(config, path, "ok"))
        assert accepted.status_code == 201, (label, accepted.text)  # the control: the field takes a template
        config_id = accepted.json()["id"]
        dotted = ".".join(str(part) for part in path)
        for payload in INJECTIONS:
            created = await client.post(
                "/v1/workflow-configs", headers=owner.headers, json=_with(config, path, payload)
            )
            assert created.status_code == 422, (label, payload, created.text)
            assert list(created.json()["details"]) == [dotted], (label, payload, created.text)
            patch = _with({"actions": config["actions"], "templates": config["templates"]}, path, payload)
            updated = await client.patch(f"/v1/workflow-configs/{config_id}", headers=owner.headers, json=patch)
            assert updated.status_code == 422, (label, payload, updated.text)
        stored = (await client.get(f"/v1/workflow-configs/{config_id}", headers=owner.headers)).json()
        assert "__" not in json.dumps(stored) and "include" not in json.dumps(stored), label
    listed = (await client.get("/v1/workflow-configs", headers=owner.headers)).json()
    assert listed["meta"]["total_items"] == len(TEMPLATE_FIELDS)


def test_values_are_data_never_templates() -> None:
    """What a lead or a content brief says is inserted as text: a payload in it is shown, not evaluated."""
    payload = "{{ 7 * 7 }}{{ ''.__class__ }}"
    assert templates.render("Hi {{ name }}", {**templates.LEAD_SAMPLE, "name": payload}) == f"Hi {payload}"
    brief = ContentBrief(type=ContentType.blog, topic=payload, keywords=[payload], call_to_action=payload)
    system, user = prompts(brief, Company(name=payload, industry=payload))
    assert payload in user and "49" not in user and "<class" not in system + user


def test_the_bounds_leave_what_a_message_uses_alone() -> None:
    sample = templates.LEAD_SAMPLE
    assert templates.render("{{ name|center(14) }}|{{ name|replace('Jane', 'J') }}", sample) == "  Jane Smith  |J Smith"
    assert templates.render("{% for tag in tags %}#{{ tag }} {% endfor %}{{ tags|join(', ') }}", sample) == "#vip vip"
    assert templates.render("{{ '%s, call 18005551234' % first_name }} {{ '{:>6}'.format('ok') }}", sample) == (
        "Jane, call 18005551234     ok"
    )
    assert len(templates.render("{{ 'x' * 100000 }}", sample)) == templates.MAX_TEXT  # the limit itself renders


# ---- what the OpenAPI fuzzer found (each was a 500)


async def test_what_the_fuzzer_found_is_a_4xx(client: httpx2.AsyncClient, owner: Account) -> None:
    # An id field given a number: the id converter called str methods on it.
    number_id = await client.post("/api/review-referral/referrals", headers=owner.headers, json={"customer_id": 12345})
    assert number_id.status_code == 422 and number_id.json()["detail"][0]["field"] == "customer_id"
    # A page number past what OFFSET can hold.
    deep_page = await client.get("/v1/workflow-configs", headers=owner.headers, params={"page": 10**27})
    assert deep_page.status_code == 422 and list(deep_page.json()["details"]) == ["page"]
    # A period near year 1: the previous period of the same length would start before it.
    ancient = await client.get(
        "/v1/analytics/dashboard",
        headers=owner.headers,
        params={"start_date": "0339-11-19", "compare_to_previous": True},
    )
    assert ancient.status_code == 422 and list(ancient.json()["details"]) == ["start_date"]
    # Non-ASCII text where a signed key, a signature or a CSRF token is compared.
    inbound = await client.post("/api/lead-nurturing/inbound/cmp_x.\u00e9\u00e8/email", json={"from": "a@b.co"})
    assert inbound.status_code == 404
    unsubscribe = await client.get("/api/lead-nurturing/unsubscribe/cmp_x.lead_y.\u00e9")
    assert unsubscribe.status_code == 404
    csrf = await client.post(
        "/app/leads",
        headers={"Cookie": f"{ACCESS_COOKIE}={owner.token}; {CSRF_COOKIE}=token"},
        data={"csrf_token": "t\u00f6ken", "name": "x"},
    )
    assert csrf.status_code == 403


async def test_patches_cannot_grow_custom_fields_past_the_limit(client: httpx2.AsyncClient, owner: Account) -> None:
    """Each PATCH fits the 64 KiB cap, but merged into what is stored they would not: the last one is refused."""
    lead = await client.post("/v1/leads", headers=owner.headers, json={"name": "Grow", "email": "grow@example.com"})
    lead_id = lead.json()["id"]
    chunk = "x" * 30_000
    for key in ("a", "b"):
        grown = await client.patch(f"/v1/leads/{lead_id}", headers=owner.headers, json={"custom_fields": {key: chunk}})
        assert grown.status_code == 200, grown.text
    refused = await client.patch(f"/v1/leads/{lead_id}", headers=owner.headers, json={"custom_fields": {"c": chunk}})
    assert refused.status_code == 422
    assert "custom_fields" in refused.json()["details"]
    stored = await client.get(f"/v1/leads/{lead_id}", headers=owner.headers)
    assert set(stored.json()["custom_fields"]) == {"a", "b"}  # nothing of the refused patch was kept
