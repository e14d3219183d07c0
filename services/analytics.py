"""Lead analytics, aggregated by the database (SQLite and PostgreSQL alike) over a period of creation dates.

The leads of a period are those created in it; their conversions and replies count whenever they happened.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Float, case, func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.functions import FunctionElement

from db.models import Interaction, Lead, User
from schemas.analytics import (
    ConversionFunnel,
    LeadAnalytics,
    LeadNurturingAnalytics,
    LeadSummary,
    Period,
    SourceFigures,
    StatusCount,
)
from schemas.leads import Direction, InteractionType, LeadSource, LeadStatus
from services.errors import InvalidField

DEFAULT_PERIOD_DAYS = 30
SECONDS_PER_HOUR = 3600
SECONDS_PER_DAY = 86400

# Statuses in the order a lead moves through them; "lost" is off the path (see FUNNEL_STAGES).
_PROGRESSION = [LeadStatus.new, LeadStatus.contacted, LeadStatus.engaged, LeadStatus.qualified, LeadStatus.converted]
FUNNEL_STAGES = [LeadStatus.new, LeadStatus.contacted, LeadStatus.qualified, LeadStatus.converted]
ENGAGED_OR_BEYOND = {LeadStatus.engaged.value, LeadStatus.qualified.value, LeadStatus.converted.value}


class epoch_seconds(FunctionElement[float]):  # noqa: N801 (reads as the SQL function it compiles to)
    """Seconds since 1970 of a datetime expression; the database computes it in its own dialect."""

    type = Float()
    inherit_cache = True


@compiles(epoch_seconds)
def _epoch_seconds_standard(element: epoch_seconds, compiler: SQLCompiler, **kw: Any) -> str:
    return f"EXTRACT(EPOCH FROM {compiler.process(element.clauses, **kw)})"


@compiles(epoch_seconds, "sqlite")
def _epoch_seconds_sqlite(element: epoch_seconds, compiler: SQLCompiler, **kw: Any) -> str:
    # julianday counts days since 4714 BC; 2440587.5 is 1970-01-01T00:00Z on that scale.
    return f"((julianday({compiler.process(element.clauses, **kw)}) - 2440587.5) * {SECONDS_PER_DAY}.0)"


def resolve_period(start: date | None, end: date | None, today: date | None = None) -> Period:
    """Default: the 30 days ending today (UTC), both ends included."""
    end = end or today or datetime.now(UTC).date()
    start = start or end - timedelta(days=DEFAULT_PERIOD_DAYS - 1)
    if start > end:
        raise InvalidField("start_date", f"start_date {start} is after end_date {end}")
    return Period(start_date=start, end_date=end)


def bounds(period: Period) -> tuple[datetime, datetime]:
    start = datetime.combine(period.start_date, time.min, tzinfo=UTC)
    return start, datetime.combine(period.end_date + timedelta(days=1), time.min, tzinfo=UTC)


def ratio(part: int, whole: int) -> float:
    return round(part / whole, 4) if whole else 0.0


def average(total_seconds: float, count: int, unit_seconds: int) -> float | None:
    return round(total_seconds / count / unit_seconds, 2) if count else None


def _cohort(actor: User, period: Period, source: LeadSource | None = None) -> list[ColumnElement[bool]]:
    start, end = bounds(period)
    conditions = [Lead.company_id == actor.company_id, Lead.created_at >= start, Lead.created_at < end]
    if source is not None:
        conditions.append(Lead.source == source)
    return conditions


@dataclass(frozen=True)
class _SourceRow:
    source: str
    count: int
    converted: int
    conversion_seconds: float
    """Summed over the converted leads whose conversion time is known."""
    timed: int


@dataclass(frozen=True)
class _Cohort:
    """The period's leads counted in one pass, per (status, source)."""

    by_status: dict[str, int]
    sources: list[_SourceRow]


async def _counted(session: AsyncSession, cohort: list[ColumnElement[bool]]) -> _Cohort:
    converted = Lead.status == LeadStatus.converted
    timed = converted & Lead.converted_at.is_not(None)
    rows = await session.execute(
        select(
            Lead.status,
            Lead.source,
            func.count(),
            func.sum(case((timed, epoch_seconds(Lead.converted_at) - epoch_seconds(Lead.created_at)))),
            func.count(case((timed, Lead.id))),
        )
        .where(*cohort)
        .group_by(Lead.status, Lead.source)
    )
    by_status = {status.value: 0 for status in LeadStatus}
    by_source: dict[str, _SourceRow] = {}
    for status, source, count, seconds, timed_count in rows:
        by_status[status] = by_status.get(status, 0) + int(count)
        earlier = by_source.get(source, _SourceRow(source, 0, 0, 0.0, 0))
        by_source[source] = _SourceRow(
            source,
            earlier.count + int(count),
            earlier.converted + (int(count) if status == LeadStatus.converted else 0),
            earlier.conversion_seconds + float(seconds or 0),
            earlier.timed + int(timed_count),
        )
    return _Cohort(by_status, list(by_source.values()))


@dataclass(frozen=True)
class _Responses:
    contacted: int
    """Leads with at least one outbound message."""
    responded: int
    """Of those, leads with an inbound interaction after their first outbound one."""
    response_seconds: float
    """Summed over the responded leads: first outbound to first inbound after it."""


