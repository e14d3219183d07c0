"""The dashboard: ``/v1/analytics/dashboard``'s figures as cards and charts, for a chosen period."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from api.console.navigation import page
from api.console.session import ConsoleUser
from api.console.templating import render
from api.deps import SessionDep, SettingsDep
from api.pagination import PeriodQuery
from services import dashboard

router = APIRouter()

# (summary field, label, how to show it)
CARDS = [
    ("new_leads", "New leads", "count"),
    ("lead_conversion_rate", "Lead conversion", "percent"),
    ("new_customers", "New customers", "count"),
    ("total_sales", "Sales", "money"),
    ("average_sale", "Average sale", "money"),
    ("reviews_requested", "Reviews requested", "count"),
    ("reviews_completed", "Reviews left", "count"),
    ("average_rating", "Average rating", "rating"),
    ("referrals_created", "Referral codes", "count"),
    ("referrals_used", "Referral codes used", "count"),
    ("content_created", "Content created", "count"),
    ("content_engagement_rate", "Content engagement", "percent"),
]


@router.get("/")
async def dashboard_page(
    request: Request, user: ConsoleUser, session: SessionDep, settings: SettingsDep, period: PeriodQuery
) -> HTMLResponse:
    figures = await dashboard.dashboard(session, settings, user, period.start, period.end, True)
    comparison = figures.comparison.model_dump() if figures.comparison else {}
    context = page(
        user,
        "/",
        "Dashboard",
        figures=figures,
        summary=figures.summary.model_dump(),
        comparison=comparison,
        cards=CARDS,
        charts=figures.charts.model_dump(),
    )
    return render(request, "dashboard.html", context)
