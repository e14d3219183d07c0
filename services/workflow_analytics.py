"""Workflow analytics: the runs started in a period, per workflow config (or per type), and what they brought.

Aggregated by the database (SQLite and PostgreSQL alike). The *cohort* is the runs started in the period; each
figure follows those runs whenever their effects happened, except revenue, which counts the completed sales
recorded in the period:

- successful = completed or stopped (ended early on purpose: the lead replied or converted, the sale was
  refunded...); failed = failed; pending and running runs count in ``runs_total`` only. success rate =
  successful / (successful + failed).
- lead nurturing: the leads the runs followed up (``trigger_id``); conversion rate = those now converted;
  response time = from a run's first sent (or recorded) message to its lead's first inbound interaction after it.
- review & referral: the sales the runs asked about; completion = a review left for the sale (whenever); the
  referral codes the runs issued (``issue_key`` names the run) and how many were used.
- content generation: the content the runs wrote or published, with every day of metrics recorded for it.
- revenue: a completed sale recorded in the period counts for a run's workflow when its customer came from a
  converted lead the run followed up, when it redeemed a referral code the run issued, or when its customer came
  from a lead attributed to content the run wrote (``custom_fields.content_id``). A sale counts once per
  workflow, and once in the totals.
- time saved (totals): the messages the runs sent and the content items they wrote, at the ROI assumptions.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import Any

from sqlalchemy import ColumnElement, Select, case, func, literal, null, select, union, union_all
from sqlalchemy.engine import Result
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.selectable import CTE, Subquery

from core.config import Settings
from db.models import (
    Content,
    ContentMetric,
    Customer,
    Interaction,
    Lead,
    MessageDelivery,
    Referral,
    Review,
    Sale,
    User,
    WorkflowConfig,
    WorkflowRun,
)
from schemas.analytics import Period
from schemas.customers import SaleStatus
from schemas.dashboard import (
    WORKFLOW_LABELS,
    ContentGenerationFigures,
    LeadNurturingFigures,
    ReviewReferralFigures,
    WorkflowAnalytics,
    WorkflowFigures,
    WorkflowTotals,
)
from schemas.leads import Direction, LeadStatus
from schemas.messaging import DELIVERED
from schemas.reviews import RECORDED_REVIEW
from schemas.workflow_configs import WorkflowType
from schemas.workflow_runs import RunStatus
from services import roi
from services.analytics import SECONDS_PER_HOUR, average, bounds, epoch_seconds, ratio, resolve_period
from services.content_analytics import Engagement, attributed_content_id, metric_sums
from services.review_analytics import Window

SUCCESSFUL = (RunStatus.completed, RunStatus.stopped)
REFERRAL_KEY_SUFFIX = "/referral"
"""A workflow-issued referral's ``issue_key`` is ``{workflow_id}/{run_id}/referral``."""

Key = tuple[Any, ...]
"""The grouping of a figure: (workflow_type, workflow_config_id) per config, or (workflow_type,) per type."""
PER_CONFIG = (WorkflowRun.workflow_type, WorkflowRun.workflow_config_id)
PER_TYPE = (WorkflowRun.workflow_type,)


def completed_sales(window: Window) -> list[ColumnElement[bool]]:
    return [
        Sale.company_id == window.company_id,
        Sale.status == SaleStatus.completed,
        *window.contains(Sale.created_at),
    ]


@dataclass(frozen=True)
class Cohort:
    """The runs of one company started in a window, optionally of one type, grouped by ``keys``."""

    window: Window
    workflow_type: WorkflowType | None = None
    keys: tuple[Any, ...] = PER_CONFIG

    @property
    def company_id(self) -> str:
        return self.window.company_id

    def runs(self, kind: WorkflowType | None = None) -> list[ColumnElement[bool]]:
        conditions = [WorkflowRun.company_id == self.company_id, *self.window.contains(WorkflowRun.started_at)]
        for wanted in {self.workflow_type, kind} - {None}:
            conditions.append(WorkflowRun.workflow_type == wanted)
        return conditions


def _keys_of(table: Subquery | CTE, cohort: Cohort) -> list[Any]:
    return [table.c[column.key] for column in cohort.keys]


def _key(row: Any, width: int) -> Key:
    return tuple(row[:width])


@dataclass
class Figures:
    """Raw counts of one group (a config or a type); the rates are derived from them."""

    runs: int = 0
    successful: int = 0
    failed: int = 0
    leads: int = 0
    converted: int = 0
    messages: int = 0
    answered: int = 0
    response_seconds: float = 0.0
    sales_asked: int = 0
    reviews_left: int = 0
    rated: int = 0
    rating_total: int = 0
    referrals: int = 0
    referrals_used: int = 0
    engagement: Engagement = field(default_factory=Engagement)
    revenue: Decimal = Decimal(0)

    @property
    def success_rate(self) -> float:
        return ratio(self.successful, self.successful + self.failed)

    @property
    def conversion_rate(self) -> float:
        return ratio(self.converted, self.leads)

    @property
    def review_completion_rate(self) -> float:
        return ratio(self.reviews_left, self.sales_asked)

    @property
    def average_rating(self) -> float | None:
        return round(self.rating_total / self.rated, 2) if self.rated else None


