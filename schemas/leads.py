"""Lead nurturing vocabulary and API bodies. Canonical values are stored; each surface may show its own words."""

from __future__ import annotations

from datetime import datetime
from email.parser import HeaderParser
from enum import StrEnum
from typing import Annotated, Any, Literal

import phonenumbers
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    EmailStr,
    Field,
    PlainSerializer,
    StringConstraints,
    WithJsonSchema,
)

from schemas.common import FREE_FORM_LIMITS, FreeFormJson, TimeZoneName
from schemas.ids import EndpointsId


class LeadStatus(StrEnum):
    new = "new"
    contacted = "contacted"
    engaged = "engaged"
    qualified = "qualified"
    converted = "converted"
    lost = "lost"


class LeadSource(StrEnum):
    """Union of both documents' sources. ``/api`` says ``manual_entry`` and ``/v1`` says ``manual`` for the
    same thing (stored as ``manual``); ``ad_campaign`` (``/api``) and ``ad`` (``/v1``) are stored as ``ad``."""

    website_form = "website_form"
    landing_page = "landing_page"
    ad = "ad"
    manual = "manual"
    referral = "referral"
    direct = "direct"
    crm = "crm"
    csv_import = "import"
    other = "other"


# Words a surface may use for a canonical source, in both directions.
ENDPOINTS_SOURCE_WORDS = {LeadSource.manual: "manual_entry", LeadSource.ad: "ad_campaign"}
SOURCE_ALIASES = {"manual_entry": LeadSource.manual, "ad_campaign": LeadSource.ad}


class Channel(StrEnum):
    email = "email"
    sms = "sms"


class InteractionType(StrEnum):
    email = "email"
    sms = "sms"
    call = "call"
    meeting = "meeting"
    note = "note"


class Direction(StrEnum):
    inbound = "inbound"
    outbound = "outbound"


class InteractionStatus(StrEnum):
    pending = "pending"
    sent = "sent"
    delivered = "delivered"
    received = "received"
    opened = "opened"
    clicked = "clicked"
    bounced = "bounced"
    failed = "failed"


# ---- field types

MAX_CONTENT = 50_000
MAX_SUBJECT = 1000
MIN_NATIONAL_DIGITS = 6
E164_MAX_DIGITS = 15


def normalize_phone(value: str) -> str:
    """``+1 (415) 555-0123`` -> ``+14155550123``; raises ``ValueError`` for anything that is not E.164-shaped.

    The check is structural (a country calling code in use, a plausible number of digits), not a numbering
    plan lookup: a lead is never refused because the metadata does not know a new number range, and the
    SMS provider is the final judge of deliverability.
    """
    try:
        number = phonenumbers.parse(value, None)
    except phonenumbers.NumberParseException as exc:
        raise ValueError("not a phone number in international format, e.g. +14155550123") from exc
    country_code = number.country_code or 0
    national = phonenumbers.national_significant_number(number)
    digits = len(str(country_code)) + len(national)
    if (
        phonenumbers.region_code_for_country_code(country_code) == phonenumbers.UNKNOWN_REGION
        or len(national) < MIN_NATIONAL_DIGITS
        or digits > E164_MAX_DIGITS
    ):
        raise ValueError("not a valid international phone number, e.g. +14155550123")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def _blank_as_none(value: object) -> object:
    # Web forms send "" for a field left empty; that means "not given", not "invalid".
    return None if isinstance(value, str) and not value.strip() else value


def _strip(value: object) -> object:
    return value.strip() if isinstance(value, str) else value


def _canonical_source(value: object) -> object:
    return SOURCE_ALIASES.get(value, value) if isinstance(value, str) else value


def _endpoints_source(source: LeadSource) -> str:
    return ENDPOINTS_SOURCE_WORDS.get(source, source.value)


def _unique(tags: list[str]) -> list[str]:
    return list(dict.fromkeys(tags))


PhoneText = Annotated[str, StringConstraints(max_length=64)]
Phone = Annotated[PhoneText, BeforeValidator(_strip), AfterValidator(normalize_phone)]
LeadEmail = Annotated[EmailStr, AfterValidator(str.lower)]
OptionalPhone = Annotated[Phone | None, BeforeValidator(_blank_as_none)]
OptionalEmail = Annotated[LeadEmail | None, BeforeValidator(_blank_as_none)]
Tag = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=50)]
Tags = Annotated[list[Tag], Field(max_length=50), AfterValidator(_unique)]

SourceIn = Annotated[
    LeadSource,
    BeforeValidator(_canonical_source),
    WithJsonSchema({"type": "string", "enum": [s.value for s in LeadSource] + list(SOURCE_ALIASES)}),
]
"""A source as either surface may send it (``manual_entry`` and ``manual`` are the same)."""

