"""A commune sends its accepted list to the district; the district forwards a batch to the
city DIC through the Support Channel (circular 1.2 and 1.3 step 2).

The forwarded batch is the ``intake.batch.forwarded`` event: it carries every unit's
details, so provisioning issues accounts and the notification service posts it to the
Support Channel without reading intake. Only accepted registrations go: exempt,
returned and duplicate ones never do.
"""
from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from uuid import UUID

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from libs.common.auth import Principal, Role, within
from libs.common.events.intake import (
    BatchForwarded,
    BatchForwardedData,
    ForwardedUnit,
    ListSent,
    ListSentData,
)
from libs.common.outbox import publish

from .models import Batch, CommuneList, Registration
from .review import ReviewError
from .routing import ACCEPTED, COMMUNE, DISTRICT
from .service import Actor, history, unique_references
from .text import Msg, now_utc

UNITS_PER_EVENT = 500  # a broker caps the message size (Kafka: 1 MB by default)

NOTHING_TO_SEND = Msg("Chưa có đăng ký nào đã duyệt mà chưa gửi", "No accepted registration is waiting to be sent")
NOTHING_TO_FORWARD = Msg("Chưa có đăng ký nào sẵn sàng chuyển lên Sở", "No registration is ready to forward")
NOT_FORWARDABLE = Msg("Có đăng ký không thể chuyển (chưa duyệt, không phải triển khai, đã chuyển hoặc ngoài địa bàn): {refs}",
                      "Some registrations cannot be forwarded (not accepted, exempt, already forwarded or outside "
                      "your district): {refs}")
COMMUNE_ONLY = Msg("Chỉ đầu mối UBND phường/xã gửi danh sách lên quận/huyện",
                   "Only a commune focal point sends its list to the district")
DISTRICT_ONLY = Msg("Chỉ đầu mối Phòng Văn hóa và Thông tin quận/huyện chuyển danh sách lên Sở",
                    "Only the district focal point forwards to the city DIC")


def sendable_query(principal: Principal):  # noqa: ANN201
    return select(Registration).where(
        Registration.receiver == COMMUNE, Registration.receiver_path == principal.jurisdiction,
        Registration.status == ACCEPTED, Registration.list_id.is_(None),
    ).order_by(Registration.reviewed_at, Registration.reference)


async def sendable(session: AsyncSession, principal: Principal) -> list[Registration]:
    """The commune's accepted registrations not yet sent to the district."""
    if principal.role != Role.COMMUNE_FOCAL:
        return []
    return list((await session.execute(sendable_query(principal))).scalars())


async def send_list(session: AsyncSession, principal: Principal, *, now: datetime | None = None) -> CommuneList:
    if principal.role != Role.COMMUNE_FOCAL:
        raise ReviewError(COMMUNE_ONLY, 403)
    now = now or now_utc()
    registrations = list((await session.execute(sendable_query(principal).with_for_update())).scalars())
    if not registrations:
        raise ReviewError(NOTHING_TO_SEND)
    district_path = registrations[0].district_path
    [reference] = await unique_references(session, CommuneList.reference, 1, now, "DS")
    actor = Actor.of(principal)
    sent = CommuneList(reference=reference, commune_path=principal.jurisdiction, district_path=district_path,
                       count=len(registrations), sent_at=now, sent_by=actor.name)
    session.add(sent)
    for registration in registrations:
        registration.list_id, registration.sent_at, registration.updated_at = sent.id, now, now
        session.add(history(registration, "sent", now, actor, reference))
    await publish(session, ListSent(producer="intake", jurisdiction=principal.jurisdiction, data=ListSentData(
        list_id=sent.id, reference=reference, commune_path=principal.jurisdiction, district_path=district_path,
        registration_ids=[r.id for r in registrations])))
    return sent


def forwardable_query(district_path: str):  # noqa: ANN201
    """Accepted and not yet forwarded: the district's own, and those its communes sent."""
    return select(Registration).where(
        Registration.district_path == district_path, Registration.status == ACCEPTED,
        Registration.batch_id.is_(None),
        (Registration.receiver == DISTRICT) | Registration.list_id.is_not(None),
    ).order_by(Registration.commune_path, Registration.reference)


async def forwardable(session: AsyncSession, principal: Principal) -> list[Registration]:
    if principal.role != Role.DISTRICT_FOCAL:
        return []
    return list((await session.execute(forwardable_query(principal.jurisdiction))).scalars())


