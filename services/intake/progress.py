"""Progress against the deadline, per office that receives registrations.

For a district: one row for the district's own (district-level bodies) and one per
commune; for the city: one per district; for a commune: its own row. Counted in the
intake database, filtered by the caller's jurisdiction.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime

from sqlalchemy import case, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from libs.common.adminunits import AdminTree
from libs.common.auth import Principal, within

from .models import Registration
from .routing import ACCEPTED, DUPLICATE, EXEMPT, RETURNED, SUBMITTED
from .text import LOCAL_TZ, as_utc, now_utc

COUNTS = ("registered", "pending", "reviewed", "accepted", "returned", "duplicate", "exempt", "sent", "forwarded",
          "late")


@dataclass
class ProgressRow:
    path: str
    name: str
    level: str           # district (its own queue), commune, area (a district seen from the city)
    registered: int = 0
    pending: int = 0
    reviewed: int = 0
    accepted: int = 0
    returned: int = 0
    duplicate: int = 0
    exempt: int = 0
    sent: int = 0
    forwarded: int = 0
    late: int = 0

    @property
    def reviewed_percent(self) -> int:
        return round(100 * self.reviewed / self.registered) if self.registered else 0

    def add(self, other: ProgressRow) -> None:
        for name in COUNTS:
            setattr(self, name, getattr(self, name) + getattr(other, name))


@dataclass
class Progress:
    deadline: date | None
    days_left: int | None
    rows: list[ProgressRow] = field(default_factory=list)
    total: ProgressRow | None = None


def _sum(condition) -> object:  # noqa: ANN001
    return func.sum(case((condition, 1), else_=0))


async def progress(session: AsyncSession, tree: AdminTree, principal: Principal, *, deadline: date | None,
                   now: datetime | None = None) -> Progress:
    node = tree.get(principal.jurisdiction)
    today = as_utc(now or now_utc()).astimezone(LOCAL_TZ).date()
    result = Progress(deadline=deadline, days_left=(deadline - today).days if deadline else None)
    if node is None:
        return result
    group = Registration.district_path if node.depth == 0 else Registration.receiver_path
    statement = select(
        group, func.count(), _sum(Registration.status == SUBMITTED),
        _sum(Registration.status == ACCEPTED), _sum(Registration.status == RETURNED),
        _sum(Registration.status == DUPLICATE), _sum(Registration.status == EXEMPT),
        _sum(Registration.list_id.is_not(None)), _sum(Registration.batch_id.is_not(None)),
        _sum(Registration.late.is_(True)),
    ).where(within(Registration.receiver_path, principal.jurisdiction)).group_by(group)
    found: dict[str, ProgressRow] = {}
    for path, total, pending, accepted, returned, duplicate, exempt, sent, forwarded, late in await session.execute(
            statement):
        found[path] = ProgressRow(
            path=path, name="", level="", registered=total, pending=pending or 0, accepted=accepted or 0,
            returned=returned or 0, duplicate=duplicate or 0, exempt=exempt or 0, sent=sent or 0,
            forwarded=forwarded or 0, late=late or 0,
            reviewed=(accepted or 0) + (returned or 0) + (duplicate or 0) + (exempt or 0))
    if node.depth == 0:
        areas = [(u, "area") for u in node.children]
    elif node.children:
        areas = [(node, "district"), *((u, "commune") for u in node.children)]
    else:
        areas = [(node, "commune")]
    total = ProgressRow(path=node.path, name=node.name, level="total")
    for unit, level in areas:
        row = found.get(unit.path) or ProgressRow(path=unit.path, name="", level="")
        row.name, row.level = unit.name, level
        result.rows.append(row)
        total.add(row)
    result.total = total
    return result
