"""The message path every automation shares: when a message may go out, writing it, sending it once, and
the run's final record. Activities are idempotent under their step key.

A message goes to a contact, a lead or a customer (``db.contacts``); what differs between them (a lead's
timeline of interactions) is decided here, in one place, so every automation sends the same way.

A message moves through ``message_deliveries``: ``compose_message`` writes it ``pending`` (or ``skipped``);
``deliver_message`` commits ``sending`` *before* calling the provider, then writes the outcome. When the answer
is lost (a timeout after the message left, a killed worker, a database that went away before the outcome was
written) the row stays ``sending`` and the next attempt *resolves* it rather than guessing: an email is sent
again under the same Message-ID (``<{delivery_id}@{domain}>``, on every try), which the recipient's mail system
collapses into one; for an SMS the provider's message list is asked first and the message is sent only if the
provider has no such message. Only what that cannot settle ends ``unknown``: counted on the run
(``results.unresolved``), shown on the lead's timeline and the health report, and resent by a person
(``resend_delivery``, started by ``POST /v1/deliveries/{id}/resend``).

The activities are thin wrappers over ``compose``, ``deliver`` and ``send``, so an activity that sends to many
contacts at once (a newsletter batch) goes through exactly the same steps for each of them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime
from email.message import EmailMessage
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.messaging import email as email_channel
from activities.messaging import sms as sms_channel
from activities.messaging.context import template_context
from activities.messaging.llm import Recipient, first_name, writer_for
from activities.messaging.outcome import OutcomeUnresolved, ProviderUnavailable, SendResult
from activities.messaging.send_window import WindowNeverOpens, next_send_time
from core.config import Settings
from core.ids import new_id
from core.templates import TemplateRejected, render
from db import events as db_events
from db.base import utcnow
from db.contacts import Contact, load_contact
from db.models import (
    Company,
    Interaction,
    Lead,
    MessageDelivery,
    Suppression,
    WorkflowAction,
    WorkflowRun,
)
from db.session import transaction
from schemas.leads import Channel, Direction, LeadStatus
from schemas.messaging import (
    DELIVERED,
    ComposedMessage,
    DeliveryOutcome,
    FinishRunInput,
    PlanSendInput,
    ResendDeliveryInput,
    StepInput,
    contact_kind,
)

log = logging.getLogger(__name__)

TERMINAL = frozenset({"sent", "recorded", "suppressed", "skipped", "failed", "unknown"})
"""A delivery in one of these states is settled: a retried ``deliver_message`` returns it untouched."""

INTERACTION_CHANNEL = "automated_workflow"
MAX_SUBJECT = 500  # message_deliveries.subject


@dataclass(frozen=True)
class _Origin:
    """Who a message is for and which run and step wrote it: what the lead's timeline records with it."""

    contact_id: str
    run_id: str | None
    step: int | None = None
    template_key: str | None = None

    @classmethod
    def of(cls, input: StepInput) -> _Origin:
        return cls(input.contact_id, input.run_id, input.step, input.step_spec.template_key)


@dataclass(frozen=True)
class _Draft:
    recipient: str
    subject: str | None
    body: str
    skipped_reason: str | None = None
    writer: str | None = None