EndpointsSource = Annotated[
    LeadSource,
    PlainSerializer(_endpoints_source, return_type=str),
    WithJsonSchema({"type": "string", "enum": [_endpoints_source(s) for s in LeadSource]}),
]
"""A source as the ``/api`` surface shows it."""

Notes = Annotated[str, Field(max_length=10_000)]
CustomFields = Annotated[
    FreeFormJson, Field(description=f"free-form key/value data about the lead; {FREE_FORM_LIMITS}")
]
InteractionChannel = Annotated[
    str,
    Field(
        min_length=1,
        max_length=40,
        pattern=r"^[a-z][a-z0-9_]*$",
        description="how it happened: manual, automated_workflow, reply, ...",
    ),
]


# ---- leads


class LeadCreate(BaseModel):
    """``POST /v1/leads`` and ``POST /api/lead-nurturing/leads``."""

    model_config = ConfigDict(str_strip_whitespace=True)

    name: str = Field(min_length=1, max_length=200)
    email: OptionalEmail = None
    phone: OptionalPhone = Field(None, description="international format; stored as E.164")
    source: SourceIn = LeadSource.manual
    notes: Notes | None = None
    tags: Tags = Field(default_factory=list)
    custom_fields: CustomFields = Field(default_factory=dict)
    assigned_to: EndpointsId | None = Field(None, description="a user of your company")
    timezone: TimeZoneName | None = Field(None, description="IANA name; sends follow the lead's business hours")


class LeadUpdate(BaseModel):
    """``PATCH /v1/leads/{id}`` and ``PUT /api/lead-nurturing/leads/{id}``: only the fields sent change.

    ``custom_fields`` merges into what is stored (a null value removes a key); ``tags`` replaces the list.
    """

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    name: str | None = Field(None, min_length=1, max_length=200)
    email: OptionalEmail = None
    phone: OptionalPhone = None
    source: SourceIn | None = None
    status: LeadStatus | None = None
    notes: Notes | None = None
    tags: Tags | None = None
    custom_fields: CustomFields | None = None
    assigned_to: EndpointsId | None = None
    timezone: TimeZoneName | None = None


def _split_tags(values: object) -> object:
    # ``?tags=a,b`` and ``?tags=a&tags=b`` mean the same.
    if isinstance(values, list):
        return [tag.strip() for value in values for tag in str(value).split(",") if tag.strip()]
    return values


class LeadFilter(BaseModel):
    status: LeadStatus | None = None
    source: LeadSource | None = None
    tags: Annotated[list[str], BeforeValidator(_split_tags)] = Field(
        default_factory=list, description="leads carrying every one of these tags"
    )
    q: Annotated[str | None, BeforeValidator(_blank_as_none), BeforeValidator(_strip)] = Field(
        None, max_length=200, description="leads whose name or email contains this text (case-insensitive)"
    )


class LeadPublic(BaseModel):
    """A lead as ``/v1`` shows it."""

    model_config = ConfigDict(from_attributes=True)

    id: str
    name: str
    email: str | None
    phone: str | None
    source: LeadSource
    status: LeadStatus
    created_at: datetime
    updated_at: datetime
    notes: str | None
    tags: list[str]
    assigned_to: str | None
    custom_fields: dict[str, Any]
    timezone: str | None
    converted_at: datetime | None
    unsubscribed_at: datetime | None


class LeadEndpointsPublic(BaseModel):
    """A lead as ``/api`` shows it."""

    model_config = ConfigDict(from_attributes=True)

    id: EndpointsId
    name: str
    email: str | None
    phone: str | None
    company_id: EndpointsId
    source: EndpointsSource
    status: LeadStatus
    notes: str | None
    tags: list[str]
    custom_fields: dict[str, Any]
    assigned_to: EndpointsId | None
    timezone: str | None
    converted_at: datetime | None
    unsubscribed_at: datetime | None
    created_at: datetime
    updated_at: datetime


# ---- interactions


class InteractionCreate(BaseModel):
    """``POST /v1/leads/{id}/interactions``. Without ``status``: ``received`` if inbound, else ``delivered``."""

    type: InteractionType
    direction: Direction
    content: str | None = Field(None, max_length=MAX_CONTENT)
    channel: InteractionChannel = "manual"
    status: InteractionStatus | None = None
    metadata: FreeFormJson = Field(default_factory=dict)


class InteractionEndpointsCreate(InteractionCreate):
    """``POST /api/lead-nurturing/interactions``: the same, naming the lead in the body."""

    lead_id: EndpointsId


