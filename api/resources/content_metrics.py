"""``/v1/content/{content_id}/metrics`` and ``/v1/content/metrics``: engagement figures reported for content.

Not in spec/api-v1-resources.md: the spec reads the figures (``GET /v1/content/{id}`` and
``GET /v1/analytics/content``); this is how they get in.
"""

from __future__ import annotations

from fastapi import APIRouter

from api.deps import CurrentUser, SessionDep
from schemas.content_analytics import (
    MAX_BATCH,
    ContentMetricsAdd,
    ContentMetricsBatch,
    ContentMetricsBatchRecorded,
    ContentMetricsRecorded,
)
from services import content_metrics

router = APIRouter(prefix="/content", tags=["content"])

_ADD_DESCRIPTION = (
    "Adds the figures to what the content already has for `recorded_on` (default today, UTC): a report is an "
    "increment, not a replacement, and concurrent reports of the same day add up exactly (one atomic upsert in "
    "the database). Figures left out count as 0. `conversions` are visitors who became leads through the "
    "content; they are the `leads` of `GET /api/content-generation/analytics`. Answers the day's figures and the "
    "content's totals over every day."
)
_BATCH_DESCRIPTION = (
    f"Up to {MAX_BATCH} reports at once, each like `POST /v1/content/{{content_id}}/metrics` with its "
    "`content_id`. All or nothing: if one names content that is not your company's, the answer is 404 and "
    "nothing is added. The same item and day given twice adds both. One answer entry per item and day, in the "
    "order first given."
)


@router.post("/metrics", description=_BATCH_DESCRIPTION, responses={404: {"description": "Unknown content"}})
async def add_metrics_batch(
    body: ContentMetricsBatch, user: CurrentUser, session: SessionDep
) -> ContentMetricsBatchRecorded:
    """Report engagement figures for many content items and days."""
    return ContentMetricsBatchRecorded(data=await content_metrics.add_batch(session, user, body))


@router.post("/{content_id}/metrics", description=_ADD_DESCRIPTION, responses={404: {"description": "Unknown content"}})
async def add_metrics(
    content_id: str, body: ContentMetricsAdd, user: CurrentUser, session: SessionDep
) -> ContentMetricsRecorded:
    """Report engagement figures for one content item and day."""
    return await content_metrics.add(session, user, content_id, body)
