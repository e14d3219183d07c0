"""``GET /c/{link_id}``: the click-tracked links in published content. Public: whoever reads the content clicks."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path
from fastapi.responses import RedirectResponse

from api.deps import SessionDep
from services import content_links

router = APIRouter(tags=["content"])

LinkId = Annotated[str, Path(max_length=40)]
_RESPONSES: dict[int | str, dict[str, str]] = {
    302: {"description": "To the address the content links to"},
    404: {"description": "Unknown link"},
}


def _redirect(url: str) -> RedirectResponse:
    return RedirectResponse(url, status_code=302, headers={"Cache-Control": "no-store"})


@router.get("/c/{link_id}", status_code=302, response_class=RedirectResponse, responses=_RESPONSES)
async def follow_link(link_id: LinkId, session: SessionDep) -> RedirectResponse:
    """Count a click on the content's figures and redirect to the address it holds (only there)."""
    return _redirect(await content_links.follow(session, link_id))


@router.head("/c/{link_id}", status_code=302, response_class=RedirectResponse, responses=_RESPONSES)
async def peek_link(link_id: LinkId, session: SessionDep) -> RedirectResponse:
    """Where the link goes, without counting a click: a link preview looking, not a reader clicking."""
    return _redirect(await content_links.peek(session, link_id))
