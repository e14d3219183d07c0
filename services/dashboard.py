"""The dashboard: one period's figures across leads, sales, reviews, referrals, content and automations.

Aggregated by the database (SQLite and PostgreSQL alike), days in UTC, both ends of the period included. Each
row counts in the period its own milestone falls in: a lead when created (its conversion whenever it happened),
a customer when created, a sale when recorded (completed ones only), a review request when sent, a review when
left, a referral code when created (its uses whenever), content when created, content metrics for their day.
Review and content figures are those of the review and content analytics, so the endpoints agree.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any

from sqlalchemy import ColumnElement, and_, case, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from core.config import Settings
from db.models import Customer, Lead, MessageDelivery, Referral, Sale, User, WorkflowRun
from schemas.analytics import Period
from schemas.dashboard import (
    WORKFLOW_LABELS,
    Change,
    ChangeType,
    Chart,
    ChartDataset,
    DashboardAnalytics,
    DashboardCharts,
    DashboardComparison,
    DashboardSummary,
    Number,
    Roi,
)
from schemas.leads import LeadStatus
from schemas.messaging import DELIVERED
from schemas.workflow_configs import WorkflowType
from services import roi, workflow_analytics
from services.analytics import bounds, ratio, resolve_period
from services.content_analytics import ContentScope, created_by_type, period_engagement
from services.periods import days_of, previous_period, utc_day, zero_filled
from services.review_analytics import Window, review_referral_analytics
from services.workflow_analytics import completed_sales, money

CHANGE_PLACES = 4


@dataclass(frozen=True)
class _Days:
    """Per-day figures of one table (UTC day -> one value per column), read in one pass over the period and the
    previous one: the headline, the comparison and the charts are all sums of these days."""

    rows: dict[str, tuple[Any, ...]]

    def series(self, period: Period, column: int) -> list[Any]:
        return zero_filled(period, {day: values[column] for day, values in self.rows.items()})

    def total(self, period: Period, column: int) -> Any:
        return sum(self.series(period, column))


async def _per_day(session: AsyncSession, moment: Any, values: list[Any], *conditions: ColumnElement[bool]) -> _Days:
    day = utc_day(moment)
    rows = await session.execute(select(day, *values).where(*conditions).group_by(day))
    # A sum over no matching rows is NULL: 0 here, as on a day without rows.
    return _Days({row[0]: tuple(0 if value is None else value for value in row[1:]) for row in rows})


@dataclass(frozen=True)
class _Tables:
    """The rows of leads, customers and sales behind the headline, the comparison, the charts and the revenue."""

    leads: _Days
    """Created that day: (leads, of them now converted)."""
    conversions: _Days
    """(leads converted that day,), over the period only."""
    customers: _Days
    """(customers created that day,)."""
    sales: _Days
    """Completed sales recorded that day: (sales, amount, amount of those an automation brought)."""


def _brought_by_automation(window: Window) -> ColumnElement[bool]:
    """A completed sale of the period by a customer from a converted lead that an automation followed up, or that
    redeemed a referral code."""
    followed_up = select(WorkflowRun.id).where(
        WorkflowRun.company_id == window.company_id,
        WorkflowRun.workflow_type == WorkflowType.lead_nurturing,
        WorkflowRun.trigger_id == Lead.id,
    )
    from_followed_up_lead = (
        select(Customer.id)
        .join(Lead, Lead.id == Customer.lead_id)
        .where(
            Customer.id == Sale.customer_id,
            Lead.company_id == window.company_id,
            Lead.status == LeadStatus.converted,
            followed_up.exists(),
        )
    )
    # The period's bound first: a CASE condition is evaluated in order, so no previous-period sale is looked up.
    return and_(Sale.created_at >= window.start, or_(Sale.referral_id.is_not(None), from_followed_up_lead.exists()))


async def _tables(session: AsyncSession, window: Window, span: Window) -> _Tables:
    company_id = window.company_id
    leads = await _per_day(
        session,
        Lead.created_at,
        [func.count(), func.count(case((Lead.status == LeadStatus.converted, Lead.id)))],
        Lead.company_id == company_id,
        *span.contains(Lead.created_at),
    )
    conversions = await _per_day(
        session,
        Lead.converted_at,
        [func.count()],
        Lead.company_id == company_id,
        Lead.status == LeadStatus.converted,
        *window.contains(Lead.converted_at),
    )
    customers = await _per_day(
        session,
        Customer.created_at,
        [func.count()],
        Customer.company_id == company_id,
        *span.contains(Customer.created_at),
    )
    sales = await _per_day(
        session,
        Sale.created_at,
        [func.count(), func.sum(Sale.amount), func.sum(case((_brought_by_automation(window), Sale.amount)))],
        *completed_sales(span),
    )
    return _Tables(leads, conversions, customers, sales)


@dataclass(frozen=True)
class _Headline:
    """The figures the dashboard compares with the previous period."""

    new_leads: int
    converted_leads: int
    new_customers: int
    sales: int
    sales_total: Decimal

    @classmethod
    def of(cls, tables: _Tables, period: Period) -> _Headline:
        return cls(
            new_leads=int(tables.leads.total(period, 0)),
            converted_leads=int(tables.leads.total(period, 1)),
            new_customers=int(tables.customers.total(period, 0)),
            sales=int(tables.sales.total(period, 0)),
            sales_total=Decimal(tables.sales.total(period, 1)),
        )

    @property
    def lead_conversion_rate(self) -> float:
        return ratio(self.converted_leads, self.new_leads)

    @property
    def total_sales(self) -> float:
        return money(self.sales_total)


async def _referral_codes(session: AsyncSession, window: Window) -> tuple[int, int]:
    created, used = (
        await session.execute(
            select(func.count(), func.count(case((Referral.times_used > 0, Referral.id)))).where(
                Referral.company_id == window.company_id, *window.contains(Referral.created_at)
            )
        )
    ).one()
    return int(created), int(used)


def _change(value: Number, previous: Number) -> Change:
    change_type: ChangeType = "positive" if value > previous else "negative" if value < previous else "neutral"
    change = round((value - previous) / previous, CHANGE_PLACES) if previous else None
    return Change(value=value, previous=previous, change=change, change_type=change_type)


def _comparison(now: _Headline, before: _Headline) -> DashboardComparison:
    return DashboardComparison(
        new_leads=_change(now.new_leads, before.new_leads),
        lead_conversion_rate=_change(now.lead_conversion_rate, before.lead_conversion_rate),
        new_customers=_change(now.new_customers, before.new_customers),
        total_sales=_change(now.total_sales, before.total_sales),
    )


def _leads_chart(tables: _Tables, period: Period) -> Chart:
    return Chart(
        labels=days_of(period),
        datasets=[
            ChartDataset(label="New Leads", data=[int(count) for count in tables.leads.series(period, 0)]),
            ChartDataset(label="Converted Leads", data=[int(count) for count in tables.conversions.series(period, 0)]),
        ],
    )


def _sales_chart(tables: _Tables, period: Period) -> Chart:
    amounts = tables.sales.series(period, 1)
    return Chart(
        labels=days_of(period),
        datasets=[ChartDataset(label="Sales Amount", data=[money(Decimal(amount)) for amount in amounts])],
    )


async def _workflow_chart(session: AsyncSession, company_id: str, period: Period) -> Chart:
    """Per type with runs started in the period; the conversion rate is each type's own: leads converted, reviews
    left for the sales asked about, content conversions per view."""
    groups = await workflow_analytics.rates(session, workflow_analytics.period_cohort(company_id, period))
    present = [kind for kind in WorkflowType if (kind,) in groups]
    conversion = {
        WorkflowType.lead_nurturing: lambda figures: figures.conversion_rate,
        WorkflowType.review_referral: lambda figures: figures.review_completion_rate,
        WorkflowType.content_generation: lambda figures: figures.engagement.conversion_rate,
    }
    return Chart(
        labels=[WORKFLOW_LABELS[kind] for kind in present],
        datasets=[
            ChartDataset(label="Success Rate", data=[groups[(kind,)].success_rate for kind in present]),
            ChartDataset(label="Conversion Rate", data=[conversion[kind](groups[(kind,)]) for kind in present]),
        ],
    )


async def _automated_messages(session: AsyncSession, window: Window) -> int:
    # "recorded" messages (no provider configured) were written by the automation all the same. A message counts
    # when it was sent, or when it was written if it has no send time: coalesce(sent_at, created_at) in the window,
    # counted as two ranges so that each is read from its own index (the sent ones from the index alone) rather
    # than from every row of the table.
    sent_at, created_at = MessageDelivery.sent_at, MessageDelivery.created_at
    automated = [
        MessageDelivery.company_id == window.company_id,
        MessageDelivery.workflow_run_id.is_not(None),
        MessageDelivery.status.in_(sorted(DELIVERED)),
    ]
    sent = select(func.count()).where(*automated, *window.contains(sent_at)).scalar_subquery()
    unsent = select(func.count()).where(*automated, sent_at.is_(None), *window.contains(created_at)).scalar_subquery()
    count = await session.scalar(select(sent + unsent))
    return int(count or 0)


async def _roi(
    session: AsyncSession, settings: Settings, window: Window, revenue: Decimal, content_created: int
) -> Roi:
    assumptions = await roi.assumptions(session, window.company_id, settings)
    messages = await _automated_messages(session, window)
    hours = roi.hours_saved(assumptions, messages, content_created)
    time_value = Decimal(str(hours)) * Decimal(str(assumptions.hourly_rate))
    return Roi(
        estimated_revenue_impact=money(revenue),
        estimated_time_saved_hours=round(hours, 2),
        estimated_time_value=money(time_value),
        total_value=money(revenue + time_value),
        automated_messages=messages,
        assumptions=assumptions,
    )


async def dashboard(
    session: AsyncSession,
    settings: Settings,
    actor: User,
    start: date | None,
    end: date | None,
    compare_to_previous: bool = True,
) -> DashboardAnalytics:
    """``/v1`` dashboard for the period (see the module docstring for what counts when)."""
    period = resolve_period(start, end)
    window = Window(actor.company_id, *bounds(period))
    previous = previous_period(period) if compare_to_previous else None
    # The previous period ends the day before this one starts: one range covers both.
    span = Window(actor.company_id, bounds(previous)[0], window.end) if previous else window
    tables = await _tables(session, window, span)
    headline = _Headline.of(tables, period)
    reviews = await review_referral_analytics(session, actor, period.start_date, period.end_date)
    referrals_created, referrals_used = await _referral_codes(session, window)
    content_scope = ContentScope(actor.company_id, period)
    content_created = sum((await created_by_type(session, content_scope)).values())
    engagement = await period_engagement(session, content_scope)
    return DashboardAnalytics(
        period=period,
        summary=DashboardSummary(
            new_leads=headline.new_leads,
            lead_conversion_rate=headline.lead_conversion_rate,
            new_customers=headline.new_customers,
            total_sales=headline.total_sales,
            average_sale=money(headline.sales_total / headline.sales) if headline.sales else None,
            reviews_requested=reviews.review_requests.sent,
            reviews_completed=reviews.review_requests.completed,
            average_rating=reviews.average_rating,
            referrals_created=referrals_created,
            referrals_used=referrals_used,
            content_created=content_created,
            content_engagement_rate=engagement.engagement_rate,
        ),
        comparison=_comparison(headline, _Headline.of(tables, previous)) if previous else None,
        charts=DashboardCharts(
            leads_over_time=_leads_chart(tables, period),
            sales_over_time=_sales_chart(tables, period),
            workflow_performance=await _workflow_chart(session, actor.company_id, period),
        ),
        roi=await _roi(session, settings, window, Decimal(tables.sales.total(period, 2)), content_created),
    )