async def _runs(session: AsyncSession, cohort: Cohort, groups: dict[Key, Figures]) -> None:
    rows = await session.execute(
        select(
            *cohort.keys,
            func.count(),
            func.count(case((WorkflowRun.status.in_(SUCCESSFUL), WorkflowRun.id))),
            func.count(case((WorkflowRun.status == RunStatus.failed, WorkflowRun.id))),
        )
        .where(*cohort.runs())
        .group_by(*cohort.keys)
    )
    width = len(cohort.keys)
    for row in rows:
        groups[_key(row, width)] = Figures(runs=int(row[width]), successful=int(row[width + 1]), failed=int(row[-1]))


def _subjects(cohort: Cohort, kind: WorkflowType) -> Subquery:
    """Each group's distinct records its runs are about (leads, sales or content: ``trigger_id``)."""
    return (
        select(*cohort.keys, WorkflowRun.trigger_id.label("subject_id"))
        .where(*cohort.runs(kind), WorkflowRun.trigger_id.is_not(None))
        .distinct()
        .subquery()
    )


async def _grouped(session: AsyncSession, statement: Select[Any], width: int) -> dict[Key, Any]:
    return {_key(row, width): row[width:] for row in await session.execute(statement)}


async def _leads(session: AsyncSession, cohort: Cohort, groups: dict[Key, Figures]) -> None:
    subjects = _subjects(cohort, WorkflowType.lead_nurturing)
    keys = _keys_of(subjects, cohort)
    rows = await _grouped(
        session,
        select(*keys, func.count(), func.count(case((Lead.status == LeadStatus.converted, Lead.id))))
        .select_from(subjects)
        .join(Lead, (Lead.id == subjects.c.subject_id) & (Lead.company_id == cohort.company_id))
        .group_by(*keys),
        len(keys),
    )
    for key, (leads, converted) in rows.items():
        groups[key].leads, groups[key].converted = int(leads), int(converted)


async def _messages(session: AsyncSession, cohort: Cohort, groups: dict[Key, Figures]) -> None:
    """Every run's delivered messages (the time saved) and, for lead nurturing, the response time: one pass over
    the cohort's messages, from ix_message_deliveries_run_status alone."""
    sent_at = func.coalesce(MessageDelivery.sent_at, MessageDelivery.created_at)
    per_run = (
        select(
            *cohort.keys,
            WorkflowRun.trigger_id.label("lead_id"),
            func.min(sent_at).label("first_out"),
            func.count().label("messages"),
        )
        .join(MessageDelivery, MessageDelivery.workflow_run_id == WorkflowRun.id)
        .where(*cohort.runs(), MessageDelivery.status.in_(sorted(DELIVERED)))
        .group_by(*cohort.keys, WorkflowRun.id, WorkflowRun.trigger_id)
        .subquery()
    )
    # One index probe per lead-nurturing run (ix_interactions_lead_direction_created): its lead's first inbound
    # interaction after the run's first message. Joined as sets instead, PostgreSQL read every inbound interaction.
    first_in = case(
        (
            per_run.c.workflow_type == WorkflowType.lead_nurturing,
            select(func.min(Interaction.created_at))
            .where(
                Interaction.lead_id == per_run.c.lead_id,
                Interaction.company_id == cohort.company_id,
                Interaction.direction == Direction.inbound,
                Interaction.created_at > per_run.c.first_out,
            )
            .scalar_subquery(),
        )
    )
    # Materialized: inlined, PostgreSQL would run the probe once per reference to first_in.
    first_reply = (
        select(*_keys_of(per_run, cohort), per_run.c.first_out, per_run.c.messages, first_in.label("first_in"))
        .cte("first_reply")
        .prefix_with("MATERIALIZED", dialect="postgresql")
    )
    keys = _keys_of(first_reply, cohort)
    rows = await _grouped(
        session,
        select(
            *keys,
            func.sum(first_reply.c.messages),
            func.count(first_reply.c.first_in),
            func.sum(epoch_seconds(first_reply.c.first_in) - epoch_seconds(first_reply.c.first_out)),
        ).group_by(*keys),
        len(keys),
    )
    for key, (messages, answered, seconds) in rows.items():
        groups[key].messages = int(messages)
        groups[key].answered, groups[key].response_seconds = int(answered), float(seconds or 0)


