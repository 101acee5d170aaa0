"""The Support Channel (circular 1.3): one thread per district with the city DIC.

City DIC officers see every thread of their jurisdiction; a district focal point sees
only its own district's thread; nobody else sees any. Messages are written by people
(text, with an optional attachment) or posted by the system: a forwarded batch (with
its spreadsheet), credentials waiting to be handed over, a batch issued. Each official
has a read mark per thread (unread counts); the other side acknowledges a message.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from uuid import UUID

from sqlalchemy import and_, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from libs.common import text as typed
from libs.common.auth import Principal, Role, within

from .models import Attachment, Delivery, Message, Thread, ThreadRead

CHANNEL_ROLES = (Role.CITY_DIC, Role.DISTRICT_FOCAL)
MAX_BODY = 5000
ALLOWED_TYPES = {
    ".xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    ".xls": "application/vnd.ms-excel", ".csv": "text/csv", ".pdf": "application/pdf",
    ".docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    ".doc": "application/msword", ".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg",
    ".txt": "text/plain", ".zip": "application/zip",
}
WAITING = ("channel", "opened")


class SupportRefused(Exception):
    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


def side_of(principal: Principal) -> str:
    return "city" if principal.role == Role.CITY_DIC else "district"


def may_access(principal: Principal, district_path: str) -> bool:
    if principal.role == Role.CITY_DIC:
        return principal.covers(district_path)
    if principal.role == Role.DISTRICT_FOCAL:
        return principal.jurisdiction == district_path
    return False


def account_uuid(principal: Principal) -> UUID | None:
    try:
        return UUID(principal.account_id)
    except ValueError:
        return None


async def thread_for(session: AsyncSession, district_path: str) -> Thread:
    """The district's thread, created on first use."""
    thread = (await session.execute(select(Thread).where(Thread.district_path == district_path))).scalar_one_or_none()
    if thread is None:
        thread = Thread(district_path=district_path, created_at=datetime.now(UTC))
        session.add(thread)
        await session.flush()
    return thread


async def find_thread(session: AsyncSession, district_path: str) -> Thread | None:
    return (await session.execute(select(Thread).where(Thread.district_path == district_path))).scalar_one_or_none()


async def post_system(session: AsyncSession, district_path: str, *, kind: str, side: str, author: str,
                      params: dict, source_key: str, at: datetime | None = None) -> Message:
    """A system message (idempotent by ``source_key``: an existing one is updated instead)."""
    thread = await thread_for(session, district_path)
    at = at or datetime.now(UTC)
    existing = (await session.execute(select(Message).where(Message.source_key == source_key))).scalar_one_or_none()
    if existing is not None:
        existing.params = json.dumps(params, ensure_ascii=False, default=str)
        return existing
    message = Message(thread_id=thread.id, kind=kind, side=side, author_name=author[:200],
                      params=json.dumps(params, ensure_ascii=False, default=str), source_key=source_key,
                      created_at=at)
    session.add(message)
    thread.last_message_at = at
    return message


def clean_filename(name: str) -> str:
    name = name.replace("\\", "/").rsplit("/", 1)[-1]
    name = typed.scrub(re.sub(r"[\x00-\x1f\x7f\"<>|:*?]", "", name)) or "tep-dinh-kem"
    return name[-150:]


async def post_text(session: AsyncSession, principal: Principal, thread: Thread, body: str,
                    attachment: tuple[str, bytes] | None, max_bytes: int) -> Message:
    """A message written by an official, with an optional attachment (name, bytes)."""
    if not may_access(principal, thread.district_path):
        raise SupportRefused("not_allowed")
    try:  # the text policy (libs/common/text.py): a free text, its line breaks kept
        body = typed.free_text(body, typed.MESSAGE)
    except typed.TextRefused:
        raise SupportRefused("body_text") from None
    if len(body) > MAX_BODY:
        raise SupportRefused("body_too_long")
    if not body and attachment is None:
        raise SupportRefused("empty_message")
    now = datetime.now(UTC)
    message = Message(thread_id=thread.id, kind="text", side=side_of(principal), author_id=account_uuid(principal),
                      author_name=principal.name[:200], body=body, created_at=now)
    session.add(message)
    if attachment is not None:
        filename, data = attachment
        filename = clean_filename(filename)
        extension = ("." + filename.rsplit(".", 1)[-1].lower()) if "." in filename else ""
        if extension not in ALLOWED_TYPES:
            raise SupportRefused("file_type")
        if len(data) > max_bytes:
            raise SupportRefused("file_too_large")
        if not data:
            raise SupportRefused("file_empty")
        session.add(Attachment(message_id=message.id, filename=filename, content_type=ALLOWED_TYPES[extension],
                               size=len(data), data=data, created_at=now))
    thread.last_message_at = now
    await mark_read(session, principal, thread, now)
    return message


