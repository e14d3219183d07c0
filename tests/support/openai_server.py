"""A small OpenAI-compatible server: ``POST /v1/chat/completions`` answers deterministically and keeps requests."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from tests.support.asgi_server import AsgiServer


def echo_reply(body: dict[str, Any]) -> str:
    """``Personalised: `` and the last user message, so a test can see what the prompt carried."""
    user_messages = [message["content"] for message in body["messages"] if message["role"] == "user"]
    return f"Personalised: {user_messages[-1]}"


class OpenAIServer(AsgiServer):
    """Use ``url + "/v1"`` as the client's base URL; ``requests`` holds each call's headers and JSON body.

    ``failures`` are HTTP statuses answered (one per request, in order) before replying normally, as a
    rate-limited or broken service would; ``structured_output=False`` refuses ``response_format`` with a 400,
    as servers without structured output do.
    """

    def __init__(self, reply: Callable[[dict[str, Any]], str] = echo_reply) -> None:
        self.requests: list[dict[str, Any]] = []
        self.reply = reply
        self.failures: list[int] = []
        self.structured_output = True
        super().__init__(Starlette(routes=[Route("/v1/chat/completions", self._complete, methods=["POST"])]))

    @property
    def base_url(self) -> str:
        return f"{self.url}/v1"

    async def _complete(self, request: Request) -> JSONResponse:
        body = await request.json()
        self.requests.append({"headers": dict(request.headers), "body": body})
        if self.failures:
            status = self.failures.pop(0)
            error = {"message": f"test server answers {status}", "type": "test_error", "code": str(status)}
            return JSONResponse({"error": error}, status_code=status)
        if "response_format" in body and not self.structured_output:
            error = {"message": "response_format is not supported by this model", "type": "invalid_request_error"}
            return JSONResponse({"error": error}, status_code=400)
        content = self.reply(body)
        return JSONResponse(
            {
                "id": f"chatcmpl-test-{len(self.requests)}",
                "object": "chat.completion",
                "created": int(time.time()),
                "model": body["model"],
                "choices": [
                    {"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}
                ],
                "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
            }
        )
