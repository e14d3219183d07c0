"""Each surface's paging and sorting parameters, turned into one ``PageRequest``, its list envelope, and the
date range every analytics endpoint takes."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from typing import Annotated, Any, TypeVar

from fastapi import Depends, Query

from schemas.common import (
    MAX_PAGE_NUMBER,
    MAX_PAGE_SIZE,
    DataPage,
    ItemsPage,
    Page,
    PageMeta,
    PageRequest,
    ReportDay,
    SortDirection,
)

T = TypeVar("T")


# The parameter dependencies are ``async def``: FastAPI would run a plain ``def`` in a worker thread per request.
async def resources_page(
    page: Annotated[int, Query(ge=1, le=MAX_PAGE_NUMBER, description="Page number, from 1")] = 1,
    per_page: Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE, description="Items per page")] = 20,
    sort_by: Annotated[str | None, Query(description="Field to sort by")] = None,
    sort_dir: Annotated[SortDirection, Query(description="asc or desc")] = SortDirection.desc,
) -> PageRequest:
    return PageRequest(page=page, size=per_page, sort_by=sort_by, sort_dir=sort_dir)


async def endpoints_page(
    page: Annotated[int, Query(ge=1, le=MAX_PAGE_NUMBER, description="Page number, from 1")] = 1,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE, description="Items per page")] = 20,
    sort: Annotated[str | None, Query(description="Field to sort by")] = None,
    order: Annotated[SortDirection, Query(description="asc or desc")] = SortDirection.desc,
) -> PageRequest:
    return PageRequest(page=page, size=limit, sort_by=sort, sort_dir=order)


ResourcesPage = Annotated[PageRequest, Depends(resources_page)]
EndpointsPage = Annotated[PageRequest, Depends(endpoints_page)]


def data_page(page: Page[Any], present: Callable[[Any], T]) -> DataPage[T]:
    return DataPage(
        data=[present(item) for item in page.items],
        meta=PageMeta.of(page=page.request.page, per_page=page.request.size, total=page.total),
    )


def items_page(page: Page[Any], present: Callable[[Any], T]) -> ItemsPage[T]:
    return ItemsPage(
        items=[present(item) for item in page.items], total=page.total, page=page.request.page, limit=page.request.size
    )


@dataclass(frozen=True)
class DateRange:
    """Both days included, UTC; ``None`` lets the service apply its default (the last 30 days)."""

    start: date | None
    end: date | None


async def date_range(
    start_date: Annotated[ReportDay | None, Query(description="first day, YYYY-MM-DD")] = None,
    end_date: Annotated[ReportDay | None, Query(description="last day, YYYY-MM-DD (default today, UTC)")] = None,
) -> DateRange:
    return DateRange(start_date, end_date)


PeriodQuery = Annotated[DateRange, Depends(date_range)]
