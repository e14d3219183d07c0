"""Automations: the company's workflow configs (lead sequences, review & referral, content schedules) as forms.

Every save goes through ``services.workflow_configs`` exactly as ``/v1/workflow-configs`` does, so all of its
validation applies; this module only maps form inputs to a config's shape and the service's field names back to
the inputs, so each error is shown next to the field it is about. Message previews render with the sandboxed
renderer the workers use (``core.templates``), against the same samples the service checks templates with.
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Annotated, Any, ClassVar

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import HTMLResponse, Response
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.datastructures import FormData

from api.console.forms import field_errors
from api.console.navigation import page
from api.console.session import CONSOLE_PATH, ConsoleUser, CsrfChecked
from api.console.templating import redirect, render
from api.deps import OptionalTemporal, SessionDep, SettingsDep
from api.pagination import PeriodQuery
from core import templates as template_engine
from db.models import User, WorkflowConfig
from schemas.common import MAX_PAGE_SIZE, PageRequest, SortDirection
from schemas.content import ContentType, SocialNetwork, Tone
from schemas.content_schedules import MAX_DAY_OF_MONTH, Frequency, Weekday
from schemas.content_workflows import Publisher
from schemas.dashboard import WORKFLOW_LABELS
from schemas.enums import Role
from schemas.leads import Channel, LeadSource
from schemas.reviews import DEFAULT_EXPIRY_DAYS, DEFAULT_OFFER, DEFAULT_REFERRER_OFFER, NO_SOLICITING, PLATFORM_LABELS
from schemas.workflow_configs import (
    ReviewReferralActions,
    WorkflowConfigCreate,
    WorkflowConfigDetail,
    WorkflowConfigFilter,
    WorkflowConfigPublic,
    WorkflowConfigStats,
    WorkflowConfigUpdate,
    WorkflowType,
)
from services import companies, content_schedules, workflow_analytics, workflow_configs
from services.analytics import ratio
from services.errors import InvalidField

router = APIRouter()

LIST_URL = f"{CONSOLE_PATH}/sequences"
WEEKDAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]
"""ISO order: a send window's ``days`` are their indexes (Monday=0)."""
CHANNELS = [(channel.value, channel.value.upper() if channel == Channel.sms else "Email") for channel in Channel]
SOURCES = [(source.value, source.value.replace("_", " ")) for source in LeadSource]
REVIEW_PLATFORMS = [(p.value, PLATFORM_LABELS[p]) for p in PLATFORM_LABELS if p not in NO_SOLICITING]
DONE_MESSAGES = {
    "saved": "Saved. New runs use this version; runs already going keep the one they started with.",
    "activated": "Turned on: new runs start automatically again.",
    "paused": "Paused: no new runs start automatically; runs already going finish as they started.",
}
EXTRA_FIGURE = {
    WorkflowType.lead_nurturing: ("conversion_rate", "Converted"),
    WorkflowType.review_referral: ("review_completion_rate", "Reviews left"),
    WorkflowType.content_generation: ("average_engagement_rate", "Engagement"),
}
"""The one type-specific figure the list shows next to the run counts."""
_PREFIX = re.compile(r"^(first|referral|steps-\d{1,4})$")
_STEP_KEY = re.compile(r"^steps-(\d{1,4})-key$")

Errors = dict[str, list[str]]


# ---------------------------------------------------------------- reading what was posted


def _text(form: FormData, name: str) -> str:
    value = form.get(name)
    return value.replace("\r\n", "\n").strip() if isinstance(value, str) else ""


def _ticked(form: FormData, name: str) -> bool:
    return form.get(name) is not None


