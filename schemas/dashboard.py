"""``GET /v1/analytics/dashboard`` and ``GET /v1/analytics/workflows``: the figures of a period across automations.

Rates are 0 when there is nothing to divide by; averages are null when there is nothing to average. Money is in
the company's currency, rounded to cents.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, Field

from schemas.analytics import Period
from schemas.workflow_configs import WorkflowType

WORKFLOW_LABELS = {
    WorkflowType.lead_nurturing: "Lead Nurturing",
    WorkflowType.review_referral: "Review & Referral",
    WorkflowType.content_generation: "Content Generation",
}
"""Chart labels, in the order the charts list the types."""

Number = int | float
ChangeType = Literal["positive", "negative", "neutral"]


# ---- dashboard


class DashboardSummary(BaseModel):
    new_leads: int = Field(description="leads created in the period")
    lead_conversion_rate: float = Field(description="of the period's new leads, those now converted")
    new_customers: int = Field(description="customers created in the period")
    total_sales: float = Field(description="completed sales recorded in the period, summed")
    average_sale: float | None = Field(description="total_sales / their number")
    reviews_requested: int = Field(description="review requests sent in the period")
    reviews_completed: int = Field(description="reviews left in the period")
    average_rating: float | None = Field(description="of the reviews left in the period that have a rating")
    referrals_created: int = Field(description="referral codes created in the period")
    referrals_used: int = Field(description="of those codes, the ones used at least once (whenever)")
    content_created: int = Field(description="content items created in the period")
    content_engagement_rate: float = Field(
        description="(clicks + shares + comments) / views of the metrics recorded for days in the period"
    )


class Change(BaseModel):
    value: Number
    previous: Number = Field(description="the same figure over the previous period of the same length")
    change: float | None = Field(
        description="(value - previous) / previous, rounded to 4 places; null if previous is 0"
    )
    change_type: ChangeType = Field(description="positive if value > previous, negative if lower, else neutral")


class DashboardComparison(BaseModel):
    new_leads: Change
    lead_conversion_rate: Change
    new_customers: Change
    total_sales: Change


class ChartDataset(BaseModel):
    label: str
    data: list[Number]


class Chart(BaseModel):
    """Chart.js-ready: one entry of each dataset's ``data`` per label."""

    labels: list[str]
    datasets: list[ChartDataset]


class DashboardCharts(BaseModel):
    leads_over_time: Chart = Field(description="every day of the period: New Leads and Converted Leads (by the day)")
    sales_over_time: Chart = Field(description="every day of the period: the Sales Amount of completed sales")
    workflow_performance: Chart = Field(description="per workflow type with runs started in the period")


class RoiAssumptions(BaseModel):
    """The ROI inputs: the server's defaults, or the company's ``settings.roi`` where it sets them."""

    hourly_rate: float = Field(ge=0, description="what an hour of staff time is worth")
    minutes_per_message: float = Field(ge=0, description="staff minutes one automated message saves")
    minutes_per_content: float = Field(ge=0, description="staff minutes one generated content item saves")


class Roi(BaseModel):
    estimated_revenue_impact: float = Field(
        description="completed sales in the period by customers who came from a followed-up lead, or that "
        "redeemed a referral code (each sale once)"
    )
    estimated_time_saved_hours: float = Field(
        description="(automated_messages x minutes_per_message + content_created x minutes_per_content) / 60"
    )
    estimated_time_value: float = Field(description="estimated_time_saved_hours x hourly_rate")
    total_value: float = Field(description="estimated_revenue_impact + estimated_time_value")
    automated_messages: int = Field(description="messages sent (or recorded) by automations in the period")
    assumptions: RoiAssumptions


class DashboardAnalytics(BaseModel):
    """``GET /v1/analytics/dashboard``."""

    period: Period
    summary: DashboardSummary
    comparison: DashboardComparison | None = Field(description="null when compare_to_previous=false")
    charts: DashboardCharts
    roi: Roi


# ---- workflows


class _WorkflowFigures(BaseModel):
    id: str | None = Field(description="the workflow config; null for the runs started without one")
    name: str
    runs_total: int = Field(description="runs started in the period")
    runs_successful: int = Field(description="of those, completed or stopped on purpose (a reply, a conversion...)")
    runs_failed: int
    success_rate: float = Field(description="runs_successful / (runs_successful + runs_failed): runs still going wait")
    estimated_revenue_impact: float = Field(
        description="completed sales recorded in the period that these runs brought (see the route description)"
    )


class LeadNurturingFigures(_WorkflowFigures):
    type: Literal[WorkflowType.lead_nurturing]
    conversion_rate: float = Field(description="of the leads these runs followed up, those now converted")
    average_response_time_hours: float | None = Field(
        description="from a run's first message to its lead's first reply after it, over the runs answered"
    )


class ReviewReferralFigures(_WorkflowFigures):
    type: Literal[WorkflowType.review_referral]
    review_completion_rate: float = Field(description="of the sales these runs asked about, those with a review left")
    average_rating: float | None
    referral_usage_rate: float = Field(description="of the referral codes these runs issued, those used")


class ContentGenerationFigures(_WorkflowFigures):
    type: Literal[WorkflowType.content_generation]
    average_engagement_rate: float = Field(
        description="(clicks + shares + comments) / views of the content these runs wrote, every recorded day"
    )
    average_conversion_rate: float = Field(description="conversions / views of that content")


WorkflowFigures = Annotated[
    LeadNurturingFigures | ReviewReferralFigures | ContentGenerationFigures, Field(discriminator="type")
]


class WorkflowTotals(BaseModel):
    runs_total: int
    runs_successful: int
    runs_failed: int
    success_rate: float
    estimated_revenue_impact: float = Field(description="each sale once, even when several workflows brought it")
    estimated_time_saved_hours: float = Field(
        description="messages these runs sent and content they wrote, at the company's ROI assumptions"
    )


class WorkflowAnalytics(BaseModel):
    """``GET /v1/analytics/workflows``."""

    period: Period
    workflows: list[WorkflowFigures]
    totals: WorkflowTotals
