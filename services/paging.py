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
    """Count, sort by a whitelisted field (then by ``tie_breaker`` for a stable order) and slice."""
    sort_key = request.sort_by or default_sort
    if sort_key not in sortable:
        raise InvalidField("sort_by", f"cannot sort by {sort_key!r}; choose one of {', '.join(sorted(sortable))}")
    column = sortable[sort_key]
    order = column.asc() if request.sort_dir == SortDirection.asc else column.desc()
    total = await session.scalar(select(func.count()).select_from(statement.order_by(None).subquery())) or 0
    rows = await session.scalars(
        statement.order_by(order, tie_breaker.asc()).offset(request.offset).limit(request.size)
    )
    return Page(items=list(rows), total=total, request=request)
