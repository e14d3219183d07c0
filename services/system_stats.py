"""``GET /api/system/stats``: the caller's company in numbers, its API calls, and the installation's storage."""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path

from sqlalchemy import func, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from core.config import Settings
from db.models import Content, Customer, Lead, Referral, Review, User
from schemas.system import ApiCallStats, StorageStats, SystemStats
from services.api_usage import ApiUsage

BACKUPS_FOLDER = "backups"
SIZE_UNITS = ("B", "KB", "MB", "GB", "TB", "PB")
STEP = 1024
COUNTED = {
    "users": User.company_id,
    "leads": Lead.company_id,
    "customers": Customer.company_id,
    "reviews": Review.company_id,
    "referrals": Referral.company_id,
    "content": Content.company_id,
}
"""Each figure and the column that says whose a row is."""


def human_size(size: int) -> str:
    """``1288490189`` -> ``1.2 GB`` (binary steps of 1024, one decimal, none when it is .0)."""
    value = float(size)
    unit = SIZE_UNITS[0]
    for unit in SIZE_UNITS:
        if value < STEP or unit == SIZE_UNITS[-1]:
            break
        value /= STEP
    return f"{value:.1f}".removesuffix(".0") + f" {unit}"


def _folder_bytes(folder: Path) -> int:
    if not folder.is_dir():
        return 0
    return sum(path.stat().st_size for path in folder.rglob("*") if path.is_file())


def _sqlite_bytes(database: str) -> int:
    """The database file and its write-ahead log (committed pages may live in the WAL until a checkpoint)."""
    main = Path(database)
    return sum(path.stat().st_size for path in (main, Path(f"{database}-wal")) if path.is_file())


def _disk_bytes(folder: Path) -> int:
    """Capacity of the disk the folder is (or will be) on: the nearest existing ancestor answers for it."""
    existing = folder.resolve()
    while not existing.exists():
        existing = existing.parent
    return shutil.disk_usage(existing).total


async def _database_bytes(session: AsyncSession, settings: Settings) -> int:
    if session.get_bind().dialect.name == "postgresql":
        size = await session.scalar(text("SELECT pg_database_size(current_database())"))
        return int(size or 0)
    database = make_url(settings.sqlalchemy_url).database
    if not database or database == ":memory:":
        return 0
    return await asyncio.to_thread(_sqlite_bytes, database)


async def _storage(session: AsyncSession, settings: Settings) -> StorageStats:
    database = await _database_bytes(session, settings)
    backups = await asyncio.to_thread(_folder_bytes, settings.data_dir / BACKUPS_FOLDER)
    total = await asyncio.to_thread(_disk_bytes, settings.data_dir)
    used = database + backups
    return StorageStats(used=human_size(used), total=human_size(total), used_bytes=used, total_bytes=total)


async def system_stats(
    session: AsyncSession,
    sessions: async_sessionmaker[AsyncSession],
    settings: Settings,
    usage: ApiUsage,
    actor: User,
) -> SystemStats:
    """Counts for the caller's company (one query), its API calls (stored + not yet flushed) and storage."""
    counts = (
        await session.execute(
            select(
                *(
                    select(func.count()).where(owner == actor.company_id).scalar_subquery().label(name)
                    for name, owner in COUNTED.items()
                )
            )
        )
    ).one()
    calls = await usage.calls(sessions, actor.company_id)
    return SystemStats(
        **{name: int(value) for name, value in zip(COUNTED, counts, strict=True)},
        companies=1,
        api_calls=ApiCallStats(total=calls.total, last_24h=calls.last_24h),
        storage=await _storage(session, settings),
    )
