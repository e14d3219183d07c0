"""Click-tracked links: each http(s) address in a content item's text, served as ``{public_base_url}/c/{link_id}``.

The publish activity rewrites the text it sends (the stored text keeps the real addresses); the public
``GET /c/{link_id}`` counts a click on the content's day row and redirects to the one address the link holds,
never to an address given in the request.
"""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from core.ids import new_id
from db.base import conflict_insert, utcnow
from db.models import Content, ContentLink, ContentMetric

URL = re.compile(r"https?://[^\s<>()\[\]{}\"'`|\\^]+", re.IGNORECASE)
"""An address as it appears in prose, Markdown (``[text](url)``, ``<url>``) or an HTML attribute."""
_TRAILING = ".,;:!?*_~"
"""Punctuation that ends a sentence (or Markdown emphasis) after an address, not part of it."""
MAX_URL = 2000  # content_links.url


def tracking_prefix(public_base_url: str) -> str:
    return f"{public_base_url.rstrip('/')}/c/"


def _split(match: str) -> tuple[str, str]:
    """The address and what follows it (``https://a.example/x.`` -> ``https://a.example/x``, ``.``)."""
    url = match.rstrip(_TRAILING)
    return url, match[len(url) :]


def addresses(text: str, public_base_url: str) -> list[str]:
    """The distinct addresses in ``text``, in order, that are not already tracked links."""
    prefix = tracking_prefix(public_base_url)
    found: dict[str, None] = {}
    for match in URL.finditer(text):
        url, _ = _split(match.group(0))
        if url.lower().startswith(prefix.lower()) or len(url) > MAX_URL:
            continue
        found.setdefault(url, None)
    return list(found)


async def tracked_text(session: AsyncSession, content: Content, public_base_url: str, *, create: bool = True) -> str:
    """The content's text with every address replaced by its tracked link (created once per content and address).

    ``create=False`` only reads the links made earlier (a newsletter makes them once, before its first send, so
    writing each recipient's copy takes no write lock); an address without one stays as it is.
    """
    text = content.body or ""
    urls = addresses(text, public_base_url)
    if not urls:
        return text
    ids = await link_ids(session, content, urls) if create else await _existing(session, content, urls)
    prefix = tracking_prefix(public_base_url)

    def replace(match: re.Match[str]) -> str:
        url, rest = _split(match.group(0))
        link_id = ids.get(url)
        return f"{prefix}{link_id}{rest}" if link_id else match.group(0)

    return URL.sub(replace, text)


async def link_ids(session: AsyncSession, content: Content, urls: list[str]) -> dict[str, str]:
    """Each address's link id, inserting the missing ones; safe against a concurrent insert of the same link."""
    insert = conflict_insert(session)
    now = utcnow()
    rows = [
        {
            "id": new_id("link"),
            "company_id": content.company_id,
            "content_id": content.id,
            "url": url,
            "created_at": now,
        }
        for url in urls
    ]
    await session.execute(insert(ContentLink).values(rows).on_conflict_do_nothing(index_elements=["content_id", "url"]))
    return await _existing(session, content, urls)


async def _existing(session: AsyncSession, content: Content, urls: list[str]) -> dict[str, str]:
    found = await session.execute(
        select(ContentLink.url, ContentLink.id).where(ContentLink.content_id == content.id, ContentLink.url.in_(urls))
    )
    return {url: link_id for url, link_id in found}


async def _link(session: AsyncSession, link_id: str) -> ContentLink | None:
    link: ContentLink | None = await session.scalar(select(ContentLink).where(ContentLink.id == link_id))
    if link is None or not link.url.lower().startswith(("http://", "https://")):
        return None
    return link


async def destination(session: AsyncSession, link_id: str) -> str | None:
    """Where the link goes, without counting a click."""
    link = await _link(session, link_id)
    return link.url if link is not None else None


async def follow(session: AsyncSession, link_id: str) -> str | None:
    """Count a click on today's (UTC) figures of the link's content and return where it goes; ``None`` if unknown.

    One upsert: concurrent clicks add up exactly on SQLite and PostgreSQL, with no read-modify-write.
    """
    link = await _link(session, link_id)
    if link is None:
        return None
    insert = conflict_insert(session)
    table: Any = ContentMetric
    statement = insert(ContentMetric).values(
        content_id=link.content_id,
        recorded_on=utcnow().date().isoformat(),
        views=0,
        clicks=1,
        shares=0,
        comments=0,
        conversions=0,
    )
    await session.execute(
        statement.on_conflict_do_update(
            index_elements=[ContentMetric.content_id, ContentMetric.recorded_on], set_={"clicks": table.clicks + 1}
        )
    )
    return link.url
