"""Two companies; every route that takes an id, called by company B with company A's real ids: always 404.

The routes are enumerated from the app at test time (both API surfaces and the console pages), so a route
added later is covered without touching this file, or fails here until it is isolated. Never a 200 with
A's data, never a 403 that would confirm the record exists. Afterwards every one of A's records is still
there: nothing B sent (a DELETE, an erase, a revoke) reached them.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from typing import Any

import httpx2
import pytest
from fastapi import FastAPI
from fastapi.routing import iter_route_contexts

from api.console.session import ACCESS_COOKIE, CSRF_COOKIE, CSRF_HEADER
from tests.hostile.seed import Tenant, seed_tenant

pytestmark = pytest.mark.usefixtures("worker")

PATH_PARAMETER = re.compile(r"{(\w+)}")

CAPABILITY_ROUTES = {
    "/api/lead-nurturing/unsubscribe/{token}": "the signed token in an email is the authorisation",
    "/api/lead-nurturing/inbound/{inbound_key}/email": "the company's signed inbound key is the authorisation",
    "/api/lead-nurturing/inbound/{inbound_key}/sms": "the company's signed inbound key is the authorisation",
    "/c/{link_id}": "a click-tracked link in published content: public by design",
    "/forms/{form_id}": "a public lead form: the form id is meant to be in a web page",
}
"""Routes authorised by the secret in their path rather than by who signs in: not a tenant boundary."""

API_BODIES: dict[tuple[str, str], dict[str, Any]] = {
    ("POST", "/v1/leads/{lead_id}/interactions"): {"type": "note", "direction": "outbound"},
    ("POST", "/v1/content/{content_id}/publications/{publication_id}/resolve"): {"action": "confirm"},
    ("POST", "/api/content-generation/publish/{content_id}"): {"platform": "recorded"},
}
"""A valid body where an empty one would be refused before the record is looked up (a 422 proves nothing)."""

CONSOLE_FORMS: dict[tuple[str, str], dict[str, str]] = {
    ("POST", "/app/leads/{lead_id}/reply"): {"content": "hello"},
    ("POST", "/app/leads/{lead_id}/status"): {"status": "lost"},
    ("POST", "/app/customers/{customer_id}/sales"): {"amount": "10", "status": "completed"},
    ("POST", "/app/customers/{customer_id}/reviews"): {"rating": "5", "platform": "google"},
    ("POST", "/app/content/{content_id}/publish"): {"platform": "recorded"},
    ("POST", "/app/content/{content_id}/publications/{publication_id}/resolve"): {"action": "confirm"},
    ("POST", "/app/sequences/{config_id}/active"): {"active": "false"},
}


@dataclass(frozen=True)
class IdRoute:
    method: str
    path: str
    parameters: tuple[str, ...]

    @property
    def console(self) -> bool:
        return self.path.startswith("/app/")

    def url(self, ids: dict[str, str]) -> str:
        return PATH_PARAMETER.sub(lambda match: ids[match.group(1)], self.path)


def id_routes(app: FastAPI) -> list[IdRoute]:
    """Every (method, path) of the app with a path parameter, in the order the app declares them."""
    routes: list[IdRoute] = []
    for context in iter_route_contexts(app.router.routes):
        path = getattr(context, "path", "")
        parameters = tuple(PATH_PARAMETER.findall(path))
        if not parameters or path.startswith("/app/static"):
            continue
        routes.extend(IdRoute(method, path, parameters) for method in sorted(getattr(context, "methods", ())))
    return routes


def _console_headers(tenant: Tenant, csrf: str) -> dict[str, str]:
    return {"Cookie": f"{ACCESS_COOKIE}={tenant.account.token}; {CSRF_COOKIE}={csrf}", CSRF_HEADER: csrf}


async def _call(client: httpx2.AsyncClient, route: IdRoute, caller: Tenant, ids: dict[str, str]) -> httpx2.Response:
    url = route.url(ids)
    if route.console:
        csrf = secrets.token_urlsafe(16)
        form = CONSOLE_FORMS.get((route.method, route.path)) if route.method == "POST" else None
        return await client.request(
            route.method, url, headers=_console_headers(caller, csrf), data=form if form is not None else {}
        )
    body = API_BODIES.get((route.method, route.path), {} if route.method in {"POST", "PUT", "PATCH"} else None)
    return await client.request(route.method, url, headers=caller.headers, json=body)


async def test_another_company_never_reaches_a_record(
    client: httpx2.AsyncClient, app: FastAPI, tenant_pair: tuple[Tenant, Tenant]
) -> None:
    """One seeded pair of companies (the slow part) for both checks."""
    await _path_ids_are_404(client, app, *tenant_pair)
    await _ids_in_bodies_and_queries_read_like_unknown_ones(client, app, *tenant_pair)


async def _path_ids_are_404(client: httpx2.AsyncClient, app: FastAPI, a: Tenant, b: Tenant) -> None:
    routes = id_routes(app)
    covered = [route for route in routes if route.path not in CAPABILITY_ROUTES]
    missing = sorted({name for route in covered for name in route.parameters} - a.ids.keys())
    assert not missing, f"seed_tenant creates no record for path parameter(s) {missing}: add one"
    assert {route.path for route in routes} >= CAPABILITY_ROUTES.keys(), "a capability route is gone: update the list"
    assert sum(route.console for route in covered) >= 10, "the console's id pages were not found"

    leaks = []
    for route in covered:
        answer = await _call(client, route, b, a.ids)
        if answer.status_code != 404:
            leaks.append(f"{route.method} {route.path} -> {answer.status_code} {answer.text[:160]}")
        elif not route.console:
            assert "json" in answer.headers["content-type"], (route, answer.text)
    assert not leaks, "company B reached company A's records:\n" + "\n".join(leaks)

    # Controls: A's own ids are real for every page and read route, and still there after B's attempts.
    for route in covered:
        if route.method == "GET":
            own = await _call(client, route, a, a.ids)
            # A finished content's progress fragment redirects to the content itself: fine, if not to sign in.
            assert own.status_code in (200, 303), (route, own.status_code, own.text[:300])
            assert "/login" not in own.headers.get("location", ""), route


@pytest.fixture
async def tenant_pair(client: httpx2.AsyncClient) -> tuple[Tenant, Tenant]:
    a = await seed_tenant(client, "Company A")
    b = await seed_tenant(client, "Company B")
    a.ids["job_id"] = await _import_job(client, a)
    return a, b


async def _import_job(client: httpx2.AsyncClient, tenant: Tenant) -> str:
    """A console CSV import (the only record that lives in the console process, not in the database)."""
    csrf = secrets.token_urlsafe(16)
    started = await client.post(
        "/app/leads/import",
        headers=_console_headers(tenant, csrf),
        files={"file": ("leads.csv", b"name,email\nCsv Person,csv-person@example.com\n", "text/csv")},
    )
    assert started.status_code == 303, started.text
    return started.headers["location"].rsplit("/", 1)[-1]


# ---- ids in bodies and query strings

ID_FIELDS = {
    "assigned_to": "user_id",
    "actor_id": "user_id",
    "lead_id": "lead_id",
    "entity_id": "lead_id",
    "target_id": "lead_id",
    "customer_id": "customer_id",
    "sale_id": "sale_id",
    "review_id": "review_id",
    "workflow_config_id": "workflow_id",
    "backup_id": "backup_id",
}
"""Request fields (body or query) that name a record, and which seeded record to put in them."""
NOT_RECORD_IDS = {"service_id"}  # the seller's own product code, free text: no record behind it
# ``code`` (a referral code) is checked too: another company's code must read as an unknown one.

BASE_BODIES: dict[tuple[str, str], dict[str, Any]] = {
    ("POST", "/v1/leads"): {"name": "Probe", "email": "{email}"},
    ("PATCH", "/v1/leads/{lead_id}"): {},
    ("POST", "/v1/customers"): {"name": "Probe", "email": "{email}"},
    ("POST", "/v1/sales"): {"amount": 10, "status": "pending"},
    ("POST", "/v1/reviews/request"): {"customer_id": "{own:customer_id}", "sale_id": "{own:sale_id}"},
    ("POST", "/v1/referrals"): {},
    ("POST", "/v1/referrals/{referral_id}/track"): {},
    ("POST", "/v1/workflow-runs/trigger"): {"workflow_config_id": "{own:workflow_id}", "entity_id": "{own:lead_id}"},
    ("POST", "/api/lead-nurturing/leads"): {"name": "Probe", "email": "{email}"},
    ("PUT", "/api/lead-nurturing/leads/{lead_id}"): {},
    ("POST", "/api/lead-nurturing/interactions"): {"type": "note", "direction": "outbound"},
    ("POST", "/api/review-referral/reviews"): {"customer_id": "{own:customer_id}", "rating": 4},
    ("POST", "/api/review-referral/referrals"): {"customer_id": "{own:customer_id}"},
    ("POST", "/api/review-referral/referrals/use"): {"code": "{own:code}", "lead_id": "{own:lead_id}"},
    ("POST", "/api/system/restore"): {},
}
"""For each route with an id in its body: the rest of a valid body ({own:...} is the caller's own record)."""


def _id_fields(app: FastAPI) -> list[tuple[str, str, str, str]]:
    """``(method, path, "query" | "body", field)`` for every record id a route takes besides its path."""
    spec = app.openapi()
    schemas = spec["components"]["schemas"]
    found = []
    for path, operations in spec["paths"].items():
        for method, operation in operations.items():
            for parameter in operation.get("parameters", []):
                if parameter["in"] == "query" and parameter["name"] in ID_FIELDS:
                    found.append((method.upper(), path, "query", parameter["name"]))
            for content in operation.get("requestBody", {}).get("content", {}).values():
                schema = content.get("schema", {})
                if "$ref" in schema:
                    schema = schemas[schema["$ref"].rsplit("/", 1)[-1]]
                for name in schema.get("properties", {}):
                    if (name.endswith("_id") or name in ID_FIELDS or name == "code") and name not in NOT_RECORD_IDS:
                        found.append((method.upper(), path, "body", name))
    return sorted(set(found))


def _fill(template: dict[str, Any], own: Tenant) -> dict[str, Any]:
    filled = {}
    for key, value in template.items():
        if value == "{email}":
            value = f"probe-{secrets.token_hex(4)}@example.com"
        elif isinstance(value, str) and value.startswith("{own:"):
            name = value[5:-1]
            value = own.referral_code if name == "code" else own.ids[name]
        filled[key] = value
    return filled


def _comparable(response: httpx2.Response, sent: str) -> tuple[int, str]:
    return response.status_code, response.text.replace(sent, "<id>")


async def _ids_in_bodies_and_queries_read_like_unknown_ones(
    client: httpx2.AsyncClient, app: FastAPI, a: Tenant, b: Tenant
) -> None:
    """Another company's id in a body or a filter is answered exactly like an id that does not exist."""
    fields = _id_fields(app)
    unknown_fields = sorted({name for *_, name in fields} - ID_FIELDS.keys() - {"code"})
    assert not unknown_fields, f"new id field(s) {unknown_fields}: say which record they name in ID_FIELDS"
    body_routes = {(method, path) for method, path, where, _ in fields if where == "body"}
    assert body_routes <= BASE_BODIES.keys(), f"give a valid body for {sorted(body_routes - BASE_BODIES.keys())}"

    differences = []
    for method, path, where, name in fields:
        theirs = a.referral_code if name == "code" else a.ids[ID_FIELDS[name]]
        made_up = f"{theirs.split('_')[0]}_{secrets.token_hex(8)}" if name != "code" else "NOPE-UNKNOWN1"
        url = PATH_PARAMETER.sub(lambda match: b.ids[match.group(1)], path)
        answers = []
        for value in (theirs, made_up):
            if where == "query":
                response = await client.request(method, url, headers=b.headers, params={name: value})
            else:
                body = {**_fill(BASE_BODIES[(method, path)], b), name: value}
                response = await client.request(method, url, headers=b.headers, json=body)
            answers.append(_comparable(response, value))
        (status, text), unknown = answers
        if (status, text) != unknown or (where == "body" and status < 400):
            differences.append(f"{method} {path} {where} {name}: {status} {text[:120]} vs unknown {unknown[0]}")
    assert not differences, "another company's ids are told apart from unknown ones:\n" + "\n".join(differences)
