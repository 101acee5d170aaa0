"""Review by the focal points: accept, return with a reason, mark duplicate, exempt.

Who may decide: the office that receives the registration (point 1.2) while it has not
been sent on; the district also reviews the lists its communes sent (it may return,
exempt or mark a duplicate before forwarding). A returned registration is final: the
unit registers again with corrected details. Every decision is an event.
"""
from __future__ import annotations

from datetime import datetime
from uuid import UUID

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from libs.common import text as typed
from libs.common.auth import Principal, Role
from libs.common.events.intake import (
    RegistrationAccepted,
    RegistrationDuplicateData,
    RegistrationExempted,
    RegistrationExemptedData,
    RegistrationMarkedDuplicate,
    RegistrationReturned,
    RegistrationReviewedData,
)
from libs.common.outbox import publish

from .models import Registration
from .routing import ACCEPTED, CLOSED, DISTRICT, DUPLICATE, EXEMPT, EXEMPTIONS, RETURNED
from .service import Actor, history
from .text import Msg, now_utc

ACTIONS = ("accept", "return", "duplicate", "exempt")


class ReviewError(Exception):
    def __init__(self, msg: Msg, status: int = 409):
        self.msg = msg
        self.status = status
        super().__init__(msg.both())


NOT_YOURS = Msg("Đăng ký này do {office} tiếp nhận, bạn không xử lý được",
                "This registration is received by {office}; you cannot act on it")
ALREADY_SENT = Msg("Đăng ký đã được gửi lên quận/huyện, không thay đổi được nữa",
                   "The registration was already sent to the district and can no longer change")
ALREADY_FORWARDED = Msg("Đăng ký đã được chuyển lên Sở, không thay đổi được nữa",
                        "The registration was already forwarded to the city and can no longer change")
RETURNED_FINAL = Msg("Đăng ký đã bị trả lại; đơn vị cần đăng ký lại", "The registration was returned; the unit must register again")
SAME_STATE = Msg("Đăng ký đã ở trạng thái này", "The registration is already in this state")
NEED_REASON = Msg("Cần ghi lý do trả lại (ít nhất 3 ký tự)", "Give the reason for returning it (at least 3 characters)")
BAD_REASON = Msg("Lý do không phải triển khai không hợp lệ", "Unknown exemption reason")
UNKNOWN_ORIGINAL = Msg("Không tìm thấy đăng ký {reference} trong quận/huyện", "No registration {reference} in the district")
SELF_DUPLICATE = Msg("Một đăng ký không thể trùng với chính nó", "A registration cannot duplicate itself")
ORIGINAL_CLOSED = Msg("Đăng ký {reference} đã bị trả lại hoặc là bản trùng; chọn bản gốc",
                      "Registration {reference} was returned or is itself a duplicate; choose the original")


def allowed_actions(principal: Principal, registration: Registration) -> tuple[str, ...]:
    """The decisions ``principal`` may take on ``registration`` now (empty: read only)."""
    try:
        _check(principal, registration, None)
    except ReviewError:
        return ()
    if principal.role == Role.DISTRICT_FOCAL and registration.receiver != DISTRICT:
        actions: tuple[str, ...] = ("return", "duplicate", "exempt")  # reviewing a commune's list
    else:
        actions = ACTIONS
    return tuple(a for a in actions if _target(a) != registration.status)


def _target(action: str) -> str:
    return {"accept": ACCEPTED, "return": RETURNED, "duplicate": DUPLICATE, "exempt": EXEMPT}[action]


def _check(principal: Principal, registration: Registration, action: str | None) -> None:
    if registration.batch_id is not None:
        raise ReviewError(ALREADY_FORWARDED)
    if registration.status == RETURNED:
        raise ReviewError(RETURNED_FINAL)
    office = Msg("Phòng Văn hóa và Thông tin quận/huyện", "the district focal point") \
        if registration.receiver == DISTRICT else Msg("UBND phường/xã", "the commune People's Committee")
    not_yours = ReviewError(Msg(NOT_YOURS.vi.format(office=office.vi), NOT_YOURS.en.format(office=office.en)), 403)
    if principal.role == Role.COMMUNE_FOCAL:
        if registration.receiver_path != principal.jurisdiction:
            raise not_yours
        if registration.list_id is not None:
            raise ReviewError(ALREADY_SENT)
    elif principal.role == Role.DISTRICT_FOCAL:
        if registration.district_path != principal.jurisdiction:
            raise not_yours
        if registration.receiver != DISTRICT:
            if registration.list_id is None:
                raise not_yours  # the commune has not sent it yet
            if action == "accept":
                raise ReviewError(Msg("Đăng ký trong danh sách phường/xã gửi lên đã được duyệt",
                                      "A registration of a commune's list is already accepted"))
    else:
        raise ReviewError(Msg("Chỉ đầu mối phường/xã hoặc quận/huyện được duyệt đăng ký",
                              "Only commune or district focal points review registrations"), 403)
    if action is not None and registration.status == _target(action):
        raise ReviewError(SAME_STATE)


