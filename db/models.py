"""The whole product's data model. Every tenant-owned row carries ``company_id``."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Boolean, ForeignKey, Index, Integer, Numeric, String, Text, UniqueConstraint, func, select, text
from sqlalchemy.orm import Mapped, column_property, mapped_column, relationship

from db.base import Base, JSONType, Timestamps, id_column, utcnow
from schemas.reviews import REDEEMABLE, ReferralStatus

_CASCADE = "CASCADE"


def company_fk() -> Mapped[str]:
    return mapped_column(ForeignKey("companies.id", ondelete=_CASCADE), index=True)


class Company(Timestamps, Base):
    __tablename__ = "companies"

    id: Mapped[str] = id_column()
    name: Mapped[str] = mapped_column(String(200))
    industry: Mapped[str | None] = mapped_column(String(120))
    website: Mapped[str | None] = mapped_column(String(500))
    logo_url: Mapped[str | None] = mapped_column(String(500))
    postal_address: Mapped[str | None] = mapped_column(Text)
    """Printed in every marketing email footer (CAN-SPAM)."""
    timezone: Mapped[str] = mapped_column(String(64), default="UTC")
    subscription_tier: Mapped[str] = mapped_column(String(40), default="starter")
    subscription_status: Mapped[str] = mapped_column(String(40), default="active")
    settings: Mapped[dict[str, Any]] = mapped_column(default=dict)
    integrations: Mapped[dict[str, Any]] = mapped_column(default=dict)


class User(Timestamps, Base):
    __tablename__ = "users"

    id: Mapped[str] = id_column()
    company_id: Mapped[str] = company_fk()
    email: Mapped[str] = mapped_column(String(320), unique=True)
    username: Mapped[str] = mapped_column(String(320), unique=True)
    name: Mapped[str | None] = mapped_column(String(200))
    password_hash: Mapped[str] = mapped_column(String(255))
    role: Mapped[str] = mapped_column(String(20), default="user")
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)
    settings: Mapped[dict[str, Any]] = mapped_column(default=dict)
    last_login: Mapped[datetime | None]
    tokens_valid_after: Mapped[datetime | None]
    """Access tokens issued before this are refused: "sign out everywhere" ends every session at once."""


class RefreshToken(Base):
    """One row per issued refresh token; a token is good for exactly one rotation."""

    __tablename__ = "refresh_tokens"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)  # the JWT's jti
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete=_CASCADE), index=True)
    family_id: Mapped[str] = mapped_column(String(64), index=True)
    """All tokens descended from one login; a reused token revokes the whole family."""
    expires_at: Mapped[datetime]
    used_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Lead(Timestamps, Base):
    __tablename__ = "leads"
    __table_args__ = (
        UniqueConstraint("company_id", "email"),
        # The list's orders and filters, each index ending in the sort column and the tie-breaker: a page's keys
        # are read from the index alone, however deep the page (services.paging, docs/performance.md).
        Index("ix_leads_company_created", "company_id", "created_at", "id"),
        Index("ix_leads_company_updated", "company_id", "updated_at", "id"),
        Index("ix_leads_company_name", "company_id", "name", "id"),
        Index("ix_leads_company_email", "company_id", "email", "id"),
        Index("ix_leads_company_status", "company_id", "status", "id"),
        Index("ix_leads_company_status_created", "company_id", "status", "created_at", "id"),
        Index("ix_leads_company_source_created", "company_id", "source", "created_at", "id"),
        # ``tags @> '["vip"]'`` (the tags filter) on PostgreSQL; a plain index elsewhere.
        Index("ix_leads_tags", "tags", postgresql_using="gin", postgresql_ops={"tags": "jsonb_path_ops"}),
        # The search box, ``name ILIKE '%text%' OR email ILIKE '%text%'``: trigram indexes on PostgreSQL (the pg_trgm
        # extension, created by migration 0006 where the database allows it); plain indexes elsewhere.
        Index("ix_leads_name_trgm", "name", postgresql_using="gin", postgresql_ops={"name": "gin_trgm_ops"}),
        Index("ix_leads_email_trgm", "email", postgresql_using="gin", postgresql_ops={"email": "gin_trgm_ops"}),
    )

    id: Mapped[str] = id_column()
    company_id: Mapped[str] = company_fk()
    name: Mapped[str] = mapped_column(String(200))
    email: Mapped[str | None] = mapped_column(String(320))
    phone: Mapped[str | None] = mapped_column(String(32), index=True)
    source: Mapped[str] = mapped_column(String(40), default="manual")
    status: Mapped[str] = mapped_column(String(20), default="new")
    notes: Mapped[str | None] = mapped_column(Text)
    tags: Mapped[list[str]] = mapped_column(default=list)
    custom_fields: Mapped[dict[str, Any]] = mapped_column(default=dict)
    assigned_to: Mapped[str | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    timezone: Mapped[str | None] = mapped_column(String(64))
    status_changed_at: Mapped[datetime | None]
    converted_at: Mapped[datetime | None]
    unsubscribed_at: Mapped[datetime | None]

    interactions: Mapped[list[Interaction]] = relationship(
        back_populates="lead", cascade="all, delete-orphan", passive_deletes=True, order_by="Interaction.created_at"
    )


class Interaction(Base):
    __tablename__ = "interactions"
    __table_args__ = (
        # A lead's first reply after a message (the response-time analytics) is one index probe per lead; the
        # lead's own interactions are its prefix.
        Index("ix_interactions_lead_direction_created", "lead_id", "direction", "created_at"),
        Index("ix_interactions_company_created", "company_id", "created_at"),
    )

    id: Mapped[str] = id_column()
    company_id: Mapped[str] = company_fk()
    lead_id: Mapped[str] = mapped_column(ForeignKey("leads.id", ondelete=_CASCADE))
    type: Mapped[str] = mapped_column(String(20))
    direction: Mapped[str] = mapped_column(String(10))
    content: Mapped[str | None] = mapped_column(Text)
    channel: Mapped[str] = mapped_column(String(40), default="manual")
    status: Mapped[str] = mapped_column(String(20), default="delivered")
    created_by: Mapped[str | None] = mapped_column(String(40))
    meta: Mapped[dict[str, Any]] = mapped_column("metadata", default=dict)
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)

    lead: Mapped[Lead] = relationship(back_populates="interactions")


class Sale(Timestamps, Base):
    """Declared before ``Customer``, whose lifetime value is computed from its rows."""

    __tablename__ = "sales"
    __table_args__ = (Index("ix_sales_company_created", "company_id", "created_at"),)

    id: Mapped[str] = id_column()
    company_id: Mapped[str] = company_fk()
    customer_id: Mapped[str] = mapped_column(ForeignKey("customers.id", ondelete=_CASCADE), index=True)
    service_id: Mapped[str | None] = mapped_column(String(64))
    service_name: Mapped[str | None] = mapped_column(String(200))
    amount: Mapped[Decimal] = mapped_column(Numeric(12, 2))
    status: Mapped[str] = mapped_column(String(20), default="completed")
    payment_method: Mapped[str | None] = mapped_column(String(40))
    notes: Mapped[str | None] = mapped_column(Text)
    # use_alter breaks the sales -> referrals -> reviews -> sales cycle at table-creation time.
    referral_id: Mapped[str | None] = mapped_column(
        ForeignKey("referrals.id", ondelete="SET NULL", use_alter=True), index=True
    )

    # Joined: every view of a sale names its customer.
    customer: Mapped[Customer] = relationship(lazy="joined", innerjoin=True)


SALE_COUNTS_TOWARDS_VALUE = "completed"
"""Only completed sales make up a customer's lifetime value: pending, refunded and cancelled ones do not."""


