"""Content metrics as reported to us, and content analytics as each surface shows them.

Definitions shared by both surfaces (the services compute them in SQL):

- the content *of a period* is the content created in it (any status);
- the engagement *of a period* is the metrics recorded for a day in it, for any of the company's content, whenever
  that content was created;
- engagement rate = (clicks + shares + comments) / views, conversion rate = conversions / views, rounded to 4
  places, 0 when there are no views;
- the top performing content is the content with metrics recorded in the period, by views, then clicks, then id.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, field_serializer

from schemas.analytics import Period
from schemas.content import ENDPOINTS_TYPE_WORDS, ContentMetrics, ContentType, EndpointsContentType
from schemas.ids import EndpointsId

MAX_INCREMENT = 1_000_000_000
"""Per figure and post; a day's stored total is a 32-bit integer on PostgreSQL."""
MAX_BATCH = 1000
TOP_PERFORMING = 10
FIGURES = ("views", "clicks", "shares", "comments", "conversions")

_ENDPOINTS_TYPE_WORDS = {kind.value: word for kind, word in ENDPOINTS_TYPE_WORDS.items()}

Increment = Annotated[int, Field(ge=0, le=MAX_INCREMENT)]


# ---- ingestion


class ContentMetricsAdd(BaseModel):
    """``POST /v1/content/{content_id}/metrics``: figures *added* to what the day already has."""

    model_config = ConfigDict(extra="forbid")

    recorded_on: date | None = Field(
        None, description="the day the figures belong to, YYYY-MM-DD (default today, UTC); not after tomorrow (UTC)"
    )
    views: Increment = 0
    clicks: Increment = 0
    shares: Increment = 0
    comments: Increment = 0
    conversions: Increment = Field(
        0, description="visitors who became leads through this content (a sign-up, a form sent)"
    )


class ContentMetricsBatchItem(ContentMetricsAdd):
    content_id: Annotated[str, Field(min_length=1, max_length=40)]


class ContentMetricsBatch(BaseModel):
    """``POST /v1/content/metrics``: many items and days at once, all or nothing."""

    model_config = ConfigDict(extra="forbid")

    metrics: list[ContentMetricsBatchItem] = Field(min_length=1, max_length=MAX_BATCH)


class ContentMetricsRecorded(BaseModel):
    """What one content item has after the figures were added."""

    content_id: str
    recorded_on: date
    day: ContentMetrics = Field(description="that day's figures, this post included")
    totals: ContentMetrics = Field(description="every reported day of the content added up")


class ContentMetricsBatchRecorded(BaseModel):
    data: list[ContentMetricsRecorded] = Field(description="one entry per content item and day of the request")


# ---- /v1


class ContentAnalyticsSummary(BaseModel):
    total_content: int = Field(description="content created in the period")
    total_views: int = Field(description="views recorded in the period, of any content")
    total_clicks: int
    total_shares: int
    total_conversions: int
    average_engagement_rate: float = Field(
        description="(clicks + shares + comments) / views over all metrics of the period: each content item "
        "weighs by its views; 0 without views"
    )
    average_conversion_rate: float = Field(description="conversions / views over all metrics of the period")


class ContentTypeFigures(BaseModel):
    type: ContentType
    count: int = Field(description="content of this type created in the period")
    views: int = Field(description="views recorded in the period for content of this type")
    clicks: int
    shares: int
    conversions: int
    engagement_rate: float = Field(description="(clicks + shares + comments) / views; 0 without views")
    conversion_rate: float = Field(description="conversions / views; 0 without views")


class TopContent(BaseModel):
    id: str
    title: str | None
    type: ContentType
    views: int = Field(description="recorded in the period, as are the other figures")
    clicks: int
    shares: int
    conversions: int
    engagement_rate: float
    conversion_rate: float


class ContentAnalytics(BaseModel):
    """``GET /v1/analytics/content``."""

    period: Period
    summary: ContentAnalyticsSummary
    by_type: list[ContentTypeFigures] = Field(
        description="types with content created or metrics recorded in the period, in the order blog, social, "
        "email, product"
    )
    top_performing: list[TopContent] = Field(
        description=f"up to {TOP_PERFORMING} items with metrics recorded in the period, by views, then clicks"
    )


# ---- /api


class EngagementMetrics(BaseModel):
    views: int = Field(description="recorded in the period, of any content")
    clicks: int
    shares: int


class ConversionMetrics(BaseModel):
    leads: int = Field(description="conversions reported on content for days in the period")
    sales: int = Field(
        description="completed sales recorded in the period whose customer came from a lead attributed to "
        "content: the lead's custom_fields.content_id names one of the company's content items"
    )


class TopContentEndpoints(BaseModel):
    id: EndpointsId
    title: str | None
    type: EndpointsContentType
    views: int
    clicks: int


class ContentGenerationAnalytics(BaseModel):
    """``GET /api/content-generation/analytics``."""

    content_created: dict[str, int] = Field(
        description="content created in the period by type (blog_post, social_media, email_newsletter, "
        "product_description), every type present"
    )
    publishing_success_rate: float = Field(
        description="published / (published + failed + unknown outcome) publications due in the period; 0 if none"
    )
    engagement_metrics: EngagementMetrics
    conversion_metrics: ConversionMetrics
    top_performing_content: list[TopContentEndpoints] = Field(
        description=f"up to {TOP_PERFORMING} items with metrics recorded in the period, by views, then clicks"
    )

    @field_serializer("content_created")
    def _endpoints_words(self, counts: dict[str, int]) -> dict[str, int]:
        return {_ENDPOINTS_TYPE_WORDS.get(kind, kind): count for kind, count in counts.items()}
