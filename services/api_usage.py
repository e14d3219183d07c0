"""API calls per company per hour: counted in memory by the API process, added to ``api_call_counts`` now and then.

Each API process counts its own calls and adds them to the stored rows with an upsert (``calls = calls + n``), at
most every ``FLUSH_INTERVAL_SECONDS`` and when it shuts down. With several API processes each one flushes its own
counts, so the stored sums stay exact; what a process has not flushed yet is known only to that process, which
adds it when it answers ``GET /api/system/stats``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from db.base import conflict_insert, utcnow
from db.models import ApiCallCount, ApiKey, Company
from db.session import transaction

log = logging.getLogger(__name__)

FLUSH_INTERVAL_SECONDS = 5.0
RECENT_HOURS = 24

Bucket = tuple[str, datetime]
"""(company id, start of the hour in UTC)."""


def hour_of(moment: datetime) -> datetime:
    return moment.replace(minute=0, second=0, microsecond=0)


@dataclass(frozen=True)
class CallCounts:
    total: int
    last_24h: int
    """The current hour and the 23 before it."""


class ApiUsage:
    """One per API process (``app.state.api_usage``); not thread-safe, like everything on the event loop."""

    def __init__(self, flush_interval_seconds: float = FLUSH_INTERVAL_SECONDS) -> None:
        self.flush_interval_seconds = flush_interval_seconds
        self._pending: Counter[Bucket] = Counter()
        self._last_flush = time.monotonic()
        self._flushing: asyncio.Task[None] | None = None
        # Held while counts move from memory to the database, so a reader never sees them twice or not at all.
        self._moving = asyncio.Lock()
        self._key_companies: dict[str, str] = {}

    def count(self, company_id: str, at: datetime | None = None) -> None:
        self._pending[(company_id, hour_of(at or utcnow()))] += 1

    def flush_soon(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        """Start a flush in the background if the last one is old enough and none is running."""
        due = time.monotonic() - self._last_flush >= self.flush_interval_seconds
        if due and self._pending and (self._flushing is None or self._flushing.done()):
            self._last_flush = time.monotonic()
            self._flushing = asyncio.create_task(self.flush(sessions))

    async def flush(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        """Add the pending counts to the stored rows; on failure they stay pending for the next flush."""
        async with self._moving:
            if not self._pending:
                return
            batch, self._pending = self._pending, Counter()
            try:
                await _store(sessions, batch)
            except Exception:  # the database may be away; the counts must survive until it is back
                self._pending.update(batch)
                log.exception("api usage: could not store %d counters; kept in memory", len(batch))

    async def close(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        """At shutdown: wait for a running flush, then store what is left."""
        if self._flushing is not None:
            await asyncio.gather(self._flushing, return_exceptions=True)
        await self.flush(sessions)
        if self._pending:
            log.error("api usage: %d counters lost at shutdown (database unavailable)", len(self._pending))

    async def calls(self, sessions: async_sessionmaker[AsyncSession], company_id: str) -> CallCounts:
        """The company's stored counts plus this process's unflushed ones."""
        since = hour_of(utcnow()) - timedelta(hours=RECENT_HOURS - 1)
        async with self._moving:
            # A session of its own: a request's transaction may hold a snapshot older than the last flush.
            async with sessions() as session:
                total, recent = (
                    await session.execute(
                        select(
                            func.coalesce(func.sum(ApiCallCount.calls), 0),
                            func.coalesce(func.sum(ApiCallCount.calls).filter(ApiCallCount.hour >= since), 0),
                        ).where(ApiCallCount.company_id == company_id)
                    )
                ).one()
            mine = [(hour, calls) for (company, hour), calls in self._pending.items() if company == company_id]
        return CallCounts(
            total=int(total) + sum(calls for _, calls in mine),
            last_24h=int(recent) + sum(calls for hour, calls in mine if hour >= since),
        )

    async def company_of_key(self, sessions: async_sessionmaker[AsyncSession], prefix: str) -> str | None:
        """The company of an API key prefix; remembered, since a key never changes company."""
        if prefix not in self._key_companies:
            async with sessions() as session:
                company_id = await session.scalar(select(ApiKey.company_id).where(ApiKey.prefix == prefix))
            if company_id is None:
                return None
            self._key_companies[prefix] = company_id
        return self._key_companies[prefix]


async def _store(sessions: async_sessionmaker[AsyncSession], batch: Counter[Bucket]) -> None:
    async with transaction(sessions) as session:
        # A company deleted since its calls were counted has nowhere to keep them.
        known = set(await session.scalars(select(Company.id).where(Company.id.in_({c for c, _ in batch}))))
        rows = [
            {"company_id": company_id, "hour": hour, "calls": calls}
            for (company_id, hour), calls in sorted(batch.items())
            if company_id in known
        ]
        if not rows:
            return
        insert = conflict_insert(session)
        statement = insert(ApiCallCount).values(rows)
        table: Any = ApiCallCount
        await session.execute(
            statement.on_conflict_do_update(
                index_elements=[ApiCallCount.company_id, ApiCallCount.hour],
                set_={"calls": table.calls + statement.excluded.calls},
            )
        )
    log.debug("api usage: stored %d counters", len(rows))