class Customer(Timestamps, Base):
    """A buyer. ``lifetime_value`` is computed from the sales on every load, never stored."""

    __tablename__ = "customers"
    __table_args__ = (UniqueConstraint("company_id", "email"),)

    id: Mapped[str] = id_column()
    company_id: Mapped[str] = company_fk()
    lead_id: Mapped[str | None] = mapped_column(ForeignKey("leads.id", ondelete="SET NULL"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    email: Mapped[str | None] = mapped_column(String(320), index=True)
    phone: Mapped[str | None] = mapped_column(String(32))
    timezone: Mapped[str | None] = mapped_column(String(64))
    tags: Mapped[list[str]] = mapped_column(default=list)
    custom_fields: Mapped[dict[str, Any]] = mapped_column(default=dict)
    unsubscribed_at: Mapped[datetime | None]

    # Derived in SQL on every load, so it never disagrees with the sales (a refund changes it at once),
    # and it sorts like a column.
    lifetime_value: Mapped[Decimal] = column_property(
        select(func.coalesce(func.sum(Sale.amount), 0))
        .where(Sale.customer_id == id, Sale.status == SALE_COUNTS_TOWARDS_VALUE)
        .correlate_except(Sale)
        .scalar_subquery()
    )


class Review(Timestamps, Base):
    __tablename__ = "reviews"

    id: Mapped[str] = id_column()
    company_id: Mapped[str] = company_fk()
    customer_id: Mapped[str] = mapped_column(ForeignKey("customers.id", ondelete=_CASCADE), index=True)
    sale_id: Mapped[str | None] = mapped_column(ForeignKey("sales.id", ondelete="SET NULL"), unique=True)
    platform: Mapped[str | None] = mapped_column(String(40))
    rating: Mapped[int | None] = mapped_column(Integer)
    content: Mapped[str | None] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(20), default="requested")
    """Canonical: requested, submitted, verified (``/v1`` says "completed" for submitted)."""
    review_url: Mapped[str | None] = mapped_column(String(500))
    request_sent_at: Mapped[datetime | None]
    submitted_at: Mapped[datetime | None]
    verified_at: Mapped[datetime | None]

    customer: Mapped[Customer] = relationship(lazy="joined", innerjoin=True)


class Referral(Timestamps, Base):
    __tablename__ = "referrals"
    __table_args__ = (UniqueConstraint("company_id", "code"),)

    id: Mapped[str] = id_column()
    company_id: Mapped[str] = company_fk()
    customer_id: Mapped[str] = mapped_column(ForeignKey("customers.id", ondelete=_CASCADE), index=True)
    review_id: Mapped[str | None] = mapped_column(ForeignKey("reviews.id", ondelete="SET NULL"))
    code: Mapped[str] = mapped_column(String(40))
    issue_key: Mapped[str | None] = mapped_column(String(300), unique=True)
    """Set when a workflow issued it (``{workflow_id}/{run_id}/referral``): a retried activity finds it again."""
    offer: Mapped[str] = mapped_column(String(500))
    """What the new customer gets."""
    referrer_offer: Mapped[str | None] = mapped_column(String(500))
    """What the referring customer gets."""
    status: Mapped[str] = mapped_column(String(20), default=ReferralStatus.created)
    """Canonical ``ReferralStatus``; each surface shows its own words."""
    max_uses: Mapped[int | None] = mapped_column(Integer)
    times_used: Mapped[int] = mapped_column(Integer, default=0)
    sent_at: Mapped[datetime | None]
    expires_at: Mapped[datetime | None]

    customer: Mapped[Customer] = relationship(lazy="joined", innerjoin=True)
    uses: Mapped[list[ReferralUse]] = relationship(
        back_populates="referral",
        cascade="all, delete-orphan",
        passive_deletes=True,
        order_by="ReferralUse.used_at",
        lazy="raise",
    )

    @property
    def current_status(self) -> str:
        """The status *now*: past ``expires_at`` a code is expired, even before its expiry timer writes so."""
        lapsed = self.expires_at is not None and self.expires_at <= utcnow()
        return ReferralStatus.expired if lapsed and self.status in REDEEMABLE else self.status


class ReferralUse(Base):
    __tablename__ = "referral_uses"
    __table_args__ = (UniqueConstraint("referral_id", "lead_id"),)

    id: Mapped[str] = id_column()
    referral_id: Mapped[str] = mapped_column(ForeignKey("referrals.id", ondelete=_CASCADE), index=True)
    lead_id: Mapped[str | None] = mapped_column(ForeignKey("leads.id", ondelete="SET NULL"), index=True)
    converted: Mapped[bool] = mapped_column(Boolean, default=False)
    used_at: Mapped[datetime] = mapped_column(default=utcnow)
    converted_at: Mapped[datetime | None]

    referral: Mapped[Referral] = relationship(back_populates="uses")


class ContentSchedule(Timestamps, Base):
    """Mirrors a Temporal Schedule (``content-schedule/{id}``); Temporal owns the timing.

    Made on either surface: ``POST /api/content-generation/schedule``, or a ``content_generation`` workflow
    config on ``/v1`` (then ``workflow_config_id`` names it).
    """

    __tablename__ = "content_schedules"

    id: Mapped[str] = id_column()
    company_id: Mapped[str] = company_fk()
    workflow_config_id: Mapped[str | None] = mapped_column(
        ForeignKey("workflow_configs.id", ondelete="CASCADE"), unique=True
    )
    content_type: Mapped[str] = mapped_column(String(40))
    frequency: Mapped[str] = mapped_column(String(20))
    day_of_week: Mapped[str | None] = mapped_column(String(12))
    time_of_day: Mapped[str] = mapped_column(String(5), default="09:00")
    timezone: Mapped[str] = mapped_column(String(64), default="UTC")
    topics: Mapped[list[str]] = mapped_column(default=list)
    parameters: Mapped[dict[str, Any]] = mapped_column(default=dict)
    publish_to: Mapped[str | None] = mapped_column(String(40))
    require_approval: Mapped[bool] = mapped_column(Boolean, default=True)
    """Leave drafts for a manager to approve (True) or publish what is written at once (False)."""
    runs_started: Mapped[int] = mapped_column(Integer, default=0)
    """How many runs took a topic: run ``n`` writes about ``topics[n % len(topics)]``."""
    active: Mapped[bool] = mapped_column(Boolean, default=True)


class Content(Timestamps, Base):
    __tablename__ = "content"

    id: Mapped[str] = id_column()
    company_id: Mapped[str] = company_fk()
    type: Mapped[str] = mapped_column(String(40), index=True)
    title: Mapped[str | None] = mapped_column(String(500))
    body: Mapped[str | None] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(20), default="draft")
    platform: Mapped[str | None] = mapped_column(String(40))
    url: Mapped[str | None] = mapped_column(String(1000))
    tags: Mapped[list[str]] = mapped_column(default=list)
    meta: Mapped[dict[str, Any]] = mapped_column("metadata", default=dict)
    parameters: Mapped[dict[str, Any]] = mapped_column(default=dict)
    """What generation was asked for (topic, keywords, tone...), kept to regenerate."""
    created_by: Mapped[str] = mapped_column(String(40), default="system")
    schedule_id: Mapped[str | None] = mapped_column(ForeignKey("content_schedules.id", ondelete="SET NULL"), index=True)
    published_at: Mapped[datetime | None]
    requires_approval: Mapped[bool] = mapped_column(Boolean, default=False)
    """Set when written, from the company's setting or the schedule: nothing is published before approval."""
    approved_by: Mapped[str | None] = mapped_column(String(40))
    approved_at: Mapped[datetime | None]

    metrics: Mapped[list[ContentMetric]] = relationship(
        cascade="all, delete-orphan", passive_deletes=True, lazy="raise"
    )


