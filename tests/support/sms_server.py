"""A Twilio-like SMS API: ``POST /2010-04-01/Accounts/{sid}/Messages.json`` (form body, basic auth)."""

from __future__ import annotations

import asyncio
import base64
import uuid
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from tests.support.asgi_server import AsgiServer


class SmsServer(AsgiServer):
    """``requests`` keeps each POST's account, basic-auth pair and form. ``status`` answers with another code
    (400 rejects the message); ``hang_seconds`` holds the answer after the request arrived."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.status = 201
        self.hang_seconds = 0.0
        route = Route("/2010-04-01/Accounts/{account}/Messages.json", self._create, methods=["POST"])
        super().__init__(Starlette(routes=[route]))

    @property
    def base_url(self) -> str:
        return f"{self.url}/2010-04-01"

    async def _create(self, request: Request) -> JSONResponse:
        form = await request.form()
        scheme, _, encoded = request.headers.get("authorization", "").partition(" ")
        user, _, password = base64.b64decode(encoded).decode().partition(":") if scheme == "Basic" else ("", "", "")
        self.requests.append(
            {"account": request.path_params["account"], "auth": (user, password), "form": dict(form.items())}
        )
        if self.hang_seconds:
            await asyncio.sleep(self.hang_seconds)
        if self.status >= 400:
            return JSONResponse(
                {"code": 21211, "message": f"The 'To' number {form.get('To')} is not valid.", "status": self.status},
                status_code=self.status,
            )
        sid = f"SM{uuid.uuid4().hex}"
        return JSONResponse(
            {"sid": sid, "status": "queued", "to": form.get("To"), "from": form.get("From"), "body": form.get("Body")},
            status_code=self.status,
        )
