"""A real SMTP server (aiosmtpd) on 127.0.0.1 that keeps every message it is given, for tests to read."""

from __future__ import annotations

import asyncio
from email import message_from_bytes, policy
from email.message import EmailMessage
from email.utils import parseaddr
from types import TracebackType
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

from tests.support.processes import free_port


class SmtpServer:
    """Start with ``with SmtpServer() as smtp:``; point ``BAS_SMTP_HOST/PORT`` at ``smtp.host``/``smtp.port``.

    ``refuse`` maps recipient addresses to a permanent 550; ``reply_delay`` holds the answer to DATA after the
    message was received (a client with a shorter timeout then cannot know it was accepted). With
    ``credentials`` the server requires AUTH (over plain text, fine on loopback).
    """

    def __init__(self, *, credentials: tuple[str, str] | None = None) -> None:
        self.host = "127.0.0.1"
        self.port = free_port()
        self.messages: list[EmailMessage] = []
        self.envelopes: list[tuple[str, list[str]]] = []
        self.refuse: set[str] = set()
        self.reply_delay = 0.0
        self.logins: list[str] = []
        self.credentials = credentials
        auth: dict[str, Any] = {}
        if credentials is not None:
            auth = {"authenticator": self._authenticate, "auth_require_tls": False}
        self._controller = Controller(_Handler(self), hostname=self.host, port=self.port, **auth)

    def _authenticate(
        self, server: SMTP, session: Session, envelope: Envelope, mechanism: str, auth_data: Any
    ) -> AuthResult:
        if isinstance(auth_data, LoginPassword) and self.credentials is not None:
            login, password = self.credentials
            if auth_data.login.decode() == login and auth_data.password.decode() == password:
                self.logins.append(login)
                return AuthResult(success=True)
        return AuthResult(success=False, handled=False)

    def sent_to(self, address: str) -> list[EmailMessage]:
        return [message for message in self.messages if parseaddr(str(message["To"]))[1] == address]

    async def wait_for(self, address: str, count: int) -> list[EmailMessage]:
        """The messages to ``address`` once at least ``count`` have arrived (30 s at most)."""
        async with asyncio.timeout(30):
            while len(mine := self.sent_to(address)) < count:
                await asyncio.sleep(0.1)
        return mine

    def start(self) -> SmtpServer:
        self._controller.start()
        return self

    def stop(self) -> None:
        self._controller.stop()

    def __enter__(self) -> SmtpServer:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.stop()


class _Handler:
    def __init__(self, server: SmtpServer) -> None:
        self._server = server

    async def handle_MAIL(  # noqa: N802 (aiosmtpd's hook name)
        self, server: SMTP, session: Session, envelope: Envelope, address: str, mail_options: list[str]
    ) -> str:
        if self._server.credentials is not None and not session.authenticated:
            return "530 5.7.0 Authentication required"
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 OK"

    async def handle_RCPT(  # noqa: N802 (aiosmtpd's hook name)
        self, server: SMTP, session: Session, envelope: Envelope, address: str, rcpt_options: list[str]
    ) -> str:
        if address in self._server.refuse:
            return "550 5.1.1 No such mailbox"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:  # noqa: N802
        content = envelope.content if isinstance(envelope.content, bytes) else str(envelope.content).encode()
        parsed = message_from_bytes(content, policy=policy.default)
        assert isinstance(parsed, EmailMessage)
        self._server.messages.append(parsed)
        self._server.envelopes.append((str(envelope.mail_from), list(envelope.rcpt_tos)))
        if self._server.reply_delay:
            await asyncio.sleep(self._server.reply_delay)
        return "250 Message accepted for delivery"


def text_of(message: EmailMessage) -> str:
    part = message.get_body(preferencelist=("plain",))
    assert part is not None
    return str(part.get_content())