async def _reviews(session: AsyncSession, cohort: Cohort, groups: dict[Key, Figures]) -> None:
    subjects = _subjects(cohort, WorkflowType.review_referral)
    keys = _keys_of(subjects, cohort)
    left = Review.status.in_(sorted(RECORDED_REVIEW))
    rows = await _grouped(
        session,
        select(
            *keys,
            func.count(),
            func.count(case((left, Review.id))),
            func.count(case((left, Review.rating))),
            func.sum(case((left, Review.rating))),
        )
        .select_from(subjects)
        .outerjoin(Review, (Review.sale_id == subjects.c.subject_id) & (Review.company_id == cohort.company_id))
        .group_by(*keys),
        len(keys),
    )
    for key, (asked, reviews_left, rated, rating_total) in rows.items():
        figures = groups[key]
        figures.sales_asked, figures.reviews_left = int(asked), int(reviews_left)
        figures.rated, figures.rating_total = int(rated), int(rating_total or 0)


def _issued_by_run() -> ColumnElement[bool]:
    return Referral.issue_key == WorkflowRun.temporal_workflow_id + "/" + WorkflowRun.id + REFERRAL_KEY_SUFFIX


async def _referrals(session: AsyncSession, cohort: Cohort, groups: dict[Key, Figures]) -> None:
    rows = await _grouped(
        session,
        select(*cohort.keys, func.count(), func.count(case((Referral.times_used > 0, Referral.id))))
        .join(Referral, _issued_by_run())
        .where(*cohort.runs(WorkflowType.review_referral), Referral.company_id == cohort.company_id)
        .group_by(*cohort.keys),
        len(cohort.keys),
    )
    for key, (issued, used) in rows.items():
        groups[key].referrals, groups[key].referrals_used = int(issued), int(used)


async def _content(session: AsyncSession, cohort: Cohort, groups: dict[Key, Figures]) -> None:
    subjects = _subjects(cohort, WorkflowType.content_generation)
    keys = _keys_of(subjects, cohort)
    rows = await _grouped(
        session,
        select(*keys, *metric_sums())
        .select_from(subjects)
        .join(Content, (Content.id == subjects.c.subject_id) & (Content.company_id == cohort.company_id))
        .join(ContentMetric, ContentMetric.content_id == Content.id)
        .group_by(*keys),
        len(keys),
    )
    for key, sums in rows.items():
        groups[key].engagement = Engagement.of(sums)


def _attributions(cohort: Cohort) -> CTE:
    """(group, sale, amount) for every completed sale of the period a run of the group brought, without repeats."""
    sale_columns = (*cohort.keys, Sale.id.label("sale_id"), Sale.amount.label("amount"))
    followed_up = (
        select(*sale_columns)
        .join(Lead, (Lead.id == WorkflowRun.trigger_id) & (Lead.status == LeadStatus.converted))
        .join(Customer, Customer.lead_id == Lead.id)
        .join(Sale, Sale.customer_id == Customer.id)
        .where(
            *cohort.runs(WorkflowType.lead_nurturing),
            Lead.company_id == cohort.company_id,
            *completed_sales(cohort.window),
        )
    )
    referred = (
        select(*sale_columns)
        .join(Referral, _issued_by_run())
        .join(Sale, Sale.referral_id == Referral.id)
        .where(*cohort.runs(WorkflowType.review_referral), *completed_sales(cohort.window))
    )
    from_content = (
        select(*sale_columns)
        .join(Lead, (attributed_content_id() == WorkflowRun.trigger_id) & (Lead.company_id == cohort.company_id))
        .join(Customer, Customer.lead_id == Lead.id)
        .join(Sale, Sale.customer_id == Customer.id)
        .where(*cohort.runs(WorkflowType.content_generation), *completed_sales(cohort.window))
    )
    return union(followed_up, referred, from_content).cte("attributions")


async def _revenue(session: AsyncSession, cohort: Cohort, groups: dict[Key, Figures]) -> Decimal:
    """Fills each group's revenue; returns the total with each sale once. One statement, so that the attributions
    are worked out once for both."""
    attributions = _attributions(cohort)
    keys = _keys_of(attributions, cohort)
    per_group = select(literal(False).label("is_total"), *keys, func.sum(attributions.c.amount)).group_by(*keys)
    sales = select(attributions.c.sale_id, attributions.c.amount).distinct().subquery()
    overall = select(literal(True), *(null() for _ in keys), func.sum(sales.c.amount))
    total = Decimal(0)
    rows: Result[Any] = await session.execute(union_all(per_group, overall))
    for row in rows:
        amount = Decimal(row[-1] or 0)
        if row[0]:
            total = amount
        else:
            groups[_key(row[1:], len(keys))].revenue = amount
    return total


