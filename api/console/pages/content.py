"""Content: the list and the approval queue, a generation form per type, a draft's page (edit, approve, publish,
settle an unknown outcome) and the content schedules. Every action calls the service the API calls."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, Response
from pydantic import ValidationError
from starlette.datastructures import FormData
from temporalio.client import Client

from api.console.forms import errors_by_input, field_errors
from api.console.navigation import page
from api.console.session import ConsoleUser, CsrfChecked
from api.console.templating import redirect, render
from api.deps import OptionalTemporal, SessionDep, SettingsDep, TemporalDep
from core.config import Settings
from core.temporal import ui_link
from db.models import Content, User
from schemas.common import MAX_PAGE_NUMBER, Page, PageRequest, SortDirection
from schemas.content import (
    EDITABLE,
    ENDPOINTS_TYPE_WORDS,
    BlogPostRequest,
    ContentFilter,
    ContentStatus,
    ContentType,
    ContentUpdate,
    NewsletterRequest,
    ProductDescriptionRequest,
    SocialMediaRequest,
    SocialNetwork,
    Tone,
)
from schemas.content_schedules import ContentScheduleCreate, ContentScheduleUpdate, Frequency, Weekday
from schemas.content_workflows import PUBLISHER_LABELS
from schemas.publishing import PublicationStatus, ResolveRequest, publish_workflow_id
from services import companies, content_schedules
from services import content as content_service
from services import publishing as publishing_service
from services.errors import Conflict, InvalidField
from services.users import require_role
from workflows.content import generate_workflow_id

log = logging.getLogger(__name__)

router = APIRouter()

BASE = "/app/content"
PAGE_SIZE = 20
TYPE_LABELS = {
    ContentType.blog: "Blog post",
    ContentType.social: "Social post",
    ContentType.email: "Email newsletter",
    ContentType.product: "Product description",
}
NETWORK_LABELS = {
    SocialNetwork.twitter: "X (Twitter)",
    SocialNetwork.linkedin: "LinkedIn",
    SocialNetwork.facebook: "Facebook",
    SocialNetwork.instagram: "Instagram",
}
IN_FLIGHT = frozenset({PublicationStatus.pending, PublicationStatus.sending})
"""A publish the worker is carrying out right now: the page polls until it settles."""
WRITING = frozenset({ContentStatus.generating, ContentStatus.publishing})
DONE = {
    "generated": "The draft is written.",
    "saved": "Your changes are saved.",
    "approved": "Approved: it can be published.",
    "published": "Published.",
    "publishing": "Publishing: the status below updates when the platform answers.",
    "scheduled": "The publish is scheduled.",
    "cancelled": "The scheduled publish is cancelled: nothing will be published.",
    "resolved": "The publication is settled.",
    "retrying": "Publishing again.",
    "schedule_created": "The schedule is created.",
    "schedule_paused": "The schedule is paused.",
    "schedule_resumed": "The schedule is running again.",
    "schedule_deleted": "The schedule is deleted; what it wrote stays.",
}
"""Only these fixed messages are shown after an action (``?done=``): nothing typed in a URL is echoed."""


@dataclass(frozen=True)
class FormField:
    name: str
    label: str
    kind: str = "text"
    """text, number, textarea, tone or network."""
    hint: str | None = None
    required: bool = False


_LIST_HINT = "separate them with commas"
GenerationRequest = BlogPostRequest | SocialMediaRequest | NewsletterRequest | ProductDescriptionRequest
GENERATORS: dict[ContentType, tuple[type[GenerationRequest], tuple[FormField, ...]]] = {
    ContentType.blog: (
        BlogPostRequest,
        (
            FormField("topic", "Topic", required=True),
            FormField("word_count", "Words", "number"),
            FormField("keywords", "Keywords", hint=_LIST_HINT),
            FormField("call_to_action", "Call to action", "textarea"),
            FormField("tone", "Tone", "tone"),
        ),
    ),
    ContentType.social: (
        SocialMediaRequest,
        (
            FormField("topic", "Topic", required=True),
            FormField("platform", "Network", "network", required=True),
            FormField("hashtags", "Hashtags", hint="for example #software #business"),
            FormField("call_to_action", "Call to action", "textarea"),
            FormField("tone", "Tone", "tone"),
        ),
    ),
    ContentType.email: (
        NewsletterRequest,
        (
            FormField("topic", "Topic", required=True),
            FormField("newsletter_type", "Kind of newsletter", hint="for example monthly update"),
            FormField("content_sections", "Sections", hint=_LIST_HINT),
            FormField("primary_goal", "Primary goal"),
            FormField("call_to_action", "Call to action", "textarea"),
            FormField("word_count", "Words", "number"),
            FormField("tone", "Tone", "tone"),
        ),
    ),
    ContentType.product: (
        ProductDescriptionRequest,
        (
            FormField("product_name", "Product name", required=True),
            FormField("product_category", "Category"),
            FormField("key_features", "Key features", "textarea"),
            FormField("primary_benefits", "Primary benefits", "textarea"),
            FormField("technical_specifications", "Technical specifications", "textarea"),
            FormField("price_point", "Price point"),
            FormField("unique_selling_proposition", "What sets it apart", "textarea"),
            FormField("platform", "Shown on", hint="website, marketplace..."),
            FormField("keywords", "Keywords", hint=_LIST_HINT),
            FormField("tone", "Tone", "tone"),
        ),
    ),
}


def _text(form: FormData, name: str) -> str:
    value = form.get(name)
    return value.strip() if isinstance(value, str) else ""


def _filled(form: FormData, names: list[str]) -> dict[str, str]:
    """What the person typed, without the empty inputs (so the model's defaults apply to those)."""
    return {name: text for name in names if (text := _text(form, name))}


def _shown_at(zone: str) -> Callable[[datetime | None, str | None], str]:
    """A formatter for the page: times in the company's (or the schedule's) zone, as a person reads them."""
    tz = ZoneInfo(zone)

    def shown(moment: datetime | None, other_zone: str | None = None) -> str:
        if moment is None:
            return "—"
        local = moment.astimezone(ZoneInfo(other_zone) if other_zone else tz)
        return local.strftime("%Y-%m-%d %H:%M ") + (other_zone or zone)

    return shown


def _content_url(content_id: str, done: str | None = None) -> str:
    return f"{BASE}/{content_id}" + (f"?done={done}" if done else "")


# ---------------------------------------------------------------- list and approval queue


@router.get("/content")
async def content_list(
    request: Request,
    user: ConsoleUser,
    session: SessionDep,
    type: str = "",
    status: str = "",
    view: str = "all",
    page_number: Annotated[int, Query(alias="page", ge=1, le=MAX_PAGE_NUMBER)] = 1,
) -> HTMLResponse:
    queue = view == "queue"
    if queue:
        require_role(user, *content_service.APPROVERS)
    values = {"type": type, "status": ContentStatus.draft.value if queue else status}
    try:
        filters = ContentFilter.model_validate({name: value or None for name, value in values.items()})
    except ValidationError as exc:
        return render(request, "content/list.html", _list_context(user, queue, values, None, field_errors(exc)), 422)
    # The queue shows the oldest draft first: it has waited longest.
    order = SortDirection.asc if queue else SortDirection.desc
    found = await content_service.list_content(
        session, user, filters, PageRequest(page=page_number, size=PAGE_SIZE, sort_dir=order)
    )
    return render(request, "content/list.html", _list_context(user, queue, values, found, {}))


def _list_context(
    user: User, queue: bool, values: dict[str, str], found: Page[Content] | None, errors: dict[str, list[str]]
) -> dict[str, Any]:
    pages = max(1, -(-found.total // PAGE_SIZE)) if found else 1
    return page(
        user,
        "/content",
        "Approval queue" if queue else "Content",
        queue=queue,
        values=values,
        found=found,
        pages=pages,
        errors=errors,
        type_labels=TYPE_LABELS,
        statuses=[(status.value, status.value.replace("_", " ")) for status in ContentStatus],
        may_approve=user.role in content_service.APPROVERS,
    )


# ---------------------------------------------------------------- generation


def _generate_context(
    user: User, kind: ContentType, values: dict[str, str], errors: dict[str, list[str]]
) -> dict[str, Any]:
    model, fields = GENERATORS[kind]
    defaults = {
        name: info.default
        for name, info in model.model_fields.items()
        if isinstance(info.default, str | int) and not isinstance(info.default, bool)
    }
    return page(
        user,
        "/content",
        f"Write a {TYPE_LABELS[kind].lower()}",
        kind=kind,
        fields=fields,
        values={**{k: str(v) for k, v in defaults.items()}, **values},
        errors=errors,
        type_labels=TYPE_LABELS,
        tone_options=[(tone.value, tone.value.capitalize()) for tone in Tone],
        may_approve=user.role in content_service.APPROVERS,
        networks=NETWORK_LABELS,
    )


def _kind(word: str) -> ContentType:
    try:
        return ContentType(word)
    except ValueError as exc:
        raise InvalidField("type", f"unknown content type {word!r}; choose blog, social, email or product") from exc


@router.get("/content/new")
async def generate_form(request: Request, user: ConsoleUser, type: str = ContentType.blog.value) -> HTMLResponse:
    return render(request, "content/generate.html", _generate_context(user, _kind(type), {}, {}))


@router.post("/content/new", dependencies=[CsrfChecked])
async def generate(
    request: Request, user: ConsoleUser, session: SessionDep, temporal: TemporalDep, settings: SettingsDep
) -> Response:
    """Write a piece with the same service as ``POST /v1/content/generate``; wait as it does, then show it."""
    form = await request.form()
    kind = _kind(_text(form, "type"))
    model, fields = GENERATORS[kind]
    values = _filled(form, [field.name for field in fields])
    try:
        brief = model.model_validate(values).to_brief()
    except ValidationError as exc:
        context = _generate_context(user, kind, values, field_errors(exc))
        return render(request, "content/generate.html", context, 422)
    generation = await content_service.generate_and_wait(session, temporal, settings, user, brief)
    # Written within the wait: the draft; else its page shows it being written and polls until it is.
    return redirect(request, _content_url(generation.content.id, "generated" if generation.finished else None))


# ---------------------------------------------------------------- schedules (before /content/{content_id})


def _schedule_form_values(form: FormData | None) -> dict[str, str]:
    if form is None:
        return {"content_type": "blog_post", "frequency": "weekly", "day_of_week": "Monday", "time_of_day": "09:00"}
    names = ["content_type", "frequency", "day_of_week", "time_of_day", "timezone", "topics", "word_count"]
    return _filled(form, [*names, "day_of_month", "platform", "publish_to"]) | {
        "require_approval": "on" if _text(form, "require_approval") else "",
        "active": "on" if _text(form, "active") else "",
    }


def _schedule_body(values: dict[str, str]) -> dict[str, Any]:
    parameters = {name: values[name] for name in ("word_count", "day_of_month", "platform") if values.get(name)}
    topics = [line.strip() for line in values.get("topics", "").splitlines() if line.strip()]
    body: dict[str, Any] = {
        name: values[name]
        for name in ("content_type", "frequency", "day_of_week", "time_of_day", "timezone", "publish_to")
        if values.get(name)
    }
    return body | {
        "topics": topics,
        "parameters": parameters,
        "require_approval": bool(values.get("require_approval")),
        "active": bool(values.get("active")),
    }


def _schedule_errors(exc: ValidationError) -> dict[str, list[str]]:
    """``parameters.word_count`` and ``topics.2`` are shown next to the inputs that hold them."""
    errors: dict[str, list[str]] = {}
    for field, messages in field_errors(exc).items():
        parts = field.split(".")
        name = parts[1] if parts[0] == "parameters" and len(parts) > 1 else parts[0]
        errors.setdefault(name, []).extend(messages)
    return errors


async def _schedules_page(
    request: Request,
    user: User,
    session: SessionDep,
    temporal: Client | None,
    values: dict[str, str],
    errors: dict[str, list[str]],
    status_code: int = 200,
) -> HTMLResponse:
    views = await content_schedules.list_schedules(session, temporal, user)
    company = await companies.current(session, user)
    context = page(
        user,
        "/content",
        "Content schedules",
        views=views,
        values=values,
        errors=errors,
        may_edit=user.role in content_schedules.EDITORS,
        shown_at=_shown_at(company.timezone),
        company_zone=company.timezone,
        type_labels=TYPE_LABELS,
        type_words={ENDPOINTS_TYPE_WORDS[kind]: label for kind, label in TYPE_LABELS.items()},
        frequency_options=[(frequency.value, frequency.value.capitalize()) for frequency in Frequency],
        weekday_options=[(day.value, day.value) for day in Weekday],
        may_approve=user.role in content_service.APPROVERS,
        networks=NETWORK_LABELS,
        publishers=PUBLISHER_LABELS,
        flash=DONE.get(request.query_params.get("done", "")),
    )
    return render(request, "content/schedules.html", context, status_code)


@router.get("/content/schedules")
async def schedules(request: Request, user: ConsoleUser, session: SessionDep, temporal: OptionalTemporal) -> Response:
    return await _schedules_page(request, user, session, temporal, _schedule_form_values(None), {})


@router.post("/content/schedules", dependencies=[CsrfChecked])
async def create_schedule(
    request: Request, user: ConsoleUser, session: SessionDep, temporal: TemporalDep, settings: SettingsDep
) -> Response:
    """Create a schedule with the same service as ``POST /api/content-generation/schedule``."""
    values = _schedule_form_values(await request.form())
    try:
        body = ContentScheduleCreate.model_validate(_schedule_body(values))
    except ValidationError as exc:
        return await _schedules_page(request, user, session, temporal, values, _schedule_errors(exc), 422)
    await content_schedules.save(session, temporal, settings, user, body)
    return redirect(request, f"{BASE}/schedules?done=schedule_created")


async def _set_active(
    request: Request,
    user: User,
    session: SessionDep,
    temporal: Client,
    settings: Settings,
    schedule_id: str,
    active: bool,
) -> Response:
    body = ContentScheduleUpdate(active=active)
    await content_schedules.update(session, temporal, settings, user, schedule_id, body)
    return redirect(request, f"{BASE}/schedules?done={'schedule_resumed' if active else 'schedule_paused'}")


@router.post("/content/schedules/{schedule_id}/pause", dependencies=[CsrfChecked])
async def pause_schedule(
    request: Request,
    schedule_id: str,
    user: ConsoleUser,
    session: SessionDep,
    temporal: TemporalDep,
    settings: SettingsDep,
) -> Response:
    return await _set_active(request, user, session, temporal, settings, schedule_id, False)


@router.post("/content/schedules/{schedule_id}/resume", dependencies=[CsrfChecked])
async def resume_schedule(
    request: Request,
    schedule_id: str,
    user: ConsoleUser,
    session: SessionDep,
    temporal: TemporalDep,
    settings: SettingsDep,
) -> Response:
    return await _set_active(request, user, session, temporal, settings, schedule_id, True)


@router.post("/content/schedules/{schedule_id}/delete", dependencies=[CsrfChecked])
async def delete_schedule(
    request: Request, schedule_id: str, user: ConsoleUser, session: SessionDep, temporal: TemporalDep
) -> Response:
    await content_schedules.delete(session, temporal, user, schedule_id)
    return redirect(request, f"{BASE}/schedules?done=schedule_deleted")


# ---------------------------------------------------------------- one item


async def _detail_page(
    request: Request,
    user: User,
    session: SessionDep,
    settings: SettingsDep,
    content: Content,
    *,
    values: dict[str, str] | None = None,
    errors: dict[str, list[str]] | None = None,
    problem: str | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    publications = await publishing_service.publications(session, user, content.id, PageRequest(size=100))
    company = await companies.current(session, user)
    default_platform = await publishing_service.default_platform(session, content.company_id)
    in_flight = content.status in WRITING or any(p.status in IN_FLIGHT for p in publications.items)
    context = page(
        user,
        "/content",
        content.title or f"{TYPE_LABELS[ContentType(content.type)]} {content.id}",
        content=content,
        type_label=TYPE_LABELS[ContentType(content.type)],
        metrics=await content_service.metrics_of(session, content) if content.body else None,
        publications=publications.items,
        publishers=PUBLISHER_LABELS,
        default_platform=PUBLISHER_LABELS[default_platform],
        editable=content.status in EDITABLE,
        may_approve=user.role in content_service.APPROVERS,
        in_flight=in_flight,
        generation_link=ui_link(settings, generate_workflow_id(content.id)),
        publish_link=lambda publication_id: ui_link(settings, publish_workflow_id(publication_id)),
        shown_at=_shown_at(company.timezone),
        company_zone=company.timezone,
        values=values or {},
        errors=errors or {},
        problem=problem,
        flash=DONE.get(request.query_params.get("done", "")),
    )
    return render(request, "content/detail.html", context, status_code)


@router.get("/content/{content_id}")
async def content_page(
    request: Request, content_id: str, user: ConsoleUser, session: SessionDep, settings: SettingsDep
) -> Response:
    content = await content_service.get(session, user, content_id)
    return await _detail_page(request, user, session, settings, content)


@router.get("/content/{content_id}/progress")
async def content_progress(
    request: Request, content_id: str, user: ConsoleUser, session: SessionDep, settings: SettingsDep
) -> Response:
    """The polled fragment: still going, or (once settled) tell the browser to load the page again."""
    content = await content_service.get(session, user, content_id)
    publications = await publishing_service.publications(session, user, content.id, PageRequest(size=100))
    still = content.status in WRITING or any(p.status in IN_FLIGHT for p in publications.items)
    if still and request.headers.get("hx-request") == "true":
        return render(request, "content/_progress.html", {"content": content})
    return redirect(request, _content_url(content.id))


@router.post("/content/{content_id}/edit", dependencies=[CsrfChecked])
async def edit_content(
    request: Request, content_id: str, user: ConsoleUser, session: SessionDep, settings: SettingsDep
) -> Response:
    """The same update as ``PATCH /v1/content/{id}``: edited approved text goes back to draft if the service says."""
    content = await content_service.get(session, user, content_id)
    form = await request.form()
    values = {"title": _text(form, "title"), "body": _text(form, "body"), "tags": _text(form, "tags")}
    sent: dict[str, Any] = {
        "body": values["body"],
        "tags": [tag.strip() for tag in values["tags"].split(",") if tag.strip()],
    }
    if values["title"] or content.title is not None:  # an untitled piece (a social post) may stay untitled
        sent["title"] = values["title"]
    try:
        await content_service.update(session, user, content.id, ContentUpdate.model_validate(sent))
    except ValidationError as exc:
        return await _detail_page(
            request, user, session, settings, content, values=values, errors=errors_by_input(exc), status_code=422
        )
    except (Conflict, InvalidField) as exc:
        return await _refused(request, user, session, settings, content, exc, values)
    return redirect(request, _content_url(content.id, "saved"))


async def _refused(
    request: Request,
    user: User,
    session: SessionDep,
    settings: SettingsDep,
    content: Content,
    exc: Conflict | InvalidField,
    values: dict[str, str] | None = None,
) -> HTMLResponse:
    """The service said no: the page again, saying why (409, or 422 naming the field)."""
    await session.refresh(content)
    if isinstance(exc, InvalidField):
        errors = {exc.field: [exc.message]}
        return await _detail_page(
            request, user, session, settings, content, values=values, errors=errors, status_code=422
        )
    return await _detail_page(
        request, user, session, settings, content, values=values, problem=exc.message, status_code=409
    )


@router.post("/content/{content_id}/approve", dependencies=[CsrfChecked])
async def approve_content(
    request: Request, content_id: str, user: ConsoleUser, session: SessionDep, settings: SettingsDep
) -> Response:
    """Approve a draft (managers and admins; the service refuses anyone else)."""
    content = await content_service.get(session, user, content_id)
    try:
        await content_service.approve(session, user, content)
    except Conflict as exc:
        return await _refused(request, user, session, settings, content, exc)
    return redirect(request, _content_url(content.id, "approved"))


@router.post("/content/{content_id}/publish", dependencies=[CsrfChecked])
async def publish_content(
    request: Request,
    content_id: str,
    user: ConsoleUser,
    session: SessionDep,
    temporal: TemporalDep,
    settings: SettingsDep,
) -> Response:
    """Publish now (waiting as ``POST /v1/content/{id}/publish`` does) or at a time in the company's zone."""
    content = await content_service.get(session, user, content_id)
    form = await request.form()
    values = {name: _text(form, name) for name in ("platform", "when", "published_at")}
    schedule = values["when"] == "later"
    try:
        platform = publishing_service.parse_platform(values["platform"] or None)
        publish_at = await _moment(session, user, values["published_at"]) if schedule else None
        started = await publishing_service.publish(
            session, temporal, settings, user, content.id, platform, schedule=schedule, publish_at=publish_at
        )
    except (Conflict, InvalidField) as exc:
        return await _refused(request, user, session, settings, content, exc, values)
    if schedule:
        return redirect(request, _content_url(content.id, "scheduled"))
    started = await publishing_service.publish_and_wait(session, temporal, settings, started)
    return redirect(request, _content_url(content.id, "published" if started.finished else "publishing"))


async def _moment(session: SessionDep, user: User, text: str) -> datetime | None:
    """A ``datetime-local`` value, read in the company's time zone (the page says which)."""
    if not text:
        return None  # the service names what is missing
    try:
        local = datetime.fromisoformat(text)
    except ValueError as exc:
        raise InvalidField("published_at", "give a date and a time, for example 2030-01-31T09:00") from exc
    if local.tzinfo is not None:
        return local
    company = await companies.current(session, user)
    return local.replace(tzinfo=ZoneInfo(company.timezone))


@router.post("/content/{content_id}/publish/cancel", dependencies=[CsrfChecked])
async def cancel_publish(
    request: Request,
    content_id: str,
    user: ConsoleUser,
    session: SessionDep,
    temporal: OptionalTemporal,
    settings: SettingsDep,
) -> Response:
    content = await content_service.get(session, user, content_id)
    form = await request.form()
    try:
        platform = publishing_service.parse_platform(_text(form, "platform") or None)
        await publishing_service.cancel(session, temporal, user, content.id, platform)
    except (Conflict, InvalidField) as exc:
        return await _refused(request, user, session, settings, content, exc)
    return redirect(request, _content_url(content.id, "cancelled"))


@router.post("/content/{content_id}/publications/{publication_id}/resolve", dependencies=[CsrfChecked])
async def resolve_publication(
    request: Request,
    content_id: str,
    publication_id: str,
    user: ConsoleUser,
    session: SessionDep,
    temporal: OptionalTemporal,
    settings: SettingsDep,
) -> Response:
    """Settle an unknown outcome as ``POST /v1/content/{id}/publications/{id}/resolve`` does: confirm or retry."""
    content = await content_service.get(session, user, content_id)
    form = await request.form()
    values = {"action": _text(form, "action"), f"url-{publication_id}": _text(form, "url")}
    try:
        body = ResolveRequest.model_validate({"action": values["action"], "url": _text(form, "url") or None})
    except ValidationError as exc:
        errors = {f"{name}-{publication_id}": messages for name, messages in errors_by_input(exc).items()}
        return await _detail_page(
            request, user, session, settings, content, values=values, errors=errors, status_code=422
        )
    try:
        started = await publishing_service.resolve(session, temporal, settings, user, content.id, publication_id, body)
    except Conflict as exc:
        return await _refused(request, user, session, settings, content, exc)
    log.info("console: %s resolved publication %s of %s (%s)", user.id, publication_id, content.id, body.action)
    return redirect(request, _content_url(content.id, "resolved" if started.finished else "retrying"))
