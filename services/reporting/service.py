"""Queries over the read models, always within the caller's jurisdiction."""
from dataclasses import dataclass

from sqlalchemy import case, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from libs.common.adminunits import AdminTree
from libs.common.auth import Principal, path_within, within

from .models import RegistrationFact


@dataclass(frozen=True)
class AreaCount:
    path: str
    name: str
    registrations: int
    late: int


async def registration_counts(session: AsyncSession, tree: AdminTree, principal: Principal) -> list[AreaCount]:
    """Registrations per area one level below the caller's node (per commune for a district)."""
    rows = (await session.execute(
        select(RegistrationFact.commune_path, func.count(), func.sum(case((RegistrationFact.late, 1), else_=0)))
        .where(within(RegistrationFact.commune_path, principal.jurisdiction))
        .group_by(RegistrationFact.commune_path)
    )).all()
    node = tree.get(principal.jurisdiction)
    areas = node.children if node is not None and node.children else ([node] if node else [])
    counts = {a.path: [0, 0] for a in areas}
    for commune_path, total, late in rows:
        for area in areas:
            if path_within(commune_path, area.path):
                counts[area.path][0] += total
                counts[area.path][1] += int(late or 0)
                break
    return [AreaCount(a.path, a.name, *counts[a.path]) for a in areas]
