"""A Twilio-like SMS API: ``POST /2010-04-01/Accounts/{sid}/Messages.json`` (form body, basic auth) creates a
message; ``GET`` on the same path lists the account's messages, newest first, filtered by ``To`` and ``From``
and paged by ``PageSize``/``Page`` with Twilio's ``next_page_uri``."""

from __future__ import annotations

import asyncio
import base64
import uuid
from email.utils import format_datetime
from typing import Any
from urllib.parse import urlencode

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from db.base import utcnow
from tests.support.asgi_server import AsgiServer

PATH = "/2010-04-01/Accounts/{account}/Messages.json"


class SmsServer(AsgiServer):
    """``requests`` keeps each POST's account, basic-auth pair and form; ``messages`` the messages created, oldest
    first (as Twilio would list them: ``sid``, ``to``, ``from``, ``body``, ``status``, ``date_created``).

    ``status`` answers a POST with another code (400 rejects the message); ``hang_seconds`` holds the answer
    after the message was created. ``lookups`` counts the GETs; ``list_status`` answers them with another code.
    """

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.messages: list[dict[str, Any]] = []
        self.status = 201
        self.hang_seconds = 0.0
        self.lookups = 0
        self.list_status = 200
        routes = [Route(PATH, self._create, methods=["POST"]), Route(PATH, self._list, methods=["GET"])]
        super().__init__(Starlette(routes=routes))

    @property
    def base_url(self) -> str:
        return f"{self.url}/2010-04-01"

    def sent_to(self, number: str) -> list[dict[str, Any]]:
        return [message for message in self.messages if message["to"] == number]

    async def _create(self, request: Request) -> JSONResponse:
        form = await request.form()
        scheme, _, encoded = request.headers.get("authorization", "").partition(" ")
        user, _, password = base64.b64decode(encoded).decode().partition(":") if scheme == "Basic" else ("", "", "")
        self.requests.append(
            {"account": request.path_params["account"], "auth": (user, password), "form": dict(form.items())}
        )
        if self.status >= 400:
            return JSONResponse(
                {"code": 21211, "message": f"The 'To' number {form.get('To')} is not valid.", "status": self.status},
                status_code=self.status,
            )
        message = {
            "sid": f"SM{uuid.uuid4().hex}",
            "status": "queued",
            "to": form.get("To"),
            "from": form.get("From"),
            "body": form.get("Body"),
            "date_created": format_datetime(utcnow()),
        }
        self.messages.append(message)  # created before the answer: a lost answer leaves the message in place
        if self.hang_seconds:
            await asyncio.sleep(self.hang_seconds)
        return JSONResponse(message, status_code=self.status)

    async def _list(self, request: Request) -> JSONResponse:
        self.lookups += 1
        if self.list_status != 200:
            return JSONResponse({"code": 20500, "message": "Internal Server Error"}, status_code=self.list_status)
        query = request.query_params
        matching = [
            message
            for message in reversed(self.messages)
            if query.get("To") in (None, message["to"]) and query.get("From") in (None, message["from"])
        ]
        size, page = int(query.get("PageSize", 50)), int(query.get("Page", 0))
        shown = matching[page * size : (page + 1) * size]
        following = None
        if (page + 1) * size < len(matching):
            params = {key: value for key, value in query.items() if key != "Page"} | {"Page": page + 1}
            following = f"{request.url.path}?{urlencode(params)}"
        return JSONResponse({"messages": shown, "page": page, "page_size": size, "next_page_uri": following})
