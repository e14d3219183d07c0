"""Customers, their sales, the reviews they left and the referral codes they share: ``/app/customers/...``.

Every page calls the services behind ``/v1/customers``, ``/v1/sales``, ``/v1/reviews`` and ``/v1/referrals``
and shows records in ``/v1``'s words (a review "completed", a referral "active"); the rules live there: a
completed sale starts the review request, a recorded review stops its reminders, a refund stops it all.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import HTMLResponse, Response
from pydantic import BaseModel, ValidationError
from sqlalchemy.ext.asyncio import AsyncSession
from temporalio.client import Client

from api.console.forms import errors_by_input, field_errors
from api.console.navigation import page as base_context
from api.console.session import CONSOLE_PATH, ConsoleUser, CsrfChecked
from api.console.templating import redirect, render
from api.deps import OptionalTemporal, SessionDep, SettingsDep, TemporalDep
from core.config import Settings
from db.models import Sale, User
from schemas.common import MAX_PAGE_NUMBER, Page, PageRequest, SortDirection
from schemas.customers import (
    SALE_TRANSITIONS,
    CustomerCreate,
    CustomerPublic,
    SaleCreate,
    SalePublic,
    SaleStatus,
    SaleUpdate,
)
from schemas.reviews import (
    DEFAULT_EXPIRY_DAYS,
    DEFAULT_OFFER,
    DEFAULT_REFERRER_OFFER,
    PLATFORM_LABELS,
    RESOURCES_REFERRAL_FILTERS,
    ReferralCreate,
    ReferralDetailPublic,
    ReferralFilter,
    ReferralPublic,
    ReferralTrack,
    ReviewEndpointsCreate,
    ReviewFilter,
    ReviewPlatform,
    ReviewPublic,
    ReviewStatus,
)
from schemas.workflow_runs import WorkflowRunDetail
from services import customers, referrals, reviews, sales, workflow_runs
from services.errors import Conflict, InvalidField, NotFound

router = APIRouter(prefix="/customers")

NAV_HREF = "/customers"
SUBNAV = [("/customers", "Customers"), ("/customers/reviews", "Reviews"), ("/customers/referrals", "Referrals")]
PAGE_SIZE = 20
NOTICES = {
    "added": "Customer added.",
    "merged": "A customer with this email address already existed: what you entered was added to it.",
    "sale": "Sale recorded.",
    "status": "Sale status changed.",
    "review": "Review recorded.",
    "referral": "Referral code issued.",
    "tracked": "Use of the referral code recorded.",
}
"""Fixed texts a redirect names with ``?notice=``: a URL can never make the page say something else."""
REVIEW_STATUS_CHOICES = [
    (ReviewStatus.requested.value, "requested"),
    (ReviewStatus.submitted.value, "completed"),
    (ReviewStatus.verified.value, "verified"),
]
PLATFORM_CHOICES = [(platform.value, label) for platform, label in PLATFORM_LABELS.items()]
SALE_STATUS_CHOICES = [(SaleStatus.completed.value, "completed"), (SaleStatus.pending.value, "pending")]
STAGE_LABELS = {
    "requesting": "Waiting to ask for the review",
    "reminding": "Reminding",
    "offering_referral": "Offering a referral code",
    "sending": "Sending a message",
    "completed": "Completed",
    "stopped": "Stopped",
}
STATUS_ACTIONS = {
    SaleStatus.completed: "Mark completed",
    SaleStatus.cancelled: "Cancel sale",
    SaleStatus.refunded: "Mark refunded",
}

Errors = dict[str, list[str]]


@dataclass(frozen=True)
class Listing:
    """One page of a list, ready for the table and its pager."""

    rows: list[Any]
    total: int
    page: int
    pages: int
    prev_url: str | None
    next_url: str | None


@dataclass
class Filled:
    """A form as it is shown again: what was typed and what was wrong with it."""

    values: dict[str, str] = field(default_factory=dict)
    errors: Errors = field(default_factory=dict)


@dataclass(frozen=True)
class SaleRow:
    sale: SalePublic
    next_statuses: list[SaleStatus]
    review: dict[str, Any] | None
    review_request: WorkflowRunDetail | None
    """The sale's latest review request run, with the workflow's live progress while it runs."""


# ---------------------------------------------------------------- helpers


def _given(values: dict[str, str]) -> dict[str, str]:
    """The inputs that were filled in: an empty one means "not given", as an absent JSON field on the API."""
    return {name: value for name, value in values.items() if value.strip()}


def _one_line(exc: ValidationError) -> str:
    return "; ".join(f"{name}: {message}" for name, messages in field_errors(exc).items() for message in messages)


def _validated_filter(model: type[BaseModel], **raw: str | None) -> Any:
    """A list's filters from the query string; a bad one is a 422 page naming the parameter."""
    try:
        return model.model_validate({name: value or None for name, value in raw.items()})
    except ValidationError as exc:
        name, messages = next(iter(field_errors(exc).items()))
        raise InvalidField(name, messages[0]) from exc


