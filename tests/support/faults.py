"""The parts a fault test breaks on purpose: ``bas worker`` processes it kills, an SMTP server that holds its
answers or goes away, a Temporal dev server on a file it stops and restarts, a PostgreSQL it stops and starts.

Everything listens on 127.0.0.1 and is started by the test that breaks it, so no other test ever notices.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
from collections import Counter
from collections.abc import Awaitable, Callable
from email.message import EmailMessage
from email.utils import parseaddr
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session
from starlette.requests import Request
from starlette.responses import JSONResponse

from cli.devserver import start_dev_server, stop_dev_server
from core.config import Settings
from tests.support.openai_server import OpenAIServer
from tests.support.postgres import PostgresServer
from tests.support.processes import free_port
from tests.support.smtp_server import SmtpServer, _Handler

BAS = Path(sys.executable).parent / "bas"

# The settings a worker process needs from the test's own, passed as the ``BAS_`` variables it reads.
_WORKER_SETTINGS = (
    "task_queue_prefix",
    "smtp_host",
    "smtp_port",
    "smtp_starttls",
    "smtp_timeout_seconds",
    "email_from",
    "sms_api_url",
    "sms_account_sid",
    "sms_auth_token",
    "sms_from",
    "sms_timeout_seconds",
    "llm_base_url",
    "llm_model",
    "llm_timeout_seconds",
    "public_base_url",
)


def worker_environment(settings: Settings, temporal_address: str) -> dict[str, str]:
    """The test's settings as a worker process reads them; nothing ``BAS_`` from the shell leaks in."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("BAS_")}
    env.update(
        BAS_ENVIRONMENT="test",
        BAS_DATA_DIR=str(settings.data_dir),
        BAS_DATABASE_URL=settings.sqlalchemy_url,
        BAS_TEMPORAL_ADDRESS=temporal_address,
        BAS_LOG_LEVEL="INFO",
    )
    for name in _WORKER_SETTINGS:
        value = getattr(settings, name)
        text = value.get_secret_value() if hasattr(value, "get_secret_value") else value
        env[f"BAS_{name.upper()}"] = str(text).lower() if isinstance(text, bool) else str(text)
    return env


