"""Workflow configurations: what triggers an automation and what it does."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

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

    @model_validator(mode="after")
    def _sms_can_go_out(self) -> LeadNurturingActions:
        uses_sms = self.channel == Channel.sms or any(step.channel == Channel.sms for step in self.follow_up)
        if uses_sms and self.send_window is not None and not self.send_window.allows_sms():
            # Such a sequence would wait forever: SMS only goes out 08:00-21:00 recipient time.
            raise ValueError("send_window never overlaps the SMS hours 08:00-21:00 (recipient time)")
        return self


TemplateKey = Annotated[str, StringConstraints(min_length=1, max_length=100)]
TemplateText = Annotated[str, StringConstraints(max_length=20_000)]
MAX_TEMPLATES = 50

_ACTIONS_DOC = (
    "What the automation does. For `lead_nurturing`: `initial_delay_minutes`, `message_template`, `channel` "
    "(email or sms), `subject`, `follow_up` [{`delay_hours` (fractions allowed), `message_template`, `channel`, "
    "`subject`}], `personalize`, `send_window` {`start`, `end`, `days`}. Every template named here must be "
    "defined in `templates`. Other workflow types store the object as given."
)
_TRIGGERS_DOC = (
    "When the automation starts. For `lead_nurturing`: `lead_source` (empty = any source) and `tags` "
    "(the lead must carry every one)."
)
_TEMPLATES_DOC = (
    "Message templates by name, jinja2 `{{name}}` placeholders rendered in a sandbox. Variables: "
    "name, first_name, email, phone, source, status, tags, custom_fields, company.name, company.website, "
    "company_name."
)


class WorkflowConfigCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200)
    workflow_type: WorkflowType
    active: bool = True
    triggers: dict[str, Any] = Field(default_factory=dict, description=_TRIGGERS_DOC)
    actions: dict[str, Any] = Field(default_factory=dict, description=_ACTIONS_DOC)
    templates: dict[TemplateKey, TemplateText] = Field(
        default_factory=dict, max_length=MAX_TEMPLATES, description=_TEMPLATES_DOC
    )


class WorkflowConfigUpdate(BaseModel):
    """``PATCH``: ``actions`` and ``templates`` merge into what is stored; ``triggers`` is replaced."""

    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(None, min_length=1, max_length=200)
    active: bool | None = None
    triggers: dict[str, Any] | None = Field(None, description="replaces the stored triggers")
    actions: dict[str, Any] | None = Field(
        None,
        description="merged into the stored actions: given keys replace stored ones (`follow_up` as a whole "
        "list), a null value removes a key",
    )
    templates: dict[TemplateKey, TemplateText | None] | None = Field(
        None, description="merged into the stored templates: given names are added or replaced, null removes one"
    )


class WorkflowConfigFilter(BaseModel):
    workflow_type: WorkflowType | None = None
    active: bool | None = None


class WorkflowConfigSummary(BaseModel):
    """A list item: the short form."""

    model_config = ConfigDict(from_attributes=True)

    id: str
    name: str
    workflow_type: WorkflowType
    active: bool
    created_at: datetime
    updated_at: datetime


class WorkflowConfigPublic(WorkflowConfigSummary):
    created_by: str | None
    triggers: dict[str, Any]
    actions: dict[str, Any]
    templates: dict[str, str]


class WorkflowConfigStats(BaseModel):
    runs_total: int
    runs_successful: int = Field(description="runs that completed or were stopped by the lead (reply, opt-out...)")
    runs_failed: int
    conversion_rate: float = Field(description="share of the leads this config ran for that are now converted")


class WorkflowConfigDetail(WorkflowConfigPublic):
    stats: WorkflowConfigStats