def _data(registration: Registration, principal: Principal, reason: str | None = None) -> RegistrationReviewedData:
    return RegistrationReviewedData(registration_id=registration.id, reference=registration.reference,
                                    commune_path=registration.commune_path, reviewer_path=principal.jurisdiction,
                                    reason=reason)


def _decide(registration: Registration, principal: Principal, status: str, now: datetime, *,
            reason: str | None = None) -> None:
    registration.status = status
    registration.reviewed_at = now
    registration.reviewed_by = Actor.of(principal).name
    registration.review_reason = reason
    registration.updated_at = now
    if status != DUPLICATE:
        registration.duplicate_of = None
    if status != EXEMPT:
        registration.exempt_reason = None


async def review(session: AsyncSession, principal: Principal, registration: Registration, action: str, *,
                 reason: str | None = None, duplicate_of: str | None = None, note: str | None = None,
                 now: datetime | None = None) -> Registration:
    """Apply one decision (``accept``, ``return``, ``duplicate`` or ``exempt``) with its event."""
    now = now or now_utc()
    if action not in ACTIONS:
        raise ReviewError(Msg("Thao tác không hợp lệ", "Unknown action"), 422)
    _check(principal, registration, action)
    actor = Actor.of(principal)
    try:  # the text policy (libs/common/text.py): typed by an official, stored and shown to the unit
        reason = typed.free_text(reason or "", ("Lý do", "Reason")) or None
        note = typed.free_text(note or "", ("Ghi chú", "Note")) or None
        duplicate_of = typed.short_text(duplicate_of or "", ("Mã đăng ký trùng", "Duplicate of")) or None
    except typed.TextRefused as exc:
        raise ReviewError(Msg(exc.vi, exc.en), 422) from None
    if action == "accept":
        _decide(registration, principal, ACCEPTED, now)
        session.add(history(registration, "accepted", now, actor))
        await publish(session, RegistrationAccepted(producer="intake", jurisdiction=registration.commune_path,
                                                    data=_data(registration, principal)))
    elif action == "return":
        if reason is None or len(reason) < 3:
            raise ReviewError(NEED_REASON, 422)
        _decide(registration, principal, RETURNED, now, reason=reason[:500])
        session.add(history(registration, "returned", now, actor, reason[:500]))
        await publish(session, RegistrationReturned(producer="intake", jurisdiction=registration.commune_path,
                                                    data=_data(registration, principal, reason[:500])))
    elif action == "duplicate":
        original = await _original(session, registration, duplicate_of or "")
        _decide(registration, principal, DUPLICATE, now, reason=note)
        registration.duplicate_of = original.id
        session.add(history(registration, "duplicate", now, actor, original.reference))
        await publish(session, RegistrationMarkedDuplicate(
            producer="intake", jurisdiction=registration.commune_path,
            data=RegistrationDuplicateData(registration_id=registration.id, reference=registration.reference,
                                           commune_path=registration.commune_path, duplicate_of=original.id)))
    else:
        exemption = EXEMPTIONS.get(reason or "")
        if exemption is None:
            raise ReviewError(BAD_REASON, 422)
        _decide(registration, principal, EXEMPT, now, reason=note)
        registration.exempt_reason = exemption.code
        session.add(history(registration, "exempt", now, actor, exemption.label_vi + (f" — {note}" if note else "")))
        await publish(session, RegistrationExempted(
            producer="intake", jurisdiction=registration.commune_path,
            data=RegistrationExemptedData(registration_id=registration.id, reference=registration.reference,
                                          commune_path=registration.commune_path, reason=exemption.code,
                                          note=note)))
    return registration


async def _original(session: AsyncSession, registration: Registration, reference: str) -> Registration:
    reference = reference.strip().upper()
    original = (await session.execute(select(Registration).where(
        Registration.reference == reference, Registration.district_path == registration.district_path,
    ))).scalar_one_or_none()
    if original is None:
        raise ReviewError(UNKNOWN_ORIGINAL.format(reference=reference or "—"), 422)
    if original.id == registration.id:
        raise ReviewError(SELF_DUPLICATE, 422)
    if original.status in CLOSED:
        raise ReviewError(ORIGINAL_CLOSED.format(reference=original.reference), 422)
    return original


async def load_for_update(session: AsyncSession, principal: Principal, registration_id: UUID) -> Registration | None:
    """The registration, locked for the decision (PostgreSQL; SQLite's writer lock already is),
    or None outside the caller's jurisdiction."""
    registration = (await session.execute(select(Registration).where(Registration.id == registration_id)
                                          .with_for_update())).scalar_one_or_none()
    if registration is None or not principal.covers(registration.commune_path):
        return None
    return registration
