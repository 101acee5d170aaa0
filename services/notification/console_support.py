"""The Support Channel pages: threads, messages with attachments, acknowledgement, credentials.

A district focal point opens credentials here: a confirmation page first, then the
password once (``Cache-Control: no-store``), the opening logged; then marks them handed
over. City DIC officers follow the status of every district's credentials but never see
a password.
"""
from __future__ import annotations

from urllib.parse import quote

from fastapi import APIRouter, Depends, File, Form, HTTPException, Request, UploadFile
from fastapi.responses import Response

from libs.common.auth import Principal, Role
from libs.common.console import console_user

from . import batches, credentials, support
from .models import Attachment, BatchCopy, Message, Thread, ThreadRead
from .web import back, flash, parse_id

router = APIRouter(include_in_schema=False)
NO_STORE = {"cache-control": "no-store", "pragma": "no-cache"}


def _district(request: Request, principal: Principal, code: str):  # noqa: ANN202 - AdminUnit
    node = request.app.state.runtime.tree.by_code(code)
    if node is None or node.depth != 1 or not support.may_access(principal, node.path):
        raise HTTPException(404)
    return node


@router.get("/support")
async def support_home(request: Request, principal: Principal = Depends(console_user(*support.CHANNEL_ROLES))):
    runtime = request.app.state.runtime
    tree = runtime.tree
    if principal.role == Role.DISTRICT_FOCAL:
        node = tree.get(principal.jurisdiction)
        if node is not None and node.depth == 1:
            return await thread_page(request, node.code, principal=principal)
    districts = [u.path for u in tree.within(principal.jurisdiction) if u.depth == 1]
    async with runtime.database.transaction(readonly=True) as session:
        rows = await support.summaries(session, principal, districts)
    rows.sort(key=lambda r: (-r.unread, -r.waiting_credentials, tree.label(r.district_path)))
    return request.app.state.templates.render(request, "notification/support.html", {
        "rows": rows, "tree": tree, "messages": flash(request),
    })


@router.get("/support/{code}")
async def thread_page(request: Request, code: str, principal: Principal = Depends(console_user(*support.CHANNEL_ROLES))):
    runtime = request.app.state.runtime
    node = _district(request, principal, code)
    async with runtime.database.transaction() as session:
        thread = await support.find_thread(session, node.path)
        messages = await support.messages_of(session, thread) if thread else []
        account = support.account_uuid(principal)
        mark = await session.get(ThreadRead, (thread.id, account)) if thread and account else None
        last_read = support.aware(mark.last_read_at) if mark else None
        attachments = await support.attachments_of(session, [m.id for m in messages])
        waiting = await support.credentials_of(session, node.path)
        if thread is not None:
            await support.mark_read(session, principal, thread)
    return request.app.state.templates.render(request, "notification/thread.html", {
        "node": node, "thread": thread, "items": messages, "attachments": attachments, "credentials": waiting,
        "side": support.side_of(principal),
        "is_new": lambda m: m.side != support.side_of(principal) and (
            last_read is None or support.aware(m.created_at) > last_read), "messages": flash(request),
        "is_district": principal.role == Role.DISTRICT_FOCAL, "max_mb": runtime.settings.attachment_max_bytes // 2**20,
        "allowed": ", ".join(sorted(support.ALLOWED_TYPES)),
    })


@router.post("/support/{code}/messages")
async def post_message(request: Request, code: str, body: str = Form(""), file: UploadFile | None = File(None),
                       principal: Principal = Depends(console_user(*support.CHANNEL_ROLES))):
    runtime = request.app.state.runtime
    node = _district(request, principal, code)
    limit = runtime.settings.attachment_max_bytes
    attachment = None
    if file is not None and file.filename:
        data = await file.read(limit + 1)
        attachment = (file.filename, data)
    try:
        async with runtime.database.transaction() as session:
            thread = await support.thread_for(session, node.path)
            await support.post_text(session, principal, thread, body[:support.MAX_BODY + 1], attachment, limit)
    except support.SupportRefused as exc:
        return back(f"/support/{code}#new-message", error=exc.code)
    return back(f"/support/{code}#last", done="message_sent")


async def _message_and_thread(session, principal: Principal, message_id: str) -> tuple[Message, Thread]:  # noqa: ANN001
    message = await session.get(Message, parse_id(message_id))
    thread = await session.get(Thread, message.thread_id) if message else None
    if message is None or thread is None or not support.may_access(principal, thread.district_path):
        raise HTTPException(404)
    return message, thread


