"""The audit log of account, unit and venue actions (who, what, when; never a secret)."""
from __future__ import annotations

from datetime import UTC, datetime
from uuid import UUID

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from libs.common.auth import Principal

from .models import AuditEntry

ACTIONS = (
    "issued", "password_reset", "account_disabled", "account_enabled", "staff_created", "venue_added",
    "venue_renamed", "venue_disabled", "venue_enabled", "venue_code_rotated", "issue_requested",
    "account_created", "interop_client_created", "interop_client_disabled", "interop_client_enabled",
)


def actor_id(principal: Principal) -> UUID | None:
    try:
        return UUID(principal.account_id)
    except ValueError:
        return None


def record(session: AsyncSession, principal: Principal | None, action: str, *, target: str, path: str,
           unit_id: UUID | None = None, detail: str | None = None, at: datetime | None = None) -> AuditEntry:
    assert action in ACTIONS, action
    entry = AuditEntry(
        at=at or datetime.now(UTC), actor_id=actor_id(principal) if principal else None,
        actor_name=principal.name if principal else "", actor_role=str(principal.role) if principal else "",
        action=action, unit_id=unit_id, target=target[:200], path=path, detail=(detail or None) and detail[:300],
    )
    session.add(entry)
    return entry


async def history(session: AsyncSession, unit_id: UUID, limit: int = 50) -> list[AuditEntry]:
    rows = await session.execute(select(AuditEntry).where(AuditEntry.unit_id == unit_id)
                                 .order_by(AuditEntry.at.desc()).limit(limit))
    return list(rows.scalars())
