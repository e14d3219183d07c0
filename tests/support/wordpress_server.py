"""Publishing receivers on loopback: a WordPress-like REST API and a webhook receiver (Postiz, n8n, Zapier...)."""

from __future__ import annotations

import asyncio
import base64
import threading
import time
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tests.support.asgi_server import AsgiServer

USERNAME = "editor"
APP_PASSWORD = "abcd EFGH 1234 ijkl MNOP 5678"


def _basic_auth(request: Request) -> tuple[str, str]:
    scheme, _, encoded = request.headers.get("authorization", "").partition(" ")
    if scheme != "Basic":
        return "", ""
    user, _, password = base64.b64decode(encoded).decode().partition(":")
    return user, password


class WordPressServer(AsgiServer):
    """``POST`` and ``GET /wp-json/wp/v2/posts`` with application-password basic auth, as WordPress answers them.

    ``posts`` are the posts it holds, ``creates`` every ``POST`` it received (created or not), ``lookups`` the
    query of every ``GET``. Knobs: ``refuse_with`` answers each ``POST`` with that status and creates nothing;
    ``hang_seconds`` creates the post, then waits that long before answering (the client times out first);
    ``hold()`` creates the post, then answers only after ``release()``; ``lookups_fail`` answers ``GET`` with 500.
    """

    def __init__(self, username: str = USERNAME, app_password: str = APP_PASSWORD) -> None:
        self.username = username
        self.app_password = app_password
        self.posts: list[dict[str, Any]] = []
        self.creates: list[dict[str, Any]] = []
        self.lookups: list[dict[str, str]] = []
        self.refuse_with: int | None = None
        self.hang_seconds = 0.0
        self.lookups_fail = False
        self._holding = False
        self._released = threading.Event()
        self._created = threading.Event()
        route = Route("/wp-json/wp/v2/posts", self._posts, methods=["GET", "POST"])
        super().__init__(Starlette(routes=[route]))

    def hold(self) -> None:
        self._holding = True
        self._released.clear()

    def release(self) -> None:
        self._holding = False
        self._released.set()

    def wait_for_post(self, timeout: float = 30) -> dict[str, Any]:
        """Blocks until a post exists (call it from a thread: ``asyncio.to_thread``)."""
        if not self._created.wait(timeout):
            raise AssertionError(f"no post was created within {timeout}s")
        return self.posts[0]

    def add_post(self, slug: str, title: str = "Earlier post") -> dict[str, Any]:
        """A post created behind the client's back, as if an earlier request had created it."""
        return self._new_post({"title": title, "content": "", "slug": slug, "status": "publish"})

    def _new_post(self, body: dict[str, Any]) -> dict[str, Any]:
        post_id = len(self.posts) + 1
        slug = str(body.get("slug") or f"post-{post_id}")
        post = {
            "id": post_id,
            "slug": slug,
            "status": body.get("status", "draft"),
            "link": f"{self.url}/{time.strftime('%Y/%m')}/{slug}/",
            "title": {"raw": body.get("title", ""), "rendered": body.get("title", "")},
            "content": {"raw": body.get("content", ""), "rendered": body.get("content", "")},
        }
        self.posts.append(post)
        self._created.set()
        return post

    def _authorised(self, request: Request) -> bool:
        # WordPress shows application passwords in groups; it accepts them with or without the spaces.
        user, password = _basic_auth(request)
        return user == self.username and password.replace(" ", "") == self.app_password.replace(" ", "")

    async def _posts(self, request: Request) -> Response:
        if not self._authorised(request):
            return JSONResponse(
                {"code": "incorrect_password", "message": "The provided password is an invalid application password."},
                status_code=401,
            )
        if request.method == "GET":
            return self._list(request)
        body = await request.json()
        self.creates.append(body)
        if self.refuse_with is not None:
            return JSONResponse({"code": "rest_error", "message": "Not now."}, status_code=self.refuse_with)
        post = self._new_post(body)
        while self._holding and not self._released.is_set():
            await asyncio.sleep(0.02)
        if self.hang_seconds:
            await asyncio.sleep(self.hang_seconds)
        return JSONResponse(post, status_code=201)

    def _list(self, request: Request) -> Response:
        query = dict(request.query_params)
        self.lookups.append(query)
        if self.lookups_fail:
            return JSONResponse({"code": "internal_server_error", "message": "Database error."}, status_code=500)
        status = query.get("status", "publish")
        found = [
            post
            for post in self.posts
            if post["slug"] == query.get("slug", post["slug"]) and status in ("any", post["status"])
        ]
        return JSONResponse(found)


class WebhookReceiver(AsgiServer):
    """Keeps each POST's headers and raw body; answers ``reply`` (JSON) with ``status``."""

    def __init__(self, reply: dict[str, Any] | None = None, status: int = 200) -> None:
        self.requests: list[tuple[dict[str, str], bytes]] = []
        self.reply = reply or {}
        self.status = status
        super().__init__(Starlette(routes=[Route("/hooks/content", self._receive, methods=["POST"])]))

    @property
    def hook_url(self) -> str:
        return f"{self.url}/hooks/content"

    async def _receive(self, request: Request) -> Response:
        self.requests.append((dict(request.headers), await request.body()))
        return JSONResponse(self.reply, status_code=self.status)
