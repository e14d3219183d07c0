"""Lead nurturing vocabulary. Canonical values are stored; each surface may show its own words."""

from __future__ import annotations

from enum import StrEnum


class LeadStatus(StrEnum):
    new = "new"
    contacted = "contacted"
    engaged = "engaged"
    qualified = "qualified"
    converted = "converted"
    lost = "lost"


class LeadSource(StrEnum):
    """Union of both documents' sources. ``/api`` says ``manual_entry`` and ``/v1`` says ``manual`` for the
    same thing (stored as ``manual``); ``ad_campaign`` (``/api``) and ``ad`` (``/v1``) are stored as ``ad``."""

    website_form = "website_form"
    landing_page = "landing_page"
    ad = "ad"
    manual = "manual"
    referral = "referral"
    direct = "direct"
    crm = "crm"
    csv_import = "import"
    other = "other"


# Words a surface may use for a canonical source, in both directions.
ENDPOINTS_SOURCE_WORDS = {LeadSource.manual: "manual_entry", LeadSource.ad: "ad_campaign"}
SOURCE_ALIASES = {"manual_entry": LeadSource.manual, "ad_campaign": LeadSource.ad}


class Channel(StrEnum):
    email = "email"
    sms = "sms"


class InteractionType(StrEnum):
    email = "email"
    sms = "sms"
    call = "call"
    meeting = "meeting"
    note = "note"


class Direction(StrEnum):
    inbound = "inbound"
    outbound = "outbound"
