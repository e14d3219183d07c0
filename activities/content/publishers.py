"""The platforms a content item is published to over HTTP: WordPress's REST API and a signed webhook.

Each call ends in a ``PublishResult`` or raises ``ProviderUnavailable``:

- ``ProviderUnavailable``: nothing was accepted (refused connection, 429, 503): safe to try again later;
- ``published``: the platform took it (with its id and address when it gives them);
- ``failed``: it definitely refused (a 4xx): the same request would fail again;
- ``unknown``: the request left and no clear answer came (timeout, dropped connection, a 5xx that may hide a
  created post). Never retried blindly: WordPress can be asked (``find_wordpress_post``), a webhook receiver
  drops a repeat by its ``X-BAS-Delivery`` id.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import time
from dataclasses import dataclass
from typing import Any, Literal

import httpx2
from markdown_it import MarkdownIt

from activities.messaging.outcome import ProviderUnavailable
from db.content_links import URL
from schemas.companies import WebhookIntegration, WordPressIntegration

USER_AGENT = "BAS-Publisher/1.0"
# Raised before the request could have reached the platform.
_NOT_SENT = (httpx2.ConnectError, httpx2.ConnectTimeout, httpx2.PoolTimeout)
_RETRY_LATER = {429, 503}

SIGNATURE_HEADER = "X-BAS-Signature"
TIMESTAMP_HEADER = "X-BAS-Timestamp"
DELIVERY_HEADER = "X-BAS-Delivery"


@dataclass(frozen=True)
class PublishResult:
    status: Literal["published", "failed", "unknown"]
    external_id: str | None = None
    url: str | None = None
    error: str | None = None


class LookupFailed(Exception):
    """The platform could not say whether the post exists."""


# ---- WordPress


def post_slug(title: str | None, publication_id: str) -> str:
    """The post's slug: readable, and carrying the publication id, so the post can be found again by it."""
    words = re.sub(r"[^a-z0-9]+", "-", (title or "").lower()).strip("-")[:60].strip("-")
    marker = publication_id.lower().replace("_", "-")
    return f"{words}-{marker}" if words else marker


_markdown = MarkdownIt("commonmark", {"html": False})  # raw HTML in the text is shown, never run


def html_of(text: str) -> str:
    """The Markdown text as HTML, bare addresses made clickable (WordPress does not link them itself)."""

    def autolink(match: re.Match[str]) -> str:
        before = text[match.start() - 1] if match.start() else ""
        if before in ("(", "<", '"', "'", "="):  # already a Markdown link, an autolink or an attribute
            return match.group(0)
        url = match.group(0).rstrip(".,;:!?*_~")
        return f"<{url}>{match.group(0)[len(url) :]}"

    html: str = _markdown.render(URL.sub(autolink, text))
    return html


def _posts_url(config: WordPressIntegration) -> str:
    return f"{str(config.url).rstrip('/')}/wp-json/wp/v2/posts"


def _wordpress(config: WordPressIntegration, timeout: float) -> httpx2.AsyncClient:
    return httpx2.AsyncClient(
        timeout=timeout, auth=(config.username, config.app_password), headers={"User-Agent": USER_AGENT}
    )


