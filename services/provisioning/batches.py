"""The city's copy of the batches districts forward (``intake.batch.forwarded``), and views of it."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from uuid import UUID

from sqlalchemy import case, func, insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from libs.common.auth import Principal, within
from libs.common.events.intake import BatchForwarded

from .models import ForwardedBatch, ForwardedUnit, IssueJob

PAGE_SIZE = 100


PART_STRIDE = 1_000_000  # positions of part n start at n * PART_STRIDE: the order survives parts


async def record_forwarded_batch(session: AsyncSession, event: BatchForwarded) -> int:
    """Keep the batch (or one part of a large batch) and its units; the number of new units.

    A large batch arrives as several events (``part`` of ``parts``), in any order and
    possibly again: units already kept are skipped.
    """
    data = event.data
    batch = await session.get(ForwardedBatch, data.batch_id)
    total = data.total_units or len(data.units)
    if batch is None:
        batch = ForwardedBatch(id=data.batch_id, reference=data.reference[:40], district_path=data.district_path,
                               unit_count=total, forwarded_at=data.forwarded_at or event.occurred_at,
                               received_at=datetime.now(UTC))
        session.add(batch)
        await session.flush()
    else:
        batch.unit_count = max(batch.unit_count, total)
    incoming = [u.registration_id for u in data.units]
    known: set = set()
    for start in range(0, len(incoming), 500):
        known |= set((await session.execute(select(ForwardedUnit.registration_id).where(
            ForwardedUnit.batch_id == data.batch_id,
            ForwardedUnit.registration_id.in_(incoming[start:start + 500])))).scalars())
    rows = []
    for index, unit in enumerate(data.units, start=1):
        if unit.registration_id in known:  # a part received twice, or a unit listed twice
            continue
        known.add(unit.registration_id)
        rows.append({
            "batch_id": data.batch_id, "registration_id": unit.registration_id,
            "position": data.part * PART_STRIDE + index,
            "reference": unit.reference[:40], "unit_name": unit.unit_name[:300], "unit_type": unit.unit_type[:40],
            "address": unit.address[:300], "commune_path": unit.commune_path,
            "tax_code": (unit.tax_code or None) and unit.tax_code[:40],
            "contact_name": unit.contact_name[:200],
            "contact_position": (unit.contact_position or None) and unit.contact_position[:200],
            "contact_phone": unit.contact_phone[:40],
            "contact_email": (unit.contact_email or "").strip()[:254] or None,
            "venue_count": unit.venue_count, "late": unit.late, "status": "pending",
        })
    for start in range(0, len(rows), 1000):
        await session.execute(insert(ForwardedUnit.__table__), rows[start:start + 1000])
    if len(rows) and batch.unit_count < len(rows):
        batch.unit_count = len(rows)
    return len(rows)


@dataclass
class BatchSummary:
    batch: ForwardedBatch
    pending: int
    issued: int
    failed: int
    with_email: int
    active_job: UUID | None = None

    @property
    def total(self) -> int:
        return self.pending + self.issued + self.failed


def _counts():
    return (
        func.sum(case((ForwardedUnit.status == "pending", 1), else_=0)),
        func.sum(case((ForwardedUnit.status == "issued", 1), else_=0)),
        func.sum(case((ForwardedUnit.status == "failed", 1), else_=0)),
        func.sum(case((ForwardedUnit.contact_email.is_not(None), 1), else_=0)),
    )


async def summaries(session: AsyncSession, principal: Principal, *, district_path: str | None = None,
                    only_open: bool = False, limit: int = 200) -> list[BatchSummary]:
    """Batches in the principal's jurisdiction, newest first, with their units' status."""
    query = select(ForwardedBatch).where(within(ForwardedBatch.district_path, principal.jurisdiction))
    if district_path:
        query = query.where(ForwardedBatch.district_path == district_path)
    batches = list((await session.execute(query.order_by(ForwardedBatch.forwarded_at.desc()).limit(limit)))
                   .scalars())
    if not batches:
        return []
    ids = [b.id for b in batches]
    counts = {row[0]: row[1:] for row in await session.execute(
        select(ForwardedUnit.batch_id, *_counts()).where(ForwardedUnit.batch_id.in_(ids))
        .group_by(ForwardedUnit.batch_id))}
    jobs = {row[0]: row[1] for row in await session.execute(
        select(IssueJob.batch_id, IssueJob.id).where(IssueJob.batch_id.in_(ids),
                                                     IssueJob.status.in_(("queued", "running"))))}
    out = []
    for batch in batches:
        pending, issued, failed, with_email = (int(x or 0) for x in counts.get(batch.id, (0, 0, 0, 0)))
        summary = BatchSummary(batch, pending, issued, failed, with_email, jobs.get(batch.id))
        if not only_open or summary.pending:
            out.append(summary)
    return out


@dataclass
class DistrictRow:
    district_path: str
    batches: int
    units: int
    pending: int
    issued: int
    failed: int
    last_forwarded_at: datetime | None


async def per_district(session: AsyncSession, principal: Principal) -> list[DistrictRow]:
    """The city's overview: forwarded batches and their units, per district."""
    batch_counts = {row[0]: (row[1], row[2]) for row in await session.execute(
        select(ForwardedBatch.district_path, func.count(), func.max(ForwardedBatch.forwarded_at))
        .where(within(ForwardedBatch.district_path, principal.jurisdiction))
        .group_by(ForwardedBatch.district_path))}
    unit_counts = {row[0]: row[1:] for row in await session.execute(
        select(ForwardedBatch.district_path, func.count(), *_counts()[:3])
        .join(ForwardedUnit, ForwardedUnit.batch_id == ForwardedBatch.id)
        .where(within(ForwardedBatch.district_path, principal.jurisdiction))
        .group_by(ForwardedBatch.district_path))}
    rows = []
    for path, (batches, last) in batch_counts.items():
        units, pending, issued, failed = (int(x or 0) for x in unit_counts.get(path, (0, 0, 0, 0)))
        rows.append(DistrictRow(path, batches, units, pending, issued, failed, last))
    return rows


async def get_batch(session: AsyncSession, principal: Principal, batch_id: UUID) -> ForwardedBatch | None:
    """The batch if the principal may see it (else None: the caller answers 404)."""
    batch = await session.get(ForwardedBatch, batch_id)
    if batch is None or not principal.covers(batch.district_path):
        return None
    return batch


async def batch_units(session: AsyncSession, batch_id: UUID, *, status: str | None = None,
                      search: str | None = None, page: int = 1) -> tuple[list[ForwardedUnit], int]:
    query = select(ForwardedUnit).where(ForwardedUnit.batch_id == batch_id)
    if status in ("pending", "issued", "failed"):
        query = query.where(ForwardedUnit.status == status)
    if search:
        query = query.where(ForwardedUnit.unit_name.ilike(f"%{_escape(search)}%", escape="\\"))
    total = (await session.execute(select(func.count()).select_from(query.subquery()))).scalar_one()
    rows = await session.execute(query.order_by(ForwardedUnit.position)
                                 .offset((max(page, 1) - 1) * PAGE_SIZE).limit(PAGE_SIZE))
    return list(rows.scalars()), total


def _escape(text: str) -> str:
    return text.strip()[:100].replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
