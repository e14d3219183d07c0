"""Engagement figures reported for content (by a platform, an analytics export, a script), one row per item and day.

A report *adds* to the day's row in one statement, ``INSERT ... ON CONFLICT (content_id, recorded_on) DO UPDATE
SET views = views + excluded.views, ...``: the database serialises concurrent reports of the same day, so twenty
at once add up exactly, on SQLite and PostgreSQL alike, with no read-modify-write in Python.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import func, select, tuple_
from sqlalchemy.exc import DataError
from sqlalchemy.ext.asyncio import AsyncSession

from db.base import conflict_insert
from db.models import Content, ContentMetric, User
from schemas.content import ContentMetrics
from schemas.content_analytics import (
    FIGURES,
    ContentMetricsAdd,
    ContentMetricsBatch,
    ContentMetricsRecorded,
)
from services import content as content_service
from services.errors import InvalidField, NotFound

log = logging.getLogger(__name__)

DAY_TOTAL_MAX = 2**31 - 1
"""A day's figure is a 32-bit integer on PostgreSQL; SQLite is held to the same limit so both answer alike."""
_TOO_LARGE = f"a day's total of a figure may not exceed {DAY_TOTAL_MAX}"

_Key = tuple[str, str]
"""(content id, ``YYYY-MM-DD``): one row of ``content_metrics``."""


def _day(recorded_on: date | None, field: str) -> str:
    today = datetime.now(UTC).date()
    day = recorded_on or today
    # A day of slack: a company east of UTC reports its own "today" before UTC reaches it.
    if day > today + timedelta(days=1):
        raise InvalidField(field, f"{day} is in the future; report figures for a day that has begun")
    return day.isoformat()


def _increments(body: ContentMetricsAdd) -> list[int]:
    return [getattr(body, name) for name in FIGURES]


async def _add_rows(session: AsyncSession, rows: dict[_Key, list[int]]) -> None:
    """One upsert for every (content, day), in key order so concurrent batches lock rows in the same order."""
    values = [
        {"content_id": content_id, "recorded_on": day, **dict(zip(FIGURES, figures, strict=True))}
        for (content_id, day), figures in sorted(rows.items())
        if any(figures)
    ]
    if not values:
        return
    insert = conflict_insert(session)
    statement = insert(ContentMetric).values(values)
    table: Any = ContentMetric
    statement = statement.on_conflict_do_update(
        index_elements=[ContentMetric.content_id, ContentMetric.recorded_on],
        set_={name: getattr(table, name) + getattr(statement.excluded, name) for name in FIGURES},
    )
    try:
        await session.execute(statement)
    except DataError as exc:  # PostgreSQL: a day's total left the 32-bit integer range
        raise InvalidField("metrics", _TOO_LARGE) from exc


def _figures(row: Sequence[Any]) -> ContentMetrics:
    return ContentMetrics(**{name: int(value or 0) for name, value in zip(FIGURES, row, strict=True)})


async def _recorded(session: AsyncSession, keys: list[_Key]) -> list[ContentMetricsRecorded]:
    """Each key's day row and its content's totals, read back in the same transaction."""
    columns = [getattr(ContentMetric, name) for name in FIGURES]
    day_rows = await session.execute(
        select(ContentMetric.content_id, ContentMetric.recorded_on, *columns).where(
            tuple_(ContentMetric.content_id, ContentMetric.recorded_on).in_(keys)
        )
    )
    days = {(row[0], row[1]): _figures(row[2:]) for row in day_rows}
    content_ids = sorted({content_id for content_id, _ in keys})
    total_rows = await session.execute(
        select(ContentMetric.content_id, *(func.sum(column) for column in columns))
        .where(ContentMetric.content_id.in_(content_ids))
        .group_by(ContentMetric.content_id)
    )
    totals = {row[0]: _figures(row[1:]) for row in total_rows}
    if any(value > DAY_TOTAL_MAX for figures in days.values() for value in figures.model_dump().values()):
        raise InvalidField("metrics", _TOO_LARGE)  # SQLite stored it; the request's rollback takes it back
    return [
        ContentMetricsRecorded(
            content_id=content_id,
            recorded_on=date.fromisoformat(day),
            day=days.get((content_id, day), ContentMetrics()),
            totals=totals.get(content_id, ContentMetrics()),
        )
        for content_id, day in keys
    ]


async def add(session: AsyncSession, actor: User, content_id: str, body: ContentMetricsAdd) -> ContentMetricsRecorded:
    """Add the figures to the day's row of one of the actor's company's content items."""
    content = await content_service.get(session, actor, content_id)
    key = (content.id, _day(body.recorded_on, "recorded_on"))
    await _add_rows(session, {key: _increments(body)})
    log.info("user %s reported metrics for %s on %s", actor.id, content.id, key[1])
    return (await _recorded(session, [key]))[0]


async def _owned_ids(session: AsyncSession, actor: User, content_ids: Iterable[str]) -> set[str]:
    found = await session.scalars(
        select(Content.id).where(Content.company_id == actor.company_id, Content.id.in_(sorted(set(content_ids))))
    )
    return set(found)


async def add_batch(session: AsyncSession, actor: User, body: ContentMetricsBatch) -> list[ContentMetricsRecorded]:
    """All or nothing: an item that is not the company's (or does not exist) is a 404 and nothing is added.

    The same item and day given twice adds both; the answer has one entry per item and day, in request order.
    """
    owned = await _owned_ids(session, actor, (item.content_id for item in body.metrics))
    rows: dict[_Key, list[int]] = {}
    for index, item in enumerate(body.metrics):
        if item.content_id not in owned:
            raise NotFound("content", item.content_id)
        key = (item.content_id, _day(item.recorded_on, f"metrics.{index}.recorded_on"))
        rows[key] = [sum(pair) for pair in zip(rows.get(key, [0] * len(FIGURES)), _increments(item), strict=True)]
    await _add_rows(session, rows)
    log.info("user %s reported metrics for %d item-days", actor.id, len(rows))
    return await _recorded(session, list(rows))
