"""``/api/content-generation/analytics`` (spec/api-v1-workflow-endpoints.md, Get Content Generation Analytics)."""

from __future__ import annotations

from fastapi import APIRouter

from api.deps import CurrentUser, SessionDep
from api.pagination import PeriodQuery
from schemas.content_analytics import TOP_PERFORMING, ContentGenerationAnalytics
from services import content_analytics

router = APIRouter(prefix="/content-generation", tags=["content-generation"])

_DESCRIPTION = (
    "Figures for the period from `start_date` to `end_date` (both included, UTC; default the last 30 days).\n\n"
    "- `content_created`: content items created in the period, whatever their status, by type; all four types "
    "are always present.\n"
    "- `publishing_success_rate`: publications due in the period (their scheduled `publish_at`, else when the "
    "publish was asked for) that were published, out of those published, failed or left with an unknown outcome; "
    "pending, scheduled and cancelled ones do not count. 0 when there is none.\n"
    "- `engagement_metrics`: views, clicks and shares recorded for days in the period, on any of your content "
    "(whenever it was created).\n"
    "- `conversion_metrics.leads`: conversions reported on your content for days in the period "
    "(`POST /v1/content/{content_id}/metrics`). `conversion_metrics.sales`: completed sales recorded in the "
    "period whose customer came from a lead attributed to content, i.e. created with `custom_fields.content_id` "
    "naming one of your content items (either id spelling).\n"
    f"- `top_performing_content`: up to {TOP_PERFORMING} items with metrics recorded in the period, by views in "
    "the period, then clicks; the figures are the period's."
)


@router.get("/analytics", description=_DESCRIPTION)
async def read_analytics(user: CurrentUser, session: SessionDep, period: PeriodQuery) -> ContentGenerationAnalytics:
    """Content generation, publishing, engagement and conversion figures for a period."""
    return await content_analytics.content_generation_analytics(session, user, period.start, period.end)
