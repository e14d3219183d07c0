"""Workflow configurations: what triggers an automation and what it does."""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field

from schemas.lead_follow_up import SendWindow
from schemas.leads import Channel


class WorkflowType(StrEnum):
    lead_nurturing = "lead_nurturing"
    review_referral = "review_referral"
    content_generation = "content_generation"


class LeadTriggers(BaseModel):
    """A lead matches when its source is listed (or the list is empty) and it carries every listed tag."""

    lead_source: list[str] = Field(default_factory=list)
    tags: list[str] = Field(default_factory=list)


class FollowUpAction(BaseModel):
    model_config = ConfigDict(extra="forbid")

    delay_hours: float = Field(ge=0, le=24 * 365, description="Fractions allowed: 0.001 is 3.6 seconds")
    message_template: str = Field(min_length=1, max_length=100)
    channel: Channel | None = Field(None, description="defaults to the sequence's channel")
    subject: str | None = Field(None, max_length=200)


class LeadNurturingActions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    initial_delay_minutes: float = Field(0, ge=0, le=60 * 24 * 30)
    message_template: str = Field(min_length=1, max_length=100)
    channel: Channel = Channel.email
    subject: str | None = Field(None, max_length=200, description="email subject; a template too")
    follow_up: list[FollowUpAction] = Field(default_factory=list, max_length=20)
    personalize: bool = Field(False, description="let the LLM rewrite each rendered message for the lead")
    send_window: SendWindow | None = Field(None, description="business hours in the lead's time zone")
