from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from api.deps import CurrentUser, SessionDep, SettingsDep
from api.pagination import PeriodQuery
from schemas.analytics import LeadAnalytics
from schemas.content import ContentTypeIn
from schemas.content_analytics import TOP_PERFORMING, ContentAnalytics
from schemas.dashboard import DashboardAnalytics, WorkflowAnalytics
from schemas.leads import LeadSource
from schemas.workflow_configs import WorkflowType
from services import analytics, content_analytics, dashboard, workflow_analytics

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


_DASHBOARD_DESCRIPTION = (
    "Figures for the period from `start_date` to `end_date` (both included, UTC; default the last 30 days). "
    "Each record counts in the period its own milestone falls in.\n\n"
    "- `new_leads`: leads created in the period; `lead_conversion_rate`: of those, the ones now converted.\n"
    "- `new_customers`: customers created in the period.\n"
    "- `total_sales`: completed sales recorded in the period, summed; `average_sale`: their mean (null if none).\n"
    "- `reviews_requested`: review requests sent in the period; `reviews_completed`: reviews left in it; "
    "`average_rating`: of those with a rating (as `GET /api/review-referral/analytics`).\n"
    "- `referrals_created`: referral codes created in the period; `referrals_used`: of those, used at least once.\n"
    "- `content_created`, `content_engagement_rate`: as `GET /v1/analytics/content` (content created in the "
    "period; (clicks + shares + comments) / views of the metrics recorded for its days).\n\n"
    "`comparison` (unless `compare_to_previous=false`, then null): each figure over the previous period of the "
    "same length, ending the day before `start_date`. `change` = (value - previous) / previous, rounded to 4 "
    "places, and **null when previous is 0** (no finite relative change); `change_type` is `positive` when the "
    "value went up, `negative` when it went down, `neutral` when equal.\n\n"
    "`charts` are Chart.js-ready. `leads_over_time` and `sales_over_time` label every day of the period "
    "(YYYY-MM-DD, days without data are 0): New Leads by creation day, Converted Leads by conversion day, the "
    "Sales Amount of completed sales by day. `workflow_performance` lists each workflow type with runs started "
    "in the period: the Success Rate of its runs (see `GET /v1/analytics/workflows`) and its Conversion Rate "
    "(lead nurturing: leads followed up that converted; review & referral: sales asked about that got a "
    "review; content generation: conversions per view of the content written).\n\n"
    "`roi`: `estimated_revenue_impact` = completed sales of the period whose customer came from a converted "
    "lead that a lead-nurturing run followed up, or that redeemed a referral code (a sale counts once). "
    "`estimated_time_saved_hours` = (`automated_messages` (messages sent or recorded by automations in the "
    "period) x `minutes_per_message` + `content_created` x `minutes_per_content`) / 60; `estimated_time_value` "
    "= hours x `hourly_rate`; `total_value` = revenue impact + time value. `assumptions` are the server "
    "defaults (`BAS_ROI_HOURLY_RATE`, `BAS_ROI_MINUTES_PER_MESSAGE`, `BAS_ROI_MINUTES_PER_CONTENT`) unless the "
    "company sets its own in `settings.roi` (`PATCH /v1/companies/current` with "
    '`{"settings": {"roi": {"hourly_rate": 80}}}`).'
)


@router.get("/dashboard", description=_DASHBOARD_DESCRIPTION)
async def read_dashboard(
    user: CurrentUser,
    session: SessionDep,
    settings: SettingsDep,
    period: PeriodQuery,
    compare_to_previous: Annotated[
        bool, Query(description="compare with the previous period of the same length")
    ] = True,
) -> DashboardAnalytics:
    """Leads, sales, reviews, referrals, content, automations and their estimated value for a period."""
    return await dashboard.dashboard(session, settings, user, period.start, period.end, compare_to_previous)


_WORKFLOWS_DESCRIPTION = (
    "One entry per workflow config with runs started between `start_date` and `end_date` (both included, UTC; "
    "default the last 30 days), optionally of one `workflow_type`; runs started without a config (content or a "
    "review asked for by hand) share one entry per type with `id: null`. The figures follow those runs "
    "whenever their effects happened.\n\n"
    "- `runs_successful`: runs that completed, or stopped early on purpose (the lead replied, converted or "
    "opted out; the sale was refunded); `runs_failed`: runs that failed; runs still going count in `runs_total` "
    "only, and `success_rate` = successful / (successful + failed).\n"
    "- lead nurturing: `conversion_rate` = leads the runs followed up that are now converted; "
    "`average_response_time_hours` = from a run's first message to its lead's first inbound interaction after "
    "it, over the runs that got one (null if none).\n"
    "- review & referral: `review_completion_rate` = sales the runs asked about that got a review; "
    "`average_rating` of those reviews; `referral_usage_rate` = referral codes the runs issued that were used.\n"
    "- content generation: `average_engagement_rate` = (clicks + shares + comments) / views and "
    "`average_conversion_rate` = conversions / views, over every recorded day of the content the runs wrote.\n"
    "- `estimated_revenue_impact`: completed sales recorded in the period that the runs brought: the customer "
    "came from a converted lead a run followed up, the sale redeemed a referral code a run issued, or the "
    "customer came from a lead attributed to content a run wrote (`custom_fields.content_id`).\n\n"
    "`totals` add the runs up; a sale brought by several workflows counts once in "
    "`totals.estimated_revenue_impact`. `totals.estimated_time_saved_hours` = (messages these runs sent x "
    "minutes_per_message + content items they wrote x minutes_per_content) / 60, at the assumptions shown in "
    "`GET /v1/analytics/dashboard`."
)


@router.get("/workflows", description=_WORKFLOWS_DESCRIPTION)
async def read_workflow_analytics(
    user: CurrentUser,
    session: SessionDep,
    settings: SettingsDep,
    period: PeriodQuery,
    workflow_type: Annotated[WorkflowType | None, Query(description="only workflows of this type")] = None,
) -> WorkflowAnalytics:
    """Runs, success and what each automation brought, per workflow, for a period."""
    return await workflow_analytics.workflow_analytics(session, settings, user, workflow_type, period.start, period.end)