async def mark_read(session: AsyncSession, principal: Principal, thread: Thread, at: datetime | None = None) -> None:
    account = account_uuid(principal)
    if account is None:
        return
    at = at or datetime.now(UTC)
    mark = await session.get(ThreadRead, (thread.id, account))
    if mark is None:
        session.add(ThreadRead(thread_id=thread.id, account_id=account, last_read_at=at))
    else:
        mark.last_read_at = max(aware(mark.last_read_at), at)


def aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


async def acknowledge(session: AsyncSession, principal: Principal, message: Message, thread: Thread) -> None:
    """The other side confirms it received the message."""
    if not may_access(principal, thread.district_path) or message.side == side_of(principal):
        raise SupportRefused("not_allowed")
    if message.acknowledged_at is None:
        message.acknowledged_at = datetime.now(UTC)
        message.acknowledged_by_name = principal.name[:200]


@dataclass
class ThreadSummary:
    district_path: str
    thread: Thread | None
    unread: int
    waiting_credentials: int
    last_message_at: datetime | None


async def summaries(session: AsyncSession, principal: Principal, districts: list[str]) -> list[ThreadSummary]:
    """Each district's thread with the caller's unread count and the credentials waiting."""
    districts = [d for d in districts if may_access(principal, d)]
    if not districts:
        return []
    threads = {t.district_path: t for t in (await session.execute(
        select(Thread).where(Thread.district_path.in_(districts)))).scalars()}
    unread = await unread_counts(session, principal, [t.id for t in threads.values()])
    waiting = dict((await session.execute(
        select(Delivery.district_path, func.count()).where(Delivery.district_path.in_(districts),
                                                           Delivery.status.in_(WAITING))
        .group_by(Delivery.district_path))).all())
    return [ThreadSummary(d, threads.get(d), unread.get(threads[d].id, 0) if d in threads else 0,
                          int(waiting.get(d, 0)), threads[d].last_message_at if d in threads else None)
            for d in districts]


async def unread_counts(session: AsyncSession, principal: Principal, thread_ids: list[UUID]) -> dict[UUID, int]:
    """Messages from the other side newer than the caller's read mark of each thread."""
    if not thread_ids:
        return {}
    account = account_uuid(principal)
    rows = await session.execute(
        select(Message.thread_id, func.count())
        .select_from(Message)
        .outerjoin(ThreadRead, and_(ThreadRead.thread_id == Message.thread_id, ThreadRead.account_id == account))
        .where(Message.thread_id.in_(thread_ids), Message.side != side_of(principal),
               or_(ThreadRead.last_read_at.is_(None), Message.created_at > ThreadRead.last_read_at))
        .group_by(Message.thread_id))
    return {thread_id: count for thread_id, count in rows.all()}


async def total_unread(session: AsyncSession, principal: Principal) -> int:
    if principal.role not in CHANNEL_ROLES:
        return 0
    query = select(Thread.id)
    if principal.role == Role.CITY_DIC:
        query = query.where(within(Thread.district_path, principal.jurisdiction))
    else:
        query = query.where(Thread.district_path == principal.jurisdiction)
    ids = list((await session.execute(query)).scalars())
    return sum((await unread_counts(session, principal, ids)).values())


async def messages_of(session: AsyncSession, thread: Thread, limit: int = 300) -> list[Message]:
    rows = await session.execute(select(Message).where(Message.thread_id == thread.id)
                                 .order_by(Message.created_at.desc()).limit(limit))
    return list(reversed(list(rows.scalars())))


async def attachments_of(session: AsyncSession, message_ids: list[UUID]) -> dict[UUID, list[Attachment]]:
    if not message_ids:
        return {}
    rows = await session.execute(
        select(Attachment.id, Attachment.message_id, Attachment.filename, Attachment.size, Attachment.batch_id)
        .where(Attachment.message_id.in_(message_ids)).order_by(Attachment.created_at))
    out: dict[UUID, list] = {}
    for row in rows.all():
        out.setdefault(row.message_id, []).append(row)
    return out


async def credentials_of(session: AsyncSession, district_path: str, *, limit: int = 500) -> list[Delivery]:
    """Credentials that reached the district's Support Channel: waiting first, then the latest handed over."""
    rows = await session.execute(
        select(Delivery).where(Delivery.district_path == district_path,
                               Delivery.status.in_((*WAITING, "handed_over")))
        .order_by(Delivery.status.in_(WAITING).desc(), Delivery.landed_at.desc()).limit(limit))
    return list(rows.scalars())
