"""Shapes shared by many endpoints: list envelopes of both surfaces, simple acknowledgements, bounded free-form JSON."""

from __future__ import annotations

import json
import math
from collections.abc import Collection, Iterable, Mapping
from datetime import date
from enum import StrEnum
from typing import Annotated, Any, Generic, TypeVar

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

T = TypeVar("T")

MAX_PAGE_SIZE = 100
MAX_PAGE_NUMBER = 1_000_000
"""Deeper than any real list (10^8 rows); a larger page number would overflow the databases' OFFSET."""
MAX_FREE_FORM_DEPTH = 20
"""How deeply a free-form JSON field may nest objects and arrays (the field itself is level 1)."""
MAX_FREE_FORM_BYTES = 64 * 1024
"""How large a free-form JSON field may be, as compact UTF-8 JSON."""


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


class ResourcesError(BaseModel):
    """An error on ``/v1``: a stable code, a sentence, and for a 422 the problems by field."""

    model_config = ConfigDict(extra="allow")  # a 404 adds resource_type/resource_id, a 500 the request_id

    error: str = Field(examples=["not_found"])
    message: str
    details: dict[str, list[str]] | None = Field(None, description="for a 422: what is wrong, by dotted field name")


class FieldProblem(BaseModel):
    loc: list[str]
    field: str
    msg: str


class EndpointsError(BaseModel):
    """An error on ``/token`` and ``/api``: a sentence, or for a 422 the problems by field."""

    detail: str | list[FieldProblem]


class PageRequest(BaseModel):
    """What a service needs to page a query, whichever surface asked."""

    page: int = Field(1, ge=1, le=MAX_PAGE_NUMBER)
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


TimeZoneName = Annotated[str, Field(max_length=64), AfterValidator(_check_time_zone)]
"""An IANA time zone name, checked against the system's zone database."""


FREE_FORM_LIMITS = (
    f"at most {MAX_FREE_FORM_BYTES // 1024} KiB as JSON, nested at most {MAX_FREE_FORM_DEPTH} levels, "
    "text without NUL characters"
)
"""The limits of a free-form field, said once for every field's OpenAPI description."""


def _refuse_unstorable_text(text: str) -> None:
    if "\x00" in text:
        raise ValueError("text may not contain NUL (\\u0000) characters")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise ValueError("text contains an unpaired UTF-16 surrogate (invalid Unicode)") from exc


def bounded_json(value: dict[str, Any]) -> dict[str, Any]:
    """``value`` if it is within the free-form limits, else ValueError saying which."""
    # Iterative, so a hostile nesting is refused here rather than overflowing a recursive walker later
    # (pydantic's serializer gives up past a few hundred levels: that was a 500 on the way out).
    pending: list[tuple[Any, int]] = [(value, 1)]
    while pending:
        node, depth = pending.pop()
        if isinstance(node, dict | list) and depth > MAX_FREE_FORM_DEPTH:
            raise ValueError(f"nested deeper than {MAX_FREE_FORM_DEPTH} levels")
        if isinstance(node, dict):
            for key, item in node.items():
                _refuse_unstorable_text(key)
                pending.append((item, depth + 1))
        elif isinstance(node, list):
            pending.extend((item, depth + 1) for item in node)
        elif isinstance(node, str):
            _refuse_unstorable_text(node)
    size = len(json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=str).encode("utf-8"))
    if size > MAX_FREE_FORM_BYTES:
        raise ValueError(f"larger than {MAX_FREE_FORM_BYTES // 1024} KiB as JSON ({size} bytes)")
    return value


FreeFormJson = Annotated[
    dict[str, Any],
    AfterValidator(bounded_json),
    Field(description=f"a JSON object; {FREE_FORM_LIMITS}"),
]
"""A free-form JSON object from a client (custom fields, settings, metadata): bounded in size and depth,
and holding only text every database can store (PostgreSQL refuses NUL, UTF-8 refuses lone surrogates)."""


EARLIEST_REPORT_DAY = date(1970, 1, 1)
LATEST_REPORT_DAY = date(2200, 12, 31)


def _plausible_day(day: date) -> date:
    # Periods are compared with the one before them: a day near year 1 would underflow that arithmetic.
    if not EARLIEST_REPORT_DAY <= day <= LATEST_REPORT_DAY:
        raise ValueError(f"give a day between {EARLIEST_REPORT_DAY} and {LATEST_REPORT_DAY}")
    return day


ReportDay = Annotated[date, AfterValidator(_plausible_day)]
"""A day a report may start or end on (from 1970 to 2200)."""


def readable_errors(errors: Iterable[Mapping[str, Any]], *, skip: Collection[str] = ()) -> list[tuple[str, str]]:
    """pydantic errors as ``(dotted.field, message)``, without pydantic's "Value error, " prefix.

    ``skip`` drops location parts that name where a value came from (``body``, ``query``) rather than what it is.
    """
    readable = []
    for error in errors:
        field = ".".join(str(part) for part in error.get("loc", ()) if part not in skip)
        readable.append((field, str(error.get("msg", "Invalid value")).removeprefix("Value error, ")))
    return readable
