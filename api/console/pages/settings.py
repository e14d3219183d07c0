"""Settings (admins only): the company's profile and providers, API keys, webhooks, users and the audit log.

Every form calls the service its ``/v1`` or ``/api`` twin calls. The admin check is made here as well as in the
services (some of which let managers in, e.g. webhooks and the company profile): these pages are for admins.
Secrets (a new API key, a webhook's signing secret) appear in the answer to the POST that made them, never in
a URL, a cookie or a later page, and those answers are not cached.
"""

from __future__ import annotations

import logging
import zoneinfo
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi.responses import HTMLResponse, Response
from pydantic import BaseModel, ConfigDict, HttpUrl, ValidationError
from starlette.datastructures import FormData

from api.console.forms import field_errors
from api.console.navigation import page
from api.console.session import CONSOLE_PATH, ConsoleUser, CsrfChecked
from api.console.templating import redirect, render
from api.deps import SessionDep, SettingsDep, TemporalDep
from core.config import Settings
from db.content import APPROVAL_SETTING
from db.models import Company, User, Webhook
from schemas.api_keys import ApiKeyCreate, ApiKeyScope
from schemas.audit import AuditFilter
from schemas.auth import PASSWORD_MIN_LENGTH
from schemas.common import MAX_PAGE_NUMBER, Page, PageRequest
from schemas.companies import DEFAULT_SEND_WINDOW, CompanyUpdate, webhook_of, wordpress_of
from schemas.enums import Role
from schemas.lead_forms import HONEYPOT_FIELD
from schemas.messaging import SendWindow
from schemas.reviews import NO_SOLICITING, PLATFORM_LABELS, REVIEW_LINKS_SETTING, ReviewPlatform
from schemas.users import UserCreate, UserFilter, UserUpdate
from schemas.webhook_delivery import DeliveryStatus
from schemas.webhooks import EVENT_CATALOGUE, WebhookCreate, WebhookFilter, WebhookUpdate
from services import api_keys, audit, companies, health, lead_forms, users, webhooks
from services.api_keys import CreatedKey
from services.errors import Conflict, InvalidField, NotFound, ServiceUnavailable
from services.users import require_role

log = logging.getLogger(__name__)

router = APIRouter(prefix="/settings")

BASE = f"{CONSOLE_PATH}/settings"
PAGE_SIZE = 20
TABS = [
    ("", "Company"),
    ("/api-keys", "API keys"),
    ("/webhooks", "Webhooks"),
    ("/users", "Users"),
    ("/audit", "Audit log"),
]
DONE = {
    "saved": "The company profile is saved.",
    "key-revoked": "The API key is revoked: it stopped working, and so did any public form it named.",
    "webhook-saved": "The webhook is saved.",
    "webhook-deleted": "The webhook and its delivery history are deleted.",
    "test-sent": "A webhook.test event is on its way; its delivery appears below.",
    "user-added": "The user is added; they can sign in with the password you gave them.",
    "user-saved": "The user is changed.",
    "user-deleted": "The user is deleted.",
}
"""What a redirect's ``?done=`` says happened (fixed texts: nothing from the URL is shown as is)."""

REVIEW_LINK_PLATFORMS = [platform for platform in ReviewPlatform if platform not in NO_SOLICITING]
"""Platforms a review request can point to (asking for reviews on Yelp is against its rules)."""
TIME_ZONES = sorted(name for name in zoneinfo.available_timezones() if "/" in name or name == "UTC")
WEEKDAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]
ROLES = [role.value for role in Role]
WINDOW_MESSAGES = {
    "send_window.start": "a time as HH:MM, e.g. 09:00",
    "send_window.end": "a time as HH:MM, e.g. 17:00",
    "send_window.days": "choose one or more days",
}
"""Plain words for what the schema says with a pattern or a list length."""


async def _admin(user: ConsoleUser) -> User:
    require_role(user, Role.admin)
    return user


Admin = Annotated[User, Depends(_admin)]
PageNumber = Annotated[int, Query(ge=1, le=MAX_PAGE_NUMBER)]


class FormInvalid(Exception):
    def __init__(self, errors: dict[str, list[str]]) -> None:
        super().__init__("the form has errors")
        self.errors = errors


