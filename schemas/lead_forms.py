"""The public lead form (``POST /forms/{form_id}``): the fields it reads and its bounds."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

HONEYPOT_FIELD = "website"
"""A hidden input people never see and so leave empty; a bot filling every field fills it too."""
MAX_CUSTOM_FIELDS = 20
"""Fields other than the known ones, kept in the lead's ``custom_fields``."""
MAX_CUSTOM_VALUE = 1000
MAX_FIELD_NAME = 100
MAX_FORM_FIELDS = 50
"""Inputs in one post, known ones included; more is not a lead form."""
MAX_FORM_BYTES = 256 * 1024


class LeadFormFields(BaseModel):
    """What a form may post (``application/x-www-form-urlencoded`` or ``multipart/form-data``).

    Give ``name``, or ``first_name`` and/or ``last_name``, and an ``email`` or a ``phone``. Any other field goes
    into the lead's ``custom_fields`` (at most 20, 1000 characters each); files are refused.
    """

    model_config = ConfigDict(extra="allow")

    name: str | None = Field(None, description="the person's name (or send first_name / last_name)")
    first_name: str | None = None
    last_name: str | None = None
    email: str | None = Field(None, description="validated like any lead's email")
    phone: str | None = Field(None, description="international format, e.g. +14155550123")
    message: str | None = Field(None, description="kept as the lead's notes")
    company: str | None = Field(None, description="kept in custom_fields")
    website: str | None = Field(
        None, description="honeypot: render it as a hidden input and leave it empty; a filled one is dropped"
    )


KNOWN_FIELDS = frozenset(LeadFormFields.model_fields) - {"company"}
"""Fields with a column of their own (``company`` is a known name but is kept in ``custom_fields``)."""


class FormAccepted(BaseModel):
    """The answer to a JSON client; the same whether the lead was new, already known or dropped as spam."""

    success: bool = True