def _url_with(request: Request, **changes: str | int) -> str:
    params = dict(request.query_params)
    params.update({name: str(value) for name, value in changes.items()})
    return f"{request.url.path}?{urlencode(params)}"


def _listing(request: Request, result: Page[Any], present: Callable[[Any], Any]) -> Listing:
    number = result.request.page
    pages = math.ceil(result.total / result.request.size)
    return Listing(
        rows=[present(item) for item in result.items],
        total=result.total,
        page=number,
        pages=pages,
        prev_url=_url_with(request, page=number - 1) if number > 1 else None,
        next_url=_url_with(request, page=number + 1) if number < pages else None,
    )


def _in_v1_words(schema: type[BaseModel]) -> Callable[[Any], dict[str, Any]]:
    """A record as ``/v1`` presents it (a review "completed" on "Google", a referral "active"), for a template."""
    return lambda record: schema.model_validate(record).model_dump()


def _sort_choices(sortable: dict[str, Any]) -> list[tuple[str, str]]:
    return [(name, name.replace("_", " ").capitalize()) for name in sortable]


def _page_request(number: int, sort_by: str | None, sort_dir: SortDirection) -> PageRequest:
    return PageRequest(page=number, size=PAGE_SIZE, sort_by=sort_by or None, sort_dir=sort_dir)


def _context(user: User, title: str, sub_active: str, **values: Any) -> dict[str, Any]:
    return base_context(user, NAV_HREF, title, subnav=SUBNAV, sub_active=sub_active, **values)


PageNumber = Annotated[int, Query(alias="page", ge=1, le=MAX_PAGE_NUMBER, description="Page number, from 1")]
SortBy = Annotated[str | None, Query(max_length=40)]
SortDir = Annotated[SortDirection, Query()]
Notice = Annotated[str | None, Query(max_length=20)]


# ---------------------------------------------------------------- customers


async def _customers_page(
    request: Request,
    session: AsyncSession,
    user: User,
    paging: PageRequest,
    form: Filled,
    status_code: int = 200,
) -> HTMLResponse:
    listing = _listing(request, await customers.list_customers(session, user, paging), CustomerPublic.model_validate)
    context = _context(
        user,
        "Customers",
        "/customers",
        listing=listing,
        sorts=_sort_choices(customers.SORTABLE),
        sort_by=paging.sort_by or "created_at",
        sort_dir=paging.sort_dir.value,
        form=form,
    )
    return render(request, "customers/list.html", context, status_code)


@router.get("")
async def customer_list(
    request: Request,
    user: ConsoleUser,
    session: SessionDep,
    page_number: PageNumber = 1,
    sort_by: SortBy = None,
    sort_dir: SortDir = SortDirection.desc,
) -> HTMLResponse:
    return await _customers_page(request, session, user, _page_request(page_number, sort_by, sort_dir), Filled())


