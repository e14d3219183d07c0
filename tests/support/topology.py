"""The production topology on one machine: a Redis server, ``bas migrate``, several ``bas api`` and ``bas worker``
processes on one PostgreSQL database and one Temporal server, and two base URLs used in turn in front of the APIs.

Every process reads only the ``BAS_`` variables built here from one ``Settings`` (nothing leaks in from the shell),
logs to a file of its own, and is stopped, or SIGKILLed on purpose, by the test that started it.
"""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from itertools import cycle
from pathlib import Path
from types import TracebackType
from typing import Self

import httpx2
import redis

from core.config import Settings
from tests.support.faults import BAS, worker_environment
from tests.support.processes import free_port

# What the APIs and workers need beyond what ``worker_environment`` passes: the shared rate limits, the webhook
# relay and the loopback receiver deliveries may reach, and the one signing key every API must agree on.
_TOPOLOGY_SETTINGS = (
    "rate_limit_storage",
    "rate_limit_per_ip_minute",
    "rate_limit_per_user_hour",
    "webhook_allowed_networks",
    "webhook_relay_interval_seconds",
    "jwt_secret",
)


def topology_environment(settings: Settings, temporal_address: str) -> dict[str, str]:
    """The variables every ``bas`` process of the topology gets: one database, one Temporal, one Redis."""
    env = worker_environment(settings, temporal_address)
    for name in _TOPOLOGY_SETTINGS:
        value = getattr(settings, name)
        if hasattr(value, "get_secret_value"):
            value = value.get_secret_value()
        env[f"BAS_{name.upper()}"] = json.dumps(value) if isinstance(value, list) else str(value)
    return env


class RedisServer:
    """``redis-server`` on a free loopback port, in memory only (no RDB snapshot, no append-only file)."""

    def __init__(self, folder: Path) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            raise RuntimeError("redis-server not found: `make redis` (apt-get install -y redis-server)")
        self.binary = binary
        self.folder = folder
        self.port = free_port()
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}"

    def start(self) -> Self:
        self.folder.mkdir(parents=True, exist_ok=True)
        command = [self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
        with (self.folder / "redis.log").open("wb") as log:
            self._process = subprocess.Popen([*command, "--dir", str(self.folder)], stdout=log, stderr=log)
        deadline = time.monotonic() + 15
        client = redis.Redis(port=self.port, socket_connect_timeout=1)
        while True:
            try:
                client.ping()
                break
            except redis.ConnectionError:
                if self._process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(
                        f"redis-server did not start: {(self.folder / 'redis.log').read_text()}"
                    ) from None
                time.sleep(0.05)
            finally:
                client.close()
        return self

    def stored_keys(self) -> list[str]:
        """Every key the server holds (the rate limits' counters are ``LIMITS:...``)."""
        client = redis.Redis(port=self.port, decode_responses=True)
        try:
            return [str(key) for key in client.keys("*")]
        finally:
            client.close()

    def stop(self) -> None:
        if self._process is not None and self._process.poll() is None:
            self._process.terminate()
            self._process.wait(timeout=10)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.stop()


class BasProcesses:
    """``bas`` subcommands as real processes, each logging to ``{logs}/{name}.log``."""

    def __init__(self, env: dict[str, str], logs: Path) -> None:
        self.env = env
        self.logs = logs
        logs.mkdir(parents=True, exist_ok=True)
        self.running: dict[str, subprocess.Popen[bytes]] = {}

    def start(self, name: str, *arguments: str) -> subprocess.Popen[bytes]:
        with (self.logs / f"{name}.log").open("wb") as log:
            process = subprocess.Popen([str(BAS), *arguments], env=self.env, stdout=log, stderr=subprocess.STDOUT)
        self.running[name] = process
        return process

    def run(self, name: str, *arguments: str, timeout: float = 120) -> None:
        """A command that must finish (``bas migrate``) and succeed."""
        process = self.start(name, *arguments)
        assert process.wait(timeout=timeout) == 0, self.output(name)
        del self.running[name]  # done: not one of the processes that must stay up

    def kill(self, name: str) -> None:
        """SIGKILL: no chance to finish an activity, answer a request or tell Temporal anything."""
        process = self.running[name]
        process.send_signal(signal.SIGKILL)
        assert process.wait(timeout=10) == -signal.SIGKILL

    def assert_alive(self, *names: str) -> None:
        """The named processes (all of them if none is named) have not exited."""
        for name in names or tuple(self.running):
            assert self.running[name].poll() is None, f"{name} exited:\n{self.output(name)[-5000:]}"

    def output(self, name: str) -> str:
        return (self.logs / f"{name}.log").read_text(errors="replace")

    def stop_all(self) -> None:
        """SIGTERM everything still running (workers finish their activities), SIGKILL what outlives 30 s."""
        alive = [process for process in self.running.values() if process.poll() is None]
        for process in alive:
            process.send_signal(signal.SIGTERM)
        for process in alive:
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def wait_healthy(base_url: str, processes: BasProcesses, name: str, timeout: float = 90) -> None:
    """Until ``/api/system/health`` says healthy: database up, Temporal connected, every task queue polled."""
    deadline = time.monotonic() + timeout
    last: object = None
    while time.monotonic() < deadline:
        processes.assert_alive()  # a worker that died at startup fails here, with its traceback
        try:
            report = httpx2.get(f"{base_url}/api/system/health", timeout=3).json()
            if report["status"] == "healthy":
                return
            last = report
        except httpx2.HTTPError as exc:
            last = exc
        time.sleep(0.25)
    raise AssertionError(f"{name} not healthy after {timeout:.0f}s: {last}\n{processes.output(name)[-5000:]}")


class RoundRobin:
    """API base URLs used in turn, as a round-robin load balancer would spread the calls over the processes."""

    def __init__(self, clients: list[httpx2.AsyncClient]) -> None:
        self.clients = clients
        self._turns: Iterator[httpx2.AsyncClient] = cycle(clients)

    @classmethod
    def over(cls, base_urls: list[str], timeout: float = 60) -> RoundRobin:
        return cls([httpx2.AsyncClient(base_url=url, timeout=timeout) for url in base_urls])

    def again(self) -> RoundRobin:
        """A turn of its own over the same connections: one caller's calls alternate, whatever others do."""
        return RoundRobin(self.clients)

    def next(self) -> httpx2.AsyncClient:
        return next(self._turns)

    async def aclose(self) -> None:
        for client in self.clients:
            await client.aclose()