class OutboundActivities:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        settings: Settings,
        *,
        record_actions: bool = True,
        keys_span_runs: bool = False,
    ) -> None:
        """``record_actions=False`` leaves out the run's per-message actions (``generate_message``, ``send_*``):
        a broadcast's run would carry two per recipient, and each recipient's story is its delivery row.

        ``keys_span_runs=True`` is for keys that name the message itself, whichever run asks (a newsletter's
        ``newsletter/{publication}/{contact}``): a later run finds the earlier run's row and settles from it,
        where by default a key that already belongs to another run is refused.
        """
        self._sessions = sessions
        self._settings = settings
        self._record_actions = record_actions
        self._keys_span_runs = keys_span_runs

    @activity.defn
    async def plan_send_time(self, input: PlanSendInput) -> datetime:
        """The first moment at or after ``not_before`` inside the send window in the recipient's zone."""
        async with self._sessions() as session:
            contact = await load_contact(session, input.company_id, input.contact_id)
            company = await session.get(Company, input.company_id)
        zone = _zone(contact.timezone if contact else None, company.timezone if company else None)
        try:
            return next_send_time(input.not_before, zone, input.send_window, input.channel)
        except WindowNeverOpens as exc:
            # The same input would fail the same way forever; fail the run so the operator sees why.
            raise ApplicationError(str(exc), type="WindowNeverOpens", non_retryable=True) from exc

    @activity.defn
    async def compose_message(self, input: StepInput) -> ComposedMessage:
        """Render the step's template with the contact's current data into a pending delivery row."""
        async with _kept_alive():
            return await self.compose(input)

    @activity.defn
    async def deliver_message(self, input: StepInput) -> DeliveryOutcome:
        """Check suppression, send once, record the outbound interaction."""
        async with _kept_alive():
            return await self.deliver(input)

    @activity.defn
    async def resend_delivery(self, input: ResendDeliveryInput) -> DeliveryOutcome:
        """Settle a delivery left ``unknown``: resend the email under its Message-ID, or ask the SMS provider first."""
        async with _kept_alive():
            return await self.resend(input.delivery_id)

    async def send(self, input: StepInput) -> DeliveryOutcome:
        """Compose, then deliver unless nothing can be sent: one message, idempotent under its key."""
        composed = await self.compose(input)
        if composed.skipped_reason is not None:
            return DeliveryOutcome(delivery_id=composed.delivery_id, status="skipped")
        return await self.deliver(input)

    async def compose(self, input: StepInput) -> ComposedMessage:
        """``compose_message``'s work, for callers that compose inside an activity of their own."""
        async with self._sessions() as session:
            existing = await _delivery(session, input.idempotency_key)
            if existing is not None:
                return _composed(self._existing(existing, input))
            contact = await load_contact(session, input.company_id, input.contact_id)
            company = await session.get(Company, input.company_id)
            if company is None:
                raise ApplicationError(
                    f"company {input.company_id} no longer exists", type="NotFound", non_retryable=True
                )
            draft = await self._render(session, input, contact, company)
        # Outside any transaction: an LLM may take a minute and must not hold a database connection.
        if input.personalise and contact is not None and draft.skipped_reason is None:
            draft = await self._personalise(draft, input, contact, company)
        delivery = MessageDelivery(
            id=new_id("msg"),
            company_id=input.company_id,
            idempotency_key=input.idempotency_key,
            channel=input.step_spec.channel,
            recipient=draft.recipient,
            subject=draft.subject,
            body=draft.body,
            status="skipped" if draft.skipped_reason else "pending",
            error=draft.skipped_reason,
            provider=self._provider(input.step_spec.channel),
            lead_id=contact.id if isinstance(contact, Lead) else None,
            customer_id=contact.id if contact is not None and not isinstance(contact, Lead) else None,
            workflow_run_id=input.run_id,
        )
        details: dict[str, Any] = {"template": input.step_spec.template_key, "step": input.step, "writer": draft.writer}
        if draft.skipped_reason:
            details["skipped_reason"] = draft.skipped_reason
        try:
            async with transaction(self._sessions) as session:
                session.add(delivery)
                if self._record_actions:
                    session.add(
                        WorkflowAction(id=new_id("act"), run_id=input.run_id, type="generate_message", details=details)
                    )
        except IntegrityError:
            # Another attempt of this step (a retry racing a slow first try) inserted the key first: use its row.
            async with self._sessions() as session:
                existing = await _delivery(session, input.idempotency_key)
            if existing is None:
                raise
            return _composed(self._existing(existing, input))
        log.info(
            "composed %s %s for %s (step %d of run %s)",
            delivery.channel,
            delivery.id,
            input.contact_id,
            input.step,
            input.run_id,
        )
        return _composed(delivery)

    def _existing(self, delivery: MessageDelivery, input: StepInput) -> MessageDelivery:
        return delivery if self._keys_span_runs else _of_this_run(delivery, input)

    async def deliver(self, input: StepInput) -> DeliveryOutcome:
        """``deliver_message``'s work, for callers that deliver inside an activity of their own."""
        async with transaction(self._sessions) as session:
            delivery = await _delivery(session, input.idempotency_key, lock=True)
            if delivery is None:
                raise ApplicationError(
                    f"no message was composed under {input.idempotency_key}", type="NotFound", non_retryable=True
                )
            if delivery.status in TERMINAL:
                return _outcome(delivery)
            # An earlier attempt called the provider and never wrote its answer: resolve, do not send blindly.
            unconfirmed = delivery.status == "sending"
            contact = await load_contact(session, delivery.company_id, input.contact_id)
            company = await session.get(Company, delivery.company_id)
            if contact is None or company is None:
                who = contact_kind(input.contact_id).value
                if unconfirmed:
                    return self._leave_unknown(session, delivery, f"the {who} was deleted since")
                delivery.status, delivery.error = "skipped", f"the {who} was deleted before the message went out"
                self._add_send_action(session, delivery)
                return _outcome(delivery)
            # Checked here, right before the provider call, not when the sequence started.
            reason = await _suppression(session, delivery, contact)
            if reason is not None:
                if unconfirmed:
                    return self._leave_unknown(session, delivery, reason)
                delivery.status, delivery.error = "suppressed", reason
                log.info("delivery %s to %s suppressed: %s", delivery.id, contact.id, reason)
                self._add_send_action(session, delivery)
                return _outcome(delivery)
            delivery.provider = self._provider(Channel(delivery.channel))
            if delivery.provider == "recorded":
                log.info(
                    "%s %s for %s recorded, not sent: no %s provider is configured",
                    delivery.channel,
                    delivery.id,
                    contact.id,
                    delivery.channel,
                )
                self._record_outbound(session, delivery, contact, _Origin.of(input), "recorded")
                return _outcome(delivery)
            message = self._email(delivery, contact, company) if delivery.channel == Channel.email else None
            if message is not None:
                delivery.provider_message_id = message["Message-ID"]
            delivery.status = "sending"
        # Committed: from here on a retried attempt finds "sending" and resolves it instead of sending blindly.
        # With the "sent" line below, this says which messages a worker that died had out at the provider.
        log.info("handing %s %s to %s", delivery.channel, delivery.id, delivery.provider)
        try:
            result = await (self._resolve(delivery, message) if unconfirmed else self._send(delivery, message))
        except ProviderUnavailable:
            await self._back_to(delivery.id, "pending")
            raise
        if result.status == "unknown" and not unconfirmed:
            # The provider may still be working on it: Temporal's next attempt, after a backoff, resolves it.
            log.warning(
                "%s %s to %s: no answer from the provider (%s); the next attempt resolves it",
                delivery.channel,
                delivery.id,
                input.contact_id,
                result.error,
            )
            raise OutcomeUnresolved(f"delivery {delivery.id}: {result.error}")
        return await self._settle(delivery.id, _Origin.of(input), result)

    async def resend(self, delivery_id: str) -> DeliveryOutcome:
        """``resend_delivery``'s work: a person asked to settle a delivery no attempt could."""
        async with transaction(self._sessions) as session:
            delivery = await session.get(MessageDelivery, delivery_id, with_for_update=True)
            if delivery is None:
                raise ApplicationError(f"delivery {delivery_id} no longer exists", type="NotFound", non_retryable=True)
            if delivery.status not in ("unknown", "sending"):
                return _outcome(delivery)  # settled meanwhile (by another resend, or a person)
            contact_id = delivery.lead_id or delivery.customer_id
            contact = await load_contact(session, delivery.company_id, contact_id) if contact_id else None
            company = await session.get(Company, delivery.company_id)
            if contact is None or company is None:
                return self._leave_unknown(session, delivery, "the contact was deleted since")
            reason = await _suppression(session, delivery, contact)
            if self._provider(Channel(delivery.channel)) == "recorded":
                reason = f"no {delivery.channel} provider is configured any more"
            if reason is not None:
                return self._leave_unknown(session, delivery, reason)
            message = self._email(delivery, contact, company) if delivery.channel == Channel.email else None
            delivery.status = "sending"
            origin = _Origin(contact.id, delivery.workflow_run_id)
        log.info("resending %s %s to %s, as asked", delivery.channel, delivery.id, contact.id)
        try:
            result = await self._resolve(delivery, message)
        except ProviderUnavailable:
            await self._back_to(delivery.id, "unknown")  # nothing new went out; the first try is still unconfirmed
            raise
        outcome = await self._settle(delivery.id, origin, result)
        if delivery.workflow_run_id is not None:
            async with transaction(self._sessions) as session:
                await _recount_finished_run(session, delivery.workflow_run_id)
        return outcome

    @activity.defn
    async def finish_run(self, input: FinishRunInput) -> None:
        """Write the run's final status and results."""
        async with transaction(self._sessions) as session:
            run = await session.get(WorkflowRun, input.run_id, with_for_update=True)
            if run is None:
                log.warning("run %s no longer exists; nothing to finish", input.run_id)
                return
            if run.status == input.status and run.completed_at is not None:
                return  # a retried attempt whose first try committed
            # Counted from the deliveries, not the workflow's tally: an "unknown" outcome is not a known send, and
            # a run whose message stayed unknown still finishes, saying so in ``unresolved``.
            results = {**input.results, **await _tally(session, run.id), "stopped_by": input.stopped_by}
            run.status = input.status
            run.error = input.error or run.error
            run.completed_at = utcnow()
            run.results = {**(run.results or {}), **results}
            session.add(
                WorkflowAction(
                    id=new_id("act"), run_id=run.id, type="finish", details={"status": input.status, **results}
                )
            )
            db_events.record(session, run.company_id, _run_event_type(run.status), run.id, _run_event(run))
        log.info("run %s finished %s: %s", input.run_id, input.status, results)

    # ---- composing

    async def _render(
        self, session: AsyncSession, input: StepInput, contact: Contact | None, company: Company
    ) -> _Draft:
        spec = input.step_spec
        who = contact_kind(input.contact_id).value
        if contact is None:
            return _Draft(recipient="", subject=None, body="", skipped_reason=f"the {who} no longer exists")
        address = contact.email if spec.channel == Channel.email else contact.phone
        if not address:
            missing = "email address" if spec.channel == Channel.email else "phone number"
            return _Draft(recipient="", subject=None, body="", skipped_reason=f"the {who} has no {missing}")
        context = await template_context(session, contact, company, input.context, self._settings.public_base_url)
        if context.missing is not None:
            return _Draft(recipient=address, subject=None, body="", skipped_reason=context.missing)
        try:
            body = render(spec.template, context.variables)
            subject = None
            if spec.channel == Channel.email:
                subject = render(spec.subject, context.variables) if spec.subject else f"A message from {company.name}"
                subject = " ".join(subject.split())[:MAX_SUBJECT]  # a header holds one line
        except TemplateRejected as exc:
            # The template was checked when the config was saved; this contact's data still broke it.
            reason = f"template {spec.template_key!r} cannot be rendered for this {who}: {exc}"
            return _Draft(recipient=address, subject=None, body="", skipped_reason=reason)
        return _Draft(recipient=address, subject=subject, body=body)

    async def _personalise(self, draft: _Draft, input: StepInput, contact: Contact, company: Company) -> _Draft:
        chosen = writer_for(self._settings)
        recipient = Recipient(
            name=contact.name,
            first_name=first_name(contact.name),
            source=contact.source if isinstance(contact, Lead) else "an earlier purchase",
            company_name=company.name,
            channel=input.step_spec.channel,
        )
        body = await chosen.personalise(draft.body, recipient)
        return _Draft(recipient=draft.recipient, subject=draft.subject, body=body, writer=chosen.name)

    def _provider(self, channel: Channel) -> str:
        if channel == Channel.email:
            return "smtp" if self._settings.smtp_host else "recorded"
        return "twilio" if self._settings.sms_api_url else "recorded"

    # ---- delivering

    def _email(self, delivery: MessageDelivery, contact: Contact, company: Company) -> EmailMessage:
        link = email_channel.unsubscribe_url(self._settings, company.id, contact.id)
        return email_channel.build_message(
            self._settings,
            delivery_id=delivery.id,
            recipient=delivery.recipient,
            recipient_name=contact.name,
            subject=delivery.subject or f"A message from {company.name}",
            text=delivery.body + email_channel.footer(company.name, company.postal_address, link),
            unsubscribe_link=link,
        )

    async def _send(self, delivery: MessageDelivery, message: EmailMessage | None) -> SendResult:
        if message is not None:
            return await email_channel.send(self._settings, message, delivery.recipient)
        return await sms_channel.send(self._settings, delivery.recipient, sms_channel.with_opt_out(delivery.body))

    async def _resolve(self, delivery: MessageDelivery, message: EmailMessage | None) -> SendResult:
        """Settle a message an earlier try may or may not have handed over, without ever doubling it."""
        if message is not None:
            log.warning(
                "email %s: an earlier try's outcome is unknown; sending it again under the same Message-ID %s",
                delivery.id,
                message["Message-ID"],
            )
            return await self._send(delivery, message)
        text = sms_channel.with_opt_out(delivery.body)
        found = await sms_channel.find_sent(self._settings, delivery.recipient, text, delivery.created_at)
        if found is not None:
            log.info(
                "sms %s: the provider has it (%s, %s); not sent again",
                delivery.id,
                found.status,
                found.provider_message_id,
            )
            return found
        log.warning(
            "sms %s: an earlier try's outcome is unknown and the provider has no such message; sending it", delivery.id
        )
        return await self._send(delivery, message)

    async def _back_to(self, delivery_id: str, status: str) -> None:
        """Nothing reached the provider on this try: ``pending`` lets the next attempt send, ``unknown`` keeps an
        earlier unconfirmed try's doubt."""
        async with transaction(self._sessions) as session:
            await session.execute(
                update(MessageDelivery)
                .where(MessageDelivery.id == delivery_id, MessageDelivery.status == "sending")
                .values(status=status)
            )

    def _leave_unknown(self, session: AsyncSession, delivery: MessageDelivery, why: str) -> DeliveryOutcome:
        """An unconfirmed message that must not go out again now: it stays unknown, and says why."""
        delivery.status = "unknown"
        delivery.error = f"an earlier try's outcome is unknown and it was not sent again: {why}"
        log.warning("%s %s left unknown, not resent: %s", delivery.channel, delivery.id, why)
        self._add_send_action(session, delivery)
        return _outcome(delivery)

    async def _settle(self, delivery_id: str, origin: _Origin, result: SendResult) -> DeliveryOutcome:
        sent = False
        async with transaction(self._sessions) as session:
            delivery = await session.get(MessageDelivery, delivery_id, with_for_update=True)
            if delivery is None:
                raise ApplicationError(f"delivery {delivery_id} vanished", type="NotFound", non_retryable=True)
            # A later attempt may have marked this "unknown" while we waited on the provider; a real answer
            # is better than that guess. Any other state was settled by someone else: leave it.
            settled_elsewhere = delivery.status not in ("sending", "unknown")
            if settled_elsewhere or (delivery.status == "unknown" and result.status == "unknown"):
                return _outcome(delivery)
            delivery.provider_message_id = result.provider_message_id or delivery.provider_message_id
            if result.status == "sent":
                contact = await load_contact(session, delivery.company_id, origin.contact_id)
                self._record_outbound(session, delivery, contact, origin, "sent")
                sent = True
            else:
                delivery.status, delivery.error = result.status, result.error
                log.warning(
                    "%s %s to %s: %s (%s)%s",
                    delivery.channel,
                    delivery.id,
                    origin.contact_id,
                    result.status,
                    result.error,
                    f"; unresolved: POST /v1/deliveries/{delivery.id}/resend" if result.status == "unknown" else "",
                )
                self._add_send_action(session, delivery)
            outcome = _outcome(delivery)
        if sent:  # once committed: a worker that dies before then has not reported the message sent
            log.info(
                "sent %s %s to %s (provider id %s)",
                delivery.channel,
                delivery.id,
                origin.contact_id,
                delivery.provider_message_id,
            )
        return outcome

    def _record_outbound(
        self, session: AsyncSession, delivery: MessageDelivery, contact: Contact | None, origin: _Origin, status: str
    ) -> None:
        """The delivery's outcome and, for a lead, its interaction, first-contact status and event, in one commit.

        A customer's messages are its delivery rows (``customer_id``); leads keep a timeline of interactions.
        """
        now = utcnow()
        delivery.status, delivery.error = status, None
        if status == "sent":
            delivery.sent_at = now
        self._add_send_action(session, delivery)
        if isinstance(contact, Lead):  # not a customer, and not deleted while the provider had the message
            _add_to_timeline(session, delivery, contact, origin, status, now)

    def _add_send_action(self, session: AsyncSession, delivery: MessageDelivery) -> None:
        # Without a run row (deleted) or when the caller keeps its own account, the delivery row tells the story.
        if delivery.workflow_run_id is None or not self._record_actions:
            return
        details: dict[str, Any] = {
            "delivery_id": delivery.id,
            "recipient": delivery.recipient,
            "subject": delivery.subject,
            "status": delivery.status,
        }
        if delivery.error:
            details["error"] = delivery.error
        session.add(
            WorkflowAction(
                id=new_id("act"), run_id=delivery.workflow_run_id, type=f"send_{delivery.channel}", details=details
            )
        )