def _commas(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


def _number(value: Any) -> str:
    """A stored number as a person would type it: 24 rather than 24.0, 0.001 as it is."""
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


# ---------------------------------------------------------------- previews


@dataclass(frozen=True)
class Preview:
    """A message rendered against the sample contact, or why it cannot be."""

    audience: str
    subject: str | None = None
    subject_error: str | None = None
    body: str | None = None
    body_error: str | None = None
    sms: bool = False

    @property
    def empty(self) -> bool:
        return self.body is None and self.body_error is None


def _rendered(template: str, sample: dict[str, Any]) -> tuple[str | None, str | None]:
    try:
        return template_engine.render(template, sample), None
    except template_engine.TemplateRejected as exc:
        return None, str(exc)


def preview_of(subject: str, template: str, sample: dict[str, Any], channel: str, audience: str) -> Preview:
    sms = channel == Channel.sms
    if not template:
        return Preview(audience=audience, sms=sms)
    body, body_error = _rendered(template, sample)
    shown_subject, subject_error = _rendered(subject, sample) if subject and not sms else (None, None)
    return Preview(audience, shown_subject, subject_error, body, body_error, sms)


# ---------------------------------------------------------------- the pieces of a form


@dataclass
class Message:
    """One message's fieldset: inputs ``{prefix}-delay``, ``-channel``, ``-subject``, ``-template``, ``-key``.

    ``key`` is the template's name in the config's ``templates``; a person never sees it.
    """

    prefix: str
    key: str
    template: str = ""
    subject: str = ""
    delay: str = ""
    channel: str = ""
    preview: Preview | None = None

    @classmethod
    def posted(cls, form: FormData, prefix: str, fallback_key: str) -> Message:
        return cls(
            prefix=prefix,
            key=_text(form, f"{prefix}-key") or fallback_key,
            template=_text(form, f"{prefix}-template"),
            subject=_text(form, f"{prefix}-subject"),
            delay=_text(form, f"{prefix}-delay"),
            channel=_text(form, f"{prefix}-channel"),
        )


def _fresh_key(base: str, taken: set[str]) -> str:
    key, number = base, 1
    while key in taken:
        number += 1
        key = f"{base}_{number}"
    taken.add(key)
    return key


def _stored_message(
    prefix: str,
    key: str | None,
    templates: dict[str, str],
    taken: set[str],
    *,
    subject: str = "",
    delay: str = "",
    channel: str = "",
) -> Message:
    """A stored message; a template two steps share becomes two, so editing one never changes the other."""
    name = key or prefix.replace("-", "_")
    return Message(prefix, _fresh_key(name, taken), templates.get(name, ""), subject, delay, channel)


def _unowned_keys(form: type[ConfigForm], config: WorkflowConfigPublic) -> set[str]:
    """Stored templates no step names (kept for ``/v1`` callers): a key made for a step must not overwrite one."""
    return set(config.templates) - form.template_keys(config.actions)


def _posted_steps(form: FormData, base: str) -> list[Message]:
    """The follow-up fieldsets in their order; a ticked "remove" drops its step."""
    numbers = sorted({int(found.group(1)) for name in form if (found := _STEP_KEY.match(name))})
    return [
        Message.posted(form, f"steps-{n}", f"{base}_{n}") for n in numbers if not _ticked(form, f"steps-{n}-remove")
    ]


@dataclass
class Window:
    """A send window as the form shows it; ``enabled`` false means messages may go out at any hour."""

    enabled: bool = False
    days: list[int] = field(default_factory=lambda: [0, 1, 2, 3, 4])
    start: str = "09:00"
    end: str = "17:00"

    @classmethod
    def stored(cls, raw: Any) -> Window:
        if not isinstance(raw, dict):
            return cls()
        return cls(True, list(raw.get("days", [0, 1, 2, 3, 4])), raw.get("start", "09:00"), raw.get("end", "17:00"))

    @classmethod
    def posted(cls, form: FormData) -> Window:
        days = [int(day) for day in form.getlist("window_days") if isinstance(day, str) and day.isdigit()]
        return cls(_ticked(form, "window_on"), days, _text(form, "window_start"), _text(form, "window_end"))

    def as_actions(self) -> dict[str, Any] | None:
        return {"start": self.start, "end": self.end, "days": self.days} if self.enabled else None


def _window_field(rest: list[str]) -> str:
    return {"start": "window_start", "end": "window_end", "days": "window_days"}.get(rest[0] if rest else "", "window")


STEP_INPUTS = {
    "initial_delay_minutes": "delay",
    "delay_hours": "delay",
    "message_template": "template",
    "channel": "channel",
    "subject": "subject",
}
"""A message's schema field -> the suffix of its input's name."""


# ---------------------------------------------------------------- one form per workflow type


@dataclass(kw_only=True)
class ConfigForm(ABC):
    """What every type's form has; subclasses map their inputs to the config and errors back to inputs."""

    workflow_type: ClassVar[WorkflowType]
    sample: ClassVar[dict[str, Any]] = template_engine.LEAD_SAMPLE
    audience: ClassVar[str] = "lead"
    replaced_whole: ClassVar[tuple[str, ...]] = ()
    """``actions`` keys whose object must replace the stored one instead of merging into it (see ``_save``)."""

    name: str = ""
    active: bool = True
    errors: Errors = field(default_factory=dict)

    @classmethod
    @abstractmethod
    def blank(cls) -> ConfigForm:
        """An empty form for a new config."""

    @classmethod
    @abstractmethod
    def stored(cls, config: WorkflowConfigPublic) -> ConfigForm:
        """The form filled from a stored config."""

    @classmethod
    @abstractmethod
    def posted(cls, form: FormData) -> ConfigForm:
        """The form as the browser posted it."""

    def triggers(self) -> dict[str, Any]:
        return {}

    @abstractmethod
    def actions(self, *, update: bool) -> dict[str, Any]:
        """The config's ``actions`` from the form (a partial patch when ``update``)."""

    def messages(self) -> list[Message]:
        return []

    def templates(self) -> dict[str, str]:
        return {message.key: message.template for message in self.messages()}

    @staticmethod
    def template_keys(actions: dict[str, Any]) -> set[str]:
        """The templates a stored config's actions name (the ones this form owns)."""
        return set()

    def add_step(self) -> Message:
        raise InvalidField("type", f"{self.workflow_type} configs have no steps to add")

    @abstractmethod
    def input_for(self, path: str, message: str) -> str:
        """The input a service error's field (``actions.follow_up.1.delay_hours``) is about."""

    def show_errors(self, errors: Errors) -> None:
        for path, messages in errors.items():
            self.errors.setdefault(self.input_for(path, messages[0]), []).extend(messages)

    def with_previews(self) -> ConfigForm:
        for message in self.messages():
            message.preview = preview_of(
                message.subject, message.template, self.sample, self.channel_of(message), self.audience
            )
        return self

    def channel_of(self, message: Message) -> str:
        return message.channel or Channel.email

    def _template_input(self, key: str) -> str:
        found = next((message for message in self.messages() if message.key == key), None)
        return f"{found.prefix}-template" if found else "form"


@dataclass(kw_only=True)
class LeadSequenceForm(ConfigForm):
    """A follow-up sequence: the first message, then each follow-up after its delay."""

    workflow_type: ClassVar[WorkflowType] = WorkflowType.lead_nurturing

    sources: list[str] = field(default_factory=list)
    tags: str = ""
    first: Message
    steps: list[Message] = field(default_factory=list)
    personalize: bool = False
    window: Window = field(default_factory=Window)

    @classmethod
    def blank(cls) -> LeadSequenceForm:
        return cls(
            first=Message(
                "first",
                "first_message",
                "Hi {{ first_name }},\n\nthanks for your interest in {{ company_name }}. How can we help?",
                "Thanks for getting in touch, {{ first_name }}",
                delay="0",
                channel=Channel.email,
            ),
            steps=[
                Message(
                    "steps-1",
                    "follow_up_1",
                    "Hi {{ first_name }}, just checking in: is there anything we can answer for you?",
                    delay="24",
                )
            ],
        )

    @classmethod
    def stored(cls, config: WorkflowConfigPublic) -> LeadSequenceForm:
        actions, templates, taken = config.actions, config.templates, _unowned_keys(cls, config)
        first = _stored_message(
            "first",
            actions.get("message_template"),
            templates,
            taken,
            subject=actions.get("subject") or "",
            delay=_number(actions.get("initial_delay_minutes", 0)),
            channel=actions.get("channel", Channel.email),
        )
        steps = [
            _stored_message(
                f"steps-{number}",
                step.get("message_template"),
                templates,
                taken,
                subject=step.get("subject") or "",
                delay=_number(step.get("delay_hours")),
                channel=step.get("channel") or "",
            )
            for number, step in enumerate(actions.get("follow_up", []), start=1)
        ]
        return cls(
            name=config.name,
            active=config.active,
            sources=list(config.triggers.get("lead_source", [])),
            tags=", ".join(config.triggers.get("tags", [])),
            first=first,
            steps=steps,
            personalize=bool(actions.get("personalize")),
            window=Window.stored(actions.get("send_window")),
        )

    @classmethod
    def posted(cls, form: FormData) -> LeadSequenceForm:
        return cls(
            name=_text(form, "name"),
            active=_ticked(form, "active"),
            sources=[value for value in form.getlist("sources") if isinstance(value, str)],
            tags=_text(form, "tags"),
            first=Message.posted(form, "first", "first_message"),
            steps=_posted_steps(form, "follow_up"),
            personalize=_ticked(form, "personalize"),
            window=Window.posted(form),
        )

    def triggers(self) -> dict[str, Any]:
        return {"lead_source": self.sources, "tags": _commas(self.tags)}

    def actions(self, *, update: bool) -> dict[str, Any]:
        # Numbers go to the service as typed: its validation names the step whose delay is not a number.
        return {
            "initial_delay_minutes": self.first.delay or 0,
            "message_template": self.first.key,
            "channel": self.first.channel or Channel.email,
            "subject": self.first.subject or None,
            "follow_up": [
                {
                    "delay_hours": step.delay,
                    "message_template": step.key,
                    **({"channel": step.channel} if step.channel else {}),
                    **({"subject": step.subject} if step.subject else {}),
                }
                for step in self.steps
            ],
            "personalize": self.personalize,
            "send_window": self.window.as_actions(),
        }

    def messages(self) -> list[Message]:
        return [self.first, *self.steps]

    @staticmethod
    def template_keys(actions: dict[str, Any]) -> set[str]:
        steps = actions.get("follow_up", [])
        return {actions.get("message_template"), *(step.get("message_template") for step in steps)} - {None}

    def add_step(self) -> Message:
        step = _next_step(self.messages(), "follow_up", delay="24")
        self.steps.append(step)
        return step

    def channel_of(self, message: Message) -> str:
        return message.channel or self.first.channel or Channel.email

    def input_for(self, path: str, message: str) -> str:
        match path.split("."):
            case ["name", *_]:
                return "name"
            case ["triggers", "tags", *_]:
                return "tags"
            case ["triggers", *_]:
                return "sources"
            case ["templates", *key]:
                return self._template_input(".".join(key))
            case ["actions", "follow_up", index, name, *_] if index.isdigit() and int(index) < len(self.steps):
                return f"{self.steps[int(index)].prefix}-{STEP_INPUTS.get(name, 'template')}"
            case ["actions", "follow_up", *_]:
                return "steps"
            case ["actions", "send_window", *rest]:
                return _window_field(rest)
            case ["actions", "personalize"]:
                return "personalize"
            case ["actions", name, *_] if name in STEP_INPUTS:
                return f"first-{STEP_INPUTS[name]}"
            case ["actions"]:
                return "window"  # the one whole-sequence check: SMS steps against the send window
        return "form"


def _next_step(messages: list[Message], base: str, delay: str) -> Message:
    numbers = [int(m.prefix.split("-")[1]) for m in messages if m.prefix.startswith("steps-")]
    number = max(numbers, default=0) + 1
    key = _fresh_key(f"{base}_{number}", {m.key for m in messages})
    return Message(f"steps-{number}", key, delay=delay)


@dataclass(kw_only=True)
class ReviewReferralForm(ConfigForm):
    """After each completed sale: the review request, its reminders, then the referral offer."""

    workflow_type: ClassVar[WorkflowType] = WorkflowType.review_referral
    sample: ClassVar[dict[str, Any]] = template_engine.CUSTOMER_SAMPLE
    audience: ClassVar[str] = "customer"
    # PATCH merges objects and a null deletes a key, so a referral offer with "never expires" (null) merged into
    # the stored one would fall back to the 90-day default; the form holds the whole offer, so it replaces it.
    replaced_whole: ClassVar[tuple[str, ...]] = ("referral",)

    channel: str = Channel.email
    platform: str = "google"
    first: Message
    steps: list[Message] = field(default_factory=list)
    referral_on: bool = True
    referral: Message
    offer: str = DEFAULT_OFFER
    referrer_offer: str = DEFAULT_REFERRER_OFFER
    expires_in_days: str = str(DEFAULT_EXPIRY_DAYS)
    max_uses: str = ""
    personalize: bool = False
    window: Window = field(default_factory=Window)

    @classmethod
    def blank(cls) -> ReviewReferralForm:
        return cls(
            first=Message(
                "first",
                "review_request",
                "Hi {{ first_name }}, thank you for choosing {{ company_name }}. Would you tell others how it went? "
                "{{ review_link }}",
                "How was {{ service_name }}?",
                delay="24",
            ),
            steps=[
                Message(
                    "steps-1",
                    "review_reminder_1",
                    "Hi {{ first_name }}, a quick reminder: your review helps others find us. {{ review_link }}",
                    delay="72",
                )
            ],
            referral=Message(
                "referral",
                "referral_offer",
                "Hi {{ first_name }}, share your code {{ referral_code }}: your friends get {{ referral_offer }}.",
                "A gift for your friends",
                delay="24",
            ),
        )

    @classmethod
    def stored(cls, config: WorkflowConfigPublic) -> ReviewReferralForm:
        actions, templates, taken = config.actions, config.templates, _unowned_keys(cls, config)
        first = _stored_message(
            "first",
            actions.get("message_template"),
            templates,
            taken,
            subject=actions.get("subject") or "",
            delay=_number(actions.get("delay_hours", 24)),
        )
        steps = [
            _stored_message(
                f"steps-{number}",
                reminder.get("message_template"),
                templates,
                taken,
                subject=reminder.get("subject") or "",
                delay=_number(reminder.get("delay_hours")),
            )
            for number, reminder in enumerate(actions.get("reminders", []), start=1)
        ]
        offer: dict[str, Any] = actions.get("referral") or {}
        referral = _stored_message(
            "referral",
            offer.get("message_template") or "referral_offer",
            templates,
            taken,
            subject=offer.get("subject") or "",
            delay=_number(offer.get("delay_hours", 0)),
        )
        return cls(
            name=config.name,
            active=config.active,
            channel=actions.get("channel", Channel.email),
            platform=actions.get("platform", "google"),
            first=first,
            steps=steps,
            referral_on=bool(offer),
            referral=referral,
            offer=offer.get("offer", DEFAULT_OFFER),
            referrer_offer=offer.get("referrer_offer", DEFAULT_REFERRER_OFFER) or "",
            expires_in_days=_number(offer.get("expires_in_days", DEFAULT_EXPIRY_DAYS)),
            max_uses=_number(offer.get("max_uses")),
            personalize=bool(actions.get("personalize")),
            window=Window.stored(actions.get("send_window")),
        )

    @classmethod
    def posted(cls, form: FormData) -> ReviewReferralForm:
        return cls(
            name=_text(form, "name"),
            active=_ticked(form, "active"),
            channel=_text(form, "channel"),
            platform=_text(form, "platform"),
            first=Message.posted(form, "first", "review_request"),
            steps=_posted_steps(form, "review_reminder"),
            referral_on=_ticked(form, "referral_on"),
            referral=Message.posted(form, "referral", "referral_offer"),
            offer=_text(form, "referral-offer"),
            referrer_offer=_text(form, "referral-referrer_offer"),
            expires_in_days=_text(form, "referral-expires_in_days"),
            max_uses=_text(form, "referral-max_uses"),
            personalize=_ticked(form, "personalize"),
            window=Window.posted(form),
        )

    def actions(self, *, update: bool) -> dict[str, Any]:
        referral = {
            "delay_hours": self.referral.delay or 0,
            "message_template": self.referral.key,
            "subject": self.referral.subject or None,
            "offer": self.offer,
            "referrer_offer": self.referrer_offer or None,
            "expires_in_days": self.expires_in_days or None,
            "max_uses": self.max_uses or None,
        }
        return {
            "delay_hours": self.first.delay,
            "channel": self.channel,
            "platform": self.platform,
            "message_template": self.first.key,
            "subject": self.first.subject or None,
            "reminders": [
                {
                    "delay_hours": step.delay,
                    "message_template": step.key,
                    **({"subject": step.subject} if step.subject else {}),
                }
                for step in self.steps
            ],
            "referral": referral if self.referral_on else None,
            "personalize": self.personalize,
            "send_window": self.window.as_actions(),
        }

    def messages(self) -> list[Message]:
        return [self.first, *self.steps, *([self.referral] if self.referral_on else [])]

    def with_previews(self) -> ConfigForm:
        super().with_previews()
        if not self.referral_on:  # still shown (greyed) so that ticking the box brings it back as it was
            self.referral.preview = preview_of(
                self.referral.subject, self.referral.template, self.sample, self.channel, self.audience
            )
        return self

    @staticmethod
    def template_keys(actions: dict[str, Any]) -> set[str]:
        try:
            return {name for _, name in ReviewReferralActions.model_validate(actions).template_references()}
        except ValidationError:
            return set()

    def add_step(self) -> Message:
        step = _next_step([*self.messages(), self.referral], "review_reminder", delay="72")
        self.steps.append(step)
        return step

    def channel_of(self, message: Message) -> str:
        return self.channel

    def input_for(self, path: str, message: str) -> str:
        match path.split("."):
            case ["name", *_]:
                return "name"
            case ["templates", *key]:
                return self._template_input(".".join(key))
            case ["actions", "reminders", index, name, *_] if index.isdigit() and int(index) < len(self.steps):
                return f"{self.steps[int(index)].prefix}-{STEP_INPUTS.get(name, 'template')}"
            case ["actions", "reminders", *_]:
                return "steps"
            case ["actions", "referral", name, *_]:
                return f"referral-{STEP_INPUTS.get(name, name)}"
            case ["actions", "send_window", *rest]:
                return _window_field(rest)
            case ["actions", ("delay_hours" | "message_template" | "subject") as name, *_]:
                return f"first-{STEP_INPUTS[name]}"
            case ["actions", ("channel" | "platform" | "personalize") as name, *_]:
                return name
            case ["actions"]:
                return "window" if "send_window" in message else "platform"
        return "form"


@dataclass(frozen=True)
class ContentInput:
    """One input of the content schedule form, named as the schema's field."""

    name: str
    label: str
    kind: str = "text"
    choices: tuple[tuple[str, str], ...] = ()
    hint: str | None = None
    parameter: bool = False
    """Lives in ``actions.parameters`` rather than ``actions``."""


def _choices(values: list[str], blank: str | None = None) -> tuple[tuple[str, str], ...]:
    options = tuple((value, value.replace("_", " ").capitalize()) for value in values)
    return ((("", blank),) if blank is not None else ()) + options


CONTENT_TYPE_LABELS = {
    ContentType.blog: "Blog post",
    ContentType.social: "Social media post",
    ContentType.email: "Email newsletter",
    ContentType.product: "Product description",
}
CONTENT_INPUTS = (
    ContentInput(
        "content_type", "Content type", "select", tuple((t.value, CONTENT_TYPE_LABELS[t]) for t in ContentType)
    ),
    ContentInput("topics", "Topics", "lines", hint="One per line; each run writes about the next one, in turn"),
    ContentInput("frequency", "How often", "select", _choices([f.value for f in Frequency])),
    ContentInput("day_of_week", "Day of the week", "select", _choices([d.value for d in Weekday], "—"), "Weekly only"),
    ContentInput(
        "day_of_month", "Day of the month", hint=f"Monthly only: 1-{MAX_DAY_OF_MONTH} (default 1)", parameter=True
    ),
    ContentInput("time_of_day", "Time of day", "time", hint="24-hour, in the time zone below"),
    ContentInput("timezone", "Time zone", hint="An IANA name such as Europe/Paris; empty: the company's"),
    ContentInput("word_count", "Words", hint="30-5000; empty: the type's default", parameter=True),
    ContentInput("tone", "Tone", "select", _choices([t.value for t in Tone], "The type's default"), parameter=True),
    ContentInput("keywords", "Keywords", hint="Comma-separated", parameter=True),
    ContentInput("call_to_action", "Call to action", parameter=True),
    ContentInput(
        "platform",
        "Social network",
        "select",
        _choices([n.value for n in SocialNetwork], "—"),
        "Social posts only",
        True,
    ),
    ContentInput("hashtags", "Hashtags", hint="Social posts: #one #two", parameter=True),
    ContentInput("newsletter_type", "Newsletter type", hint="Newsletters only", parameter=True),
    ContentInput("content_sections", "Newsletter sections", hint="Comma-separated", parameter=True),
    ContentInput("primary_goal", "Primary goal", hint="Newsletters only", parameter=True),
    ContentInput(
        "publish_to", "Publish to", "select", _choices([p.value for p in Publisher], "Nowhere: keep drafts only")
    ),
)
_JOINED = {"topics": "\n", "keywords": ", ", "content_sections": ", ", "hashtags": " "}


@dataclass(kw_only=True)
class ContentScheduleForm(ConfigForm):
    """A content schedule: what to write, how often, where it goes."""

    workflow_type: ClassVar[WorkflowType] = WorkflowType.content_generation

    values: dict[str, str] = field(default_factory=dict)
    require_approval: bool = True

    @classmethod
    def blank(cls) -> ContentScheduleForm:
        return cls(values={"content_type": ContentType.blog, "frequency": Frequency.weekly, "time_of_day": "09:00"})

    @classmethod
    def stored(cls, config: WorkflowConfigPublic) -> ContentScheduleForm:
        actions = config.actions
        parameters = actions.get("parameters") or {}
        values: dict[str, str] = {}
        for spec in CONTENT_INPUTS:
            value = (parameters if spec.parameter else actions).get(spec.name)
            values[spec.name] = _JOINED[spec.name].join(value) if isinstance(value, list) else _number(value)
        return cls(
            name=config.name,
            active=config.active,
            values=values,
            require_approval=bool(actions.get("require_approval", True)),
        )

    @classmethod
    def posted(cls, form: FormData) -> ContentScheduleForm:
        return cls(
            name=_text(form, "name"),
            active=_ticked(form, "active"),
            values={spec.name: _text(form, spec.name) for spec in CONTENT_INPUTS},
            require_approval=_ticked(form, "require_approval"),
        )

    def actions(self, *, update: bool) -> dict[str, Any]:
        # An empty input is "not given": left out of a new config (its default applies), and a null on an
        # update, which removes the stored value (and the default applies again).
        actions: dict[str, Any] = {"require_approval": self.require_approval, "parameters": {}}
        for spec in CONTENT_INPUTS:
            value: Any = self.values.get(spec.name) or None
            if spec.name == "topics" and value is not None:
                value = [line.strip() for line in value.splitlines() if line.strip()]
            if value is None and not update:
                continue
            (actions["parameters"] if spec.parameter else actions)[spec.name] = value
        actions.setdefault("topics", [])
        return actions

    def input_for(self, path: str, message: str) -> str:
        names = {spec.name for spec in CONTENT_INPUTS}
        match path.split("."):
            case ["name", *_]:
                return "name"
            case ["actions", "parameters", name, *_] if name in names:
                return name
            case ["actions", "parameters", *_]:
                return "day_of_month"  # the one check across parameters: day_of_month on monthly schedules only
            case ["actions", name, *_] if name in names or name == "require_approval":
                return name
        return "form"


FORMS: dict[WorkflowType, type[ConfigForm]] = {
    WorkflowType.lead_nurturing: LeadSequenceForm,
    WorkflowType.review_referral: ReviewReferralForm,
    WorkflowType.content_generation: ContentScheduleForm,
}
FORM_TITLES = {
    WorkflowType.lead_nurturing: "follow-up sequence",
    WorkflowType.review_referral: "review & referral automation",
    WorkflowType.content_generation: "content schedule",
}


# ---------------------------------------------------------------- pages


def can_change(user: User) -> bool:
    """Only to offer the buttons; the config service checks the role again on every change."""
    return user.role in (Role.admin, Role.manager)


@dataclass(frozen=True)
class ConfigGroup:
    workflow_type: WorkflowType
    label: str
    configs: list[WorkflowConfig]
    total: int
    extra_figure: tuple[str, str]


@router.get("/sequences")
async def automations_page(
    request: Request, user: ConsoleUser, session: SessionDep, settings: SettingsDep, period: PeriodQuery
) -> HTMLResponse:
    analytics = await workflow_analytics.workflow_analytics(session, settings, user, None, period.start, period.end)
    figures = {item.id: item for item in analytics.workflows if item.id is not None}
    groups = []
    for kind in WorkflowType:
        listed = await workflow_configs.list_configs(
            session,
            user,
            WorkflowConfigFilter(workflow_type=kind),
            PageRequest(size=MAX_PAGE_SIZE, sort_by="name", sort_dir=SortDirection.asc),
        )
        groups.append(ConfigGroup(kind, WORKFLOW_LABELS[kind], listed.items, listed.total, EXTRA_FIGURE[kind]))
    context = page(
        user,
        "/sequences",
        "Automations",
        groups=groups,
        figures=figures,
        period=analytics.period,
        can_change=can_change(user),
        form_titles=FORM_TITLES,
        flash=DONE_MESSAGES.get(request.query_params.get("done", "")),
    )
    return render(request, "automations/list.html", context)


async def _form_page(
    request: Request,
    user: User,
    session: AsyncSession,
    form: ConfigForm,
    config: WorkflowConfigDetail | None,
    status_code: int = 200,
) -> HTMLResponse:
    company = await companies.current(session, user)
    kind = form.workflow_type
    title = config.name if config else f"New {FORM_TITLES[kind]}"
    context = page(
        user,
        "/sequences",
        title,
        form=form.with_previews(),
        errors=form.errors,
        kind=kind,
        config=config,
        success_rate=_success_rate(config.stats) if config else None,
        company_timezone=company.timezone,
        can_change=can_change(user),
        weekdays=WEEKDAYS,
        channels=CHANNELS,
        sources=SOURCES,
        platforms=REVIEW_PLATFORMS,
        content_inputs=CONTENT_INPUTS,
        sample=form.sample,
        flash=DONE_MESSAGES.get(request.query_params.get("done", "")),
    )
    return render(request, f"automations/{kind.value}.html", context, status_code)


def _success_rate(stats: WorkflowConfigStats) -> float:
    """As ``services.workflow_analytics`` defines it: runs still going are not counted either way."""
    return ratio(stats.runs_successful, stats.runs_successful + stats.runs_failed)


def _posted_form(form: FormData, workflow_type: str) -> ConfigForm:
    try:
        kind = WorkflowType(workflow_type)
    except ValueError as exc:
        raise InvalidField("workflow_type", f"unknown workflow type {workflow_type!r}") from exc
    return FORMS[kind].posted(form)


@router.get("/sequences/new")
async def new_config_page(
    request: Request,
    user: ConsoleUser,
    session: SessionDep,
    workflow_type: Annotated[WorkflowType, Query(alias="type")] = WorkflowType.lead_nurturing,
) -> HTMLResponse:
    return await _form_page(request, user, session, FORMS[workflow_type].blank(), None)


@router.post("/sequences", dependencies=[CsrfChecked])
async def create_config(
    request: Request, user: ConsoleUser, session: SessionDep, settings: SettingsDep, temporal: OptionalTemporal
) -> Response:
    """Create a config from the form; without JavaScript, "add a step" posts here too and only redraws."""
    posted = await request.form()
    form = _posted_form(posted, _text(posted, "workflow_type"))
    if _text(posted, "form_action") == "add_step":
        form.add_step()
        return await _form_page(request, user, session, form, None)
    try:
        body = WorkflowConfigCreate(
            name=form.name,
            workflow_type=form.workflow_type,
            active=form.active,
            triggers=form.triggers(),
            actions=form.actions(update=False),
            templates=form.templates(),
        )
        config = await workflow_configs.create(session, user, body)
    except ValidationError as exc:
        form.show_errors(field_errors(exc))
    except InvalidField as exc:
        form.show_errors({exc.field: [exc.message]})
    else:
        await content_schedules.follow_config(session, temporal, settings, config)
        return redirect(request, f"{LIST_URL}/{config.id}?done=saved")
    return await _form_page(request, user, session, form, None, status_code=422)


@router.post("/sequences/steps", dependencies=[CsrfChecked])
async def add_step(
    request: Request, user: ConsoleUser, workflow_type: Annotated[WorkflowType, Query(alias="type")]
) -> HTMLResponse:
    """htmx: one more step's fieldset, numbered after the steps the form already has."""
    form = FORMS[workflow_type].posted(await request.form())
    step = form.add_step()
    step.preview = preview_of("", "", form.sample, form.channel_of(step), form.audience)
    context = {
        "message": step,
        "kind": workflow_type,
        "position": len(getattr(form, "steps", [])),
        "channels": CHANNELS,
    }
    return render(request, "automations/step.html", context)


@router.post("/sequences/preview", dependencies=[CsrfChecked])
async def preview_message(
    request: Request,
    user: ConsoleUser,
    workflow_type: Annotated[WorkflowType, Query(alias="type")],
    prefix: Annotated[str, Query(pattern=_PREFIX.pattern)],
) -> HTMLResponse:
    """htmx: one message rendered by the sandboxed renderer against the sample lead or customer."""
    posted = await request.form()
    kind = FORMS[workflow_type]
    channel = _text(posted, f"{prefix}-channel") or _text(posted, "first-channel") or _text(posted, "channel")
    shown = preview_of(
        _text(posted, f"{prefix}-subject"), _text(posted, f"{prefix}-template"), kind.sample, channel, kind.audience
    )
    return render(request, "automations/preview.html", {"preview": shown})


@router.get("/sequences/{config_id}")
async def config_page(request: Request, config_id: str, user: ConsoleUser, session: SessionDep) -> HTMLResponse:
    config = await workflow_configs.read_with_stats(session, user, config_id)
    return await _form_page(request, user, session, FORMS[config.workflow_type].stored(config), config)


async def _save(
    session: AsyncSession, user: User, config_id: str, form: ConfigForm, stored: WorkflowConfigPublic
) -> WorkflowConfig:
    """The form's version through the same update as ``PATCH /v1/workflow-configs/{id}``.

    ``templates`` the stored steps used and the form no longer does are removed. Objects named in
    ``replaced_whole`` are cleared first so that the form's object replaces the stored one, nulls included.
    All in one savepoint: a refused change leaves nothing behind.
    """
    actions = form.actions(update=True)
    templates: dict[str, str | None] = dict(form.templates())
    for unused in form.template_keys(stored.actions) - set(templates):
        templates[unused] = None
    body = WorkflowConfigUpdate(name=form.name, triggers=form.triggers(), actions=actions, templates=templates)
    async with session.begin_nested():
        for key in form.replaced_whole:
            if isinstance(stored.actions.get(key), dict) and isinstance(actions.get(key), dict):
                await workflow_configs.update(session, user, config_id, WorkflowConfigUpdate(actions={key: None}))
        return await workflow_configs.update(session, user, config_id, body)


@router.post("/sequences/{config_id}", dependencies=[CsrfChecked])
async def update_config(
    request: Request,
    config_id: str,
    user: ConsoleUser,
    session: SessionDep,
    settings: SettingsDep,
    temporal: OptionalTemporal,
) -> Response:
    """Save the edited config; without JavaScript, "add a step" posts here too and only redraws."""
    stored = WorkflowConfigPublic.model_validate(await workflow_configs.get(session, user, config_id))
    posted = await request.form()
    form = FORMS[stored.workflow_type].posted(posted)
    if _text(posted, "form_action") == "add_step":
        form.add_step()
        return await _form_page(
            request, user, session, form, await workflow_configs.read_with_stats(session, user, config_id)
        )
    try:
        config = await _save(session, user, config_id, form, stored)
    except ValidationError as exc:
        form.show_errors(field_errors(exc))
    except InvalidField as exc:
        form.show_errors({exc.field: [exc.message]})
    else:
        await content_schedules.follow_config(session, temporal, settings, config)
        return redirect(request, f"{LIST_URL}/{config_id}?done=saved")
    detail = await workflow_configs.read_with_stats(session, user, config_id)
    return await _form_page(request, user, session, form, detail, status_code=422)


@router.post("/sequences/{config_id}/active", dependencies=[CsrfChecked])
async def set_active(
    request: Request,
    config_id: str,
    user: ConsoleUser,
    session: SessionDep,
    settings: SettingsDep,
    temporal: OptionalTemporal,
    active: Annotated[bool, Form()],
    back: Annotated[str, Form()] = "list",
) -> Response:
    """Turn a config on or off (a content schedule pauses or resumes in Temporal with it)."""
    config = await workflow_configs.update(session, user, config_id, WorkflowConfigUpdate(active=active))
    await content_schedules.follow_config(session, temporal, settings, config)
    target = f"{LIST_URL}/{config_id}" if back == "config" else LIST_URL
    return redirect(request, f"{target}?done={'activated' if active else 'paused'}")
