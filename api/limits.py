"""Request bodies are capped, and text no database can store is refused, before any route runs.

One ASGI middleware for both API surfaces and the console, so every route (including those written later)
is covered: a body above ``max_body_bytes`` (``max_upload_bytes`` on the upload routes) is a 413 in the
surface's own error format, whether it announces its size in ``Content-Length`` or arrives chunked. A NUL
character (PostgreSQL refuses it in text and JSON) in the path, the query or a JSON / URL-encoded body is a
422 naming the field, on SQLite too, so both databases answer alike. Multipart bodies are only counted:
their parts may be binary files, and the routes that take them read their fields themselves.
"""

from __future__ import annotations

import json
import logging
import re
from typing import Any
from urllib.parse import parse_qsl

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.errors import error_response
from core.config import Settings

log = logging.getLogger("api.limits")

UPLOAD_ROUTES = (
    re.compile(r"/app/leads/import"),  # the console's CSV lead import (multipart)
    re.compile(r"/api/lead-nurturing/inbound/[^/]+/email"),  # inbound-parse posts may carry attachments
)
"""``POST`` paths that take ``max_upload_bytes`` rather than ``max_body_bytes``."""

NUL_MESSAGE = "may not contain NUL (\\u0000) characters"

# A JSON string can hold NUL only as the escape \u0000; the backslash must itself be unescaped (an odd run).
_JSON_NUL = re.compile(rb"(?<!\\)(?:\\\\)*\\u0000")
_FORM_NUL = b"%00"


def _size(count: int) -> str:
    return f"{count // (1024 * 1024)} MiB" if count % (1024 * 1024) == 0 else f"{count // 1024} KiB"


class BodyTooLarge(HTTPException):
    """Raised from ``receive`` once a streamed body passes the cap; the error handlers render it as a 413.

    An ``HTTPException`` on purpose: FastAPI re-raises those from body parsing (anything else would become
    "There was an error parsing the body", a 400).
    """

    def __init__(self, cap: int) -> None:
        super().__init__(413, f"The request body is larger than {_size(cap)}")


def _request_id(scope: Scope) -> str:
    return str(scope.get("state", {}).get("request_id", ""))


def _content_length(scope: Scope) -> int | None:
    for name, value in scope["headers"]:
        if name == b"content-length":
            return int(value) if value.isdigit() else None
    return None


def _media_type(scope: Scope) -> str:
    for name, value in scope["headers"]:
        if name == b"content-type":
            media_type: str = value.decode("latin-1").split(";")[0].strip().lower()
            return media_type
    return ""


def _is_json(media_type: str) -> bool:
    return media_type == "application/json" or (media_type.startswith("application/") and media_type.endswith("+json"))


def _field_with_nul(value: Any, path: str = "") -> str | None:
    """The dotted name of the first key or string holding a NUL, as the validation errors name fields."""
    pending: list[tuple[Any, str]] = [(value, path)]
    while pending:
        node, where = pending.pop()
        if isinstance(node, str) and "\x00" in node:
            return where or "body"
        if isinstance(node, dict):
            for key, item in node.items():
                name = f"{where}.{key}" if where else str(key)
                if "\x00" in key:
                    return name
                pending.append((item, name))
        elif isinstance(node, list):
            pending.extend((item, f"{where}.{index}" if where else str(index)) for index, item in enumerate(node))
    return None


def _nul_in_body(media_type: str, body: bytes) -> str | None:
    if _is_json(media_type):
        if not _JSON_NUL.search(body):
            return None
        try:
            return _field_with_nul(json.loads(body)) or "body"
        except (ValueError, RecursionError):
            return None  # not JSON after all (or nested past the parser): the route answers with its own parse error
    if _FORM_NUL not in body:
        return None
    pairs = parse_qsl(body.decode("latin-1"), keep_blank_values=True)
    return next((name for name, value in pairs if "\x00" in name + value), "body")