class Publication(Timestamps, Base):
    """One publish of a content item to one platform, written *before* the platform is called.

    ``pending`` -> ``sending`` -> ``published`` | ``failed`` | ``unknown`` (the request left and no answer came:
    never retried blindly; a person confirms or retries); ``scheduled`` while it waits for ``publish_at``,
    ``cancelled`` if cancelled before. The id doubles as the platform-side idempotency marker.
    """

    __tablename__ = "publications"

    id: Mapped[str] = id_column()
    company_id: Mapped[str] = company_fk()
    content_id: Mapped[str] = mapped_column(ForeignKey("content.id", ondelete=_CASCADE), index=True)
    platform: Mapped[str] = mapped_column(String(40))
    status: Mapped[str] = mapped_column(String(20), default="pending", index=True)
    publish_at: Mapped[datetime | None]
    published_at: Mapped[datetime | None]
    external_id: Mapped[str | None] = mapped_column(String(255))
    url: Mapped[str | None] = mapped_column(String(1000))
    error: Mapped[str | None] = mapped_column(Text)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    progress: Mapped[dict[str, Any]] = mapped_column(default=dict)
    """A newsletter's counts: total, sent, skipped, failed, unknown."""
    workflow_run_id: Mapped[str | None] = mapped_column(ForeignKey("workflow_runs.id", ondelete="SET NULL"))


