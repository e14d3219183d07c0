"""What each role sees in the console's navigation; the pages check the same roles again (services do too)."""

from __future__ import annotations

from typing import Any

from db.models import User
from schemas.enums import Role

_EVERYONE = [
    ("/", "Dashboard"),
    ("/leads", "Leads"),
    ("/sequences", "Automations"),
    ("/customers", "Customers"),
    ("/content", "Content"),
]
_ADMIN = [("/settings", "Settings")]


def nav_items(user: User) -> list[tuple[str, str]]:
    return _EVERYONE + (_ADMIN if user.role == Role.admin else [])


def page(user: User, active: str, title: str, **values: Any) -> dict[str, Any]:
    """The context every signed-in page starts from."""
    return {"user": user, "nav_items": nav_items(user), "active": active, "title": title, **values}
