"""Use cases of the notification service."""
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from libs.common.auth import Principal, within

from .models import Notice


async def inbox(session: AsyncSession, principal: Principal, limit: int = 200) -> list[Notice]:
    """Notices addressed to the caller's office or to offices below it, newest first."""
    rows = await session.execute(
        select(Notice).where(within(Notice.recipient_path, principal.jurisdiction))
        .order_by(Notice.created_at.desc()).limit(limit))
    return list(rows.scalars())