class ContentLink(Base):
    """A link in published content, served through ``/c/{id}`` to count clicks; it redirects only here."""

    __tablename__ = "content_links"
    __table_args__ = (UniqueConstraint("content_id", "url"),)

    id: Mapped[str] = id_column()
    company_id: Mapped[str] = company_fk()
    content_id: Mapped[str] = mapped_column(ForeignKey("content.id", ondelete=_CASCADE), index=True)
    url: Mapped[str] = mapped_column(String(2000))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class ContentMetric(Base):
    """Engagement figures for one content item as reported on one date."""

    __tablename__ = "content_metrics"
    __table_args__ = (UniqueConstraint("content_id", "recorded_on"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    content_id: Mapped[str] = mapped_column(ForeignKey("content.id", ondelete=_CASCADE), index=True)
    recorded_on: Mapped[str] = mapped_column(String(10))
    views: Mapped[int] = mapped_column(Integer, default=0)
    clicks: Mapped[int] = mapped_column(Integer, default=0)
    shares: Mapped[int] = mapped_column(Integer, default=0)
    comments: Mapped[int] = mapped_column(Integer, default=0)
    conversions: Mapped[int] = mapped_column(Integer, default=0)


class WorkflowConfig(Timestamps, Base):
    __tablename__ = "workflow_configs"

    id: Mapped[str] = id_column()
    company_id: Mapped[str] = company_fk()
    name: Mapped[str] = mapped_column(String(200))
    workflow_type: Mapped[str] = mapped_column(String(40), index=True)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    triggers: Mapped[dict[str, Any]] = mapped_column(default=dict)
    actions: Mapped[dict[str, Any]] = mapped_column(default=dict)
    templates: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_by: Mapped[str | None] = mapped_column(String(40))


class WorkflowRun(Base):
    """One Temporal execution as the product sees it; Temporal keeps the full history."""

    __tablename__ = "workflow_runs"
    __table_args__ = (Index("ix_workflow_runs_company_started", "company_id", "started_at"),)

    id: Mapped[str] = id_column()
    company_id: Mapped[str] = company_fk()
    workflow_config_id: Mapped[str | None] = mapped_column(
        ForeignKey("workflow_configs.id", ondelete="SET NULL"), index=True
    )
    workflow_type: Mapped[str] = mapped_column(String(40))
    temporal_workflow_id: Mapped[str] = mapped_column(String(255), index=True)
    """Business key (``lead-follow-up/{lead}/{config}``); a finished sequence may be run again by hand."""
    temporal_run_id: Mapped[str | None] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(20), default="pending", index=True)
    trigger_type: Mapped[str] = mapped_column(String(40))
    trigger_id: Mapped[str | None] = mapped_column(String(40), index=True)
    results: Mapped[dict[str, Any]] = mapped_column(default=dict)
    error: Mapped[str | None] = mapped_column(Text)
    started_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    completed_at: Mapped[datetime | None]

    actions: Mapped[list[WorkflowAction]] = relationship(
        cascade="all, delete-orphan", passive_deletes=True, order_by="WorkflowAction.timestamp"
    )


class WorkflowAction(Base):
    __tablename__ = "workflow_actions"

    id: Mapped[str] = id_column()
    run_id: Mapped[str] = mapped_column(ForeignKey("workflow_runs.id", ondelete=_CASCADE), index=True)
    type: Mapped[str] = mapped_column(String(40))
    details: Mapped[dict[str, Any]] = mapped_column(default=dict)
    timestamp: Mapped[datetime] = mapped_column(default=utcnow)


class MessageDelivery(Base):
    """Every outbound email/SMS, written *before* the provider is called.

    ``idempotency_key`` (``{workflow_id}/{run_id}/{step}``) is what makes a retried send activity a no-op.
    """

    __tablename__ = "message_deliveries"
    __table_args__ = (
        # The automated messages of a period: the sent ones by when they were sent, the others (recorded, or never
        # sent) by when they were written, each counted from its index alone. The second is partial: it holds only
        # the automated messages without a send time, which every sent message would otherwise bury.
        Index("ix_message_deliveries_company_sent", "company_id", "sent_at", "status", "workflow_run_id"),
        Index(
            "ix_message_deliveries_company_unsent",
            "company_id",
            "created_at",
            "status",
            postgresql_where=text("sent_at IS NULL AND workflow_run_id IS NOT NULL"),
            sqlite_where=text("sent_at IS NULL AND workflow_run_id IS NOT NULL"),
        ),
        # A company's messages in the order they were written (the deliveries list's default order).
        Index("ix_message_deliveries_company_created", "company_id", "created_at", "sent_at"),
        # A run's messages (its foreign key), and its first delivered one from the index alone (response times).
        Index("ix_message_deliveries_run_status", "workflow_run_id", "status", "sent_at", "created_at"),
    )

    id: Mapped[str] = id_column()
    company_id: Mapped[str] = company_fk()
    idempotency_key: Mapped[str] = mapped_column(String(300), unique=True)
    channel: Mapped[str] = mapped_column(String(10))
    recipient: Mapped[str] = mapped_column(String(320))
    subject: Mapped[str | None] = mapped_column(String(500))
    body: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(20), default="pending")
    """pending -> sent | recorded | failed | unknown | suppressed."""
    provider: Mapped[str] = mapped_column(String(20))
    provider_message_id: Mapped[str | None] = mapped_column(String(255))
    error: Mapped[str | None] = mapped_column(Text)
    lead_id: Mapped[str | None] = mapped_column(ForeignKey("leads.id", ondelete="SET NULL"), index=True)
    customer_id: Mapped[str | None] = mapped_column(ForeignKey("customers.id", ondelete="SET NULL"), index=True)
    workflow_run_id: Mapped[str | None] = mapped_column(ForeignKey("workflow_runs.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    sent_at: Mapped[datetime | None]


class Suppression(Base):
    """An address the company must not message on a channel (unsubscribe, SMS STOP, bounce)."""

    __tablename__ = "suppressions"
    __table_args__ = (UniqueConstraint("company_id", "channel", "address"),)

    id: Mapped[str] = id_column()
    company_id: Mapped[str] = company_fk()
    channel: Mapped[str] = mapped_column(String(10))
    address: Mapped[str] = mapped_column(String(320))
    reason: Mapped[str] = mapped_column(String(40))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Webhook(Timestamps, Base):
    __tablename__ = "webhooks"

    id: Mapped[str] = id_column()
    company_id: Mapped[str] = company_fk()
    url: Mapped[str] = mapped_column(String(1000))
    description: Mapped[str | None] = mapped_column(String(500))
    events: Mapped[list[str]] = mapped_column(default=list)
    secret: Mapped[str] = mapped_column(String(255))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    disabled_reason: Mapped[str | None] = mapped_column(Text)
    """Why the platform (not a person) turned the webhook off: a 410, or too many failed deliveries."""
    consecutive_failures: Mapped[int] = mapped_column(Integer, default=0)
    """Deliveries that exhausted their retries since the last success; reset by a success or a re-enable."""


class DomainEvent(Base):
    """Every domain event, recorded once; webhook deliveries fan out from here (the outbox)."""

    __tablename__ = "domain_events"

    id: Mapped[str] = id_column()
    company_id: Mapped[str] = company_fk()
    type: Mapped[str] = mapped_column(String(60), index=True)
    entity_id: Mapped[str | None] = mapped_column(String(40), index=True)
    payload: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    dispatched_at: Mapped[datetime | None] = mapped_column(index=True)
    """When the relay fanned the event out to the subscribed webhooks; null = still in the outbox."""


class WebhookDelivery(Base):
    """One event to one webhook: retried by its ``DeliverWebhookWorkflow`` until delivered or given up."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (UniqueConstraint("webhook_id", "event_id"),)

    id: Mapped[str] = id_column()
    webhook_id: Mapped[str] = mapped_column(ForeignKey("webhooks.id", ondelete=_CASCADE), index=True)
    event_id: Mapped[str] = mapped_column(ForeignKey("domain_events.id", ondelete=_CASCADE))
    event_type: Mapped[str] = mapped_column(String(60), default="")
    status: Mapped[str] = mapped_column(String(20), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    response_status: Mapped[int | None] = mapped_column(Integer)
    last_error: Mapped[str | None] = mapped_column(Text)
    attempt_log: Mapped[list[dict[str, Any]]] = mapped_column(JSONType, default=list)
    """The most recent attempts (time, status code or error, duration), newest last."""
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    delivered_at: Mapped[datetime | None]


class ApiKey(Base):
    """A company's key for server-to-server calls; only a SHA-256 of the secret is stored."""

    __tablename__ = "api_keys"

    id: Mapped[str] = id_column()
    company_id: Mapped[str] = company_fk()
    created_by: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete=_CASCADE), index=True)
    """The key acts as this user, narrowed to its scope; a deactivated user's keys stop working."""
    name: Mapped[str] = mapped_column(String(200))
    prefix: Mapped[str] = mapped_column(String(40), unique=True)
    """Shown in lists and usable as the public form id; not enough to authenticate."""
    secret_hash: Mapped[str] = mapped_column(String(64))
    scope: Mapped[str] = mapped_column(String(20))
    settings: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_used_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]


