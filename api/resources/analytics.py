from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from api.deps import CurrentUser, SessionDep
from api.pagination import PeriodQuery
from schemas.analytics import LeadAnalytics
from schemas.leads import LeadSource
from services import analytics

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
