from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from api.deps import CurrentUser, SessionDep
from api.pagination import PeriodQuery
from schemas.analytics import LeadAnalytics
from schemas.content import ContentTypeIn
from schemas.content_analytics import TOP_PERFORMING, ContentAnalytics
from schemas.leads import LeadSource
from services import analytics, content_analytics

router = APIRouter(prefix="/analytics", tags=["analytics"])

_LEADS_DESCRIPTION = (
    "Figures for the leads created between `start_date` and `end_date` (both included, UTC; default the last "
    "30 days). Conversions and replies of those leads count whenever they happened.\n\n"
    "- `average_response_time_hours`: per lead, from its first outbound message to its first inbound "
    "interaction after that, averaged over the leads that replied.\n"
    "- `average_time_to_conversion_days`: from creation to conversion, over converted leads.\n"
    "- `conversion_funnel`: derived from each lead's current status along new < contacted < engaged < "
    "qualified < converted; a lead counts at its own stage and every earlier one, so `counts` are the leads "
    "that reached at least that stage. A lost lead counts at `new` only. `conversion_rates` divide each "
    "count by all leads of the period.\n\n"
    "Rates are 0 when there is nothing to divide by; averages are null when there is nothing to average."
)


@router.get("/leads", description=_LEADS_DESCRIPTION)
async def read_lead_analytics(
    user: CurrentUser,
    session: SessionDep,
    period: PeriodQuery,
    source: Annotated[LeadSource | None, Query(description="only leads from this source")] = None,
) -> LeadAnalytics:
    """Lead volume, sources, statuses, response and conversion figures for a period."""
    return await analytics.lead_analytics(session, user, period.start, period.end, source)


_CONTENT_DESCRIPTION = (
    "Figures for the period from `start_date` to `end_date` (both included, UTC; default the last 30 days), "
    "optionally of one `type`.\n\n"
    "- `total_content` and each type's `count`: content items created in the period, whatever their status.\n"
    "- views, clicks, shares, conversions: the metrics recorded for days in the period, on any of your content "
    "(whenever it was created), as reported through `POST /v1/content/{content_id}/metrics`.\n"
    "- `engagement_rate`: (clicks + shares + comments) / views; `conversion_rate`: conversions / views; both "
    "rounded to 4 places and 0 without views. The summary's `average_engagement_rate` and "
    "`average_conversion_rate` divide the period's totals, so each item weighs by its views.\n"
    "- `by_type`: the types with content created or metrics recorded in the period, in the order blog, social, "
    "email, product.\n"
    f"- `top_performing`: up to {TOP_PERFORMING} items with metrics recorded in the period, by views in the "
    "period, then clicks; the figures are the period's."
)


@router.get("/content", description=_CONTENT_DESCRIPTION)
async def read_content_analytics(
    user: CurrentUser,
    session: SessionDep,
    period: PeriodQuery,
    type: Annotated[ContentTypeIn | None, Query(description="only content of this type")] = None,
) -> ContentAnalytics:
    """Content volume, engagement and conversion figures for a period."""
    return await content_analytics.content_analytics(session, user, period.start, period.end, type)