def _add_to_timeline(
    session: AsyncSession, delivery: MessageDelivery, lead: Lead, origin: _Origin, status: str, now: datetime
) -> None:
    """The lead's outbound interaction, its first-contact status and their events."""
    written_by = {"template_id": origin.template_key, "workflow_run_id": origin.run_id, "step": origin.step}
    meta: dict[str, Any] = {"delivery_id": delivery.id} | {k: v for k, v in written_by.items() if v is not None}
    if delivery.subject:
        meta["subject"] = delivery.subject
    interaction = Interaction(
        id=new_id("int"),
        company_id=delivery.company_id,
        lead_id=lead.id,
        type=delivery.channel,
        direction=Direction.outbound,
        content=delivery.body,
        channel=INTERACTION_CHANNEL,
        status=status,
        created_by="system",
        meta=meta,
        created_at=now,
    )
    session.add(interaction)
    db_events.record(
        session, delivery.company_id, "interaction.created", interaction.id, db_events.interaction_created(interaction)
    )
    if lead.status == LeadStatus.new:
        lead.status, lead.status_changed_at = LeadStatus.contacted, now
        change = db_events.status_changed(lead.id, LeadStatus.new, LeadStatus.contacted)
        db_events.record(session, delivery.company_id, "lead.status_changed", lead.id, change)


