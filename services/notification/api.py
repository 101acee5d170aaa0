"""JSON endpoints of the notification service: the inbox and the Support Channel (read only)."""
import json
from datetime import datetime
from uuid import UUID

from fastapi import APIRouter, Depends, HTTPException, Request
from pydantic import BaseModel

from libs.common.auth import OFFICIALS, Principal, require

from . import support
from .service import inbox

router = APIRouter(prefix="/api", tags=["inbox"])


class NoticeOut(BaseModel):
    id: UUID
    recipient_path: str
    kind: str
    subject: str
    reference: str | None
    created_at: datetime
    read_at: datetime | None


class ThreadOut(BaseModel):
    district_path: str
    unread: int
    waiting_credentials: int
    last_message_at: datetime | None


class AttachmentOut(BaseModel):
    id: UUID
    filename: str


class MessageOut(BaseModel):
    id: UUID
    kind: str
    side: str
    author_name: str
    body: str
    params: dict
    created_at: datetime
    acknowledged_at: datetime | None
    attachments: list[AttachmentOut]


class CredentialsOut(BaseModel):
    """Where credentials are; never the password."""

    id: UUID
    account_id: UUID
    username: str
    unit_name: str
    status: str
    channel_reason: str | None
    landed_at: datetime | None
    opened_at: datetime | None
    opened_by_name: str | None
    handed_over_at: datetime | None


@router.get("/notices", response_model=list[NoticeOut])
async def notices(request: Request, principal: Principal = Depends(require(*OFFICIALS))) -> list:
    """The caller's inbox (its office and the offices below it)."""
    async with request.app.state.runtime.database.transaction(readonly=True) as session:
        rows = await inbox(session, principal)
    return [NoticeOut.model_validate(n, from_attributes=True) for n in rows]


def _district(request: Request, principal: Principal, code: str) -> str:
    node = request.app.state.runtime.tree.by_code(code)
    if node is None or node.depth != 1 or not support.may_access(principal, node.path):
        raise HTTPException(404, "Không tìm thấy / Not found")
    return node.path


@router.get("/support/threads", response_model=list[ThreadOut], tags=["support channel"])
async def threads(request: Request, principal: Principal = Depends(require(*support.CHANNEL_ROLES))) -> list:
    """The Support Channel threads the caller may read, with its unread counts."""
    tree = request.app.state.runtime.tree
    districts = [u.path for u in tree.within(principal.jurisdiction) if u.depth == 1]
    async with request.app.state.runtime.database.transaction(readonly=True) as session:
        rows = await support.summaries(session, principal, districts)
    return [ThreadOut(district_path=r.district_path, unread=r.unread, waiting_credentials=r.waiting_credentials,
                      last_message_at=r.last_message_at) for r in rows]


@router.get("/support/threads/{code}/messages", response_model=list[MessageOut], tags=["support channel"])
async def thread_messages(code: str, request: Request,
                          principal: Principal = Depends(require(*support.CHANNEL_ROLES))) -> list:
    path = _district(request, principal, code)
    async with request.app.state.runtime.database.transaction(readonly=True) as session:
        thread = await support.find_thread(session, path)
        items = await support.messages_of(session, thread) if thread else []
        files = await support.attachments_of(session, [m.id for m in items])
    return [MessageOut(id=m.id, kind=m.kind, side=m.side, author_name=m.author_name, body=m.body,
                       params=json.loads(m.params or "{}"), created_at=m.created_at,
                       acknowledged_at=m.acknowledged_at,
                       attachments=[AttachmentOut(id=a.id, filename=a.filename) for a in files.get(m.id, [])])
            for m in items]


@router.get("/support/threads/{code}/credentials", response_model=list[CredentialsOut], tags=["support channel"])
async def thread_credentials(code: str, request: Request,
                             principal: Principal = Depends(require(*support.CHANNEL_ROLES))) -> list:
    path = _district(request, principal, code)
    async with request.app.state.runtime.database.transaction(readonly=True) as session:
        rows = await support.credentials_of(session, path)
    return [CredentialsOut.model_validate(d, from_attributes=True) for d in rows]