def _errors(exc: ValidationError) -> dict[str, list[str]]:
    """Errors keyed by the form's input names: ``send_window.days.3`` is the ``send_window.days`` checkboxes."""
    named: dict[str, list[str]] = {}
    for field, messages in field_errors(exc).items():
        name = ".".join(part for part in field.split(".") if not part.isdigit()) or "form"
        named.setdefault(name, []).extend(messages)
    return named


def _no_store(response: Response) -> None:
    """A page carrying a secret: never kept by the browser or a proxy."""
    response.headers["Cache-Control"] = "no-store"


def _context(user: User, tab: str, title: str, request: Request, **values: Any) -> dict[str, Any]:
    done = DONE.get(request.query_params.get("done", ""))
    return page(user, "/settings", title, tabs=TABS, tab=tab, base=BASE, flash=done, **values)


@dataclass(frozen=True)
class Pager:
    page: int
    pages: int
    total: int
    previous_url: str | None
    next_url: str | None


def _pager(result: Page[Any], path: str, params: Mapping[str, str | None]) -> Pager:
    kept = {name: value for name, value in params.items() if value}
    pages = max(1, -(-result.total // result.request.size))
    number = result.request.page

    def url(target: int) -> str:
        return f"{path}?{urlencode({**kept, 'page': target})}"

    return Pager(
        page=number,
        pages=pages,
        total=result.total,
        previous_url=url(number - 1) if number > 1 else None,
        next_url=url(number + 1) if number < pages else None,
    )


def _page_request(number: int) -> PageRequest:
    return PageRequest(page=number, size=PAGE_SIZE)


# ---------------------------------------------------------------- company profile and providers


class ProfileSettings(BaseModel):
    """The company settings the profile form edits, checked before they merge into ``Company.settings``."""

    model_config = ConfigDict(extra="forbid")

    review_links: dict[ReviewPlatform, HttpUrl | None]
    """An empty link removes the platform's link (a ``None`` in a settings patch deletes the key)."""
    send_window: SendWindow
    content_requires_approval: bool


@dataclass(frozen=True)
class Provider:
    name: str
    state: str
    """``operational`` (a real provider is configured) or ``recorded`` (kept in the database, nothing leaves),
    the words ``GET /api/system/health`` uses."""
    meaning: str


def _providers(settings: Settings, company: Company) -> list[Provider]:
    """Which real providers are configured: states only, never an address, a user name or a secret."""
    wordpress = wordpress_of(company.integrations) is not None
    publisher = webhook_of(company.integrations) is not None
    states = health.provider_states(settings)
    return [
        Provider(
            "Email",
            states["email"],
            "sent over SMTP" if settings.smtp_host else "kept in the deliveries table and the log; nothing is sent",
        ),
        Provider(
            "SMS",
            states["sms"],
            "sent through the SMS provider"
            if settings.sms_api_url
            else "kept in the deliveries table and the log; nothing is sent",
        ),
        Provider(
            "Writing (LLM)",
            states["openai"],
            "written by an OpenAI-compatible model"
            if settings.llm_base_url
            else "written by the built-in offline writer from templates",
        ),
        Provider(
            "Publishing: WordPress",
            health.provider_state(wordpress),
            "posts go to the company's WordPress site" if wordpress else "not set up for this company",
        ),
        Provider(
            "Publishing: webhook",
            health.provider_state(publisher),
            "a signed POST per published item" if publisher else "not set up for this company",
        ),
        Provider("Publishing: recorded", "recorded", "always available: the publish is recorded, nothing leaves"),
    ]


def _stored_window(company_settings: dict[str, Any]) -> SendWindow:
    try:
        return SendWindow.model_validate(company_settings.get(DEFAULT_SEND_WINDOW) or {})
    except ValidationError:
        return SendWindow()


def _profile_values(company: Company) -> dict[str, Any]:
    stored = company.settings or {}
    links = _stored_links(company)
    window = _stored_window(stored)
    return {
        "name": company.name,
        "industry": company.industry or "",
        "website": company.website or "",
        "postal_address": company.postal_address or "",
        "timezone": company.timezone,
        "review_links": {platform.value: links.get(platform.value) or "" for platform in REVIEW_LINK_PLATFORMS},
        "send_window": {"start": window.start, "end": window.end, "days": window.days},
        "content_requires_approval": bool(stored.get(APPROVAL_SETTING)),
    }


def _submitted_profile(form: FormData) -> dict[str, Any]:
    def text(name: str) -> str:
        value = form.get(name)
        return value.strip() if isinstance(value, str) else ""

    return {
        "name": text("name"),
        "industry": text("industry"),
        "website": text("website"),
        "postal_address": text("postal_address"),
        "timezone": text("timezone"),
        "review_links": {p.value: text(f"review_links.{p.value}") for p in REVIEW_LINK_PLATFORMS},
        "send_window": {
            "start": text("send_window.start"),
            "end": text("send_window.end"),
            "days": [int(day) for day in form.getlist("send_window.days") if isinstance(day, str) and day.isdigit()],
        },
        "content_requires_approval": text("content_requires_approval") == "true",
    }


def _stored_links(company: Company) -> dict[str, Any]:
    links = (company.settings or {}).get(REVIEW_LINKS_SETTING)
    return links if isinstance(links, dict) else {}


def _links_patch(submitted: dict[str, str], stored: dict[str, Any]) -> dict[str, str | None]:
    """The links typed in, and ``None`` (delete) for a stored link the form emptied."""
    return {name: link or None for name, link in submitted.items() if link or name in stored}


def _company_update(values: dict[str, Any], stored_links: dict[str, Any]) -> CompanyUpdate:
    """The ``PATCH /v1/companies/current`` body the form describes; FormInvalid names every wrong input."""
    errors: dict[str, list[str]] = {}
    profile = None
    try:
        profile = ProfileSettings.model_validate(
            {
                "review_links": _links_patch(values["review_links"], stored_links),
                "send_window": values["send_window"],
                "content_requires_approval": values["content_requires_approval"],
            }
        )
    except ValidationError as exc:
        errors |= {
            name: [WINDOW_MESSAGES[name]] if name in WINDOW_MESSAGES else texts for name, texts in _errors(exc).items()
        }
    body = None
    try:
        body = CompanyUpdate.model_validate(
            {
                "name": values["name"],
                "industry": values["industry"],
                # The service keeps what is stored for a field left out; an empty website cannot be a URL.
                "website": values["website"] or None,
                "postal_address": values["postal_address"],
                "timezone": values["timezone"],
                "settings": profile.model_dump(mode="json") if profile else None,
            }
        )
    except ValidationError as exc:
        errors |= _errors(exc)
    if errors or body is None:
        raise FormInvalid(errors)
    return body


async def _company_page(
    request: Request,
    admin: User,
    session: SessionDep,
    settings: Settings,
    values: dict[str, Any] | None = None,
    errors: dict[str, list[str]] | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    company = await companies.current(session, admin)
    context = _context(
        admin,
        "",
        "Settings",
        request,
        values=values or _profile_values(company),
        errors=errors or {},
        providers=_providers(settings, company),
        time_zones=TIME_ZONES,
        platforms=[(p.value, PLATFORM_LABELS[p]) for p in REVIEW_LINK_PLATFORMS],
        weekdays=list(enumerate(WEEKDAYS)),
    )
    return render(request, "settings/company.html", context, status_code)


@router.get("")
async def company_page(request: Request, admin: Admin, session: SessionDep, settings: SettingsDep) -> HTMLResponse:
    return await _company_page(request, admin, session, settings)


@router.post("", dependencies=[CsrfChecked])
async def save_company(
    request: Request,
    admin: Admin,
    session: SessionDep,
    settings: SettingsDep,
) -> Response:
    values = _submitted_profile(await request.form())
    company = await companies.current(session, admin)
    try:
        await companies.update_current(session, admin, _company_update(values, _stored_links(company)))
    except FormInvalid as exc:
        return await _company_page(request, admin, session, settings, values, exc.errors, 422)
    except InvalidField as exc:
        return await _company_page(request, admin, session, settings, values, {exc.field: [exc.message]}, 422)
    log.info("console: user %s saved the profile of company %s", admin.id, admin.company_id)
    return redirect(request, f"{BASE}?done=saved")


# ---------------------------------------------------------------- API keys


async def _keys_page(
    request: Request,
    admin: User,
    session: SessionDep,
    settings: Settings,
    *,
    number: int = 1,
    include_revoked: bool = False,
    created: CreatedKey | None = None,
    values: dict[str, str] | None = None,
    errors: dict[str, list[str]] | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    result = await api_keys.list_keys(session, admin, _page_request(number), include_revoked=include_revoked)
    params = {"include_revoked": "true" if include_revoked else None}
    form_url = None
    if created is not None and created.key.scope == ApiKeyScope.lead_capture:
        form_url = lead_forms.form_url(settings, created.key.prefix)
    context = _context(
        admin,
        "/api-keys",
        "API keys",
        request,
        keys=result.items,
        pager=_pager(result, f"{BASE}/api-keys", params),
        include_revoked=include_revoked,
        form_url_of=lambda prefix: lead_forms.form_url(settings, prefix),
        created=created,
        form_url=form_url,
        honeypot=HONEYPOT_FIELD,
        values=values or {"scope": ApiKeyScope.lead_capture.value},
        errors=errors or {},
    )
    response = render(request, "settings/api_keys.html", context, status_code)
    if created is not None:
        _no_store(response)
    return response


@router.get("/api-keys")
async def api_keys_page(
    request: Request,
    admin: Admin,
    session: SessionDep,
    settings: SettingsDep,
    page: PageNumber = 1,
    include_revoked: bool = False,
) -> HTMLResponse:
    return await _keys_page(request, admin, session, settings, number=page, include_revoked=include_revoked)


@router.post("/api-keys", dependencies=[CsrfChecked])
async def create_api_key(
    request: Request,
    admin: Admin,
    session: SessionDep,
    settings: SettingsDep,
    name: Annotated[str, Form(max_length=1000)] = "",
    scope: Annotated[str, Form(max_length=40)] = ApiKeyScope.lead_capture.value,
    thank_you_url: Annotated[str, Form(max_length=2000)] = "",
) -> Response:
    values = {"name": name, "scope": scope, "thank_you_url": thank_you_url}
    try:
        body = ApiKeyCreate.model_validate(
            {"name": name, "scope": scope, "thank_you_url": thank_you_url.strip() or None}
        )
    except ValidationError as exc:
        return await _keys_page(request, admin, session, settings, values=values, errors=_errors(exc), status_code=422)
    created = await api_keys.create(session, admin, body)
    return await _keys_page(request, admin, session, settings, created=created, status_code=201)


@router.post("/api-keys/{key_id}/revoke", dependencies=[CsrfChecked])
async def revoke_api_key(request: Request, key_id: str, admin: Admin, session: SessionDep) -> Response:
    await api_keys.revoke(session, admin, key_id)
    return redirect(request, f"{BASE}/api-keys?done=key-revoked")


# ---------------------------------------------------------------- webhooks


def _events() -> list[tuple[str, str]]:
    return [(event.name, event.description) for event in EVENT_CATALOGUE.values()]


async def _webhooks_page(
    request: Request,
    admin: User,
    session: SessionDep,
    *,
    number: int = 1,
    created: Webhook | None = None,
    values: dict[str, Any] | None = None,
    errors: dict[str, list[str]] | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    result = await webhooks.list_webhooks(session, admin, WebhookFilter(), _page_request(number))
    context = _context(
        admin,
        "/webhooks",
        "Webhooks",
        request,
        webhooks=result.items,
        pager=_pager(result, f"{BASE}/webhooks", {}),
        created=created,
        events=_events(),
        values=values or {"events": []},
        errors=errors or {},
    )
    response = render(request, "settings/webhooks.html", context, status_code)
    if created is not None:
        _no_store(response)
    return response


@router.get("/webhooks")
async def webhooks_page(request: Request, admin: Admin, session: SessionDep, page: PageNumber = 1) -> HTMLResponse:
    return await _webhooks_page(request, admin, session, number=page)


@router.post("/webhooks", dependencies=[CsrfChecked])
async def create_webhook(
    request: Request,
    admin: Admin,
    session: SessionDep,
    settings: SettingsDep,
    url: Annotated[str, Form(max_length=2000)] = "",
    events: Annotated[list[str], Form()] = [],  # noqa: B006 (FastAPI copies defaults)
    secret: Annotated[str, Form(max_length=1000)] = "",
    description: Annotated[str, Form(max_length=2000)] = "",
) -> Response:
    values = {"url": url, "events": events, "description": description}
    try:
        body = WebhookCreate.model_validate(
            {"url": url, "events": events, "secret": secret or None, "description": description.strip() or None}
        )
        created = await webhooks.create(session, settings, admin, body)
    except ValidationError as exc:
        return await _webhooks_page(request, admin, session, values=values, errors=_errors(exc), status_code=422)
    except InvalidField as exc:
        errors = {exc.field: [exc.message]}
        return await _webhooks_page(request, admin, session, values=values, errors=errors, status_code=422)
    return await _webhooks_page(request, admin, session, created=created, status_code=201)


async def _webhook_page(
    request: Request,
    admin: User,
    session: SessionDep,
    webhook_id: str,
    *,
    number: int = 1,
    status: DeliveryStatus | None = None,
    secret: str | None = None,
    values: dict[str, Any] | None = None,
    errors: dict[str, list[str]] | None = None,
    problem: str | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    webhook = await webhooks.get(session, admin, webhook_id)
    deliveries = await webhooks.list_deliveries(session, admin, webhook.id, status, _page_request(number))
    path = f"{BASE}/webhooks/{webhook.id}"
    context = _context(
        admin,
        "/webhooks",
        f"Webhook {webhook.url}",
        request,
        webhook=webhook,
        deliveries=deliveries.items,
        pager=_pager(deliveries, path, {"status": status.value if status else None}),
        status=status.value if status else "",
        statuses=[s.value for s in DeliveryStatus],
        secret=secret,
        problem=problem,
        events=_events(),
        values=values
        or {
            "url": webhook.url,
            "events": list(webhook.events),
            "description": webhook.description or "",
            "active": webhook.active,
        },
        errors=errors or {},
    )
    response = render(request, "settings/webhook.html", context, status_code)
    if secret is not None:
        _no_store(response)
    return response


@router.get("/webhooks/{webhook_id}")
async def webhook_page(
    request: Request,
    webhook_id: str,
    admin: Admin,
    session: SessionDep,
    page: PageNumber = 1,
    status: DeliveryStatus | None = None,
) -> HTMLResponse:
    return await _webhook_page(request, admin, session, webhook_id, number=page, status=status)


@router.post("/webhooks/{webhook_id}", dependencies=[CsrfChecked])
async def update_webhook(
    request: Request,
    webhook_id: str,
    admin: Admin,
    session: SessionDep,
    settings: SettingsDep,
    url: Annotated[str, Form(max_length=2000)] = "",
    events: Annotated[list[str], Form()] = [],  # noqa: B006 (FastAPI copies defaults)
    description: Annotated[str, Form(max_length=2000)] = "",
    active: Annotated[bool, Form()] = False,
) -> Response:
    values = {"url": url, "events": events, "description": description, "active": active}
    try:
        body = WebhookUpdate.model_validate(
            {"url": url, "events": events, "description": description.strip() or None, "active": active}
        )
        await webhooks.update(session, settings, admin, webhook_id, body)
    except ValidationError as exc:
        return await _webhook_page(
            request, admin, session, webhook_id, values=values, errors=_errors(exc), status_code=422
        )
    except InvalidField as exc:
        errors = {exc.field: [exc.message]}
        return await _webhook_page(request, admin, session, webhook_id, values=values, errors=errors, status_code=422)
    return redirect(request, f"{BASE}/webhooks/{webhook_id}?done=webhook-saved")


@router.post("/webhooks/{webhook_id}/rotate-secret", dependencies=[CsrfChecked])
async def rotate_webhook_secret(request: Request, webhook_id: str, admin: Admin, session: SessionDep) -> Response:
    webhook = await webhooks.rotate_secret(session, admin, webhook_id)
    return await _webhook_page(request, admin, session, webhook.id, secret=webhook.secret)


@router.post("/webhooks/{webhook_id}/test", dependencies=[CsrfChecked])
async def send_test_event(
    request: Request, webhook_id: str, admin: Admin, session: SessionDep, settings: SettingsDep, temporal: TemporalDep
) -> Response:
    try:
        await webhooks.send_test(session, temporal, settings, admin, webhook_id)
    except (Conflict, ServiceUnavailable) as exc:
        return await _webhook_page(
            request, admin, session, webhook_id, problem=exc.message, status_code=exc.status_code
        )
    return redirect(request, f"{BASE}/webhooks/{webhook_id}?done=test-sent")


@router.post("/webhooks/{webhook_id}/delete", dependencies=[CsrfChecked])
async def delete_webhook(request: Request, webhook_id: str, admin: Admin, session: SessionDep) -> Response:
    await webhooks.delete(session, admin, webhook_id)
    return redirect(request, f"{BASE}/webhooks?done=webhook-deleted")


# ---------------------------------------------------------------- users


async def _users_page(
    request: Request,
    admin: User,
    session: SessionDep,
    *,
    number: int = 1,
    values: dict[str, str] | None = None,
    errors: dict[str, list[str]] | None = None,
    problem: str | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    result = await users.list_users(session, admin, UserFilter(), _page_request(number))
    context = _context(
        admin,
        "/users",
        "Users",
        request,
        people=result.items,
        pager=_pager(result, f"{BASE}/users", {}),
        roles=ROLES,
        role_options=[(role, role) for role in ROLES],
        password_min_length=PASSWORD_MIN_LENGTH,
        values=values or {"role": Role.user.value},
        errors=errors or {},
        problem=problem,
    )
    return render(request, "settings/users.html", context, status_code)


@router.get("/users")
async def users_page(request: Request, admin: Admin, session: SessionDep, page: PageNumber = 1) -> HTMLResponse:
    return await _users_page(request, admin, session, number=page)


@router.post("/users", dependencies=[CsrfChecked])
async def create_user(
    request: Request,
    admin: Admin,
    session: SessionDep,
    email: Annotated[str, Form(max_length=1000)] = "",
    full_name: Annotated[str, Form(max_length=1000)] = "",
    role: Annotated[str, Form(max_length=40)] = Role.user.value,
    password: Annotated[str, Form(max_length=1000)] = "",
) -> Response:
    values = {"email": email, "full_name": full_name, "role": role}  # never the password
    try:
        body = UserCreate.model_validate(
            {"email": email.strip(), "full_name": full_name.strip() or None, "role": role, "password": password}
        )
        await users.create(session, admin, body)
    except ValidationError as exc:
        return await _users_page(request, admin, session, values=values, errors=_errors(exc), status_code=422)
    except Conflict as exc:
        return await _users_page(
            request, admin, session, values=values, errors={"email": [exc.message]}, status_code=409
        )
    return redirect(request, f"{BASE}/users?done=user-added")


@router.post("/users/{user_id}", dependencies=[CsrfChecked])
async def update_user(
    request: Request,
    user_id: str,
    admin: Admin,
    session: SessionDep,
    role: Annotated[str, Form(max_length=40)] = "",
    is_active: Annotated[str, Form(max_length=10)] = "",
) -> Response:
    """One change per form: a new role, or deactivate / reactivate."""
    try:
        body = UserUpdate.model_validate({"role": role or None, "is_active": is_active or None})
        await users.update(session, admin, user_id, body)
    except ValidationError as exc:
        problem = "; ".join(f"{field}: {', '.join(messages)}" for field, messages in _errors(exc).items())
        return await _users_page(request, admin, session, problem=problem, status_code=422)
    except (Conflict, InvalidField) as exc:
        return await _users_page(request, admin, session, problem=exc.message, status_code=exc.status_code)
    return redirect(request, f"{BASE}/users?done=user-saved")


@router.post("/users/{user_id}/delete", dependencies=[CsrfChecked])
async def delete_user(request: Request, user_id: str, admin: Admin, session: SessionDep) -> Response:
    try:
        await users.delete(session, admin, user_id)
    except Conflict as exc:
        return await _users_page(request, admin, session, problem=exc.message, status_code=exc.status_code)
    return redirect(request, f"{BASE}/users?done=user-deleted")


# ---------------------------------------------------------------- audit log


async def _actor_names(session: SessionDep, admin: User, actor_ids: set[str]) -> dict[str, str]:
    """Who each user id is; a deleted user (or an API key, or the command line) stays an id."""
    names = {}
    for actor_id in actor_ids:
        try:
            person = await users.get(session, admin, actor_id)
        except NotFound:
            continue
        names[actor_id] = person.name or person.email
    return names


@router.get("/audit")
async def audit_page(
    request: Request,
    admin: Admin,
    session: SessionDep,
    page: PageNumber = 1,
    action: Annotated[str, Query(max_length=60)] = "",
) -> HTMLResponse:
    filters = AuditFilter(action=action.strip() or None)
    result = await audit.list_entries(session, admin, filters, _page_request(page))
    actors = {entry.actor_id for entry in result.items if entry.actor_id and entry.actor_id.startswith("usr_")}
    context = _context(
        admin,
        "/audit",
        "Audit log",
        request,
        entries=result.items,
        names=await _actor_names(session, admin, actors),
        pager=_pager(result, f"{BASE}/audit", {"action": filters.action}),
        action=filters.action or "",
    )
    return render(request, "settings/audit.html", context)
