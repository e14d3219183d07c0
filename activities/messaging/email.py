"""Email over SMTP (aiosmtplib) with a one-click unsubscribe (RFC 8058) and the sender's postal address."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from contextvars import ContextVar
from email import policy
from email.message import EmailMessage
from email.utils import formataddr, formatdate, parseaddr

import aiosmtplib

from activities.messaging.outcome import ProviderUnavailable, SendResult
from core.config import Settings
from core.security import sign_unsubscribe

log = logging.getLogger(__name__)

# Long headers are refolded by the stdlib as RFC 2047 encoded words, which would mangle the unsubscribe URL;
# SMTP allows 998 characters per line.
_POLICY = policy.SMTP.clone(max_line_length=998)


def unsubscribe_url(settings: Settings, company_id: str, contact_id: str) -> str:
    token = sign_unsubscribe(settings, company_id, contact_id)
    return f"{settings.public_base_url.rstrip('/')}/api/lead-nurturing/unsubscribe/{token}"


def footer(company_name: str, postal_address: str | None, unsubscribe_link: str) -> str:
    """Who sent this, where they are, and how to stop it: required in every marketing email (CAN-SPAM)."""
    address = (postal_address or "").strip() or company_name
    return f"\n\n--\n{company_name}\n{address}\nUnsubscribe: {unsubscribe_link}\n"


def sender_address(settings: Settings) -> str:
    return parseaddr(settings.email_from)[1]


def message_id(settings: Settings, delivery_id: str) -> str:
    """One ``Message-ID`` per delivery, the same on every try: a resend after an unknown outcome is a copy the
    recipient's mail system recognises and collapses, not a second message."""
    domain = sender_address(settings).rpartition("@")[2] or "localhost"
    return f"<{delivery_id}@{domain}>"


def build_message(
    settings: Settings,
    *,
    delivery_id: str,
    recipient: str,
    recipient_name: str | None,
    subject: str,
    text: str,
    unsubscribe_link: str,
) -> EmailMessage:
    """A plain-text email whose ``Message-ID`` names its delivery: known before sending, so even an unknown outcome
    can be traced at the relay, and kept by a resend."""
    message = EmailMessage(policy=_POLICY)
    message["From"] = settings.email_from
    message["To"] = formataddr((recipient_name or "", recipient))
    message["Subject"] = subject
    message["Date"] = formatdate(localtime=False, usegmt=True)
    message["Message-ID"] = message_id(settings, delivery_id)
    message["List-Unsubscribe"] = f"<{unsubscribe_link}>"
    message["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    message.set_content(text, cte="quoted-printable")
    return message


class _KeptSessions:
    """Open SMTP sessions for the sends of one ``kept_sessions`` block; one per send in flight, none shared."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._idle: list[aiosmtplib.SMTP] = []

    def take(self) -> aiosmtplib.SMTP:
        while self._idle:
            client = self._idle.pop()
            if client.is_connected:  # not one whose connection the server has closed meanwhile
                return client
        return _client(self._settings)

    def give_back(self, client: aiosmtplib.SMTP) -> None:
        self._idle.append(client)

    async def close(self) -> None:
        """QUIT on every session at once: a slow server delays the batch's end by one timeout, not one per session."""
        idle, self._idle = self._idle, []
        await asyncio.gather(*(_goodbye(client) for client in idle))


async def _goodbye(client: aiosmtplib.SMTP) -> None:
    with contextlib.suppress(aiosmtplib.SMTPException, OSError):
        await client.quit()
    if client.is_connected:
        client.close()


_kept: ContextVar[_KeptSessions | None] = ContextVar("kept_smtp_sessions", default=None)


@contextlib.asynccontextmanager
async def kept_sessions(settings: Settings) -> AsyncIterator[None]:
    """Within this block, and the tasks started in it, ``send`` hands each message over an SMTP session left open
    by an earlier one: a broadcast pays the connection, greeting, STARTTLS and login once per concurrent send,
    not once per message. The sessions are closed (QUIT) when the block ends."""
    sessions = _KeptSessions(settings)
    token = _kept.set(sessions)
    try:
        yield
    finally:
        _kept.reset(token)
        await sessions.close()


async def send(settings: Settings, message: EmailMessage, recipient: str) -> SendResult:
    """Hand ``message`` to the SMTP relay once, on a session of its own or, inside ``kept_sessions``, a kept one.

    Until the DATA command nothing can have been accepted, so trouble there is ``ProviderUnavailable`` (retry),
    except a recipient the server refuses for good (``failed``). Once the message is on the wire, a reply is
    the only proof of acceptance: a timeout or a dropped connection then is ``unknown``, never a resend.
    """
    sessions = _kept.get()
    if sessions is None:
        return await _send_on(settings, _client(settings), message, recipient, keep=None)
    client = sessions.take()
    if client.is_connected:
        try:
            return await _send_on(settings, client, message, recipient, keep=sessions)
        except ProviderUnavailable as exc:
            # The server closed the kept session (idle timeout, a limit of messages per connection) or turned it
            # away before DATA: nothing was accepted on it, so the message may go on a new session.
            log.info("SMTP session kept open is no longer usable (%s); sending on a new one", exc)
            client = _client(settings)
    return await _send_on(settings, client, message, recipient, keep=sessions)


def _client(settings: Settings) -> aiosmtplib.SMTP:
    return aiosmtplib.SMTP(
        hostname=settings.smtp_host,
        port=settings.smtp_port,
        username=settings.smtp_username or None,
        password=settings.smtp_password.get_secret_value() or None,
        start_tls=settings.smtp_starttls,
        timeout=settings.smtp_timeout_seconds,
    )


async def _send_on(
    settings: Settings,
    client: aiosmtplib.SMTP,
    message: EmailMessage,
    recipient: str,
    keep: _KeptSessions | None,
) -> SendResult:
    """One mail transaction on ``client`` (connected first if it is not); only a session whose message was
    accepted is kept, since any other may be mid-transaction or broken."""
    kept = False
    try:
        result = await _transact(settings, client, message, recipient)
        if result.status == "sent":
            if keep is not None:
                keep.give_back(client)
                kept = True
            else:
                await _goodbye(client)  # the message is already accepted; a failed goodbye changes nothing
        return result
    finally:
        if not kept and client.is_connected:
            client.close()


async def _transact(settings: Settings, client: aiosmtplib.SMTP, message: EmailMessage, recipient: str) -> SendResult:
    header_id = message["Message-ID"]
    try:
        if not client.is_connected:
            await client.connect()
        await client.mail(sender_address(settings))
        await client.rcpt(recipient)
    except aiosmtplib.SMTPRecipientRefused as exc:
        if exc.code >= 500:
            return SendResult("failed", header_id, f"recipient refused: {exc.code} {exc.message}")
        raise ProviderUnavailable(f"SMTP recipient deferred: {exc.code} {exc.message}") from exc
    except (aiosmtplib.SMTPException, OSError) as exc:
        raise ProviderUnavailable(f"SMTP {settings.smtp_host}:{settings.smtp_port} unavailable: {exc}") from exc
    try:
        await client.data(message.as_bytes())
    except aiosmtplib.SMTPResponseException as exc:
        # A reply that is not 250 means the server did not take responsibility for the message.
        if exc.code >= 500:
            return SendResult("failed", header_id, f"message refused: {exc.code} {exc.message}")
        raise ProviderUnavailable(f"SMTP message deferred: {exc.code} {exc.message}") from exc
    except (aiosmtplib.SMTPException, OSError) as exc:
        return SendResult("unknown", header_id, f"no reply after the message was sent: {exc!r}")
    return SendResult("sent", header_id)
