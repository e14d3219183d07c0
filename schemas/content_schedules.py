"""Content schedules: a brief written again and again, daily, weekly or monthly at a local time of day.

One definition serves both surfaces: the body of ``POST /api/content-generation/schedule`` and the ``actions``
of a ``content_generation`` workflow config on ``/v1``. Each becomes a ``content_schedules`` row and a Temporal
Schedule (``content-schedule/{id}``) whose runs write ``topics[n % len(topics)]`` on run ``n``.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationInfo, WithJsonSchema, field_validator

from schemas.common import TimeZoneName
from schemas.content import (
    ENDPOINTS_TYPE_WORDS,
    ContentBrief,
    ContentType,
    EndpointsContentType,
    Hashtags,
    LongText,
    NetworkIn,
    Phrase,
    Tone,
    Topic,
    Words,
)
from schemas.content_workflows import Publisher
from schemas.ids import EndpointsId


class Frequency(StrEnum):
    daily = "daily"
    weekly = "weekly"
    monthly = "monthly"


class Weekday(StrEnum):
    Monday = "Monday"
    Tuesday = "Tuesday"
    Wednesday = "Wednesday"
    Thursday = "Thursday"
    Friday = "Friday"
    Saturday = "Saturday"
    Sunday = "Sunday"


TEMPORAL_WEEKDAY = {day: (index + 1) % 7 for index, day in enumerate(Weekday)}
"""Temporal counts the days of the week from Sunday = 0."""
_WEEKDAY_WORDS = {day.value.lower(): day for day in Weekday} | {day.value[:3].lower(): day for day in Weekday}

MAX_DAY_OF_MONTH = 28
"""Every month has a 28th: a monthly schedule never skips February."""
DEFAULT_DAY_OF_MONTH = 1
DEFAULT_TIME_OF_DAY = "09:00"

_TYPE_WORDS = ", ".join(ENDPOINTS_TYPE_WORDS.values())
_TYPE_BY_WORD = {word: kind.value for kind, word in ENDPOINTS_TYPE_WORDS.items()} | {
    "newsletter": ContentType.email.value
}
_TYPES = frozenset(t.value for t in ContentType)


def _content_type(value: object) -> object:
    if isinstance(value, str):
        kind = _TYPE_BY_WORD.get(value, value)
        if kind not in _TYPES:
            raise ValueError(f"unknown content type {value!r}; use {_TYPE_WORDS}")
        return kind
    return value


def _weekday(value: object) -> object:
    if isinstance(value, str):
        day = _WEEKDAY_WORDS.get(value.strip().lower())
        if day is None:
            raise ValueError(f"unknown day {value!r}; use Monday, Tuesday, ... Sunday")
        return day
    return value


def _time_of_day(value: object) -> object:
    """``"9:00"`` or ``"09:00"``, 24-hour: stored as ``"09:00"``."""
    if not isinstance(value, str):
        raise ValueError("give the time as HH:MM (24-hour), for example 09:00")
    hours, sep, minutes = value.strip().partition(":")
    if not (sep and hours.isdigit() and minutes.isdigit() and len(hours) <= 2 and len(minutes) == 2):
        raise ValueError(f"{value!r} is not a time of day; give HH:MM (24-hour), for example 09:00")
    if int(hours) > 23 or int(minutes) > 59:
        raise ValueError(f"{value!r} is not a time of day; hours go 00-23, minutes 00-59")
    return f"{int(hours):02d}:{minutes}"


ScheduleContentType = Annotated[
    ContentType,
    BeforeValidator(_content_type),
    WithJsonSchema({"type": "string", "enum": list(ENDPOINTS_TYPE_WORDS.values()) + [t.value for t in ContentType]}),
]
WeekdayIn = Annotated[
    Weekday,
    BeforeValidator(_weekday),
    WithJsonSchema({"type": "string", "enum": [day.value for day in Weekday], "description": "or mon, tue..."}),
]
TimeOfDay = Annotated[str, BeforeValidator(_time_of_day), WithJsonSchema({"type": "string", "example": "09:00"})]


class ScheduleParameters(BaseModel):
    """What every run's brief carries besides its topic (the same for every run of the schedule)."""

    model_config = ConfigDict(extra="forbid")

    word_count: int | None = Field(None, ge=30, le=5000)
    call_to_action: LongText | None = None
    keywords: Words = Field(default_factory=list)
    tone: Tone | None = Field(None, description="default: professional for blog posts, persuasive for products...")
    platform: NetworkIn | None = Field(None, description="social_media: twitter (x), linkedin, facebook, instagram")
    hashtags: Hashtags = Field(default_factory=list)
    content_sections: Words = Field(default_factory=list, description="email_newsletter sections")
    newsletter_type: Phrase | None = None
    primary_goal: Phrase | None = None
    day_of_month: int | None = Field(
        None, ge=1, le=MAX_DAY_OF_MONTH, description="monthly schedules: the day, 1-28 (default 1)"
    )


