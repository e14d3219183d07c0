"""Leads: the searchable list, adding one, CSV import (with progress) and export, and each lead's page.

Every change goes through the services the API uses (``services.leads``, ``services.interactions``,
``services.lead_import``), so a lead added here starts its follow-up and a reply logged here stops it.
"""

from __future__ import annotations

import asyncio
import io
import logging
from collections.abc import Coroutine
from datetime import UTC, datetime
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, Response, StreamingResponse
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException

from api.console.forms import errors_by_input
from api.console.navigation import page
from api.console.session import ConsoleUser, CsrfChecked
from api.console.templating import apply_session, redirect, render
from api.deps import SessionDep, SettingsDep, TemporalDep
from core.config import Settings
from db.models import Lead, User
from schemas.common import Page, PageRequest
from schemas.enums import Role
from schemas.leads import (
    MAX_CONTENT,
    Direction,
    InteractionCreate,
    InteractionType,
    LeadCreate,
    LeadFilter,
    LeadSource,
    LeadStatus,
    LeadUpdate,
)
from services import interactions, lead_import, leads
from services.errors import InvalidField
from services.users import require_role

log = logging.getLogger(__name__)

router = APIRouter()

LEADS_PATH = "/app/leads"
PER_PAGE_CHOICES = (10, 20, 50, 100)
# The sort menu offers exactly what the service sorts by, in these words.
SORT_CHOICES = {
    name: {"created_at": "Created", "updated_at": "Updated"}.get(name, name.capitalize()) for name in leads.SORTABLE
}
# Fixed messages chosen by key: a notice in the URL never echoes text someone else wrote into the page.
NOTICES = {
    "created": "Lead added; its matching follow-up sequences have started.",
    "duplicate": "A lead with this email address already exists; what you entered was merged into it.",
    "reply": "Reply logged; the lead's sequences were told to stop.",
    "converted": "Marked converted; its sequences were told to stop.",
    "lost": "Marked lost; its sequences were told to stop.",
    "erased": "The lead and its history were erased.",
}
IMPORTERS = (Role.admin, Role.manager)
"""Who may import and export (as ``bas leads import`` and ``GET /v1/leads/export`` allow)."""

MAX_IMPORT_BYTES = 5 * 1024 * 1024


def _is_fragment(request: Request) -> bool:
    # A history restore asks for the URL again after the cache missed: it needs the whole page.
    return request.headers.get("hx-request") == "true" and request.headers.get("hx-history-restore-request") != "true"


def _notice(notice: str | None) -> str | None:
    return NOTICES.get(notice or "")


# ---------------------------------------------------------------- the list


# Left out of the list's links: the URL stays short and means the same.
_LINK_DEFAULTS = {"page": "1", "per_page": "20"}


def _page_numbers(current: int, last: int) -> list[int | None]:
    """1 … 4 5 [6] 7 8 … 20: the first, the last and two either side of the current page; None is a gap."""
    shown = sorted({1, last, *range(max(1, current - 2), min(last, current + 2) + 1)})
    numbers: list[int | None] = []
    for number in shown:
        if numbers and number - (numbers[-1] or 0) > 1:
            numbers.append(None)
        numbers.append(number)
    return numbers