async def _tally(session: AsyncSession, run_id: str) -> dict[str, int]:
    """The run's messages the contact got, and those whose outcome nobody could settle."""
    rows = await session.execute(
        select(MessageDelivery.status, func.count())
        .where(MessageDelivery.workflow_run_id == run_id)
        .group_by(MessageDelivery.status)
    )
    counts: dict[str, int] = {status: count for status, count in rows}
    return {
        "messages_sent": sum(counts.get(status, 0) for status in DELIVERED),
        "unresolved": counts.get("unknown", 0),
    }


async def _recount_finished_run(session: AsyncSession, run_id: str) -> None:
    """A resend after the run finished: its figures follow the deliveries (only runs ``finish_run`` wrote)."""
    run = await session.get(WorkflowRun, run_id, with_for_update=True)
    if run is None or run.completed_at is None or "unresolved" not in (run.results or {}):
        return
    run.results = {**run.results, **await _tally(session, run_id)}


@contextlib.asynccontextmanager
async def _kept_alive() -> AsyncIterator[None]:
    """Heartbeat in the background while a provider or an LLM takes its time.

    The workflow's heartbeat timeout can then stay short: an attempt whose worker died (kill -9) is retried within
    seconds, not after the two-minute start-to-close timeout, and the retry resolves what that attempt left.
    """
    timeout = activity.info().heartbeat_timeout

    async def beat(every: float) -> None:
        while True:
            activity.heartbeat()
            await asyncio.sleep(every)

    beating = asyncio.create_task(beat(timeout.total_seconds() / 3)) if timeout else None
    try:
        yield
    finally:
        if beating is not None:
            beating.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await beating


