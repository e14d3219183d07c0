"""``/token`` and ``/api``: spec/api-v1-workflow-endpoints.md."""

from fastapi import APIRouter

from api.endpoints import (
    api_keys,
    audit,
    backups,
    content_analytics,
    content_generation,
    content_schedules,
    inbound,
    lead_nurturing,
    lead_nurturing_analytics,
    privacy,
    review_referral,
    review_referral_analytics,
    system,
    token,
    users,
    webhooks,
)
from api.errors import ENDPOINTS_ERROR_RESPONSES

token_router = token.router
router = APIRouter(prefix="/api", responses=ENDPOINTS_ERROR_RESPONSES)
for module in (
    lead_nurturing,
    lead_nurturing_analytics,
    review_referral,
    review_referral_analytics,
    content_generation,
    content_schedules,
    content_analytics,
    inbound,
    users,
    system,
    webhooks,
    privacy,
    api_keys,
    audit,
    backups,
):
    router.include_router(module.router)