@router.post("", dependencies=[CsrfChecked])
async def add_customer(
    request: Request,
    user: ConsoleUser,
    session: SessionDep,
    temporal: OptionalTemporal,
    name: Annotated[str, Form(max_length=1000)] = "",
    email: Annotated[str, Form(max_length=1000)] = "",
    phone: Annotated[str, Form(max_length=1000)] = "",
    tags: Annotated[str, Form(max_length=5000)] = "",
    timezone: Annotated[str, Form(max_length=1000)] = "",
) -> Response:
    values = {"name": name, "email": email, "phone": phone, "tags": tags, "timezone": timezone}
    try:
        body = CustomerCreate.model_validate(
            {
                **_given({"email": email, "phone": phone, "timezone": timezone}),
                "name": name,
                "tags": [tag.strip() for tag in tags.split(",") if tag.strip()],
            }
        )
        created = await customers.create(session, temporal, user, body)
    except ValidationError as exc:
        errors = errors_by_input(exc)
    except InvalidField as exc:
        errors = {exc.field: [exc.message]}
    else:
        notice = "merged" if created.duplicate else "added"
        return redirect(request, f"{CONSOLE_PATH}/customers/{created.customer.id}?notice={notice}")
    paging = _page_request(1, None, SortDirection.desc)
    return await _customers_page(request, session, user, paging, Filled(values, errors), 422)


# ---------------------------------------------------------------- reviews (before /{customer_id})


@router.get("/reviews")
async def review_list(
    request: Request,
    user: ConsoleUser,
    session: SessionDep,
    page_number: PageNumber = 1,
    status: Annotated[str | None, Query(max_length=20)] = None,
    platform: Annotated[str | None, Query(max_length=20)] = None,
    sort_by: SortBy = None,
    sort_dir: SortDir = SortDirection.desc,
) -> HTMLResponse:
    filters: ReviewFilter = _validated_filter(ReviewFilter, status=status, platform=platform)
    found = await reviews.list_reviews(session, user, filters, _page_request(page_number, sort_by, sort_dir))
    context = _context(
        user,
        "Reviews",
        "/customers/reviews",
        listing=_listing(request, found, _in_v1_words(ReviewPublic)),
        status=filters.status.value if filters.status else "",
        platform=filters.platform.value if filters.platform else "",
        statuses=REVIEW_STATUS_CHOICES,
        platforms=PLATFORM_CHOICES,
        sorts=_sort_choices(reviews.SORTABLE),
        sort_by=sort_by or "created_at",
        sort_dir=sort_dir.value,
    )
    return render(request, "customers/reviews.html", context)


# ---------------------------------------------------------------- referrals (before /{customer_id})