def _run_event_type(status: str) -> str:
    return "workflow_run.failed" if status == "failed" else "workflow_run.completed"


def _run_event(run: WorkflowRun) -> dict[str, Any]:
    return {
        "id": run.id,
        "workflow_type": run.workflow_type,
        "status": run.status,
        "entity_id": run.trigger_id,
        "config_id": run.workflow_config_id,
        "error": run.error,
    }


def _zone(*names: str | None) -> ZoneInfo:
    """The first valid zone of the contact's, then the company's; UTC if neither is usable."""
    for name in names:
        if not name:
            continue
        try:
            return ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError):
            log.warning("unknown time zone %r; trying the next fallback", name)
    return ZoneInfo("UTC")


async def _delivery(session: AsyncSession, key: str, *, lock: bool = False) -> MessageDelivery | None:
    query = select(MessageDelivery).where(MessageDelivery.idempotency_key == key)
    if lock:  # two attempts of one step (a timed-out one still running) take turns on the row
        query = query.with_for_update()
    delivery: MessageDelivery | None = await session.scalar(query)
    return delivery


async def _suppression(session: AsyncSession, delivery: MessageDelivery, contact: Contact) -> str | None:
    """Why this message must not go out, or ``None``."""
    if delivery.channel == Channel.email and contact.unsubscribed_at is not None:
        return f"the {contact_kind(contact.id).value} unsubscribed"
    if delivery.channel == Channel.email:  # mailbox names are matched case-insensitively in practice
        same_address = func.lower(Suppression.address) == delivery.recipient.lower()
    else:
        same_address = Suppression.address == delivery.recipient
    reason: str | None = await session.scalar(
        select(Suppression.reason).where(
            Suppression.company_id == delivery.company_id, Suppression.channel == delivery.channel, same_address
        )
    )
    return f"{delivery.channel} address is on the suppression list ({reason})" if reason is not None else None


def _of_this_run(delivery: MessageDelivery, input: StepInput) -> MessageDelivery:
    """Refuse a key that already names another run's message: reusing it would silently send nothing."""
    if delivery.workflow_run_id not in (None, input.run_id):
        raise ApplicationError(
            f"idempotency key {input.idempotency_key} already belongs to run {delivery.workflow_run_id}",
            type="IdempotencyKeyReused",
            non_retryable=True,
        )
    return delivery


def _composed(delivery: MessageDelivery) -> ComposedMessage:
    return ComposedMessage(
        delivery_id=delivery.id, skipped_reason=delivery.error if delivery.status == "skipped" else None
    )


def _outcome(delivery: MessageDelivery) -> DeliveryOutcome:
    return DeliveryOutcome(delivery_id=delivery.id, status=delivery.status)
