"""Workflow configurations: what triggers an automation and what it does."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

from schemas.common import FreeFormJson
from schemas.leads import Channel
from schemas.messaging import SendWindow
from schemas.reviews import (
    DEFAULT_EXPIRY_DAYS,
    DEFAULT_OFFER,
    DEFAULT_REFERRER_OFFER,
    NO_SOLICITING,
    PLATFORM_LABELS,
    Offer,
    PlatformIn,
    ReviewPlatform,
)


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
        # Such a sequence would wait forever: SMS only goes out 08:00-21:00 recipient time.
        channels = [self.channel, *(step.channel for step in self.follow_up if step.channel)]
        if _uses_sms_outside_its_hours(channels, self.send_window):
            raise ValueError(_SMS_NEVER_OPENS)
        return self


def _uses_sms_outside_its_hours(channels: list[Channel], window: SendWindow | None) -> bool:
    return Channel.sms in channels and window is not None and not window.allows_sms()


_SMS_NEVER_OPENS = "send_window never overlaps the SMS hours 08:00-21:00 (recipient time)"


class ReviewReminder(BaseModel):
    model_config = ConfigDict(extra="forbid")

    delay_hours: float = Field(ge=0, le=24 * 365, description="after the previous message; fractions allowed")
    message_template: str = Field(min_length=1, max_length=100)
    subject: str | None = Field(None, max_length=200)


class ReferralOfferAction(BaseModel):
    """The offer every customer gets after the review request, whether or not they left a review."""

    model_config = ConfigDict(extra="forbid")

    delay_hours: float = Field(0, ge=0, le=24 * 365, description="after the review was left or the last reminder")
    message_template: str = Field(min_length=1, max_length=100)
    subject: str | None = Field(None, max_length=200)
    offer: Offer = Field(DEFAULT_OFFER, description="what the referred new customer gets")
    referrer_offer: Offer | None = Field(DEFAULT_REFERRER_OFFER, description="what the referring customer gets")
    expires_in_days: int | None = Field(DEFAULT_EXPIRY_DAYS, ge=1, le=3650, description="null: never expires")
    max_uses: int | None = Field(None, ge=1, le=100_000, description="null: no limit")


class ReviewReferralActions(BaseModel):
    """What a ``review_referral`` config does after each completed sale (the same for every customer)."""

    model_config = ConfigDict(extra="forbid")

    delay_hours: float = Field(24, ge=0, le=24 * 365, description="wait after the sale before asking")
    channel: Channel = Channel.email
    platform: PlatformIn = Field(ReviewPlatform.google, description="where the review is asked for (not Yelp)")
    message_template: str = Field(min_length=1, max_length=100)
    subject: str | None = Field(None, max_length=200, description="email subject; a template too")
    reminders: list[ReviewReminder] = Field(default_factory=list, max_length=10)
    referral: ReferralOfferAction | None = Field(None, description="the referral offer that ends the sequence")
    personalize: bool = False
    send_window: SendWindow | None = None

    @model_validator(mode="after")
    def _fair_and_sendable(self) -> ReviewReferralActions:
        if self.platform in NO_SOLICITING:
            raise ValueError(
                f"{PLATFORM_LABELS[self.platform]} does not allow businesses to ask customers for reviews; "
                "choose another platform (a review left there on its own can still be recorded)"
            )
        if _uses_sms_outside_its_hours([self.channel], self.send_window):
            raise ValueError(_SMS_NEVER_OPENS)
        return self

    def template_references(self) -> list[tuple[str, str]]:
        """``(field, template name)`` for every template the config names."""
        references = [("actions.message_template", self.message_template)]
        references += [
            (f"actions.reminders.{index}.message_template", reminder.message_template)
            for index, reminder in enumerate(self.reminders)
        ]
        if self.referral is not None:
            references.append(("actions.referral.message_template", self.referral.message_template))
        return references

    def subjects(self) -> list[tuple[str, str | None]]:
        subjects = [("actions.subject", self.subject)]
        subjects += [(f"actions.reminders.{index}.subject", r.subject) for index, r in enumerate(self.reminders)]
        if self.referral is not None:
            subjects.append(("actions.referral.subject", self.referral.subject))
        return subjects


TemplateKey = Annotated[str, StringConstraints(min_length=1, max_length=100)]
TemplateText = Annotated[str, StringConstraints(max_length=20_000)]
MAX_TEMPLATES = 50

_ACTIONS_DOC = (
    "What the automation does. For `lead_nurturing`: `initial_delay_minutes`, `message_template`, `channel` "
    "(email or sms), `subject`, `follow_up` [{`delay_hours` (fractions allowed), `message_template`, `channel`, "
    "`subject`}], `personalize`, `send_window` {`start`, `end`, `days`}. For `review_referral` (run after every "
    "completed sale, the same for every customer): `delay_hours`, `channel`, `platform` (google, facebook, "
    "trustpilot, tripadvisor, other; never yelp, which forbids asking), `message_template`, `subject`, "
    "`reminders` [{`delay_hours`, `message_template`, `subject`}], `referral` {`delay_hours`, "
    "`message_template`, `subject`, `offer`, `referrer_offer`, `expires_in_days`, `max_uses`}, `personalize`, "
    "`send_window`. Every template named here must be defined in `templates`. For `content_generation` (a "
    "Temporal Schedule; `active: false` pauses it): `content_type`, `frequency` (daily, weekly, monthly), "
    "`day_of_week` (weekly), `time_of_day` (HH:MM), `timezone` (default the company's), `topics` (rotated), "
    "`parameters` (word_count, call_to_action, keywords, tone, platform, hashtags, day_of_month...), "
    "`publish_to` and `require_approval`."
)
_TRIGGERS_DOC = (
    "When the automation starts. For `lead_nurturing`: `lead_source` (empty = any source) and `tags` "
    "(the lead must carry every one). `review_referral` takes none: every completed sale is asked alike; "
    "nor does `content_generation`, which runs on its schedule."
)
_TEMPLATES_DOC = (
    "Message templates by name, jinja2 `{{name}}` placeholders rendered in a sandbox. Variables: "
    "name, first_name, email, phone, tags, custom_fields, company.name, company.website, company_name; for "
    "leads also source and status; for review_referral also service_name, amount, platform, review_link, "
    "referral_code, referral_offer, referrer_offer and referral_expires_on."
)


class WorkflowConfigCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200)
    workflow_type: WorkflowType
    active: bool = True
    triggers: FreeFormJson = Field(default_factory=dict, description=_TRIGGERS_DOC)
    actions: FreeFormJson = Field(default_factory=dict, description=_ACTIONS_DOC)
    templates: dict[TemplateKey, TemplateText] = Field(
        default_factory=dict, max_length=MAX_TEMPLATES, description=_TEMPLATES_DOC
    )


class WorkflowConfigUpdate(BaseModel):
    """``PATCH``: ``actions`` and ``templates`` merge into what is stored; ``triggers`` is replaced."""

    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(None, min_length=1, max_length=200)
    active: bool | None = None
    triggers: FreeFormJson | None = Field(None, description="replaces the stored triggers")
    actions: FreeFormJson | None = Field(
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