class InteractionFilter(BaseModel):
    lead_id: str | None = None
    type: InteractionType | None = None
    direction: Direction | None = None


class InteractionPublic(BaseModel):
    """An interaction as ``/v1`` shows it."""

    model_config = ConfigDict(from_attributes=True)

    id: str
    lead_id: str
    type: InteractionType
    direction: Direction
    content: str | None
    channel: str
    status: str
    created_at: datetime
    created_by: str | None
    metadata: dict[str, Any] = Field(validation_alias="meta")


class InteractionEndpointsPublic(BaseModel):
    """An interaction as ``/api`` shows it."""

    model_config = ConfigDict(from_attributes=True)

    id: EndpointsId
    company_id: EndpointsId
    lead_id: EndpointsId
    type: InteractionType
    direction: Direction
    content: str | None
    channel: str
    status: str
    created_at: datetime
    created_by: EndpointsId | None
    metadata: dict[str, Any] = Field(validation_alias="meta")


class TimelineEntry(BaseModel):
    """One line of a lead's timeline: an interaction, or a message sent to the lead with its delivery status.

    A sent message is also recorded as an outbound interaction; the two are shown once, as the message.
    """

    kind: Literal["interaction", "message"]
    id: str = Field(description="the interaction's id, or the message delivery's")
    occurred_at: datetime
    type: str = Field(description="email, sms, call, meeting or note")
    direction: Direction
    channel: str = Field(description="how it happened (manual, reply, automated_workflow...)")
    status: str = Field(description="a message: pending, sent, recorded, suppressed, unknown, failed...")
    subject: str | None
    content: str | None
    workflow_run_id: str | None = Field(description="the sequence run that sent the message")


class LeadDetailPublic(LeadPublic):
    """``GET /v1/leads/{id}``: the lead with its interactions, oldest first."""

    interactions: list[InteractionPublic]


# ---- inbound replies and opt-outs


def _header_text(value: object) -> str:
    return ", ".join(map(str, value)) if isinstance(value, list) else str(value)


def _header_map(value: object) -> object:
    """Headers in any shape providers post, as ``{lower-cased name: value}``.

    A JSON object (a repeated header may be a list), a list of ``[name, value]`` pairs or of
    ``{"Name", "Value"}`` objects, or the raw header block an inbound-parse form sends.
    """
    pairs: list[tuple[object, object]]
    if isinstance(value, str):
        pairs = list(HeaderParser().parsestr(value).items())
    elif isinstance(value, dict):
        pairs = list(value.items())
    elif isinstance(value, list):
        pairs = [
            (item.get("Name", item.get("name")), item.get("Value", item.get("value")))
            if isinstance(item, dict)
            else (item[0], item[1])
            for item in value
            if (isinstance(item, dict) or (isinstance(item, list | tuple) and len(item) == 2))
        ]
    else:
        return value
    return {str(name).lower(): _header_text(text) for name, text in pairs if name is not None}


def _truncate(limit: int) -> BeforeValidator:
    # A provider retries whatever it cannot deliver; an over-long reply is kept shortened, never refused.
    return BeforeValidator(lambda value: value[:limit] if isinstance(value, str) else value)


class InboundEmail(BaseModel):
    """What an email provider posts for a message sent to the company's inbound address."""

    model_config = ConfigDict(populate_by_name=True)

    sender: str = Field(alias="from", min_length=1, max_length=1000, description='"Name <address>" or an address')
    subject: Annotated[str, _truncate(MAX_SUBJECT)] = ""
    text: Annotated[str, _truncate(MAX_CONTENT)] = Field("", description="plain-text body")
    headers: Annotated[dict[str, str], BeforeValidator(_header_map)] = Field(
        default_factory=dict, description="a JSON object or the raw header block"
    )


class InboundSms(BaseModel):
    """The fields of Twilio's incoming-message webhook that matter here (it sends many more)."""

    sender: str = Field(alias="From", min_length=1, max_length=64)
    to: str = Field("", alias="To", max_length=64)
    body: Annotated[str, _truncate(MAX_CONTENT)] = Field("", alias="Body")
    message_sid: str = Field("", alias="MessageSid", max_length=64)


class InboundStatus(StrEnum):
    recorded = "recorded"
    ignored = "ignored"
    unmatched = "unmatched"
    opted_out = "opted_out"
    opted_in = "opted_in"


class InboundResult(BaseModel):
    status: InboundStatus
    reason: str | None = None
    lead_id: EndpointsId | None = None
    interaction_id: EndpointsId | None = None


class InboundWebhooks(BaseModel):
    """The URLs to give your email and SMS providers; anyone holding them can post replies, keep them private."""

    email_url: str
    sms_url: str
