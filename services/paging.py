"""One way to page, sort and count a query, used by every list endpoint of both surfaces."""

from __future__ import annotations

from typing import Any, TypeVar

from sqlalchemy import Select, func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute

from schemas.common import Page, PageRequest, SortDirection
from services.errors import InvalidField

T = TypeVar("T")


async def paginate(
    session: AsyncSession,
    statement: Select[T],
    request: PageRequest,
    *,
    sortable: dict[str, InstrumentedAttribute[Any]],
    default_sort: str,
    tie_breaker: InstrumentedAttribute[Any],
) -> Page[T]:
    """Count, sort by a whitelisted field (then by ``tie_breaker`` for a stable order) and slice.

    The tie-breaker follows the sort's direction, so a descending list is the ascending one exactly reversed and
    one index on (filter columns..., sort column, tie-breaker) serves the order read either way. The page is read
    in two steps: first the keys of its rows (which that index alone answers, however deep the page: the rows that
    OFFSET skips are never read from the table), then those rows. See docs/performance.md.
    """
    sort_key = request.sort_by or default_sort
    if sort_key not in sortable:
        raise InvalidField("sort_by", f"cannot sort by {sort_key!r}; choose one of {', '.join(sorted(sortable))}")
    column = sortable[sort_key]
    ascending = request.sort_dir == SortDirection.asc
    ordering = (column.asc(), tie_breaker.asc()) if ascending else (column.desc(), tie_breaker.desc())
    total = await session.scalar(select(func.count()).select_from(statement.order_by(None).subquery())) or 0
    keys = (
        statement.with_only_columns(tie_breaker)
        .order_by(*ordering)
        .offset(request.offset)
        .limit(request.size)
        .subquery()
    )
    rows = await session.scalars(statement.join(keys, tie_breaker == keys.c[tie_breaker.key]).order_by(*ordering))
    return Page(items=list(rows), total=total, request=request)
