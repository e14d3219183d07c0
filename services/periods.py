"""Day arithmetic shared by the analytics that chart or compare periods (UTC days, both ends included)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import String
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.functions import FunctionElement

from schemas.analytics import Period


class utc_day(FunctionElement[str]):  # noqa: N801 (reads as the SQL function it compiles to)
    """The UTC day of a datetime expression as ``YYYY-MM-DD``, computed by the database (a GROUP BY key)."""

    type = String()
    inherit_cache = True


@compiles(utc_day)
def _utc_day_standard(element: utc_day, compiler: SQLCompiler, **kw: Any) -> str:
    # A timestamptz at time zone 'UTC' is the UTC wall time, whatever the session's own time zone is.
    return f"to_char(({compiler.process(element.clauses, **kw)}) AT TIME ZONE 'UTC', 'YYYY-MM-DD')"


@compiles(utc_day, "sqlite")
def _utc_day_sqlite(element: utc_day, compiler: SQLCompiler, **kw: Any) -> str:
    # SQLite keeps these columns as UTC text ("2026-03-01 09:30:00.000000"); date() reads its day.
    return f"date({compiler.process(element.clauses, **kw)})"


def days_of(period: Period) -> list[str]:
    """Every day of the period as ``YYYY-MM-DD``, first to last: the labels of a zero-filled chart."""
    length = (period.end_date - period.start_date).days + 1
    return [(period.start_date + timedelta(days=offset)).isoformat() for offset in range(length)]


def previous_period(period: Period) -> Period:
    """The period of the same length that ends the day before this one starts."""
    length = period.end_date - period.start_date
    end = period.start_date - timedelta(days=1)
    return Period(start_date=end - length, end_date=end)


def zero_filled(period: Period, rows: dict[str, Any]) -> list[Any]:
    """One value per day of the period from a ``{day: value}`` mapping; a day without a row is 0."""
    return [rows.get(day, 0) for day in days_of(period)]
