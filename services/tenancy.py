"""Every record belongs to a company: one way to fetch a record by id within the caller's company."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, TypeVar

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm.interfaces import ORMOption

from db.models import User
from services.errors import NotFound

Model = TypeVar("Model")


async def owned(
    session: AsyncSession,
    actor: User,
    model: type[Model],
    record_id: str,
    resource_type: str,
    options: Sequence[ORMOption] = (),
) -> Model:
    """The record of the actor's company with this id; another company's record is a 404 like a missing one."""
    table: Any = model
    record: Model | None = await session.scalar(
        select(model).where(table.id == record_id, table.company_id == actor.company_id).options(*options)
    )
    if record is None:
        raise NotFound(resource_type, record_id)
    return record
