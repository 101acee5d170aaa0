"""Who may see and do what in provisioning; every query goes through these filters.

- Officials see units, venues and accounts of their jurisdiction (a node of the admin-unit
  tree and everything below it): the city all of them, a district its communes, a
  commune its own.
- A unit administrator and gate staff see their own unit only (the unit of the token),
  whatever their jurisdiction says.
- Issuing, resetting and disabling unit administrators: the city DIC, and the district
  focal point within its district (circular 1.3 and the issue's "reset by the city or
  the district").
- Venues (rename, add, disable, rotate) and gate staff: the unit administrator for its
  unit, and the city DIC or the district focal point within their jurisdiction.
"""
from __future__ import annotations

from uuid import UUID

from sqlalchemy import ColumnElement, false

from libs.common.auth import UNIT_ROLES, Principal, Role, within

ISSUERS = (Role.CITY_DIC,)
BATCH_VIEWERS = (Role.CITY_DIC, Role.DISTRICT_FOCAL)
ACCOUNT_MANAGERS = (Role.CITY_DIC, Role.DISTRICT_FOCAL)
VENUE_MANAGERS = (Role.CITY_DIC, Role.DISTRICT_FOCAL, Role.UNIT_ADMIN)
STAFF_MANAGERS = (Role.CITY_DIC, Role.DISTRICT_FOCAL, Role.UNIT_ADMIN)


def own_unit(principal: Principal) -> UUID | None:
    if principal.role in UNIT_ROLES and principal.unit_id:
        try:
            return UUID(principal.unit_id)
        except ValueError:
            return None
    return None


def scope(principal: Principal, unit_column: ColumnElement, path_column: ColumnElement) -> ColumnElement[bool]:
    """SQL filter of the rows (units, venues, accounts) the principal may see."""
    if principal.role in UNIT_ROLES:
        unit = own_unit(principal)
        return unit_column == unit if unit is not None else false()
    return within(path_column, principal.jurisdiction)


def may_see(principal: Principal, unit_id: UUID | None, path: str) -> bool:
    if principal.role in UNIT_ROLES:
        return unit_id is not None and own_unit(principal) == unit_id
    return principal.covers(path)


def may_manage_venues(principal: Principal, unit_id: UUID, path: str) -> bool:
    return principal.role in VENUE_MANAGERS and may_see(principal, unit_id, path)


def may_manage_staff(principal: Principal, unit_id: UUID, path: str) -> bool:
    return principal.role in STAFF_MANAGERS and may_see(principal, unit_id, path)


def may_manage_account(principal: Principal, role: str, unit_id: UUID | None, path: str) -> bool:
    """Reset or disable the account of ``role`` at ``path`` (of unit ``unit_id``)."""
    if role == Role.GATE_STAFF and unit_id is not None:
        return may_manage_staff(principal, unit_id, path)
    if role == Role.UNIT_ADMIN:
        return principal.role in ACCOUNT_MANAGERS and principal.covers(path)
    return False
