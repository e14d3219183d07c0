"""``/app``: the web console. Pages call the same services as the API; no business rule lives here."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import RedirectResponse
from fastapi.staticfiles import StaticFiles

from api.console.pages import auth, automations, content, customers, dashboard, leads, settings
from api.console.session import CONSOLE_PATH

STATIC_DIR = Path(__file__).parent / "static"

router = APIRouter(prefix=CONSOLE_PATH, include_in_schema=False)
for module in (auth, dashboard, leads, content, settings, customers, automations):
    router.include_router(module.router)

root_router = APIRouter(include_in_schema=False)


@root_router.get("/")
async def root() -> RedirectResponse:
    return RedirectResponse(f"{CONSOLE_PATH}/", status_code=307)


static_files = StaticFiles(directory=STATIC_DIR)
