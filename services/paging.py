"""One way to page, sort and count a query, used by every list endpoint of both surfaces."""

from __future__ import annotations

from typing import Any, TypeVar

from sqlalchemy import ColumnElement, Select, UnaryExpression, func, select, true
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute

from schemas.common import Page, PageRequest, SortDirection
from services.errors import InvalidField

T = TypeVar("T")


def _ordered(sort_value: ColumnElement[Any], key: ColumnElement[Any], ascending: bool) -> list[UnaryExpression[Any]]:
    return [sort_value.asc(), key.asc()] if ascending else [sort_value.desc(), key.desc()]


async def paginate(
    session: AsyncSession,
    statement: Select[T],
    request: PageRequest,
    *,
    sortable: dict[str, InstrumentedAttribute[Any]],
    default_sort: str,
    tie_breaker: InstrumentedAttribute[Any],
    matches_first: bool = False,
) -> Page[T]:
    """Count, sort by a whitelisted field (then by ``tie_breaker`` for a stable order) and slice.

    The tie-breaker follows the sort's direction, so a descending list is the ascending one exactly reversed and
    one index on (filter columns..., sort column, tie-breaker) serves the order read either way. The page is read
    in two steps: first the total and the keys of its rows, in one statement (an index of the order alone answers
    the keys, however deep the page: the rows that OFFSET skips are never read from the table), then those rows.

    ``matches_first`` is for filters that an index other than the order's answers (the tags' GIN index, the
    search's trigram indexes): the matching keys are collected once (a materialized CTE), then counted and
    sorted. PostgreSQL would otherwise walk the order's index and test every row it passes, which it misjudges
    as cheaper for a middle page; this way a page never costs much more than the count. See docs/performance.md.
    """
    sort_key = request.sort_by or default_sort
    if sort_key not in sortable:
        raise InvalidField("sort_by", f"cannot sort by {sort_key!r}; choose one of {', '.join(sorted(sortable))}")
    column = sortable[sort_key]
    ascending = request.sort_dir == SortDirection.asc
    ordering = _ordered(column.expression, tie_breaker.expression, ascending)
    if matches_first:
        matches = (
            statement.with_only_columns(tie_breaker.label("key"), column.label("sort_value"))
            .cte("matches")
            .prefix_with("MATERIALIZED", dialect="postgresql")
        )
        counted = select(func.count().label("total")).select_from(matches)
        keyed = select(matches.c.key).order_by(*_ordered(matches.c.sort_value, matches.c.key, ascending))
    else:
        counted = select(func.count().label("total")).select_from(statement.order_by(None).subquery())
        keyed = statement.with_only_columns(tie_breaker.label("key")).order_by(*ordering)
    total = counted.subquery("total")
    page_keys = keyed.offset(request.offset).limit(request.size).subquery("page_keys")
    # One row per key of the page, or a single row with no key when the page is empty: the total comes either way.
    found = (
        await session.execute(select(total.c.total, page_keys.c.key).select_from(total.outerjoin(page_keys, true())))
    ).all()
    keys = [row.key for row in found if row.key is not None]
    items = list(await session.scalars(statement.where(tie_breaker.in_(keys)).order_by(*ordering))) if keys else []
    return Page(items=items, total=found[0].total, request=request)
