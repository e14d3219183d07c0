"""Creates that are safe to retry (``Idempotency-Key``) and that may answer "already exists", on either surface."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncSession

from db.models import User
from services import idempotency

DUPLICATE_HEADER = "X-Duplicate-Of"
CONFLICT_DOC: dict[str, Any] = {
    "description": "The Idempotency-Key was used with a different request, or that request is still running"
}


def duplicate_doc(
    model: type[BaseModel], noun: str = "lead", consequence: str = "no second sequence starts"
) -> dict[str, Any]:
    """OpenAPI for the 200 a create answers when the email already belonged to a record of the company."""
    return {
        "model": model,
        "description": f"A {noun} with this email already existed: it is returned, merged with the new non-empty "
        f"fields, and {consequence}. The `X-Duplicate-Of` header names it.",
        "headers": {DUPLICATE_HEADER: {"description": f"id of the existing {noun}", "schema": {"type": "string"}}},
    }


def created_or_merged(public: dict[str, Any], *, duplicate: bool) -> idempotency.StoredResponse:
    """201 for a new record; 200 and ``X-Duplicate-Of`` (in the surface's own id spelling) for a merged one."""
    if duplicate:
        return idempotency.StoredResponse(200, public, {DUPLICATE_HEADER: str(public["id"])})
    return idempotency.StoredResponse(201, public)


async def respond_once(
    session: AsyncSession,
    user: User,
    request: Request,
    key: str | None,
    body: BaseModel,
    action: Callable[[], Awaitable[idempotency.StoredResponse]],
) -> JSONResponse:
    """Run ``action`` once per ``Idempotency-Key``; a retry gets the first answer back."""
    stored = await idempotency.once(
        session,
        user.company_id,
        key,
        scope=f"POST {request.url.path}",
        body=body.model_dump(mode="json"),
        action=action,
    )
    return JSONResponse(stored.body, status_code=stored.status_code, headers=stored.headers)