def _code_of(request: Request, path: str) -> str:
    node = request.app.state.runtime.tree.get(path)
    return node.code if node else path.rsplit("/", 1)[-1]


@router.post("/support/messages/{message_id}/ack")
async def acknowledge(request: Request, message_id: str,
                      principal: Principal = Depends(console_user(*support.CHANNEL_ROLES))):
    runtime = request.app.state.runtime
    async with runtime.database.transaction() as session:
        message, thread = await _message_and_thread(session, principal, message_id)
        code = _code_of(request, thread.district_path)
        try:
            await support.acknowledge(session, principal, message, thread)
        except support.SupportRefused as exc:
            return back(f"/support/{code}", error=exc.code)
    return back(f"/support/{code}#m-{message.id}", done="acknowledged")


@router.get("/support/attachments/{attachment_id}")
async def download(request: Request, attachment_id: str,
                   principal: Principal = Depends(console_user(*support.CHANNEL_ROLES))):
    runtime = request.app.state.runtime
    async with runtime.database.transaction(readonly=True) as session:
        attachment = await session.get(Attachment, parse_id(attachment_id))
        if attachment is None:
            raise HTTPException(404)
        await _message_and_thread(session, principal, str(attachment.message_id))
        data = attachment.data
        if attachment.batch_id is not None:
            batch = await session.get(BatchCopy, attachment.batch_id)
            if batch is None:
                raise HTTPException(404)
            data = await batches.spreadsheet(session, batch, runtime.tree)
    ascii_name = "".join(c if c.isascii() and (c.isalnum() or c in "-_.") else "-" for c in attachment.filename)
    return Response(data or b"", media_type=attachment.content_type, headers={
        "content-disposition": f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(attachment.filename)}",
        "cache-control": "private, no-store", "x-content-type-options": "nosniff"})


# --- credentials --------------------------------------------------------------------------------

async def _delivery(session, principal: Principal, delivery_id: str):  # noqa: ANN001, ANN202
    delivery = await credentials.get_delivery(session, principal, parse_id(delivery_id))
    if delivery is None:
        raise HTTPException(404)
    return delivery


@router.get("/support/credentials/{delivery_id}")
async def credentials_page(request: Request, delivery_id: str,
                           principal: Principal = Depends(console_user(*support.CHANNEL_ROLES))):
    runtime = request.app.state.runtime
    async with runtime.database.transaction(readonly=True) as session:
        delivery = await _delivery(session, principal, delivery_id)
        log = (await credentials.access_log(session, [delivery.id])).get(delivery.id, [])
    return request.app.state.templates.render(request, "notification/credentials.html", {
        "delivery": delivery, "log": log, "code": _code_of(request, delivery.district_path),
        "may_open": principal.role == Role.DISTRICT_FOCAL, "messages": flash(request),
        "area": runtime.tree.label(delivery.commune_path),
    })


@router.post("/support/credentials/{delivery_id}/open")
async def open_credentials(request: Request, delivery_id: str, confirm: str = Form(""),
                           principal: Principal = Depends(console_user(Role.DISTRICT_FOCAL))):
    runtime = request.app.state.runtime
    if confirm != "yes":
        return back(f"/support/credentials/{delivery_id}", error="confirm_needed")
    try:
        async with runtime.database.transaction() as session:
            delivery = await _delivery(session, principal, delivery_id)
            password = await credentials.open_credentials(session, runtime.settings, principal, delivery)
    except credentials.CredentialsRefused as exc:
        return back(f"/support/credentials/{delivery_id}", error=exc.code)
    return request.app.state.templates.render(request, "notification/credentials_open.html", {
        "delivery": delivery, "password": password, "code": _code_of(request, delivery.district_path),
        "help_line": runtime.settings.help_line, "area": runtime.tree.label(delivery.commune_path),
    }, headers=NO_STORE)


@router.post("/support/credentials/{delivery_id}/handed-over")
async def handed_over(request: Request, delivery_id: str, confirm: str = Form(""),
                      principal: Principal = Depends(console_user(Role.DISTRICT_FOCAL))):
    runtime = request.app.state.runtime
    if confirm != "yes":
        return back(f"/support/credentials/{delivery_id}", error="confirm_needed")
    try:
        async with runtime.database.transaction() as session:
            delivery = await _delivery(session, principal, delivery_id)
            await credentials.hand_over(session, principal, delivery)
    except credentials.CredentialsRefused as exc:
        return back(f"/support/credentials/{delivery_id}", error=exc.code)
    return back(f"/support/{_code_of(request, delivery.district_path)}#credentials", done="handed_over")
