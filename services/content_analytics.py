"""Content analytics, aggregated by the database (SQLite and PostgreSQL alike) over a period of days (UTC).

- Content *of the period*: the items created in it, whatever their status.
- Engagement *of the period*: the metric rows recorded for a day in it (``recorded_on``), for any of the company's
  content, whenever created: an old post's views this month are this month's views.
- Engagement rate = (clicks + shares + comments) / views; conversion rate = conversions / views; 0 without views.
  An "average" rate divides the totals, so each item weighs by its views (an item without views cannot have a rate).
- Top performing: items with metric rows in the period, by views, then clicks (then id, so ties are stable).
- Publishing success: publications due in the period (``publish_at`` if it was scheduled, else when it was asked
  for) that ended published, out of those that ended published, failed or with an unknown outcome.
- Conversions reported on content are the leads it brought. Sales cannot be told from a content metric, so a sale
  counts when its customer came from a lead attributed to content: the lead's ``custom_fields.content_id`` names
  one of the company's items (``cont_x`` or ``content-x``). Completed sales recorded in the period count.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import ColumnElement, case, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from db.models import Content, ContentMetric, Customer, Lead, Publication, Sale, User
from schemas.analytics import Period
from schemas.content import ContentType
from schemas.content_analytics import (
    FIGURES,
    TOP_PERFORMING,
    ContentAnalytics,
    ContentAnalyticsSummary,
    ContentGenerationAnalytics,
    ContentTypeFigures,
    ConversionMetrics,
    EngagementMetrics,
    TopContent,
    TopContentEndpoints,
)
from schemas.customers import SaleStatus
from schemas.ids import API_NOUNS
from services.analytics import bounds, ratio, resolve_period

PUBLISHED = "published"
SETTLED = ("published", "failed", "unknown")
"""Publication statuses with an outcome; pending, sending, scheduled and cancelled ones have none (yet)."""
ATTRIBUTION_FIELD = "content_id"
_CONTENT_PREFIX = "cont"


@dataclass(frozen=True)
class ContentScope:
    company_id: str
    period: Period
    type: ContentType | None = None

    @property
    def window(self) -> tuple[datetime, datetime]:
        """Instants: from midnight of the first day to midnight after the last (exclusive)."""
        return bounds(self.period)

    def created(self) -> list[ColumnElement[bool]]:
        start, end = self.window
        conditions = [Content.company_id == self.company_id, Content.created_at >= start, Content.created_at < end]
        return conditions + self._of_type()

    def recorded(self) -> list[ColumnElement[bool]]:
        """Metric rows of the period; the query joins ``Content`` (the rows carry no company of their own)."""
        conditions = [
            Content.company_id == self.company_id,
            # 'YYYY-MM-DD' strings sort as the days they name.
            ContentMetric.recorded_on >= self.period.start_date.isoformat(),
            ContentMetric.recorded_on <= self.period.end_date.isoformat(),
        ]
        return conditions + self._of_type()

    def _of_type(self) -> list[ColumnElement[bool]]:
        return [] if self.type is None else [Content.type == self.type]


@dataclass(frozen=True)
class Engagement:
    views: int = 0
    clicks: int = 0
    shares: int = 0
    comments: int = 0
    conversions: int = 0

    @classmethod
    def of(cls, row: Any) -> Engagement:
        return cls(*(int(value or 0) for value in row))

    @property
    def engagement_rate(self) -> float:
        return ratio(self.clicks + self.shares + self.comments, self.views)

    @property
    def conversion_rate(self) -> float:
        return ratio(self.conversions, self.views)


def metric_sums() -> list[ColumnElement[Any]]:
    return [func.sum(getattr(ContentMetric, name)) for name in FIGURES]


async def created_by_type(session: AsyncSession, scope: ContentScope) -> dict[str, int]:
    rows = await session.execute(select(Content.type, func.count()).where(*scope.created()).group_by(Content.type))
    return {kind: int(count) for kind, count in rows}


async def _engagement_by_type(session: AsyncSession, scope: ContentScope) -> dict[str, Engagement]:
    rows = await session.execute(
        select(Content.type, *metric_sums())
        .join(ContentMetric, ContentMetric.content_id == Content.id)
        .where(*scope.recorded())
        .group_by(Content.type)
    )
    return {row[0]: Engagement.of(row[1:]) for row in rows}


async def period_engagement(session: AsyncSession, scope: ContentScope) -> Engagement:
    row = (
        await session.execute(
            select(*metric_sums()).join(Content, Content.id == ContentMetric.content_id).where(*scope.recorded())
        )
    ).one()
    return Engagement.of(row)


@dataclass(frozen=True)
class _Top:
    id: str
    title: str | None
    type: str
    figures: Engagement


async def _top_performing(session: AsyncSession, scope: ContentScope) -> list[_Top]:
    views, clicks, *rest = metric_sums()
    rows = await session.execute(
        select(Content.id, Content.title, Content.type, views, clicks, *rest)
        .join(ContentMetric, ContentMetric.content_id == Content.id)
        .where(*scope.recorded())
        .group_by(Content.id, Content.title, Content.type)
        .order_by(views.desc(), clicks.desc(), Content.id)
        .limit(TOP_PERFORMING)
    )
    return [_Top(row[0], row[1], row[2], Engagement.of(row[3:])) for row in rows]


def _type_figures(kind: ContentType, count: int, figures: Engagement) -> ContentTypeFigures:
    return ContentTypeFigures(
        type=kind,
        count=count,
        views=figures.views,
        clicks=figures.clicks,
        shares=figures.shares,
        conversions=figures.conversions,
        engagement_rate=figures.engagement_rate,
        conversion_rate=figures.conversion_rate,
    )


async def content_analytics(
    session: AsyncSession, actor: User, start: date | None, end: date | None, kind: ContentType | None
) -> ContentAnalytics:
    """``/v1`` content figures for the period, optionally of one type (see the module docstring)."""
    scope = ContentScope(actor.company_id, resolve_period(start, end), kind)
    created = await created_by_type(session, scope)
    engagement = await _engagement_by_type(session, scope)
    total = await period_engagement(session, scope)
    by_type = [
        _type_figures(kind, created.get(kind, 0), engagement.get(kind, Engagement()))
        for kind in ContentType
        if kind in created or kind in engagement
    ]
    return ContentAnalytics(
        period=scope.period,
        summary=ContentAnalyticsSummary(
            total_content=sum(created.values()),
            total_views=total.views,
            total_clicks=total.clicks,
            total_shares=total.shares,
            total_conversions=total.conversions,
            average_engagement_rate=total.engagement_rate,
            average_conversion_rate=total.conversion_rate,
        ),
        by_type=by_type,
        top_performing=[
            TopContent(
                id=top.id,
                title=top.title,
                type=ContentType(top.type),
                views=top.figures.views,
                clicks=top.figures.clicks,
                shares=top.figures.shares,
                conversions=top.figures.conversions,
                engagement_rate=top.figures.engagement_rate,
                conversion_rate=top.figures.conversion_rate,
            )
            for top in await _top_performing(session, scope)
        ],
    )


async def _publishing_success_rate(session: AsyncSession, scope: ContentScope) -> float:
    start, end = scope.window
    due = func.coalesce(Publication.publish_at, Publication.created_at)
    published, settled = (
        await session.execute(
            select(func.count(case((Publication.status == PUBLISHED, Publication.id))), func.count()).where(
                Publication.company_id == scope.company_id,
                Publication.status.in_(SETTLED),
                due >= start,
                due < end,
            )
        )
    ).one()
    return ratio(int(published), int(settled))


def attributed_content_id() -> ColumnElement[str]:
    """The content id a lead is attributed to (its ``custom_fields.content_id``), in the canonical spelling."""
    # ``content-x`` (the /api spelling) and ``cont_x`` name the same item; random id parts hold no "-".
    return func.replace(
        Lead.custom_fields[ATTRIBUTION_FIELD].as_string(), f"{API_NOUNS[_CONTENT_PREFIX]}-", f"{_CONTENT_PREFIX}_"
    )


async def _attributed_sales(session: AsyncSession, scope: ContentScope) -> int:
    start, end = scope.window
    of_content = (
        select(Content.id).where(Content.company_id == scope.company_id, Content.id == attributed_content_id()).exists()
    )
    count = await session.scalar(
        select(func.count(Sale.id))
        .join(Customer, Customer.id == Sale.customer_id)
        .join(Lead, Lead.id == Customer.lead_id)
        .where(
            Sale.company_id == scope.company_id,
            Sale.status == SaleStatus.completed,
            Sale.created_at >= start,
            Sale.created_at < end,
            Lead.company_id == scope.company_id,
            of_content,
        )
    )
    return int(count or 0)


async def content_generation_analytics(
    session: AsyncSession, actor: User, start: date | None, end: date | None
) -> ContentGenerationAnalytics:
    """``/api`` content figures for the period (see the module docstring)."""
    scope = ContentScope(actor.company_id, resolve_period(start, end))
    created = {kind.value: 0 for kind in ContentType}
    created.update(await created_by_type(session, scope))
    engagement = await period_engagement(session, scope)
    return ContentGenerationAnalytics(
        content_created=created,
        publishing_success_rate=await _publishing_success_rate(session, scope),
        engagement_metrics=EngagementMetrics(
            views=engagement.views, clicks=engagement.clicks, shares=engagement.shares
        ),
        conversion_metrics=ConversionMetrics(
            leads=engagement.conversions, sales=await _attributed_sales(session, scope)
        ),
        top_performing_content=[
            TopContentEndpoints(
                id=top.id,
                title=top.title,
                type=ContentType(top.type),
                views=top.figures.views,
                clicks=top.figures.clicks,
            )
            for top in await _top_performing(session, scope)
        ],
    )
