"""Registration spam at the public edge: limits that refuse, heuristics that flag.

A unit registers itself without signing in (the public form and ``POST /api/registrations``),
so one client can fill a commune's queue in a second. Two answers:

* **Limits** refuse a registration (429, in Vietnamese, saying to contact the commune):
  too many registrations from one client address in the last hour, or a tax code or
  contact e-mail that already has registrations awaiting review from the last 24 hours.
  They are counted in intake's own table, so every worker and replica sees the same
  numbers; on PostgreSQL an advisory lock per key makes a concurrent burst queue instead
  of all reading the same count.
* **Heuristics** keep the registration but flag it (``spam_reasons``): the hidden form
  field filled, the Nth registration from one address in a few minutes, an implausible
  venue count, the same unit name again in the commune. A flagged registration waits in
  the "Nghi ngờ spam" tab of the review queue, not in the queue itself, until a focal point
  accepts it or discards it (``discard``: returned with a recorded reason, so the unit's
  status page and reporting's funnel stay right).

This is specific to registration; the per-address limit of every public route lives in
libs/common.
"""
from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence
from datetime import datetime, timedelta
from uuid import UUID

from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from libs.common import ratelimit
from libs.common.auth import Principal, Role, within
from libs.common.events.intake import RegistrationReturned, RegistrationReviewedData
from libs.common.outbox import publish

from ..models import Registration
from ..routing import SUBMITTED
from ..settings import IntakeSettings
from ..text import Msg, now_utc
from ..validation import UnitDetails

log = logging.getLogger(__name__)

# The hidden field of the public form: an innocuous name a form-filling robot fills in and a
# person never sees (hidden by the style sheet, aria-hidden, out of the tab order).
HONEYPOT_FIELD = "homepage"

HONEYPOT, BURST, VENUES, SAME_NAME = "honeypot", "burst", "venues", "same_name"
REASONS = {
    HONEYPOT: Msg("Điền vào trường ẩn của biểu mẫu (máy tự động)", "Filled the form's hidden field (a robot)"),
    BURST: Msg("Nhiều đăng ký từ cùng một địa chỉ mạng trong thời gian ngắn",
               "Many registrations from one network address in a short time"),
    VENUES: Msg("Số địa điểm bất thường", "Implausible number of venues"),
    SAME_NAME: Msg("Trùng tên với đăng ký khác trong phường/xã", "Same name as another registration in the commune"),
}
DISCARD_NOTE = "Nghi ngờ spam, loại bỏ: {reasons}"   # the history, for officials
# What the unit's status page says (the heuristics are not told to a robot).
UNIT_REASON = "Đăng ký bị loại vì nghi ngờ gửi tự động (spam); nếu đơn vị có thật, vui lòng liên hệ UBND phường/xã"

CONTACT_COMMUNE = ("Nếu đơn vị thật sự cần đăng ký thêm, vui lòng liên hệ UBND phường/xã nơi đơn vị đặt trụ sở.",
                   "If the unit really needs to register more, contact the People's Committee of its commune.")
TOO_MANY_FROM_ADDRESS = Msg(
    "Đã có quá nhiều đăng ký gửi từ địa chỉ mạng này trong một giờ qua. Vui lòng thử lại sau một giờ. "
    + CONTACT_COMMUNE[0],
    "Too many registrations were sent from this network address in the last hour. Try again in an hour. "
    + CONTACT_COMMUNE[1])
TOO_MANY_FOR_TAX_CODE = Msg(
    "Mã số thuế {value} đã có {count} đăng ký đang chờ duyệt trong 24 giờ qua. Vui lòng chờ kết quả duyệt "
    "(xem trang theo dõi của đăng ký đã gửi). " + CONTACT_COMMUNE[0],
    "Tax code {value} already has {count} registrations awaiting review from the last 24 hours. Wait for the "
    "review (see the status page of the registration sent). " + CONTACT_COMMUNE[1])
TOO_MANY_FOR_EMAIL = Msg(
    "E-mail {value} đã có {count} đăng ký đang chờ duyệt trong 24 giờ qua. Vui lòng chờ kết quả duyệt "
    "(xem trang theo dõi của đăng ký đã gửi). " + CONTACT_COMMUNE[0],
    "E-mail {value} already has {count} registrations awaiting review from the last 24 hours. Wait for the "
    "review (see the status page of the registration sent). " + CONTACT_COMMUNE[1])
NOTHING_SELECTED = Msg("Chưa chọn đăng ký nào để loại bỏ", "No registration selected to discard")


class RegistrationLimited(Exception):
    """A limit refuses this registration (HTTP 429)."""

    def __init__(self, msg: Msg) -> None:
        self.msg = msg
        super().__init__(msg.both())


def client_address(request) -> str | None:  # noqa: ANN001
    """The client as the rate limits count it (the trusted proxy's forwarded address; an
    IPv6 client by its /64, so that one host cannot rotate through its addresses)."""
    return ratelimit.client_address(request.scope)[:64] or None


def reasons_of(registration: Registration) -> list[str]:
    return [r for r in (registration.spam_reasons or "").split(",") if r]


def reason_labels(registration: Registration, lang: str) -> list[str]:
    return [REASONS[r].text(lang) if r in REASONS else r for r in reasons_of(registration)]


def _lock_key(kind: str, value: str) -> int:
    return int.from_bytes(hashlib.sha256(f"intake.register:{kind}:{value}".encode()).digest()[:8], "big",
                          signed=True)


async def _lock(session: AsyncSession, keys: Sequence[tuple[str, str]]) -> None:
    """PostgreSQL: serialise registrations that share a key until the transaction ends
    (SQLite's write transactions already are, with BEGIN IMMEDIATE)."""
    if session.bind.dialect.name != "postgresql":
        return
    for key in sorted({_lock_key(kind, value) for kind, value in keys}):
        await session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": key})


