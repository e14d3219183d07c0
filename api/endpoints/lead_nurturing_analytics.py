from __future__ import annotations

from fastapi import APIRouter

from api.deps import CurrentUser, SessionDep
from api.pagination import PeriodQuery
from schemas.analytics import LeadNurturingAnalytics
from services import analytics

router = APIRouter(prefix="/lead-nurturing", tags=["lead-nurturing"])

_DESCRIPTION = (
    "Figures for the leads created between `start_date` and `end_date` (both included, UTC; default the last "
    "30 days). `response_rate`: leads that sent an inbound interaction after our first outbound message, out "
    "of the leads we sent at least one outbound message to. `engagement_rate`: leads now engaged, qualified or "
    "converted, out of all leads. `average_time_to_conversion`: days from creation to conversion (null when "
    "no lead converted). `interactions_by_type`: interactions recorded during the period."
)


@router.get("/analytics", description=_DESCRIPTION)
async def read_analytics(
    user: CurrentUser,
    session: SessionDep,
    period: PeriodQuery,
) -> LeadNurturingAnalytics:
    """Lead nurturing analytics for a period."""
    return await analytics.lead_nurturing_analytics(session, user, period.start, period.end)
