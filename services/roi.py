"""The assumptions behind every ROI estimate: server defaults, overridden per company by ``settings.roi``."""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from core.config import Settings
from db.models import Company
from schemas.dashboard import RoiAssumptions

log = logging.getLogger(__name__)

SETTINGS_KEY = "roi"
MINUTES_PER_HOUR = 60


async def assumptions(session: AsyncSession, company_id: str, settings: Settings) -> RoiAssumptions:
    """``company.settings["roi"]`` {hourly_rate, minutes_per_message, minutes_per_content}, each falling back to
    the server's ``BAS_ROI_*`` default when the company does not set it (or sets something that is not a
    non-negative number, which is logged)."""
    company = await session.get(Company, company_id)
    stored: Any = (company.settings if company else {}).get(SETTINGS_KEY) or {}
    defaults = {
        "hourly_rate": settings.roi_hourly_rate,
        "minutes_per_message": settings.roi_minutes_per_message,
        "minutes_per_content": settings.roi_minutes_per_content,
    }
    chosen = dict(defaults)
    if isinstance(stored, dict):
        for name in defaults:
            value = stored.get(name)
            if isinstance(value, int | float) and not isinstance(value, bool) and value >= 0:
                chosen[name] = float(value)
            elif value is not None:
                log.warning(
                    "company %s: settings.roi.%s=%r is not a number >= 0; using the default", company_id, name, value
                )
    else:
        log.warning("company %s: settings.roi is not an object; using the defaults", company_id)
    return RoiAssumptions(**chosen)


def hours_saved(roi: RoiAssumptions, messages: int, content_items: int) -> float:
    """Unrounded, so that the time value is worked out from the exact figure."""
    return (messages * roi.minutes_per_message + content_items * roi.minutes_per_content) / MINUTES_PER_HOUR
