"""Following a click-tracked link of published content (``GET /c/{link_id}``): count it, say where it goes."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from db import content_links
from services.errors import NotFound


async def follow(session: AsyncSession, link_id: str) -> str:
    """The address the link holds (never one given by the caller), after counting the click."""
    url = await content_links.follow(session, link_id)
    if url is None:
        raise NotFound("link", link_id)
    return url


async def peek(session: AsyncSession, link_id: str) -> str:
    """Where the link goes, without counting a click (``HEAD``: a link preview, not a reader)."""
    url = await content_links.destination(session, link_id)
    if url is None:
        raise NotFound("link", link_id)
    return url