async def _content_written(session: AsyncSession, cohort: Cohort) -> int:
    """Content items the cohort's runs wrote."""
    subjects = _subjects(cohort, WorkflowType.content_generation)
    content = await session.scalar(
        select(func.count(func.distinct(subjects.c.subject_id)))
        .select_from(subjects)
        .join(Content, (Content.id == subjects.c.subject_id) & (Content.company_id == cohort.company_id))
    )
    return int(content or 0)


async def rates(session: AsyncSession, cohort: Cohort) -> dict[Key, Figures]:
    """Every group's runs and what they converted (leads, reviews, content engagement): what the success and
    conversion rates are worked out from, without the messages, referrals and revenue that ``figures`` adds."""
    groups: dict[Key, Figures] = {}
    await _runs(session, cohort, groups)
    for fill in (_leads, _reviews, _content):
        await fill(session, cohort, groups)
    return groups


async def figures(session: AsyncSession, cohort: Cohort) -> tuple[dict[Key, Figures], Decimal]:
    """Every group's figures and the revenue total (each sale once)."""
    groups = await rates(session, cohort)
    for fill in (_messages, _referrals):
        await fill(session, cohort, groups)
    return groups, await _revenue(session, cohort, groups)


def money(amount: Decimal) -> float:
    """To cents, for the JSON answer."""
    return float(round(amount, 2))


def _present(key: Key, name: str, group: Figures) -> WorkflowFigures:
    kind, config_id = key
    common: dict[str, Any] = {
        "id": config_id,
        "name": name,
        "runs_total": group.runs,
        "runs_successful": group.successful,
        "runs_failed": group.failed,
        "success_rate": group.success_rate,
        "estimated_revenue_impact": money(group.revenue),
    }
    if kind == WorkflowType.lead_nurturing:
        return LeadNurturingFigures(
            type=WorkflowType.lead_nurturing,
            conversion_rate=group.conversion_rate,
            average_response_time_hours=average(group.response_seconds, group.answered, SECONDS_PER_HOUR),
            **common,
        )
    if kind == WorkflowType.review_referral:
        return ReviewReferralFigures(
            type=WorkflowType.review_referral,
            review_completion_rate=group.review_completion_rate,
            average_rating=group.average_rating,
            referral_usage_rate=ratio(group.referrals_used, group.referrals),
            **common,
        )
    return ContentGenerationFigures(
        type=WorkflowType.content_generation,
        average_engagement_rate=group.engagement.engagement_rate,
        average_conversion_rate=group.engagement.conversion_rate,
        **common,
    )


async def _names(session: AsyncSession, company_id: str, keys: list[Key]) -> dict[Key, str]:
    config_ids = sorted({config_id for _, config_id in keys if config_id is not None})
    rows = await session.execute(
        select(WorkflowConfig.id, WorkflowConfig.name).where(
            WorkflowConfig.company_id == company_id, WorkflowConfig.id.in_(config_ids)
        )
    )
    names: dict[str, str] = {config_id: name for config_id, name in rows}
    # Runs started without a config (content asked for by hand, a review requested by hand) share one line.
    return {
        (kind, config_id): names.get(config_id, str(config_id)) if config_id else f"{WORKFLOW_LABELS[kind]} (no config)"
        for kind, config_id in keys
    }


async def workflow_analytics(
    session: AsyncSession,
    settings: Settings,
    actor: User,
    workflow_type: WorkflowType | None,
    start: date | None,
    end: date | None,
) -> WorkflowAnalytics:
    """``/v1`` per-workflow figures for the runs started in the period (see the module docstring)."""
    period = resolve_period(start, end)
    cohort = Cohort(Window(actor.company_id, *bounds(period)), workflow_type)
    groups, revenue = await figures(session, cohort)
    type_order = list(WorkflowType)
    keys = sorted(groups, key=lambda key: (type_order.index(WorkflowType(key[0])), key[1] is None, key[1] or ""))
    names = await _names(session, actor.company_id, keys)
    messages = sum(group.messages for group in groups.values())
    content = await _content_written(session, cohort)
    successful = sum(group.successful for group in groups.values())
    failed = sum(group.failed for group in groups.values())
    assumptions = await roi.assumptions(session, actor.company_id, settings)
    return WorkflowAnalytics(
        period=period,
        workflows=[_present(key, names[key], groups[key]) for key in keys],
        totals=WorkflowTotals(
            runs_total=sum(group.runs for group in groups.values()),
            runs_successful=successful,
            runs_failed=failed,
            success_rate=ratio(successful, successful + failed),
            estimated_revenue_impact=money(revenue),
            estimated_time_saved_hours=round(roi.hours_saved(assumptions, messages, content), 2),
        ),
    )


def period_cohort(company_id: str, period: Period) -> Cohort:
    """The runs of the period grouped per workflow type, for the dashboard's workflow_performance chart."""
    return Cohort(Window(company_id, *bounds(period)), keys=PER_TYPE)
