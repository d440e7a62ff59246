"""The navigation bar: each area adds its own entries, shown to the roles that may open them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class NavItem:
    """One link in the navigation bar."""

    endpoint: str
    label: Any  # a lazy gettext string, translated when the page renders
    roles: frozenset[str]
    order: int


NAV: list[NavItem] = []


def add_nav(endpoint: str, label: Any, roles: tuple[str, ...], order: int = 50) -> None:
    """Register a navigation entry (called at import time by each dashboard module)."""
    if any(item.endpoint == endpoint for item in NAV):
        return
    NAV.append(NavItem(endpoint, label, frozenset(roles), order))
    NAV.sort(key=lambda item: (item.order, item.endpoint))


def nav_for(role: str | None) -> list[NavItem]:
    """Return the entries a role sees, in order."""
    if role is None:
        return []
    return [item for item in NAV if role in item.roles]