_DEFAULT_TONE = {
    ContentType.blog: Tone.professional,
    ContentType.social: Tone.friendly,
    ContentType.email: Tone.friendly,
    ContentType.product: Tone.persuasive,
}
_DEFAULT_WORDS = {ContentType.blog: 800, ContentType.email: 500}
"""The same defaults as the ``/api`` generation endpoints."""


def brief_for(content_type: ContentType, topic: str, parameters: dict[str, Any]) -> ContentBrief:
    """The brief of one scheduled run: the schedule's type and parameters, this run's topic."""
    given = ScheduleParameters.model_validate(parameters)
    return ContentBrief(
        type=content_type,
        topic=topic,
        title=topic if content_type == ContentType.product else None,
        keywords=given.keywords,
        tone=given.tone or _DEFAULT_TONE[content_type],
        word_count=given.word_count or _DEFAULT_WORDS.get(content_type),
        call_to_action=given.call_to_action,
        network=given.platform if content_type == ContentType.social else None,
        hashtags=given.hashtags,
        sections=given.content_sections,
        newsletter_type=given.newsletter_type,
        primary_goal=given.primary_goal,
        product={"name": topic} if content_type == ContentType.product else {},
    )


_DEFINITION_DOC = (
    "A content schedule: `content_type` (blog_post, social_media, email_newsletter, product_description), "
    "`frequency` (daily, weekly, monthly), `day_of_week` (weekly only: Monday ... Sunday), `time_of_day` "
    "(HH:MM, 24-hour) in `timezone` (an IANA name; default the company's), `topics` (run n writes about "
    "topics[n % len(topics)]), `parameters` (word_count, call_to_action, keywords, tone, platform, hashtags, "
    "content_sections, newsletter_type, primary_goal; day_of_month 1-28 for monthly schedules, default 1), "
    "`publish_to` (wordpress, webhook, newsletter, recorded; null writes drafts only) and `require_approval` "
    "(true: drafts wait for a manager's approval; false: what is written is published at once)."
)