def _nul_in_url(scope: Scope) -> str | None:
    if "\x00" in scope["path"]:
        return "path"
    query: bytes = scope.get("query_string", b"")
    if _FORM_NUL not in query and b"\x00" not in query:
        return None
    pairs = parse_qsl(query.decode("latin-1"), keep_blank_values=True)
    return next((name for name, value in pairs if "\x00" in name + value), "query")


async def _read_body(receive: Receive, cap: int) -> bytes | None:
    """The whole body, or ``None`` when the client went away before sending it."""
    chunks: list[bytes] = []
    received = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return None
        chunk = message.get("body", b"")
        received += len(chunk)
        if received > cap:
            raise BodyTooLarge(cap)
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


def _replaying(body: bytes, receive: Receive) -> Receive:
    delivered = False

    async def replay() -> Message:
        nonlocal delivered
        if delivered:
            return await receive()  # after the body: wait for the disconnect, as the server would
        delivered = True
        return {"type": "http.request", "body": body, "more_body": False}

    return replay


def _counting(receive: Receive, cap: int) -> Receive:
    received = 0

    async def receive_within_cap() -> Message:
        nonlocal received
        message = await receive()
        received += len(message.get("body", b""))
        if received > cap:
            raise BodyTooLarge(cap)
        return message

    return receive_within_cap


class BodyLimitMiddleware:
    """Caps every request body (413) and refuses NUL characters in URLs and text bodies (422)."""

    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        self.app = app
        self.settings = settings  # read per request: a changed cap applies at once

    def cap_for(self, method: str, path: str) -> int:
        if method == "POST" and any(route.fullmatch(path) for route in UPLOAD_ROUTES):
            return self.settings.max_upload_bytes
        return self.settings.max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if field := _nul_in_url(scope):
            await self._refuse_nul(scope, receive, send, field)
            return
        cap = self.cap_for(scope["method"], scope["path"])
        declared = _content_length(scope)
        if declared is not None and declared > cap:
            # Refused before a byte of the body is read.
            await self._refuse_size(scope, receive, send, cap, f"Content-Length {declared}")
            return
        media_type = _media_type(scope)
        try:
            if _is_json(media_type) or media_type == "application/x-www-form-urlencoded":
                # Text bodies are small by nature and parsed whole by the routes anyway: read them here
                # (within the cap) so a NUL can be refused with the field's name before anything is stored.
                body = await _read_body(receive, cap)
                if body is None:
                    return
                if field := _nul_in_body(media_type, body):
                    await self._refuse_nul(scope, receive, send, field)
                    return
                receive = _replaying(body, receive)
            else:
                receive = _counting(receive, cap)
        except BodyTooLarge:
            await self._refuse_size(scope, receive, send, cap, "a chunked body")
            return

        started = False

        async def send_watching(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, send_watching)
        except BodyTooLarge:
            # Read outside a route (a route's own read is answered by the error handlers); too late once
            # the response has begun.
            if started:
                raise
            await self._refuse_size(scope, receive, send, cap, "a streamed body")

    async def _refuse_size(self, scope: Scope, receive: Receive, send: Send, cap: int, what: str) -> None:
        request = Request(scope, receive)
        log.warning(
            "refused %s %s: %s over the %d-byte cap [%s]",
            scope["method"],
            scope["path"],
            what,
            cap,
            _request_id(scope),
        )
        response = error_response(request, 413, BodyTooLarge(cap).detail, headers={"Connection": "close"})
        await response(scope, receive, send)

    async def _refuse_nul(self, scope: Scope, receive: Receive, send: Send, field: str) -> None:
        request = Request(scope, receive)
        log.info("refused %s %s: NUL character in %s [%s]", scope["method"], scope["path"], field, _request_id(scope))
        response = error_response(request, 422, "Validation failed", field_errors={field: [NUL_MESSAGE]})
        await response(scope, receive, send)
