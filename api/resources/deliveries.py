"""``/v1/deliveries``: every outbound message, and the resend of one whose outcome stayed unknown."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, status

from api.deps import CurrentUser, ManagerUser, SessionDep, SettingsDep, TemporalDep
from api.pagination import ResourcesPage, data_page
from schemas.common import DataPage
from schemas.messaging import DeliveryPublic, DeliveryResendAccepted, DeliveryStatus
from services import unknown_outcomes

router = APIRouter(prefix="/deliveries", tags=["deliveries"])

_RESEND_DESCRIPTION = (
    "Managers and admins. For a delivery whose outcome stayed `unknown` (no attempt could tell whether the "
    "provider took it): an email is sent again under its own Message-ID, so a mail system that already has it "
    "drops the copy; an SMS is sent again only if the provider's message list has no such message. Runs in the "
    "background (202); read `GET /v1/deliveries/{delivery_id}` to see it settle (`sent`, `failed`, or still "
    "`unknown` with the reason in `error`). 409 if the delivery is not `unknown` or a resend of it is under way."
)


@router.get("")
async def list_deliveries(
    user: CurrentUser,
    session: SessionDep,
    page: ResourcesPage,
    delivery_status: Annotated[
        DeliveryStatus | None, Query(alias="status", description="only deliveries in this status, e.g. unknown")
    ] = None,
) -> DataPage[DeliveryPublic]:
    """Your company's outbound messages, newest first; sort_by created_at (default) or sent_at."""
    result = await unknown_outcomes.list_deliveries(session, user, delivery_status, page)
    return data_page(result, DeliveryPublic.model_validate)


@router.get("/{delivery_id}")
async def read_delivery(delivery_id: str, user: CurrentUser, session: SessionDep) -> DeliveryPublic:
    """One outbound message and its outcome."""
    return DeliveryPublic.model_validate(await unknown_outcomes.read(session, user, delivery_id))


@router.post(
    "/{delivery_id}/resend",
    status_code=status.HTTP_202_ACCEPTED,
    description=_RESEND_DESCRIPTION,
    responses={409: {"description": "The delivery's outcome is not unknown, or a resend is under way"}},
)
async def resend_delivery(
    delivery_id: str, user: ManagerUser, session: SessionDep, settings: SettingsDep, client: TemporalDep
) -> DeliveryResendAccepted:
    """Resend a message whose outcome is unknown, without doubling it."""
    return await unknown_outcomes.resend(session, client, settings, user, delivery_id)