async def _referrals_page(
    request: Request,
    session: AsyncSession,
    user: User,
    status: str | None,
    paging: PageRequest,
    *,
    track_errors: dict[str, str] | None = None,
    flash: str | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    if status and status not in RESOURCES_REFERRAL_FILTERS:
        raise InvalidField("status", f"choose one of {', '.join(RESOURCES_REFERRAL_FILTERS)}")
    filters = ReferralFilter(statuses=RESOURCES_REFERRAL_FILTERS[status] if status else None)
    found = await referrals.list_referrals(session, user, filters, paging)
    context = _context(
        user,
        "Referral codes",
        "/customers/referrals",
        listing=_listing(request, found, _in_v1_words(ReferralPublic)),
        status=status or "",
        statuses=[(name, name) for name in RESOURCES_REFERRAL_FILTERS],
        sorts=_sort_choices(referrals.SORTABLE),
        sort_by=paging.sort_by or "created_at",
        sort_dir=paging.sort_dir.value,
        track_errors=track_errors or {},
        flash=flash,
    )
    return render(request, "customers/referrals.html", context, status_code)


@router.get("/referrals")
async def referral_list(
    request: Request,
    user: ConsoleUser,
    session: SessionDep,
    page_number: PageNumber = 1,
    status: Annotated[str | None, Query(max_length=20)] = None,
    sort_by: SortBy = None,
    sort_dir: SortDir = SortDirection.desc,
    notice: Notice = None,
) -> HTMLResponse:
    paging = _page_request(page_number, sort_by, sort_dir)
    return await _referrals_page(request, session, user, status, paging, flash=NOTICES.get(notice or ""))


@router.post("/referrals/{referral_id}/track", dependencies=[CsrfChecked])
async def track_referral_use(
    request: Request,
    referral_id: str,
    user: ConsoleUser,
    session: SessionDep,
    lead_id: Annotated[str, Form(max_length=100)] = "",
) -> Response:
    """Someone used the code (a referred lead, or a buyer the owner knows of): the same lead counts once."""
    referral = await referrals.get(session, user, referral_id)
    try:
        body = ReferralTrack.model_validate(_given({"lead_id": lead_id}))
        await referrals.redeem(session, referral, body.lead_id)
    except ValidationError as exc:
        message, status_code = _one_line(exc), 422
    except InvalidField as exc:
        message, status_code = exc.message, 422
    except Conflict as exc:
        message, status_code = exc.message, 409
    else:
        return redirect(request, f"{CONSOLE_PATH}/customers/referrals?notice=tracked")
    paging = _page_request(1, None, SortDirection.desc)
    return await _referrals_page(
        request, session, user, None, paging, track_errors={referral.id: message}, status_code=status_code
    )


# ---------------------------------------------------------------- one customer


def _blank_forms() -> dict[str, Filled]:
    return {
        "sale": Filled({"status": SaleStatus.completed.value}),
        "review": Filled({"platform": ReviewPlatform.google.value}),
        "referral": Filled(
            {
                "offer": DEFAULT_OFFER,
                "referrer_offer": DEFAULT_REFERRER_OFFER,
                "expires_in_days": str(DEFAULT_EXPIRY_DAYS),
            }
        ),
    }


async def _review_requests(
    session: AsyncSession, client: Client | None, settings: Settings, user: User, sale_ids: list[str]
) -> dict[str, WorkflowRunDetail]:
    """Each sale's latest review request, as ``GET /v1/workflow-runs/{id}`` shows it (live progress included)."""
    latest: dict[str, str] = {}
    for run in await workflow_runs.runs_about(session, settings, user, sale_ids):
        if run.trigger_id is not None:
            latest.setdefault(run.trigger_id, run.id)
    return {
        sale_id: await workflow_runs.detail(session, client, settings, user, run_id)
        for sale_id, run_id in latest.items()
    }


async def _sale_rows(
    session: AsyncSession, client: Client | None, settings: Settings, user: User, found: customers.CustomerRecords
) -> list[SaleRow]:
    requests = await _review_requests(session, client, settings, user, [sale.id for sale in found.sales])
    review_of_sale = {review.sale_id: review for review in found.reviews if review.sale_id}
    rows = []
    for sale in found.sales:
        review = review_of_sale.get(sale.id)
        rows.append(
            SaleRow(
                sale=SalePublic.model_validate(sale),
                next_statuses=sorted(SALE_TRANSITIONS[SaleStatus(sale.status)]),
                review=_in_v1_words(ReviewPublic)(review) if review else None,
                review_request=requests.get(sale.id),
            )
        )
    return rows


def _sale_label(sale: SalePublic) -> str:
    return f"{sale.service_name or 'Sale'} · {sale.amount:,.2f} · {sale.created_at:%Y-%m-%d}"


async def _customer_page(
    request: Request,
    session: AsyncSession,
    client: Client | None,
    settings: Settings,
    user: User,
    customer_id: str,
    *,
    forms: dict[str, Filled] | None = None,
    status_errors: dict[str, str] | None = None,
    flash: str | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    found = await customers.records(session, user, customer_id)
    rows = await _sale_rows(session, client, settings, user, found)
    filled = {**_blank_forms(), **(forms or {})}
    if "review" not in (forms or {}):
        # The review most likely being recorded is the one a request is waiting for.
        awaiting = [row.sale.id for row in rows if row.review and row.review["status"] == ReviewStatus.requested]
        filled["review"].values["sale_id"] = awaiting[0] if awaiting else ""
    codes = [
        _in_v1_words(ReferralDetailPublic)(await referrals.get(session, user, referral.id, with_uses=True))
        for referral in found.referrals
    ]
    context = _context(
        user,
        found.customer.name,
        "/customers",
        customer=CustomerPublic.model_validate(found.customer),
        sale_rows=rows,
        sale_choices=[(row.sale.id, _sale_label(row.sale)) for row in rows],
        reviews=[_in_v1_words(ReviewPublic)(review) for review in found.reviews],
        referrals=codes,
        forms=filled,
        status_errors=status_errors or {},
        sale_statuses=SALE_STATUS_CHOICES,
        platforms=PLATFORM_CHOICES,
        stage_labels=STAGE_LABELS,
        status_actions=STATUS_ACTIONS,
        flash=flash,
    )
    return render(request, "customers/detail.html", context, status_code)


@router.get("/{customer_id}")
async def customer_detail(
    request: Request,
    customer_id: str,
    user: ConsoleUser,
    session: SessionDep,
    settings: SettingsDep,
    temporal: OptionalTemporal,
    notice: Notice = None,
) -> HTMLResponse:
    flash = NOTICES.get(notice or "")
    return await _customer_page(request, session, temporal, settings, user, customer_id, flash=flash)


async def _sale_of(session: AsyncSession, user: User, customer_id: str, sale_id: str) -> Sale:
    """A sale of this customer: one of another customer (or company) is not found here."""
    customer = await customers.get(session, user, customer_id)
    sale = await sales.get(session, user, sale_id)
    if sale.customer_id != customer.id:
        raise NotFound("sale", sale_id)
    return sale


@router.get("/{customer_id}/sales/{sale_id}/review-request")
async def review_request_fragment(
    request: Request,
    customer_id: str,
    sale_id: str,
    user: ConsoleUser,
    session: SessionDep,
    settings: SettingsDep,
    temporal: OptionalTemporal,
) -> HTMLResponse:
    """The sale's review request box alone: htmx polls it while the run is live."""
    sale = await _sale_of(session, user, customer_id, sale_id)
    requests = await _review_requests(session, temporal, settings, user, [sale.id])
    row = SaleRow(SalePublic.model_validate(sale), [], None, requests.get(sale.id))
    context = {"row": row, "customer_id": customer_id, "stage_labels": STAGE_LABELS}
    return render(request, "customers/_review_request.html", context)


@router.post("/{customer_id}/sales", dependencies=[CsrfChecked])
async def record_sale(
    request: Request,
    customer_id: str,
    user: ConsoleUser,
    session: SessionDep,
    settings: SettingsDep,
    temporal: OptionalTemporal,
    amount: Annotated[str, Form(max_length=100)] = "",
    status: Annotated[str, Form(max_length=20)] = SaleStatus.completed.value,
    service_name: Annotated[str, Form(max_length=1000)] = "",
    payment_method: Annotated[str, Form(max_length=1000)] = "",
    notes: Annotated[str, Form(max_length=20_000)] = "",
    referral_code: Annotated[str, Form(max_length=1000)] = "",
) -> Response:
    """The same ``sales.create`` as ``POST /v1/sales``: a completed sale starts the review request."""
    customer = await customers.get(session, user, customer_id)
    values = {
        "amount": amount,
        "status": status,
        "service_name": service_name,
        "payment_method": payment_method,
        "notes": notes,
        "referral_code": referral_code,
    }
    try:
        body = SaleCreate.model_validate({**_given(values), "customer_id": customer.id})
        sale = await sales.create(session, temporal, settings, user, body)
    except ValidationError as exc:
        errors = errors_by_input(exc)
    except InvalidField as exc:
        errors = {exc.field: [exc.message]}
    else:
        return redirect(request, f"{CONSOLE_PATH}/customers/{customer.id}?notice=sale#sale-{sale.id}")
    forms = {"sale": Filled(values, errors)}
    return await _customer_page(request, session, temporal, settings, user, customer.id, forms=forms, status_code=422)


@router.post("/{customer_id}/sales/{sale_id}/status", dependencies=[CsrfChecked])
async def change_sale_status(
    request: Request,
    customer_id: str,
    sale_id: str,
    user: ConsoleUser,
    session: SessionDep,
    settings: SettingsDep,
    temporal: OptionalTemporal,
    status: Annotated[str, Form(max_length=20)] = "",
) -> Response:
    """The same ``sales.update`` as ``PATCH /v1/sales/{id}``; a move it refuses shows its 409 message."""
    sale = await _sale_of(session, user, customer_id, sale_id)
    try:
        await sales.update(session, temporal, settings, user, sale.id, SaleUpdate.model_validate({"status": status}))
    except ValidationError as exc:
        message, status_code = _one_line(exc), 422
    except Conflict as exc:
        message, status_code = exc.message, 409
    else:
        return redirect(request, f"{CONSOLE_PATH}/customers/{sale.customer_id}?notice=status#sale-{sale.id}")
    return await _customer_page(
        request,
        session,
        temporal,
        settings,
        user,
        sale.customer_id,
        status_errors={sale.id: message},
        status_code=status_code,
    )


@router.post("/{customer_id}/reviews", dependencies=[CsrfChecked])
async def record_review(
    request: Request,
    customer_id: str,
    user: ConsoleUser,
    session: SessionDep,
    settings: SettingsDep,
    temporal: TemporalDep,
    sale_id: Annotated[str, Form(max_length=100)] = "",
    platform: Annotated[str, Form(max_length=40)] = "",
    rating: Annotated[str, Form(max_length=10)] = "",
    content: Annotated[str, Form(max_length=40_000)] = "",
    review_url: Annotated[str, Form(max_length=1000)] = "",
) -> Response:
    """The review the customer left, through ``reviews.create`` (as ``POST /api/review-referral/reviews``).

    About a sale whose review was requested, it is recorded on that request's review and the workflow is told
    (its reminders stop); otherwise it is recorded as left on the customer's own initiative.
    """
    customer = await customers.get(session, user, customer_id)
    values = {"sale_id": sale_id, "platform": platform, "rating": rating, "content": content, "review_url": review_url}
    try:
        body = ReviewEndpointsCreate.model_validate(
            {**_given(values), "customer_id": customer.id, "status": ReviewStatus.submitted}
        )
        await reviews.create(session, temporal, settings, user, body)
    except ValidationError as exc:
        errors = errors_by_input(exc)
    except InvalidField as exc:
        errors = {exc.field: [exc.message]}
    else:
        return redirect(request, f"{CONSOLE_PATH}/customers/{customer.id}?notice=review#reviews")
    forms = {"review": Filled(values, errors)}
    return await _customer_page(request, session, temporal, settings, user, customer.id, forms=forms, status_code=422)


@router.post("/{customer_id}/referrals", dependencies=[CsrfChecked])
async def issue_referral(
    request: Request,
    customer_id: str,
    user: ConsoleUser,
    session: SessionDep,
    settings: SettingsDep,
    temporal: OptionalTemporal,
    offer: Annotated[str, Form(max_length=1000)] = "",
    referrer_offer: Annotated[str, Form(max_length=1000)] = "",
    max_uses: Annotated[str, Form(max_length=20)] = "",
    expires_in_days: Annotated[str, Form(max_length=20)] = "",
) -> Response:
    """The same issuing as ``POST /v1/referrals``: the offer never depends on a review or its rating."""
    customer = await customers.get(session, user, customer_id)
    values = {
        "offer": offer,
        "referrer_offer": referrer_offer,
        "max_uses": max_uses,
        "expires_in_days": expires_in_days,
    }
    try:
        body = ReferralCreate.model_validate({**_given(values), "customer_id": customer.id})
    except ValidationError as exc:
        forms = {"referral": Filled(values, errors_by_input(exc))}
        return await _customer_page(
            request, session, temporal, settings, user, customer.id, forms=forms, status_code=422
        )
    await referrals.create(session, temporal, settings, customer, referrals.terms_of(body))
    return redirect(request, f"{CONSOLE_PATH}/customers/{customer.id}?notice=referral#referrals")
