"""Shapes shared by many endpoints: list envelopes of both surfaces, simple acknowledgements."""

from __future__ import annotations

import math
from collections.abc import Collection, Iterable, Mapping
from enum import StrEnum
from typing import Annotated, Any, Generic, TypeVar

from pydantic import AfterValidator, BaseModel, Field

T = TypeVar("T")

MAX_PAGE_SIZE = 100


class SortDirection(StrEnum):
    asc = "asc"
    desc = "desc"


class PageMeta(BaseModel):
    current_page: int
    per_page: int
    total_items: int
    total_pages: int

    @classmethod
    def of(cls, *, page: int, per_page: int, total: int) -> PageMeta:
        return cls(current_page=page, per_page=per_page, total_items=total, total_pages=math.ceil(total / per_page))


class DataPage(BaseModel, Generic[T]):
    """``/v1`` list envelope."""

    data: list[T]
    meta: PageMeta


class ItemsPage(BaseModel, Generic[T]):
    """``/api`` list envelope."""

    items: list[T]
    total: int
    page: int
    limit: int


class Success(BaseModel):
    success: bool = True
    message: str


class PageRequest(BaseModel):
    """What a service needs to page a query, whichever surface asked."""

    page: int = Field(1, ge=1)
    size: int = Field(20, ge=1, le=MAX_PAGE_SIZE)
    sort_by: str | None = None
    sort_dir: SortDirection = SortDirection.desc

    @property
    def offset(self) -> int:
        return (self.page - 1) * self.size


class Page(BaseModel, Generic[T]):
    """A page of results as a service returns it, before a surface wraps it."""

    items: list[T]
    total: int
    request: PageRequest


def _check_time_zone(name: str) -> str:
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"unknown time zone {name!r} (use an IANA name such as 'Europe/Paris')") from exc
    return name


TimeZoneName = Annotated[str, AfterValidator(_check_time_zone)]
"""An IANA time zone name, checked against the system's zone database."""


def readable_errors(errors: Iterable[Mapping[str, Any]], *, skip: Collection[str] = ()) -> list[tuple[str, str]]:
    """pydantic errors as ``(dotted.field, message)``, without pydantic's "Value error, " prefix.

    ``skip`` drops location parts that name where a value came from (``body``, ``query``) rather than what it is.
    """
    readable = []
    for error in errors:
        field = ".".join(str(part) for part in error.get("loc", ()) if part not in skip)
        readable.append((field, str(error.get("msg", "Invalid value")).removeprefix("Value error, ")))
    return readable