class AuditEntry(Base):
    """Who changed users, roles, API keys, webhooks (and ran backups, restores, erasures), and when."""

    __tablename__ = "audit_log"

    id: Mapped[str] = id_column()
    company_id: Mapped[str] = company_fk()
    actor_id: Mapped[str | None] = mapped_column(String(40))
    """A user id, or an API key id when the change came through a key; null for the command line."""
    action: Mapped[str] = mapped_column(String(60), index=True)
    target_type: Mapped[str] = mapped_column(String(40))
    target_id: Mapped[str | None] = mapped_column(String(40), index=True)
    changes: Mapped[dict[str, Any]] = mapped_column(default=dict)
    """What changed, never a secret or a password: ``{"role": ["user", "manager"]}``."""
    ip_address: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)


class ApiCallCount(Base):
    """API calls per company per hour, flushed from the API process's in-memory counters."""

    __tablename__ = "api_call_counts"

    company_id: Mapped[str] = mapped_column(ForeignKey("companies.id", ondelete=_CASCADE), primary_key=True)
    hour: Mapped[datetime] = mapped_column(primary_key=True)
    calls: Mapped[int] = mapped_column(Integer, default=0)


class Backup(Base):
    __tablename__ = "backups"

    id: Mapped[str] = id_column()
    company_id: Mapped[str | None] = mapped_column(ForeignKey("companies.id", ondelete="SET NULL"))
    """The company backed up; null for a whole-platform backup."""
    location: Mapped[str] = mapped_column(String(1000))
    size_bytes: Mapped[int] = mapped_column(Integer, default=0)
    status: Mapped[str] = mapped_column(String(20), default="running")
    schema_revision: Mapped[str | None] = mapped_column(String(40))
    manifest: Mapped[dict[str, Any]] = mapped_column(default=dict)
    error: Mapped[str | None] = mapped_column(Text)
    created_by: Mapped[str | None] = mapped_column(String(40))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    restored_at: Mapped[datetime | None]


