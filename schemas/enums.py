"""Canonical vocabularies. Each surface may present a value in its own words (see api/*/presenters)."""

from enum import StrEnum


class Role(StrEnum):
    admin = "admin"
    manager = "manager"
    user = "user"
