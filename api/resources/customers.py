"""``/v1/customers`` and ``/v1/sales`` (spec/api-v1-resources.md, Customers and Sales)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request, status
from fastapi.responses import JSONResponse

from api.deps import CurrentUser, IdempotencyKey, OptionalTemporal, SessionDep, SettingsDep
from api.idempotent import CONFLICT_DOC, created_or_merged, duplicate_doc, respond_once
from api.pagination import ResourcesPage, data_page
from schemas.common import DataPage
from schemas.customers import (
    CustomerCreate,
    CustomerDetailPublic,
    CustomerPublic,
    CustomerUpdate,
    SaleCreate,
    SaleFilter,
    SalePublic,
    SaleStatus,
    SaleSummary,
    SaleUpdate,
)
from schemas.reviews import ReferralSummary, ReviewSummary
from services import customers, idempotency, sales

customers_router = APIRouter(prefix="/customers", tags=["customers"])
sales_router = APIRouter(prefix="/sales", tags=["sales"])


@customers_router.get("")
async def list_customers(user: CurrentUser, session: SessionDep, page: ResourcesPage) -> DataPage[CustomerPublic]:
    """Your company's customers, newest first (sort_by: created_at, updated_at, name, email, lifetime_value)."""
    return data_page(await customers.list_customers(session, user, page), CustomerPublic.model_validate)


@customers_router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=CustomerPublic,
    responses={200: duplicate_doc(CustomerPublic, "customer", "no second customer is made"), 409: CONFLICT_DOC},
)
async def create_customer(
    body: CustomerCreate,
    user: CurrentUser,
    session: SessionDep,
    temporal: OptionalTemporal,
    request: Request,
    idempotency_key: IdempotencyKey = None,
) -> JSONResponse:
    """Add a customer; with `lead_id` the lead becomes converted and its follow-ups stop."""

    async def create() -> idempotency.StoredResponse:
        created = await customers.create(session, temporal, user, body)
        public = CustomerPublic.model_validate(created.customer).model_dump(mode="json")
        return created_or_merged(public, duplicate=created.duplicate)

    return await respond_once(session, user, request, idempotency_key, body, create)


@customers_router.get("/{customer_id}")
async def read_customer(customer_id: str, user: CurrentUser, session: SessionDep) -> CustomerDetailPublic:
    """One customer with its sales, reviews and referrals."""
    found = await customers.records(session, user, customer_id)
    return CustomerDetailPublic(
        **CustomerPublic.model_validate(found.customer).model_dump(),
        sales=[SaleSummary.model_validate(sale) for sale in found.sales],
        reviews=[ReviewSummary.model_validate(review) for review in found.reviews],
        referrals=[ReferralSummary.model_validate(referral) for referral in found.referrals],
    )


@customers_router.patch("/{customer_id}")
async def update_customer(
    customer_id: str, body: CustomerUpdate, user: CurrentUser, session: SessionDep
) -> CustomerPublic:
    """Change a customer: tags are added, custom_fields merged (null removes a key)."""
    return CustomerPublic.model_validate(await customers.update(session, user, customer_id, body))


@sales_router.get("")
async def list_sales(
    user: CurrentUser,
    session: SessionDep,
    page: ResourcesPage,
    customer_id: Annotated[str | None, Query(description="Filter by customer")] = None,
    status: Annotated[SaleStatus | None, Query(description="Filter by status")] = None,
) -> DataPage[SalePublic]:
    """Your company's sales, newest first (sort_by: created_at, updated_at, amount, status)."""
    filters = SaleFilter(customer_id=customer_id, status=status)
    return data_page(await sales.list_sales(session, user, filters, page), SalePublic.model_validate)


@sales_router.post("", status_code=status.HTTP_201_CREATED, response_model=SalePublic, responses={409: CONFLICT_DOC})
async def create_sale(
    body: SaleCreate,
    user: CurrentUser,
    session: SessionDep,
    temporal: OptionalTemporal,
    settings: SettingsDep,
    request: Request,
    idempotency_key: IdempotencyKey = None,
) -> JSONResponse:
    """Record a sale; a completed one asks the customer for a review (every customer alike)."""

    async def create() -> idempotency.StoredResponse:
        sale = await sales.create(session, temporal, settings, user, body)
        return idempotency.StoredResponse(201, SalePublic.model_validate(sale).model_dump(mode="json"))

    return await respond_once(session, user, request, idempotency_key, body, create)


@sales_router.get("/{sale_id}")
async def read_sale(sale_id: str, user: CurrentUser, session: SessionDep) -> SalePublic:
    """One sale."""
    return SalePublic.model_validate(await sales.get(session, user, sale_id))


@sales_router.patch("/{sale_id}", responses={409: {"description": "The status cannot change that way"}})
async def update_sale(
    sale_id: str,
    body: SaleUpdate,
    user: CurrentUser,
    session: SessionDep,
    temporal: OptionalTemporal,
    settings: SettingsDep,
) -> SalePublic:
    """Change a sale: pending to completed (asks for a review) or cancelled, completed to refunded (stops it)."""
    return SalePublic.model_validate(await sales.update(session, temporal, settings, user, sale_id, body))