@router.get("/leads")
async def list_page(request: Request, user: ConsoleUser, session: SessionDep) -> HTMLResponse:
    """The lead table; an htmx request (the filter form, the pager) gets only the table."""
    query = request.query_params
    values = {name: query.get(name, "").strip() for name in ("q", "status", "source", "tags", "sort_by", "sort_dir")}
    values["per_page"] = query.get("per_page", "20")
    values["page"] = query.get("page", "1")
    errors: dict[str, list[str]] = {}
    found: Page[Lead] | None = None
    paging = PageRequest()
    try:
        filters = LeadFilter.model_validate(
            {
                "status": values["status"] or None,
                "source": values["source"] or None,
                "tags": [values["tags"]] if values["tags"] else [],
                "q": values["q"],
            }
        )
        asked = PageRequest.model_validate(
            {
                "page": values["page"] or 1,
                "size": values["per_page"] or 20,
                "sort_by": values["sort_by"] or None,
                "sort_dir": values["sort_dir"] or "desc",
            }
        )
        found, paging = await leads.list_leads(session, user, filters, asked), asked
    except ValidationError as exc:
        errors = errors_by_input(exc)
    except InvalidField as exc:
        errors = {exc.field: [exc.message]}
    # The form calls the page size per_page, as GET /v1/leads does.
    errors = {("per_page" if name == "size" else name): messages for name, messages in errors.items()}
    last_page = max(1, -(-found.total // paging.size)) if found else 1

    def link(**changes: Any) -> str:
        params = {**values, **{name: str(value) for name, value in changes.items()}}
        kept = {name: value for name, value in params.items() if value and _LINK_DEFAULTS.get(name) != value}
        return f"{LEADS_PATH}?{urlencode(kept)}" if kept else LEADS_PATH

    context = page(
        user,
        "/leads",
        "Leads",
        found=found,
        paging=paging,
        values=values,
        errors=errors,
        link=link,
        last_page=last_page,
        page_numbers=_page_numbers(paging.page, last_page),
        statuses=list(LeadStatus),
        sources=list(LeadSource),
        sort_choices=SORT_CHOICES,
        per_page_choices=PER_PAGE_CHOICES,
        may_import=user.role in IMPORTERS,
        flash=_notice(query.get("notice")),
    )
    status_code = 422 if errors else 200
    template = "leads/_table.html" if _is_fragment(request) else "leads/list.html"
    response = render(request, template, context, status_code)
    response.headers["Vary"] = "HX-Request"
    return response


# ---------------------------------------------------------------- adding a lead


def _form_page(
    request: Request, user: User, values: dict[str, str], errors: dict[str, list[str]], status: int
) -> Response:
    context = page(user, "/leads", "Add a lead", values=values, errors=errors, sources=list(LeadSource))
    return render(request, "leads/new.html", context, status)


@router.get("/leads/new")
async def new_lead_page(request: Request, user: ConsoleUser) -> Response:
    return _form_page(request, user, {"source": LeadSource.manual.value}, {}, 200)


@router.post("/leads", dependencies=[CsrfChecked])
async def create_lead(
    request: Request,
    user: ConsoleUser,
    session: SessionDep,
    settings: SettingsDep,
    temporal: TemporalDep,
    name: Annotated[str, Form(max_length=1000)] = "",
    email: Annotated[str, Form(max_length=1000)] = "",
    phone: Annotated[str, Form(max_length=100)] = "",
    source: Annotated[str, Form(max_length=100)] = LeadSource.manual.value,
    tags: Annotated[str, Form(max_length=5000)] = "",
    notes: Annotated[str, Form(max_length=20_000)] = "",
) -> Response:
    """The same create as ``POST /v1/leads``: the lead's matching sequences start; a known email is merged."""
    values = {"name": name, "email": email, "phone": phone, "source": source, "tags": tags, "notes": notes}
    try:
        body = LeadCreate.model_validate(
            {
                "name": name,
                "email": email,
                "phone": phone,
                "source": source,
                "tags": [tag.strip() for tag in tags.split(",") if tag.strip()],
                "notes": notes or None,
            }
        )
        created = await leads.create(session, temporal, settings, user, body)
    except ValidationError as exc:
        return _form_page(request, user, values, errors_by_input(exc), 422)
    except InvalidField as exc:
        return _form_page(request, user, values, {exc.field: [exc.message]}, 422)
    notice = "duplicate" if created.duplicate else "created"
    return redirect(request, f"{LEADS_PATH}/{created.lead.id}?notice={notice}")


# ---------------------------------------------------------------- CSV import and export


def _keep_running(request: Request, work: Coroutine[Any, Any, None]) -> None:
    """Run an import after the response, holding a reference so that the task is not collected mid-file."""
    tasks: set[asyncio.Task[None]] | None = getattr(request.app.state, "lead_import_tasks", None)
    if tasks is None:
        tasks = request.app.state.lead_import_tasks = set()
    task = asyncio.create_task(work)
    tasks.add(task)
    task.add_done_callback(tasks.discard)


def _import_form(request: Request, user: User, errors: dict[str, list[str]], status: int) -> Response:
    context = page(user, "/leads", "Import leads", errors=errors, max_mb=MAX_IMPORT_BYTES // (1024 * 1024))
    return render(request, "leads/import.html", context, status)


@router.get("/leads/import")
async def import_page(request: Request, user: ConsoleUser) -> Response:
    require_role(user, *IMPORTERS)
    return _import_form(request, user, {}, 200)


def _bounded_upload(request: Request) -> None:
    """Refuse an oversized upload from its Content-Length, before the form (and the CSRF field) is read."""
    length = request.headers.get("content-length")
    if length is None or not length.isdigit():
        raise HTTPException(411, "Send the file with a Content-Length")
    # The multipart envelope (boundaries, the CSRF field) adds a little to the file itself.
    if int(length) > MAX_IMPORT_BYTES + 64 * 1024:
        raise HTTPException(413, f"The file is larger than {MAX_IMPORT_BYTES // (1024 * 1024)} MB")


@router.post("/leads/import", dependencies=[Depends(_bounded_upload), CsrfChecked])
async def start_import(
    request: Request, user: ConsoleUser, session: SessionDep, settings: SettingsDep, temporal: TemporalDep
) -> Response:
    """Read the CSV, then import it row by row in the background; the job's page shows progress and the report."""
    require_role(user, *IMPORTERS)
    upload = (await request.form()).get("file")
    if not isinstance(upload, UploadFile) or not upload.filename:
        return _import_form(request, user, {"file": ["Choose a CSV file to import"]}, 422)
    data = await upload.read(MAX_IMPORT_BYTES + 1)
    if len(data) > MAX_IMPORT_BYTES:
        return _import_form(request, user, {"file": [f"The file is larger than {MAX_IMPORT_BYTES // 1048576} MB"]}, 413)
    try:
        _, rows = lead_import.read_csv(io.TextIOWrapper(io.BytesIO(data), encoding="utf-8-sig", newline=""))
    except InvalidField as exc:
        return _import_form(request, user, {"file": [exc.message]}, 422)
    job = await lead_import.start_job(session, user, upload.filename, len(rows))
    await session.commit()  # the import writes to it from its own transactions, maybe before this one would end
    _keep_running(request, lead_import.run_job(request.app.state.sessions, temporal, settings, user, job.id, rows))
    log.info("import %s by %s: %d rows from a %d-byte file", job.id, user.id, len(rows), len(data))
    return redirect(request, f"{LEADS_PATH}/import/{job.id}")


@router.get("/leads/import/{job_id}")
async def import_job_page(request: Request, user: ConsoleUser, session: SessionDep, job_id: str) -> Response:
    """The import's progress bar (polled by htmx while it runs) and, once done, its report: from any API process."""
    job = await lead_import.job_status(session, user, job_id)
    context = page(user, "/leads", "Import leads", job=job, poll_url=f"{LEADS_PATH}/import/{job.id}")
    template = "leads/_import_status.html" if _is_fragment(request) else "leads/import_job.html"
    return render(request, template, context)


@router.get("/leads/export")
async def export_csv(request: Request, user: ConsoleUser) -> StreamingResponse:
    """Every lead of the company as CSV: ``GET /v1/leads/export``'s stream, for the signed-in user."""
    require_role(user, *IMPORTERS)
    filename = f"leads-{datetime.now(UTC):%Y-%m-%d}.csv"
    response = StreamingResponse(
        lead_import.export_stream(request.app.state.sessions, user),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )
    apply_session(request, response)  # a download that refreshed the session must hand the new tokens over
    return response


# ---------------------------------------------------------------- one lead


async def _lead_page(
    request: Request,
    user: User,
    session: AsyncSession,
    settings: Settings,
    lead_id: str,
    *,
    notice: str | None = None,
    reply_errors: dict[str, list[str]] | None = None,
    reply_values: dict[str, str] | None = None,
    status: int = 200,
) -> Response:
    lead = await leads.get(session, user, lead_id)
    context = page(
        user,
        "/leads",
        lead.name,
        lead=lead,
        timeline=await leads.timeline(session, user, lead.id),
        runs=await leads.sequences(session, request.app.state.temporal, settings, user, lead.id),
        interaction_types=list(InteractionType),
        reply_errors=reply_errors or {},
        reply_values=reply_values or {"type": InteractionType.email.value, "content": ""},
        max_content=MAX_CONTENT,
        flash=_notice(notice),
    )
    return render(request, "leads/detail.html", context, status)


@router.get("/leads/{lead_id}")
async def lead_page(
    request: Request, user: ConsoleUser, session: SessionDep, settings: SettingsDep, lead_id: str
) -> Response:
    """Details, the timeline of interactions and messages, the sequences with their next step."""
    return await _lead_page(request, user, session, settings, lead_id, notice=request.query_params.get("notice"))


@router.post("/leads/{lead_id}/reply", dependencies=[CsrfChecked])
async def log_reply(
    request: Request,
    user: ConsoleUser,
    session: SessionDep,
    settings: SettingsDep,
    temporal: TemporalDep,
    lead_id: str,
    type: Annotated[str, Form(max_length=20)] = InteractionType.email.value,
    content: Annotated[str, Form(max_length=MAX_CONTENT + 1000)] = "",
) -> Response:
    """An inbound interaction, as ``POST /v1/leads/{id}/interactions`` records it: the lead's sequences stop."""
    try:
        body = InteractionCreate.model_validate(
            {"type": type, "direction": Direction.inbound, "content": content.strip() or None}
        )
    except ValidationError as exc:
        values = {"type": type, "content": content}
        errors = errors_by_input(exc)
        return await _lead_page(
            request, user, session, settings, lead_id, reply_errors=errors, reply_values=values, status=422
        )
    await interactions.create(session, temporal, user, lead_id, body)
    return redirect(request, f"{LEADS_PATH}/{lead_id}?notice=reply")


@router.post("/leads/{lead_id}/status", dependencies=[CsrfChecked])
async def set_status(
    request: Request,
    user: ConsoleUser,
    session: SessionDep,
    temporal: TemporalDep,
    lead_id: str,
    status: Annotated[LeadStatus, Form()],
) -> Response:
    """Mark converted or lost (the update ``PATCH /v1/leads/{id}`` makes): the lead's sequences stop."""
    lead = await leads.update(session, temporal, user, lead_id, LeadUpdate(status=status))
    notice = status.value if status.value in NOTICES else ""
    return redirect(request, f"{LEADS_PATH}/{lead.id}" + (f"?notice={notice}" if notice else ""))


@router.post("/leads/{lead_id}/erase", dependencies=[CsrfChecked])
async def erase_lead(
    request: Request, user: ConsoleUser, session: SessionDep, temporal: TemporalDep, lead_id: str
) -> Response:
    """Erase the lead for good (``DELETE /v1/leads/{id}``): its sequences are told first, then its rows go."""
    await leads.delete_lead(session, temporal, user, lead_id)
    return redirect(request, f"{LEADS_PATH}?notice=erased")
