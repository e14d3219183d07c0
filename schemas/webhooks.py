"""Webhook registration bodies, what the ``/api/webhooks`` endpoints show, and the catalogue of events.

The catalogue is the contract with receivers: every event the platform emits is listed here with what it
means and an example of its ``data``. A name that is not in it cannot be subscribed to.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from schemas.ids import EndpointsId

WEBHOOK_SECRET_MIN_LENGTH = 16

TEST_EVENT = "webhook.test"
"""Sent only by ``POST /api/webhooks/{id}/test`` to that one webhook; not in the catalogue, not subscribable."""


class EventTypePublic(BaseModel):
    """One entry of ``GET /api/webhooks/events``."""

    name: str
    description: str
    example: dict[str, Any]
    """An example of the ``data`` object of a payload of this event."""


def _event(name: str, description: str, example: dict[str, Any]) -> tuple[str, EventTypePublic]:
    return name, EventTypePublic(name=name, description=description, example=example)


EVENT_CATALOGUE: dict[str, EventTypePublic] = dict(
    [
        _event(
            "lead.created",
            "A new lead was captured (API, form, import); a lead merged into an existing one is lead.updated.",
            {
                "id": "lead_3k9xq2m7w1v8b4nz",
                "name": "John Doe",
                "email": "john.doe@example.com",
                "phone": "+15555550123",
                "source": "website_form",
                "status": "new",
                "tags": ["spring-promo"],
            },
        ),
        _event(
            "lead.updated",
            "Fields of a lead changed (an edit, a merge, an unsubscribe); `changes` holds the new values.",
            {"id": "lead_3k9xq2m7w1v8b4nz", "changes": {"phone": "+15555550199"}},
        ),
        _event(
            "lead.status_changed",
            "A lead moved from one status to another (e.g. new -> contacted when the first message went out).",
            {"id": "lead_3k9xq2m7w1v8b4nz", "from": "new", "to": "contacted"},
        ),
        _event(
            "interaction.created",
            "A message to or from a lead was recorded (a sent follow-up, an inbound reply, a logged call).",
            {
                "id": "int_8d2kf0s9a7c3m1qp",
                "lead_id": "lead_3k9xq2m7w1v8b4nz",
                "type": "email",
                "direction": "inbound",
                "channel": "email",
            },
        ),
        _event(
            "customer.created",
            "A customer was recorded, directly or by converting a lead.",
            {
                "id": "cust_5r1tz8n4e6y2u0wa",
                "name": "Jane Smith",
                "email": "jane.smith@example.com",
                "lead_id": "lead_3k9xq2m7w1v8b4nz",
            },
        ),
        _event(
            "customer.updated",
            "Fields of a customer changed (an edit, a merge, an unsubscribe); `changes` holds the new values.",
            {"id": "cust_5r1tz8n4e6y2u0wa", "changes": {"unsubscribed_at": "2025-06-01T12:00:00+00:00"}},
        ),
        _event(
            "sale.created",
            "A sale was recorded; a completed sale starts the review request.",
            {
                "id": "sale_2h7jw9c1x5b3k8dm",
                "customer_id": "cust_5r1tz8n4e6y2u0wa",
                "amount": "250.00",
                "status": "completed",
                "service_id": "deep-clean",
                "referral_id": None,
            },
        ),
        _event(
            "sale.status_changed",
            "A sale moved from one status to another (e.g. pending -> completed).",
            {"id": "sale_2h7jw9c1x5b3k8dm", "from": "pending", "to": "completed"},
        ),
        _event(
            "review.requested",
            "The review request went out to the customer.",
            {
                "id": "rev_9m4bq7t2z0x6c1vk",
                "customer_id": "cust_5r1tz8n4e6y2u0wa",
                "sale_id": "sale_2h7jw9c1x5b3k8dm",
                "platform": "google",
            },
        ),
        _event(
            "review.submitted",
            "A customer's review was recorded (whatever its rating).",
            {
                "id": "rev_9m4bq7t2z0x6c1vk",
                "customer_id": "cust_5r1tz8n4e6y2u0wa",
                "sale_id": "sale_2h7jw9c1x5b3k8dm",
                "platform": "google",
                "rating": 5,
            },
        ),
        _event(
            "referral.created",
            "A referral code was issued to a customer.",
            {
                "id": "ref_4w8ne1k6r3p9s2ja",
                "customer_id": "cust_5r1tz8n4e6y2u0wa",
                "code": "JANE-7K3Q",
                "review_id": "rev_9m4bq7t2z0x6c1vk",
            },
        ),
        _event(
            "referral.used",
            "A referral code was redeemed by a new lead.",
            {"id": "ref_4w8ne1k6r3p9s2ja", "code": "JANE-7K3Q", "lead_id": "lead_6p0dv3h8m2q5t7xe", "times_used": 1},
        ),
        _event(
            "referral.expired",
            "A referral code passed its expiry date and can no longer be redeemed.",
            {"id": "ref_4w8ne1k6r3p9s2ja", "customer_id": "cust_5r1tz8n4e6y2u0wa", "times_used": 1},
        ),
        _event(
            "content.generated",
            "A piece of content was written and waits as a draft.",
            {"id": "cont_7c3xk9q1m5w2z8rb", "type": "blog", "title": "Spring cleaning tips", "word_count": 812},
        ),
        _event(
            "content.approved",
            "A draft was approved for publishing; `by` is the approving user.",
            {"id": "cont_7c3xk9q1m5w2z8rb", "by": "usr_1a2b3c4d5e6f7g8h"},
        ),
        _event(
            "content.published",
            "A piece of content went live on a platform.",
            {
                "id": "cont_7c3xk9q1m5w2z8rb",
                "publication_id": "pub_0v5sd8j2n6k1y4gt",
                "platform": "wordpress",
                "url": "https://blog.example.com/spring-cleaning-tips",
                "published_at": "2025-06-01T12:00:00+00:00",
            },
        ),
        _event(
            "content.publish_failed",
            "Publishing a piece of content failed; `error` says why.",
            {
                "id": "cont_7c3xk9q1m5w2z8rb",
                "publication_id": "pub_0v5sd8j2n6k1y4gt",
                "platform": "wordpress",
                "status": "failed",
                "error": "401 Unauthorized: check the application password",
            },
        ),
        _event(
            "workflow_run.completed",
            "An automation run (follow-up sequence, review request, content generation...) ended without an error; "
            "`status` says how (completed, or stopped early by a reply, a conversion, an unsubscribe).",
            {
                "id": "run_3t6yb0w8e2r5u9qa",
                "workflow_type": "lead_nurturing",
                "status": "completed",
                "entity_id": "lead_3k9xq2m7w1v8b4nz",
                "config_id": "wf_8k1mz4c7x0v3b6nd",
                "error": None,
            },
        ),
        _event(
            "workflow_run.failed",
            "An automation run stopped on an error; `error` says why.",
            {
                "id": "run_3t6yb0w8e2r5u9qa",
                "workflow_type": "content_generation",
                "status": "failed",
                "entity_id": "cont_7c3xk9q1m5w2z8rb",
                "config_id": None,
                "error": "the LLM endpoint answered 500 three times",
            },
        ),
    ]
)


MAX_EVENTS = 100
EventName = Annotated[str, Field(min_length=1, max_length=100)]


def _subscribable(events: list[str]) -> list[str]:
    unknown = [name for name in events if name not in EVENT_CATALOGUE]
    if unknown:
        raise ValueError(
            f"unknown event {', '.join(map(repr, unknown))}; GET /api/webhooks/events lists the event names"
        )
    return list(dict.fromkeys(events))  # the same name twice is one subscription


class WebhookCreate(BaseModel):
    """``POST /api/webhooks``."""

    model_config = ConfigDict(extra="forbid")

    url: str = Field(min_length=1, max_length=1000, description="http(s) URL on a public address")
    events: list[EventName] = Field(
        min_length=1, max_length=MAX_EVENTS, description="Event names from GET /api/webhooks/events"
    )
    secret: str | None = Field(
        None,
        min_length=WEBHOOK_SECRET_MIN_LENGTH,
        max_length=255,
        description="Signs every payload (HMAC-SHA256); generated and shown once when left out",
    )
    description: str | None = Field(None, max_length=500)

    _check_events = field_validator("events")(_subscribable)


class WebhookUpdate(BaseModel):
    """``PATCH``/``PUT /api/webhooks/{id}``: the fields sent change, the others stay."""

    model_config = ConfigDict(extra="forbid")

    url: str | None = Field(None, min_length=1, max_length=1000)
    events: list[EventName] | None = Field(None, min_length=1, max_length=MAX_EVENTS)
    active: bool | None = Field(None, description="true re-enables a webhook the platform turned off")
    description: str | None = Field(None, max_length=500)

    @field_validator("events")
    @classmethod
    def _check_events(cls, events: list[str] | None) -> list[str] | None:
        return None if events is None else _subscribable(events)


class WebhookFilter(BaseModel):
    active: bool | None = None


class WebhookPublic(BaseModel):
    """A webhook as ``/api`` shows it: never its secret."""

    model_config = ConfigDict(from_attributes=True)

    id: EndpointsId
    url: str
    events: list[str]
    description: str | None
    active: bool
    disabled_reason: str | None
    """Why the platform turned the webhook off (a 410 Gone, too many failed deliveries); null otherwise."""
    created_at: datetime
    updated_at: datetime


class WebhookCreated(WebhookPublic):
    """The answer to a registration or a secret rotation: the only times the secret is shown."""

    secret: str


class WebhookDeliveryPublic(BaseModel):
    """One event's delivery to one webhook, with its attempts."""

    model_config = ConfigDict(from_attributes=True)

    id: EndpointsId
    event_id: EndpointsId
    event_type: str
    status: str
    attempts: int
    response_status: int | None
    last_error: str | None
    attempt_log: list[dict[str, Any]]
    """The most recent attempts (time, status code or error, duration), newest last."""
    created_at: datetime
    delivered_at: datetime | None


class TestDelivery(BaseModel):
    """``POST /api/webhooks/{id}/test``: the delivery to watch in ``GET /api/webhooks/{id}/deliveries``."""

    delivery_id: EndpointsId
    event_id: EndpointsId