class WorkerProcesses:
    """``bas worker`` processes on the test's database, Temporal and task queues, each logging to its own file."""

    def __init__(self, settings: Settings, temporal_address: str, logs: Path) -> None:
        self._env = worker_environment(settings, temporal_address)
        self._logs = logs
        logs.mkdir(parents=True, exist_ok=True)
        self.processes: list[subprocess.Popen[bytes]] = []

    def start(self) -> subprocess.Popen[bytes]:
        with (self._logs / f"worker-{len(self.processes)}.log").open("wb") as log:
            process = subprocess.Popen([str(BAS), "worker"], env=self._env, stdout=log, stderr=subprocess.STDOUT)
        self.processes.append(process)
        return process

    def kill(self, process: subprocess.Popen[bytes]) -> None:
        """SIGKILL: no chance to finish an activity, record an answer or tell Temporal anything."""
        process.send_signal(signal.SIGKILL)
        assert process.wait(timeout=10) == -signal.SIGKILL

    def output(self) -> str:
        return "\n".join(path.read_text(errors="replace") for path in sorted(self._logs.glob("worker-*.log")))

    def assert_running(self, process: subprocess.Popen[bytes]) -> None:
        assert process.poll() is None, self.output()[-5000:]

    def stop_all(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in self.processes:
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


class FaultySmtp(SmtpServer):
    """An SMTP server a test can break: hold a recipient's answer before or after the message arrives, or go
    away entirely (connections refused) and come back on the same port.

    ``hold_before_data``: the RCPT answer for these addresses waits, so the sender is stuck with nothing sent.
    ``hold_after_data``: the message is kept, its 250 waits, so the sender cannot know it was accepted.
    """

    def __init__(self) -> None:
        super().__init__()
        self.hold_before_data: set[str] = set()
        self.hold_after_data: set[str] = set()
        self.held: list[str] = []
        """The addresses whose answer is being held right now."""
        self._handler = _HoldingHandler(self)
        self._controller = Controller(self._handler, hostname=self.host, port=self.port)
        self.is_up = False

    def start(self) -> FaultySmtp:
        super().start()
        self.is_up = True
        return self

    def stop(self) -> None:
        if self.is_up:
            self.is_up = False
            super().stop()

    def down(self) -> None:
        """Stop listening: every connection is refused until ``up``."""
        self.stop()

    def up(self) -> None:
        # A stopped aiosmtpd controller has closed its loop: a new one takes the same port.
        self._controller = Controller(self._handler, hostname=self.host, port=self.port)
        self.start()

    def release(self) -> None:
        self.hold_before_data.clear()
        self.hold_after_data.clear()

    def message_ids(self) -> Counter[str]:
        """How many copies of each Message-ID arrived."""
        return Counter(str(message["Message-ID"]) for message in self.messages)

    def ids_to(self, address: str) -> set[str]:
        return {str(message["Message-ID"]) for message in self.sent_to(address)}

    def recipients(self) -> Counter[str]:
        """Distinct messages (by Message-ID) per recipient address."""
        distinct = {str(message["Message-ID"]): message for message in self.messages}
        return Counter(_address(message) for message in distinct.values())


def _address(message: EmailMessage) -> str:
    return parseaddr(str(message["To"]))[1].lower()


class _HoldingHandler(_Handler):
    def __init__(self, server: FaultySmtp) -> None:
        super().__init__(server)
        self._faulty = server

    async def _hold_while(self, address: str, held: set[str]) -> None:
        if address not in held:
            return
        self._faulty.held.append(address)
        try:
            while address in held:
                await asyncio.sleep(0.05)
        finally:
            self._faulty.held.remove(address)

    async def handle_RCPT(  # noqa: N802 (aiosmtpd's hook name)
        self, server: SMTP, session: Session, envelope: Envelope, address: str, rcpt_options: list[str]
    ) -> str:
        await self._hold_while(address.lower(), self._faulty.hold_before_data)
        return await super().handle_RCPT(server, session, envelope, address, rcpt_options)

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:  # noqa: N802
        answer = await super().handle_DATA(server, session, envelope)
        for address in envelope.rcpt_tos:
            await self._hold_while(address.lower(), self._faulty.hold_after_data)
        return answer


class FaultyLLM(OpenAIServer):
    """An OpenAI-compatible server that may be down (its port chosen, nothing listening until ``start``) or slow:
    the next ``slow_requests`` calls wait ``delay_seconds`` before they answer. ``arrivals`` counts every call,
    also those whose caller gave up waiting (``requests`` keeps only the answered ones)."""

    def __init__(self) -> None:
        super().__init__()
        self.arrivals = 0
        self.slow_requests = 0
        self.delay_seconds = 0.0
        self.is_up = False

    def start(self) -> None:
        super().start()
        self.is_up = True

    def stop(self) -> None:
        if self.is_up:
            self.is_up = False
            super().stop()

    async def _complete(self, request: Request) -> JSONResponse:
        self.arrivals += 1
        if self.slow_requests > 0:
            self.slow_requests -= 1
            await asyncio.sleep(self.delay_seconds)
        return await super()._complete(request)


class FileTemporal:
    """``temporal server start-dev`` on a file of its own, on its own ports: stopped and started again on the same
    file, it keeps every workflow, timer and task."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.port = free_port()
        self.ui_port = free_port()
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> None:
        self._process = start_dev_server(self.folder, self.port, self.ui_port, self.folder / "temporal.log")

    def stop(self) -> None:
        if self._process is not None:
            stop_dev_server(self._process)
            self._process = None


class RestartablePostgres(PostgresServer):
    """A PostgreSQL of one test's own, which it may stop (connections refused) and start again on its data."""

    def _options(self) -> str:
        return f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off -c full_page_writes=off"

    def stop(self) -> None:
        """Also when the test left it halted."""
        with contextlib.suppress(subprocess.CalledProcessError):
            super().stop()

    def halt(self) -> None:
        """Stop now, dropping every connection (``-m immediate``, as a crash or a failover would)."""
        self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "stop")

    def resume(self) -> None:
        self._run(
            str(self.bin / "pg_ctl"),
            "-D",
            str(self.data),
            "-o",
            self._options(),
            "-l",
            str(self.root / "log"),
            "-w",
            "start",
        )


async def eventually(check: Callable[[], Awaitable[Any]], seconds: float, every: float = 0.25) -> Any:
    """Poll ``check`` until it returns something truthy (and return it), for at most ``seconds``."""
    async with asyncio.timeout(seconds):
        while not (result := await check()):
            await asyncio.sleep(every)
    return result