def _message(response: httpx2.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        body = None
    detail = body.get("message") if isinstance(body, dict) else None
    return f"{response.status_code} {detail or response.text[:300]}"


def _wordpress_post(item: dict[str, Any]) -> PublishResult:
    post_id, link = item.get("id"), item.get("link")
    return PublishResult(
        "published", external_id=str(post_id) if post_id is not None else None, url=str(link) if link else None
    )


async def publish_wordpress(
    config: WordPressIntegration, *, title: str, text: str, slug: str, timeout_seconds: float
) -> PublishResult:
    """``POST /wp-json/wp/v2/posts``: a published post; its ``link`` is where it can be read."""
    payload = {"title": title, "content": html_of(text), "status": "publish", "slug": slug}
    try:
        async with _wordpress(config, timeout_seconds) as http:
            response = await http.post(_posts_url(config), json=payload)
    except _NOT_SENT as exc:
        raise ProviderUnavailable(f"WordPress unreachable: {exc!r}") from exc
    except httpx2.TransportError as exc:
        return PublishResult("unknown", error=f"WordPress did not answer after the post was sent: {exc!r}")
    if response.status_code in _RETRY_LATER:
        raise ProviderUnavailable(f"WordPress asked to retry later: {_message(response)}")
    if response.is_success:
        try:
            body = response.json()
        except ValueError:
            body = {}
        return _wordpress_post(body if isinstance(body, dict) else {})
    if response.status_code in (401, 403):
        return PublishResult("failed", error=f"WordPress refused the application password: {_message(response)}")
    if response.status_code < 500:
        return PublishResult("failed", error=f"WordPress refused the post: {_message(response)}")
    return PublishResult(
        "unknown", error=f"WordPress failed while taking the post, which may exist: {_message(response)}"
    )


async def find_wordpress_post(
    config: WordPressIntegration, slug: str, *, timeout_seconds: float
) -> PublishResult | None:
    """The post with this slug in any status, or ``None`` if WordPress has none; ``LookupFailed`` if it cannot say."""
    params = {"slug": slug, "status": "any", "_fields": "id,link,slug,status"}
    try:
        async with _wordpress(config, timeout_seconds) as http:
            response = await http.get(_posts_url(config), params=params)
    except _NOT_SENT as exc:
        raise ProviderUnavailable(f"WordPress unreachable: {exc!r}") from exc
    except httpx2.TransportError as exc:
        raise LookupFailed(f"WordPress did not answer the lookup: {exc!r}") from exc
    if not response.is_success:
        raise LookupFailed(f"WordPress could not list posts: {_message(response)}")
    try:
        posts = response.json()
    except ValueError as exc:
        raise LookupFailed("WordPress answered the lookup with something other than JSON") from exc
    if not isinstance(posts, list):
        raise LookupFailed("WordPress answered the lookup with something other than a list of posts")
    for item in posts:
        if isinstance(item, dict) and item.get("slug") == slug:
            return _wordpress_post(item)
    return None


# ---- signed webhook


def signature(secret: str, timestamp: str, body: bytes) -> str:
    """``sha256=`` and the hex HMAC-SHA256 of ``timestamp + "." + body`` under the company's secret."""
    digest = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


async def publish_webhook(
    config: WebhookIntegration, *, delivery_id: str, payload: dict[str, Any], timeout_seconds: float
) -> PublishResult:
    """A signed JSON POST. The receiver may answer ``{"url": ..., "id": ...}`` to say where the post went."""
    body = json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()
    timestamp = str(int(time.time()))
    headers = {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        SIGNATURE_HEADER: signature(config.secret, timestamp, body),
        TIMESTAMP_HEADER: timestamp,
        DELIVERY_HEADER: delivery_id,
    }
    try:
        async with httpx2.AsyncClient(timeout=timeout_seconds) as http:
            response = await http.post(str(config.url), content=body, headers=headers)
    except _NOT_SENT as exc:
        raise ProviderUnavailable(f"webhook unreachable: {exc!r}") from exc
    except httpx2.TransportError as exc:
        return PublishResult("unknown", error=f"the webhook did not answer after the post was sent: {exc!r}")
    if response.status_code in _RETRY_LATER:
        raise ProviderUnavailable(f"the webhook asked to retry later: {response.status_code}")
    if response.is_success:
        return _webhook_answer(response)
    if response.status_code < 500:
        return PublishResult("failed", error=f"the webhook refused the post: {_message(response)}")
    return PublishResult("unknown", error=f"the webhook failed while taking the post: {_message(response)}")


def _webhook_answer(response: httpx2.Response) -> PublishResult:
    try:
        body = response.json()
    except ValueError:
        body = None
    if not isinstance(body, dict):
        return PublishResult("published")
    url, external_id = body.get("url"), body.get("id")
    return PublishResult(
        "published",
        external_id=str(external_id)[:255] if external_id is not None else None,
        url=url if isinstance(url, str) and url.startswith(("http://", "https://")) and len(url) <= 1000 else None,
    )
