"""Backups and restores: the manifest a backup folder carries, the workflows' contracts, the ``/api/system`` bodies."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from schemas.ids import EndpointsId

FORMAT_VERSION = 1
"""Bumped when the folder layout or the row serialisation changes; a restore refuses any other version."""

PLATFORM_SCOPE = "platform"
"""The manifest's ``scope`` of a backup of every company (``bas backup`` without ``--company``)."""

DEFAULT_STOP_GRACE_SECONDS = 30.0
"""How long a restore lets the workflows it cancelled finish before it terminates them."""

BACKUP_WORKFLOW_PREFIX = "backup/"
RESTORE_WORKFLOW_PREFIX = "restore/"


def backup_workflow_id(backup_id: str) -> str:
    return f"{BACKUP_WORKFLOW_PREFIX}{backup_id}"


def restore_workflow_id(restore_id: str) -> str:
    return f"{RESTORE_WORKFLOW_PREFIX}{restore_id}"


def human_size(size_bytes: int) -> str:
    """``1288490188`` -> ``"1.2 GB"`` (powers of 1024, one decimal above bytes)."""
    size = float(size_bytes)
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            break
        size /= 1024
    return f"{size_bytes} B" if unit == "B" else f"{size:.1f} {unit}"


# ---------------------------------------------------------------- the manifest (manifest.json)


class TableDigest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    rows: int = Field(ge=0)
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$", description="of the uncompressed canonical lines")


class BackupManifest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    format_version: int
    backup_id: str
    created_at: datetime
    """The instant of the snapshot (the start of its read transaction)."""
    scope: str
    """A company id, or ``platform``."""
    schema_revision: str
    """The Alembic revision the database was at."""
    tables: dict[str, TableDigest]

    @property
    def company_id(self) -> str | None:
        return None if self.scope == PLATFORM_SCOPE else self.scope

    @property
    def row_counts(self) -> dict[str, int]:
        return {name: digest.rows for name, digest in self.tables.items()}


# ---------------------------------------------------------------- workflow and activity contracts


class BackupInput(BaseModel):
    backup_id: str
    company_id: str | None
    """None backs up every company (only the command line does)."""
    requested_by: str | None = None


class BackupResult(BaseModel):
    backup_id: str
    company_id: str | None
    created_at: datetime
    size_bytes: int
    schema_revision: str
    tables: dict[str, int]
    """Rows per table."""


class RestoreInput(BaseModel):
    restore_id: str
    backup_id: str
    company_id: str | None
    """The scope the caller means to restore; a backup of another scope is refused."""
    requested_by: str | None = None
    requested_at: datetime
    """A restore that no worker picked up soon after this is refused rather than run unexpectedly later."""
    stop_grace_seconds: float = Field(DEFAULT_STOP_GRACE_SECONDS, ge=0)


class StopWorkflowsInput(BaseModel):
    company_id: str | None
    backup_id: str
    grace_seconds: float = Field(ge=0)


class StoppedWorkflows(BaseModel):
    cancelled: int
    """Running workflows of the scope asked to cancel (backups and restores are left alone)."""
    terminated: int
    """Of those, the ones still running after the grace period, terminated."""


class RestoreResult(BaseModel):
    restore_id: str
    backup_id: str
    company_id: str | None
    restored_at: datetime
    tables: dict[str, int]
    runs_stopped: int
    """``workflow_runs`` rows the backup had as pending/running, marked stopped (their workflows are gone)."""
    workflows: StoppedWorkflows | None = None
    """What was stopped in Temporal first; None when the restore ran without Temporal (``--no-temporal``)."""


class BackupOutcome(BaseModel):
    """What the backup workflow's last activity puts in the audit log."""

    result: BackupResult
    requested_by: str | None


class RestoreOutcome(BaseModel):
    """What the restore workflow's last activity puts in the audit log."""

    result: RestoreResult
    requested_by: str | None


# ---------------------------------------------------------------- /api/system bodies


class BackupCreated(BaseModel):
    """``POST /api/system/backup``."""

    success: bool = True
    message: str
    backup_id: EndpointsId
    created_at: datetime
    size: str = Field(description='human-readable, e.g. "1.2 MB"')


class RestoreRequest(BaseModel):
    """``POST /api/system/restore``."""

    model_config = ConfigDict(extra="forbid")

    backup_id: EndpointsId


class RestoreDone(BaseModel):
    """``POST /api/system/restore``'s answer."""

    success: bool = True
    message: str
    backup_id: EndpointsId
    restored_at: datetime


class BackupPublic(BaseModel):
    """One backup as ``GET /api/system/backups`` lists it."""

    model_config = ConfigDict(from_attributes=True)

    id: EndpointsId
    company_id: EndpointsId | None
    status: str = Field(description="running, completed or failed")
    created_at: datetime
    size_bytes: int
    size: str
    schema_revision: str | None
    tables: dict[str, int] = Field(description="rows per table")
    error: str | None
    created_by: EndpointsId | None
    restored_at: datetime | None
