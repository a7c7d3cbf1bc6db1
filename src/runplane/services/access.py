"""Who may see what: owners see their resources, admins see everyone's."""

from __future__ import annotations

from sqlalchemy import ColumnElement, Table, true

from runplane.services.users import Principal


def can_see(principal: Principal, owner_id: str) -> bool:
    """Another user's resource must look exactly like a missing one (404), never leak."""
    return principal.is_admin or principal.user_id == owner_id


def owned_by(principal: Principal, table: Table) -> ColumnElement[bool]:
    """SQL filter for the resources ``principal`` may list."""
    if principal.is_admin:
        return true()
    return table.c.user_id == principal.user_id