class IdempotencyRecord(Base):
    """The stored response to a create sent with an ``Idempotency-Key`` header."""

    __tablename__ = "idempotency_records"
    __table_args__ = (UniqueConstraint("company_id", "key"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    company_id: Mapped[str] = company_fk()
    key: Mapped[str] = mapped_column(String(255))
    request_fingerprint: Mapped[str] = mapped_column(String(64))
    status_code: Mapped[int] = mapped_column(Integer)
    response_body: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class SystemCheck(Base):
    """Written by the heartbeat workflow's activity: proof that API -> Temporal -> worker -> DB works."""

    __tablename__ = "system_checks"

    id: Mapped[str] = id_column()
    requested_by: Mapped[str | None] = mapped_column(String(40))
    worker_identity: Mapped[str | None] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class LeadImport(Base):
    """A CSV upload imported row by row by the API process that received it; any process shows its progress."""

    __tablename__ = "lead_imports"

    id: Mapped[str] = id_column()
    company_id: Mapped[str] = company_fk()
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete=_CASCADE), index=True)
    filename: Mapped[str] = mapped_column(String(255))
    total: Mapped[int] = mapped_column(Integer)
    done: Mapped[int] = mapped_column(Integer, default=0)
    created: Mapped[int] = mapped_column(Integer, default=0)
    merged: Mapped[int] = mapped_column(Integer, default=0)
    refused: Mapped[int] = mapped_column(Integer, default=0)
    """Rows not imported (a row may have several errors)."""
    errors: Mapped[list[dict[str, Any]]] = mapped_column(JSONType, default=list)
    """The first errors, ``{"row", "field", "message"}`` each."""
    failure: Mapped[str | None] = mapped_column(Text)
    started_at: Mapped[datetime] = mapped_column(default=utcnow)
    progressed_at: Mapped[datetime] = mapped_column(default=utcnow)
    """Written as rows are processed: an unfinished import that stops moving lost its process."""
    finished_at: Mapped[datetime | None]
