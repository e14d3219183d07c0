"""Process settings: every knob comes from an environment variable prefixed ``BAS_``."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from schemas.temporal import QueueKind, task_queue

# The one secret that ships in the code. It is only accepted in development so that a
# production deployment can never sign tokens with a key anyone can read on GitHub.
DEV_JWT_SECRET = "dev-insecure-jwt-secret-change-me-0123456789"  # noqa: S105 (refused outside development)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="BAS_", env_file=".env", extra="ignore")

    environment: Literal["development", "test", "production"] = "development"
    data_dir: Path = Path("data")
    database_url: str = ""
    """SQLAlchemy URL. Empty means a SQLite file under ``data_dir``."""

    # Security
    jwt_secret: SecretStr = SecretStr(DEV_JWT_SECRET)
    access_token_minutes: int = 30
    refresh_token_days: int = 14

    # HTTP
    cors_origins: list[str] = ["*"]
    rate_limit_per_ip_minute: int = 100
    rate_limit_per_user_hour: int = 1000
    rate_limit_storage: str = "memory://"
    """``memory://`` for one API process, ``redis://host:6379`` when several replicas share limits."""
    public_base_url: str = "http://localhost:8000"
    """Where people reach the API (unsubscribe links in emails are built on it)."""
    max_body_bytes: int = Field(1024 * 1024, ge=1024)
    """The largest request body any route accepts (413 above it), whether it is sent with a Content-Length or
    chunked. Free-form JSON fields have their own, smaller cap (64 KiB, 20 levels deep) in the schemas."""
    max_upload_bytes: int = Field(10 * 1024 * 1024, ge=1024)
    """The larger body cap of the upload routes: the console's CSV lead import and inbound email (which may
    carry attachments)."""

    # Temporal
    temporal_address: str = "localhost:7233"
    temporal_namespace: str = "default"
    temporal_tls: bool = False
    temporal_tls_cert: Path | None = None
    temporal_tls_key: Path | None = None
    temporal_api_key: SecretStr | None = None
    temporal_ui_url: str = "http://localhost:8233"
    task_queue_prefix: str = "bas"
    """Task queues are ``{prefix}-main`` and ``{prefix}-llm``; a different prefix isolates a deployment."""

    # Providers: unset means "record and log, do not send".
    smtp_host: str = ""
    smtp_port: int = 587
    smtp_username: str = ""
    smtp_password: SecretStr = SecretStr("")
    smtp_starttls: bool = True
    smtp_timeout_seconds: float = 20.0
    email_from: str = "Business Automation <no-reply@localhost>"
    sms_api_url: str = ""
    """Twilio-compatible base URL, e.g. ``https://api.twilio.com/2010-04-01``."""
    sms_account_sid: str = ""
    sms_auth_token: SecretStr = SecretStr("")
    sms_from: str = ""
    sms_timeout_seconds: float = 20.0
    llm_base_url: str = ""
    """OpenAI-compatible base URL. Empty uses the offline writer."""
    llm_api_key: SecretStr = SecretStr("")
    llm_model: str = "gpt-4o-mini"
    llm_timeout_seconds: float = 60.0
    llm_max_concurrent: int = 4
    """Concurrent LLM calls per worker; LLM activities run on their own task queue."""
    content_generation_wait_seconds: float = 20.0
    """How long ``POST /v1/content/generate`` waits for the draft before answering 202 with the id to poll."""
    publish_timeout_seconds: float = 30.0
    """Per request to a publishing platform (WordPress, a webhook); no answer by then is an unknown outcome."""
    content_publish_wait_seconds: float = 10.0
    """How long ``POST /v1/content/{id}/publish`` waits for the outcome before answering 202 with the publication."""
    idempotency_retention_hours: float = Field(72.0, gt=0)
    """Stored ``Idempotency-Key`` responses are deleted after this (by the daily housekeeping schedule)."""
    event_retention_days: float = Field(30.0, gt=0)
    """Domain events the outbox relay has dispatched are deleted after this, with their webhook delivery log
    (by the daily housekeeping schedule); an event with a delivery still being retried is kept."""

    webhook_timeout_seconds: float = Field(10.0, gt=0)
    """Per delivery attempt; a receiver that has not answered by then counts as a failed attempt."""
    webhook_retry_hours: float = Field(24.0, gt=0)
    """How long a delivery is retried (exponential backoff) before it is given up."""
    webhook_first_retry_seconds: float = Field(30.0, gt=0)
    """The first backoff; each later one doubles, up to an hour."""
    webhook_disable_after_failures: int = Field(5, ge=1)
    """Deliveries given up in a row (with no success between) after which the webhook is disabled."""
    webhook_allowed_networks: list[str] = []
    """CIDRs a webhook may target although private, loopback or link-local (e.g. ``["127.0.0.0/8"]``)."""
    webhook_relay_interval_seconds: float = Field(2.0, gt=0)
    """How often each API process's outbox relay looks for new domain events to deliver to webhooks."""
    form_rate_limit_per_minute: int = Field(10, ge=1)
    """Posts per minute from one address to one public lead form."""
    roi_hourly_rate: float = Field(50.0, ge=0)
    """Default ROI assumption: what an hour of staff time is worth (a company's ``settings.roi`` overrides)."""
    roi_minutes_per_message: float = Field(5.0, ge=0)
    """Default ROI assumption: staff minutes one automated message saves."""
    roi_minutes_per_content: float = Field(60.0, ge=0)
    """Default ROI assumption: staff minutes one generated content piece saves."""

    newsletter_concurrency: int = Field(8, ge=1)
    """Recipients of one newsletter batch sent at once, each over an SMTP session kept open for the batch. A
    cancel stops new sends at once and waits for at most this many in flight to settle their delivery rows."""

    worker_max_cached_workflows: int = Field(500, ge=0)
    """Workflows each worker keeps in memory between their tasks (Temporal's sticky cache); an evicted one that
    wakes up is replayed from its history. Bounds a worker's memory however many sequences are asleep."""

    log_level: str = "INFO"

    @model_validator(mode="after")
    def _refuse_dev_secret_outside_development(self) -> Settings:
        secret = self.jwt_secret.get_secret_value()
        if self.environment == "production" and (secret == DEV_JWT_SECRET or len(secret) < 32):
            raise ValueError(
                "BAS_JWT_SECRET must be set to a random value of at least 32 characters when BAS_ENVIRONMENT=production"
            )
        return self

    def task_queue(self, kind: QueueKind) -> str:
        return task_queue(self.task_queue_prefix, kind)

    @property
    def sqlalchemy_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'bas.db').resolve()}"

    @property
    def async_database_url(self) -> str:
        """The same database through an async driver (aiosqlite / psycopg async)."""
        url = self.sqlalchemy_url
        if url.startswith("sqlite:"):
            return "sqlite+aiosqlite:" + url.removeprefix("sqlite:")
        if url.startswith(("postgresql:", "postgres:")):
            return "postgresql+psycopg:" + url.split(":", 1)[1]
        return url

    @property
    def sync_database_url(self) -> str:
        """The same database through a sync driver, for Alembic."""
        url = self.sqlalchemy_url
        if url.startswith(("postgresql:", "postgres:")):
            return "postgresql+psycopg:" + url.split(":", 1)[1]
        return url.replace("+aiosqlite", "")


@lru_cache
def get_settings() -> Settings:
    return Settings()