def _unit(registration: Registration) -> ForwardedUnit:
    return ForwardedUnit(
        registration_id=registration.id, reference=registration.reference, unit_name=registration.unit_name,
        unit_type=registration.unit_type, address=registration.address, commune_path=registration.commune_path,
        tax_code=registration.tax_code, contact_name=registration.contact_name,
        contact_position=registration.contact_position, contact_phone=registration.contact_phone,
        contact_email=registration.contact_email, venue_count=registration.venue_count, late=registration.late,
    )


async def forward_batch(session: AsyncSession, principal: Principal, registration_ids: Sequence[UUID] | None = None,
                        *, now: datetime | None = None) -> Batch:
    """Forward the chosen (default: all) ready registrations of the district to the city DIC."""
    if principal.role != Role.DISTRICT_FOCAL:
        raise ReviewError(DISTRICT_ONLY, 403)
    now = now or now_utc()
    ready = {r.id: r for r in (await session.execute(
        forwardable_query(principal.jurisdiction).with_for_update())).scalars()}
    if registration_ids is None:
        chosen = list(ready.values())
    else:
        wanted = list(dict.fromkeys(registration_ids))
        missing = [i for i in wanted if i not in ready]
        if missing:
            refs = (await session.execute(select(Registration.reference).where(
                Registration.id.in_(missing), within(Registration.commune_path, principal.jurisdiction)))).scalars()
            shown = ", ".join(sorted(refs)) or str(len(missing))
            raise ReviewError(NOT_FORWARDABLE.format(refs=shown), 422)
        chosen = [ready[i] for i in wanted]
    if not chosen:
        raise ReviewError(NOTHING_TO_FORWARD)
    [reference] = await unique_references(session, Batch.reference, 1, now, "CS")
    parts = -(-len(chosen) // UNITS_PER_EVENT)
    actor = Actor.of(principal)
    batch = Batch(reference=reference, district_path=principal.jurisdiction, count=len(chosen), parts=parts,
                  forwarded_at=now, forwarded_by=actor.name)
    session.add(batch)
    for registration in chosen:
        registration.batch_id, registration.forwarded_at, registration.updated_at = batch.id, now, now
        session.add(history(registration, "forwarded", now, actor, reference))
    await publish(session, *[
        BatchForwarded(producer="intake", jurisdiction=principal.jurisdiction, data=BatchForwardedData(
            batch_id=batch.id, reference=reference, district_path=principal.jurisdiction,
            units=[_unit(r) for r in chosen[start:start + UNITS_PER_EVENT]],
            part=index + 1, parts=parts, total_units=len(chosen), forwarded_at=now))
        for index, start in enumerate(range(0, len(chosen), UNITS_PER_EVENT))
    ])
    return batch


async def lists_within(session: AsyncSession, principal: Principal, limit: int = 200) -> list[CommuneList]:
    rows = await session.execute(select(CommuneList).where(within(CommuneList.commune_path, principal.jurisdiction))
                                 .order_by(CommuneList.sent_at.desc()).limit(limit))
    return list(rows.scalars())


async def get_list(session: AsyncSession, principal: Principal, list_id: UUID) -> CommuneList | None:
    sent = await session.get(CommuneList, list_id)
    return sent if sent is not None and principal.covers(sent.commune_path) else None


async def batches_within(session: AsyncSession, principal: Principal, limit: int = 200) -> list[Batch]:
    """Batches of the caller's district (or all districts of the city); a commune sees none."""
    if principal.role == Role.COMMUNE_FOCAL:
        return []
    rows = await session.execute(select(Batch).where(within(Batch.district_path, principal.jurisdiction))
                                 .order_by(Batch.forwarded_at.desc()).limit(limit))
    return list(rows.scalars())


async def get_batch(session: AsyncSession, principal: Principal, batch_id: UUID) -> Batch | None:
    batch = await session.get(Batch, batch_id)
    if batch is None or principal.role == Role.COMMUNE_FOCAL or not principal.covers(batch.district_path):
        return None
    return batch


async def members(session: AsyncSession, principal: Principal, *, list_id: UUID | None = None,
                  batch_id: UUID | None = None) -> list[Registration]:
    statement = select(Registration).where(within(Registration.commune_path, principal.jurisdiction))
    if list_id is not None:
        statement = statement.where(Registration.list_id == list_id)
    if batch_id is not None:
        statement = statement.where(Registration.batch_id == batch_id)
    return list((await session.execute(statement.order_by(Registration.commune_path, Registration.reference)))
                .scalars())