class ContentScheduleDefinition(BaseModel):
    """What a schedule writes and when; ``actions`` of a ``content_generation`` config are exactly this."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"description": _DEFINITION_DOC})

    content_type: ScheduleContentType
    frequency: Frequency
    day_of_week: WeekdayIn | None = Field(None, validate_default=True, description="weekly schedules only")
    time_of_day: TimeOfDay = DEFAULT_TIME_OF_DAY
    timezone: TimeZoneName | None = Field(None, description="IANA name; default the company's time zone")
    topics: list[Topic] = Field(min_length=1, max_length=100)
    parameters: ScheduleParameters = Field(default_factory=ScheduleParameters)
    publish_to: Publisher | None = Field(None, description="where each piece is published; null: drafts only")
    require_approval: bool = Field(True, description="drafts wait for a manager's or an admin's approval")

    @field_validator("day_of_week")
    @classmethod
    def _only_weekly(cls, day: Weekday | None, info: ValidationInfo) -> Weekday | None:
        frequency = info.data.get("frequency")
        if frequency == Frequency.weekly and day is None:
            raise ValueError("a weekly schedule needs its day_of_week (Monday ... Sunday)")
        if frequency is not None and frequency != Frequency.weekly and day is not None:
            raise ValueError(f"only weekly schedules take a day_of_week, not {frequency} ones; send null")
        return day

    @field_validator("parameters")
    @classmethod
    def _day_of_month_only_monthly(cls, parameters: ScheduleParameters, info: ValidationInfo) -> ScheduleParameters:
        frequency = info.data.get("frequency")
        if parameters.day_of_month is not None and frequency is not None and frequency != Frequency.monthly:
            raise ValueError(f"only monthly schedules take a day_of_month, not {frequency} ones")
        return parameters

    @property
    def day_of_month(self) -> int:
        return self.parameters.day_of_month or DEFAULT_DAY_OF_MONTH


class ContentScheduleCreate(ContentScheduleDefinition):
    """``POST /api/content-generation/schedule``: creates a schedule, or with ``id`` updates that one in place.

    Without ``id`` it always creates one: two schedules may share a type and a time (other topics, other
    channels). With ``id`` the body is the schedule's whole new definition (fields left out take their defaults;
    ``PUT /schedules/{id}`` changes only the fields sent).
    """

    id: EndpointsId | None = Field(None, description="an existing schedule's id: replace it instead of creating one")
    active: bool = Field(True, description="false pauses the schedule, true resumes it")


class ContentScheduleUpdate(BaseModel):
    """``PUT /api/content-generation/schedules/{id}``: the fields sent change, the others stay."""

    model_config = ConfigDict(extra="forbid")

    content_type: ScheduleContentType | None = None
    frequency: Frequency | None = None
    day_of_week: WeekdayIn | None = None
    time_of_day: TimeOfDay | None = None
    timezone: TimeZoneName | None = None
    topics: list[Topic] | None = Field(None, min_length=1, max_length=100)
    parameters: ScheduleParameters | None = Field(None, description="replaces the stored parameters")
    publish_to: Publisher | None = None
    require_approval: bool | None = None
    active: bool | None = Field(None, description="false pauses the schedule, true resumes it")


class ScheduleSaved(BaseModel):
    """What ``POST /api/content-generation/schedule`` answers (the spec's shape)."""

    success: bool = True
    message: str
    schedule_id: EndpointsId


class ContentScheduleEndpointsItem(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: EndpointsId
    content_type: EndpointsContentType
    frequency: Frequency
    day_of_week: Weekday | None
    time_of_day: str
    timezone: str
    topics: list[str]
    parameters: dict[str, Any]
    publish_to: Publisher | None
    require_approval: bool
    active: bool
    runs_started: int = Field(description="how many runs took a topic so far")
    workflow_config_id: EndpointsId | None = Field(description="set when a /v1 workflow config owns the schedule")
    next_run_times: list[datetime] | None = Field(
        None, description="as Temporal reports them; empty while paused, null when Temporal cannot say"
    )
    created_at: datetime
    updated_at: datetime


class ContentSchedulesEndpointsPublic(BaseModel):
    """``GET /api/content-generation/schedules``."""

    message: str
    schedules: list[ContentScheduleEndpointsItem]


class ContentScheduleEndpointsPublic(BaseModel):
    """One schedule on ``/api``."""

    message: str
    schedule: ContentScheduleEndpointsItem


# ---- workflow contracts


class ScheduledRun(BaseModel):
    """``ScheduleActivities.start_scheduled_content``: the ids come from the workflow (deterministic), so a
    retried activity finds the content it already wrote instead of taking another topic."""

    schedule_id: str
    content_id: str
    run_id: str
    workflow_id: str
    """The generation's business key, ``content-generate/{content_id}``, recorded on its run row."""
    scheduled_by: str
    """The scheduled workflow's id, kept on the content so the Temporal UI and the record point at each other."""