async def _responses(session: AsyncSession, actor: User, cohort: list[ColumnElement[bool]]) -> _Responses:
    # Two index probes per lead of the cohort (ix_interactions_lead_direction_created): its first outbound
    # interaction, then its first inbound one after that. Joined as sets instead, PostgreSQL read every inbound
    # interaction of the company to answer for one month of leads.
    first_out = (
        select(func.min(Interaction.created_at))
        .where(
            Interaction.lead_id == Lead.id,
            Interaction.company_id == actor.company_id,
            Interaction.direction == Direction.outbound,
        )
        .scalar_subquery()
    )
    # Materialized (PostgreSQL would otherwise inline it and run the probe once per reference to first_out).
    contacted_leads = (
        select(Lead.id.label("lead_id"), first_out.label("first_out"))
        .where(*cohort)
        .cte("contacted_leads")
        .prefix_with("MATERIALIZED", dialect="postgresql")
    )
    first_in = (
        select(func.min(Interaction.created_at))
        .where(
            Interaction.lead_id == contacted_leads.c.lead_id,
            Interaction.direction == Direction.inbound,
            Interaction.created_at > contacted_leads.c.first_out,
        )
        .scalar_subquery()
    )
    replies = (
        select(contacted_leads.c.first_out, first_in.label("first_in"))
        .where(contacted_leads.c.first_out.is_not(None))
        .cte("replies")
        .prefix_with("MATERIALIZED", dialect="postgresql")
    )
    contacted, responded, seconds = (
        await session.execute(
            select(
                func.count(),
                func.count(replies.c.first_in),
                func.sum(epoch_seconds(replies.c.first_in) - epoch_seconds(replies.c.first_out)),
            ).select_from(replies)
        )
    ).one()
    return _Responses(int(contacted or 0), int(responded or 0), float(seconds or 0))


async def _interactions_by_type(session: AsyncSession, actor: User, period: Period) -> dict[str, int]:
    start, end = bounds(period)
    rows = await session.execute(
        select(Interaction.type, func.count())
        .where(
            Interaction.company_id == actor.company_id, Interaction.created_at >= start, Interaction.created_at < end
        )
        .group_by(Interaction.type)
    )
    counts = {kind.value: 0 for kind in InteractionType}
    counts.update({kind: int(count) for kind, count in rows})
    return counts


def _funnel(by_status: dict[str, int], total: int) -> ConversionFunnel:
    counts = []
    for stage in FUNNEL_STAGES:
        reached = {status.value for status in _PROGRESSION[_PROGRESSION.index(stage) :]}
        counts.append(total if stage == LeadStatus.new else sum(by_status.get(status, 0) for status in reached))
    return ConversionFunnel(
        stages=[stage.value for stage in FUNNEL_STAGES],
        counts=counts,
        conversion_rates=[ratio(count, total) for count in counts],
    )


async def lead_analytics(
    session: AsyncSession, actor: User, start: date | None, end: date | None, source: LeadSource | None
) -> LeadAnalytics:
    """``/v1`` lead figures for the leads created in the period (optionally from one source).

    The funnel is derived from each lead's current status along new < contacted < engaged < qualified <
    converted: a lead counts at its own stage and every earlier one. A lost lead counts at "new" only, since
    its status no longer says how far it got.
    """
    period = resolve_period(start, end)
    cohort = _cohort(actor, period, source)
    counted = await _counted(session, cohort)
    by_status, sources = counted.by_status, counted.sources
    responses = await _responses(session, actor, cohort)
    total = sum(row.count for row in sources)
    converted = sum(row.converted for row in sources)
    return LeadAnalytics(
        period=period,
        summary=LeadSummary(
            total_leads=total,
            converted_leads=converted,
            conversion_rate=ratio(converted, total),
            average_response_time_hours=average(responses.response_seconds, responses.responded, SECONDS_PER_HOUR),
            average_time_to_conversion_days=average(
                sum(row.conversion_seconds for row in sources), sum(row.timed for row in sources), SECONDS_PER_DAY
            ),
        ),
        by_source=[
            SourceFigures(
                source=row.source,
                count=row.count,
                conversion_rate=ratio(row.converted, row.count),
                average_time_to_conversion_days=average(row.conversion_seconds, row.timed, SECONDS_PER_DAY),
            )
            for row in sorted(sources, key=lambda row: (-row.count, row.source))
        ],
        by_status=[StatusCount(status=status, count=count) for status, count in by_status.items()],
        conversion_funnel=_funnel(by_status, total),
    )


async def lead_nurturing_analytics(
    session: AsyncSession, actor: User, start: date | None, end: date | None
) -> LeadNurturingAnalytics:
    """``/api`` lead figures for the leads created in the period; interactions counted when recorded in it."""
    period = resolve_period(start, end)
    cohort = _cohort(actor, period)
    counted = await _counted(session, cohort)
    by_status, sources = counted.by_status, counted.sources
    responses = await _responses(session, actor, cohort)
    total = sum(row.count for row in sources)
    by_source = {source.value: 0 for source in LeadSource}
    by_source.update({row.source: row.count for row in sources})
    return LeadNurturingAnalytics(
        total_leads=total,
        leads_by_source=by_source,
        leads_by_status=by_status,
        response_rate=ratio(responses.responded, responses.contacted),
        engagement_rate=ratio(sum(by_status.get(status, 0) for status in ENGAGED_OR_BEYOND), total),
        conversion_rate=ratio(by_status.get(LeadStatus.converted.value, 0), total),
        average_time_to_conversion=average(
            sum(row.conversion_seconds for row in sources), sum(row.timed for row in sources), SECONDS_PER_DAY
        ),
        interactions_by_type=await _interactions_by_type(session, actor, period),
    )
