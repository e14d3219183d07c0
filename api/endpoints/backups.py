"""``/api/system/backup``, ``/api/system/restore`` and ``/api/system/backups`` (spec/api-v1-workflow-endpoints.md:
Backup System, Restore System): the admin's company, through ``BackupWorkflow`` and ``RestoreWorkflow``.
"""

from __future__ import annotations

from fastapi import APIRouter

from api.deps import AdminUser, SessionDep, SettingsDep, TemporalDep
from api.pagination import EndpointsPage, items_page
from db.models import Backup
from schemas.backups import BackupCreated, BackupManifest, BackupPublic, RestoreDone, RestoreRequest, human_size
from schemas.common import ItemsPage
from schemas.ids import EndpointsId
from services import backups

router = APIRouter(prefix="/system", tags=["system"])

_FAILURES: dict[int | str, dict[str, str]] = {
    500: {"description": "The work failed (the detail says why)"},
    503: {"description": "Temporal or a worker is not available, or the work did not finish within 60 s"},
}
_RESTORE_REFUSALS: dict[int | str, dict[str, str]] = {
    404: {"description": "No such backup of your company"},
    409: {"description": "The backup cannot be restored: damaged, of another schema revision, or not completed"},
}


def _public(row: Backup) -> BackupPublic:
    tables = BackupManifest.model_validate(row.manifest).row_counts if row.status == "completed" else {}
    return BackupPublic(
        id=row.id,
        company_id=row.company_id,
        status=row.status,
        created_at=row.created_at,
        size_bytes=row.size_bytes,
        size=human_size(row.size_bytes),
        schema_revision=row.schema_revision,
        tables=tables,
        error=row.error,
        created_by=row.created_by,
        restored_at=row.restored_at,
    )


@router.post("/backup", responses=_FAILURES)
async def create_backup(
    admin: AdminUser, session: SessionDep, client: TemporalDep, settings: SettingsDep
) -> BackupCreated:
    """Back up your company's data: one consistent snapshot, written by a worker (admins only)."""
    return await backups.create(session, client, settings, admin)


@router.post("/restore", responses={**_RESTORE_REFUSALS, **_FAILURES})
async def restore_backup(
    body: RestoreRequest, admin: AdminUser, session: SessionDep, client: TemporalDep, settings: SettingsDep
) -> RestoreDone:
    """Replace your company's data with a backup's, after checking it; running workflows are stopped (admins only)."""
    return await backups.restore(session, client, settings, admin, body.backup_id)


@router.get("/backups")
async def list_backups(admin: AdminUser, session: SessionDep, page: EndpointsPage) -> ItemsPage[BackupPublic]:
    """Your company's backups, newest first (admins only)."""
    return items_page(await backups.list_backups(session, admin, page), _public)


@router.get("/backups/{backup_id}", responses={404: {"description": "No such backup of your company"}})
async def read_backup(backup_id: EndpointsId, admin: AdminUser, session: SessionDep) -> BackupPublic:
    """One of your company's backups, with its rows per table (admins only)."""
    return _public(await backups.get(session, admin, backup_id))