async def _count(session: AsyncSession, *conditions) -> int:  # noqa: ANN002
    return (await session.execute(select(func.count()).select_from(Registration).where(*conditions))).scalar_one()


async def screen(session: AsyncSession, settings: IntakeSettings, details: UnitDetails, *,
                 client_address: str | None, honeypot: bool = False, now: datetime | None = None) -> str | None:
    """Check the limits (raises RegistrationLimited) and return the spam reasons of one
    public registration (comma-separated; None: not suspected). Call it in the transaction
    that then inserts the registration."""
    now = now or now_utc()
    keys = [("address", client_address)] if client_address else []
    keys += [("tax", details.tax_code)] if details.tax_code else []
    keys += [("email", details.contact_email)] if details.contact_email else []
    await _lock(session, keys)
    public = Registration.source == "form"
    if client_address and settings.registrations_per_address_hour > 0:
        recent = await _count(session, public, Registration.client_address == client_address,
                              Registration.submitted_at >= now - timedelta(hours=1))
        if recent >= settings.registrations_per_address_hour:
            raise RegistrationLimited(TOO_MANY_FROM_ADDRESS)
    day = Registration.submitted_at >= now - timedelta(days=1)
    waiting = Registration.status == SUBMITTED
    for value, limit, column, message in (
            (details.tax_code, settings.pending_per_tax_code, Registration.tax_code, TOO_MANY_FOR_TAX_CODE),
            (details.contact_email, settings.pending_per_email, Registration.contact_email, TOO_MANY_FOR_EMAIL)):
        if value and limit > 0:
            count = await _count(session, column == value, waiting, day)
            if count >= limit:
                log.warning("registration refused: %s registrations waiting for one %s", count,
                            "tax code" if column is Registration.tax_code else "e-mail")
                raise RegistrationLimited(message.format(value=value, count=count))

    reasons = []
    if honeypot:
        reasons.append(HONEYPOT)
    if client_address and settings.spam_burst_count > 0:
        burst = await _count(session, public, Registration.client_address == client_address,
                             Registration.submitted_at >= now - timedelta(seconds=settings.spam_burst_seconds))
        if burst + 1 >= settings.spam_burst_count:
            reasons.append(BURST)
    if settings.spam_venue_count > 0 and details.venue_count > settings.spam_venue_count:
        reasons.append(VENUES)
    if settings.spam_same_name and await _count(session, Registration.commune_path == details.commune.path,
                    Registration.name_key == details.name_key, waiting, day):
        reasons.append(SAME_NAME)
    return ",".join(reasons) or None


# --- the review queue's spam tab ----------------------------------------------------------

def suspected(principal: Principal):  # noqa: ANN201
    """Flagged registrations still awaiting review in the caller's area, oldest first."""
    return select(Registration).where(within(Registration.commune_path, principal.jurisdiction),
                                      Registration.spam_reasons.is_not(None), Registration.status == SUBMITTED,
                                      Registration.list_id.is_(None))


async def list_suspected(session: AsyncSession, principal: Principal, *, limit: int = 500) -> list[Registration]:
    rows = await session.execute(suspected(principal).order_by(Registration.submitted_at, Registration.reference)
                                 .limit(limit))
    return list(rows.scalars())


async def count_suspected(session: AsyncSession, principal: Principal) -> int:
    return (await session.execute(suspected(principal).with_only_columns(func.count()))).scalar_one()


def may_discard(principal: Principal, registration: Registration) -> bool:
    """The office that receives it, or the district focal point of its district (which
    watches over its communes' queues), while it is a flagged registration awaiting review."""
    if registration.status != SUBMITTED or not registration.spam_reasons or registration.list_id is not None:
        return False
    if principal.role == Role.COMMUNE_FOCAL:
        return registration.receiver_path == principal.jurisdiction
    if principal.role == Role.DISTRICT_FOCAL:
        return registration.district_path == principal.jurisdiction
    return False


async def discard(session: AsyncSession, principal: Principal, ids: Sequence[UUID], *,
                  now: datetime | None = None) -> list[Registration]:
    """Discard flagged registrations: each is returned with the spam reasons as its reason
    (history ``discarded``, who and when; ``intake.registration.returned`` so that reporting
    counts it as returned; the unit's status page gives a general reason and the way to the
    commune). Ids the caller may not discard are skipped."""
    from ..service import Actor, history

    now = now or now_utc()
    if not ids:
        return []
    rows = await session.execute(select(Registration).where(Registration.id.in_(list(ids))).with_for_update())
    actor = Actor.of(principal)
    done = []
    events = []
    for registration in rows.scalars():
        if not principal.covers(registration.commune_path) or not may_discard(principal, registration):
            continue
        note = DISCARD_NOTE.format(reasons="; ".join(reason_labels(registration, "vi")))[:500]
        reason = UNIT_REASON
        registration.status = "returned"
        registration.reviewed_at = now
        registration.reviewed_by = actor.name
        registration.review_reason = reason
        registration.updated_at = now
        session.add(history(registration, "discarded", now, actor, note))
        events.append(RegistrationReturned(
            producer="intake", jurisdiction=registration.commune_path,
            data=RegistrationReviewedData(registration_id=registration.id, reference=registration.reference,
                                          commune_path=registration.commune_path,
                                          reviewer_path=principal.jurisdiction, reason=reason)))
        done.append(registration)
    await publish(session, *events)
    log.info("suspected spam discarded: %s of %s asked, by %s (%s): %s", len(done), len(ids), actor.name,
             principal.jurisdiction, ", ".join(r.reference for r in done))
    return done
