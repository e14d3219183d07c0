"""Lead analytics as each surface shows them. Figures are computed by the database; rates are 0 when there is
nothing to divide by, averages are null when there is nothing to average."""

from __future__ import annotations

from datetime import date

from pydantic import BaseModel, Field, field_serializer

from schemas.leads import ENDPOINTS_SOURCE_WORDS

_ENDPOINTS_SOURCE_WORDS = {source.value: word for source, word in ENDPOINTS_SOURCE_WORDS.items()}


class Period(BaseModel):
    """Both days included, in UTC."""

    start_date: date
    end_date: date


class LeadSummary(BaseModel):
    total_leads: int
    converted_leads: int
    conversion_rate: float
    average_response_time_hours: float | None = Field(
        description="per lead, from its first outbound message to its first inbound reply after it; averaged"
    )
    average_time_to_conversion_days: float | None = Field(description="from the lead's creation to its conversion")


class SourceFigures(BaseModel):
    source: str
    count: int
    conversion_rate: float
    average_time_to_conversion_days: float | None


class StatusCount(BaseModel):
    status: str
    count: int


class ConversionFunnel(BaseModel):
    stages: list[str]
    counts: list[int] = Field(description="leads that reached at least this stage")
    conversion_rates: list[float] = Field(description="each count divided by all leads of the period")


class LeadAnalytics(BaseModel):
    """``GET /v1/analytics/leads``: leads created in the period (and their interactions, whenever they happened)."""

    period: Period
    summary: LeadSummary
    by_source: list[SourceFigures]
    by_status: list[StatusCount]
    conversion_funnel: ConversionFunnel


class LeadNurturingAnalytics(BaseModel):
    """``GET /api/lead-nurturing/analytics``."""

    total_leads: int
    leads_by_source: dict[str, int]
    leads_by_status: dict[str, int]
    response_rate: float = Field(
        description="leads that replied after our first message, out of the leads we sent at least one message to"
    )
    engagement_rate: float = Field(description="leads now engaged, qualified or converted, out of all leads")
    conversion_rate: float
    average_time_to_conversion: float | None = Field(description="days from creation to conversion")
    interactions_by_type: dict[str, int] = Field(description="interactions recorded in the period, by type")

    @field_serializer("leads_by_source")
    def _endpoints_words(self, counts: dict[str, int]) -> dict[str, int]:
        return {_ENDPOINTS_SOURCE_WORDS.get(source, source): count for source, count in counts.items()}
