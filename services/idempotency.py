"""``Idempotency-Key`` on creates: a retry with the same key and body gets the stored response, nothing is redone.

Any create endpoint reuses :func:`once`: it hands over the key, what identifies the request and a callable
that does the work and says what to answer. Only successful answers are stored; a request that failed may be
retried with the same key.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Awaitable, Callable, Collection
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import delete, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from db.models import IdempotencyRecord
from services.errors import Conflict

log = logging.getLogger(__name__)

REPLAYED_HEADER = "Idempotent-Replayed"
# Marks a key whose first request is still running (no HTTP status is 0).
_IN_PROGRESS = 0


@dataclass(frozen=True)
class StoredResponse:
    status_code: int
    body: dict[str, Any]
    headers: dict[str, str] = field(default_factory=dict)


def fingerprint(scope: str, body: dict[str, Any]) -> str:
    """Same endpoint and same JSON body, whatever the key order: same fingerprint."""
    canonical = json.dumps([scope, body], sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


async def once(
    session: AsyncSession,
    company_id: str,
    key: str | None,
    *,
    scope: str,
    body: dict[str, Any],
    action: Callable[[], Awaitable[StoredResponse]],
) -> StoredResponse:
    """Run ``action`` unless ``key`` was used before by this company.

    ``scope`` names the endpoint (``"POST /v1/leads"``): the same key on another endpoint or with another
    body is a 409, as is a retry that arrives while the first request is still being processed.
    """
    if key is None:
        return await action()
    digest = fingerprint(scope, body)
    record = await session.scalar(
        select(IdempotencyRecord).where(IdempotencyRecord.company_id == company_id, IdempotencyRecord.key == key)
    )
    if record is not None:
        return _replay(record, digest)
    record = IdempotencyRecord(
        company_id=company_id, key=key, request_fingerprint=digest, status_code=_IN_PROGRESS, response_body={}
    )
    try:
        async with session.begin_nested():
            session.add(record)
            await session.flush()
    except IntegrityError as exc:
        raise Conflict("A request with this Idempotency-Key is still being processed; retry later") from exc
    record_id = record.id
    try:
        response = await action()
    except BaseException:
        await _release(session, record_id)
        raise
    record.status_code = response.status_code
    record.response_body = response.body
    await session.flush()
    return response


def _replay(record: IdempotencyRecord, digest: str) -> StoredResponse:
    if record.request_fingerprint != digest:
        raise Conflict("This Idempotency-Key was already used with a different request")
    if record.status_code == _IN_PROGRESS:
        raise Conflict("A request with this Idempotency-Key is still being processed; retry later")
    log.info("replaying the stored response for idempotency key %r in %s", record.key, record.company_id)
    return StoredResponse(record.status_code, record.response_body, {REPLAYED_HEADER: "true"})


async def _release(session: AsyncSession, record_id: int) -> None:
    """Forget the reservation of a failed request, even if the work committed it part-way."""
    await session.rollback()
    await session.execute(delete(IdempotencyRecord).where(IdempotencyRecord.id == record_id))
    await session.commit()


async def forget_responses_about(session: AsyncSession, company_id: str, ids: Collection[str]) -> None:
    """Drop stored responses that show a record (by ``id``, ``lead_id`` or ``customer_id``), so erasing it
    leaves no copy here (a sale's response names its customer).

    ``ids`` holds every spelling the surfaces use (``lead_x`` and ``lead-x``).
    """
    body = IdempotencyRecord.response_body
    await session.execute(
        delete(IdempotencyRecord).where(
            IdempotencyRecord.company_id == company_id,
            or_(*(body[key].as_string().in_(ids) for key in ("id", "lead_id", "customer_id"))),
        )
    )
