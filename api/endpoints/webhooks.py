"""``/api/webhooks`` (spec/api-v1-workflow-endpoints.md: Webhooks): register, change and remove webhooks, rotate
their secrets, read their deliveries and send a test event. Admins and managers, signed in or with a full key.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, status

from api.deps import CurrentUser, ManagerUser, SessionDep, SettingsDep, TemporalDep
from api.pagination import EndpointsPage, items_page
from schemas.common import ItemsPage, Success
from schemas.ids import EndpointsId
from schemas.webhook_delivery import DeliveryStatus
from schemas.webhooks import (
    EVENT_CATALOGUE,
    EventTypePublic,
    TestDelivery,
    WebhookCreate,
    WebhookCreated,
    WebhookDeliveryPublic,
    WebhookFilter,
    WebhookPublic,
    WebhookUpdate,
)
from services import webhooks

router = APIRouter(prefix="/webhooks", tags=["webhooks"])

_NOT_FOUND: dict[int | str, dict[str, str]] = {404: {"description": "No such webhook in your company"}}


@router.post("", status_code=status.HTTP_201_CREATED)
async def create_webhook(
    body: WebhookCreate, user: ManagerUser, session: SessionDep, settings: SettingsDep
) -> WebhookCreated:
    """Register a webhook; the answer carries its signing secret, shown this once."""
    return WebhookCreated.model_validate(await webhooks.create(session, settings, user, body))


@router.get("")
async def list_webhooks(
    user: ManagerUser,
    session: SessionDep,
    page: EndpointsPage,
    active: Annotated[bool | None, Query(description="Only active (true) or disabled (false) webhooks")] = None,
) -> ItemsPage[WebhookPublic]:
    """Your company's webhooks, newest first unless sort/order say otherwise."""
    result = await webhooks.list_webhooks(session, user, WebhookFilter(active=active), page)
    return items_page(result, WebhookPublic.model_validate)


@router.get("/events")
async def list_event_types(user: CurrentUser) -> list[EventTypePublic]:
    """Every event a webhook can subscribe to, with an example of its `data`."""
    return list(EVENT_CATALOGUE.values())


@router.get("/{webhook_id}", responses=_NOT_FOUND)
async def read_webhook(webhook_id: EndpointsId, user: ManagerUser, session: SessionDep) -> WebhookPublic:
    """One webhook (never its secret)."""
    return WebhookPublic.model_validate(await webhooks.get(session, user, webhook_id))


@router.patch("/{webhook_id}", responses=_NOT_FOUND)
@router.put("/{webhook_id}", responses=_NOT_FOUND)
async def update_webhook(
    webhook_id: EndpointsId, body: WebhookUpdate, user: ManagerUser, session: SessionDep, settings: SettingsDep
) -> WebhookPublic:
    """Change the fields sent (others stay); `active: true` re-enables a webhook the platform turned off."""
    return WebhookPublic.model_validate(await webhooks.update(session, settings, user, webhook_id, body))


@router.delete("/{webhook_id}", responses=_NOT_FOUND)
async def delete_webhook(webhook_id: EndpointsId, user: ManagerUser, session: SessionDep) -> Success:
    """Remove a webhook and its delivery history; no further events go to it."""
    await webhooks.delete(session, user, webhook_id)
    return Success(message="Webhook deleted successfully")


@router.post("/{webhook_id}/rotate-secret", responses=_NOT_FOUND)
async def rotate_webhook_secret(webhook_id: EndpointsId, user: ManagerUser, session: SessionDep) -> WebhookCreated:
    """Replace the signing secret; the answer carries the new one, shown this once."""
    return WebhookCreated.model_validate(await webhooks.rotate_secret(session, user, webhook_id))


@router.get("/{webhook_id}/deliveries", responses=_NOT_FOUND)
async def list_webhook_deliveries(
    webhook_id: EndpointsId,
    user: ManagerUser,
    session: SessionDep,
    page: EndpointsPage,
    status: Annotated[DeliveryStatus | None, Query(description="Filter by delivery status")] = None,
) -> ItemsPage[WebhookDeliveryPublic]:
    """The webhook's deliveries with their attempts, newest first."""
    result = await webhooks.list_deliveries(session, user, webhook_id, status, page)
    return items_page(result, WebhookDeliveryPublic.model_validate)


@router.post(
    "/{webhook_id}/test",
    status_code=status.HTTP_202_ACCEPTED,
    responses={**_NOT_FOUND, 409: {"description": "The webhook is disabled"}},
)
async def send_test_event(
    webhook_id: EndpointsId, user: ManagerUser, session: SessionDep, temporal: TemporalDep, settings: SettingsDep
) -> TestDelivery:
    """Send a signed `webhook.test` event to this webhook now; follow it in its deliveries."""
    delivery = await webhooks.send_test(session, temporal, settings, user, webhook_id)
    return TestDelivery(delivery_id=delivery.id, event_id=delivery.event_id)
