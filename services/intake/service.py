"""Use cases of the intake service. Plain async functions; the caller owns the transaction."""
from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import UTC, date, datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from libs.common.adminunits import AdminTree
from libs.common.auth import Principal, within
from libs.common.events.intake import RegistrationSubmitted, RegistrationSubmittedData
from libs.common.outbox import publish

from .models import Registration
from .schemas import RegistrationIn


@dataclass(frozen=True)
class UnitType:
    code: str
    label_vi: str
    label_en: str
    receiver: str  # "district" or "commune" (circular point 1.2)


UNIT_TYPES = {t.code: t for t in (
    UnitType("state_agency", "Cơ quan nhà nước", "State agency", "district"),
    UnitType("party_agency", "Cơ quan Đảng", "Party agency", "district"),
    UnitType("socio_political", "Tổ chức chính trị - xã hội cấp huyện", "District socio-political organisation", "district"),
    UnitType("district_board", "Ban, ngành cấp huyện", "District board or sector", "district"),
    UnitType("company", "Công ty, doanh nghiệp", "Company", "commune"),
    UnitType("factory", "Nhà máy, xí nghiệp", "Factory", "commune"),
    UnitType("business", "Cơ sở sản xuất, kinh doanh", "Production or business establishment", "commune"),
    UnitType("school", "Trường học", "School", "commune"),
    UnitType("supermarket", "Siêu thị", "Supermarket", "commune"),
    UnitType("market", "Chợ", "Market", "commune"),
    UnitType("essential_shop", "Cửa hàng cung cấp dịch vụ thiết yếu", "Essential-service shop", "commune"),
    UnitType("other", "Đơn vị khác", "Other unit", "commune"),
)}


class RegistrationRejected(ValueError):
    """Input that passed the schema but not the domain rules (shown to the user as is)."""


def new_reference(today: date) -> str:
    return f"DK{today:%y%m%d}-{secrets.token_hex(3).upper()}"


async def submit_registration(session: AsyncSession, tree: AdminTree, data: RegistrationIn, *,
                              deadline: date | None, now: datetime | None = None) -> Registration:
    """A unit's registration, routed to its receiving focal point (point 1.2)."""
    now = now or datetime.now(UTC)
    unit_type = UNIT_TYPES.get(data.unit_type)
    if unit_type is None:
        raise RegistrationRejected("Loại đơn vị không hợp lệ / Unknown unit type")
    commune = tree.by_code(data.commune_code)
    if commune is None or commune.children or commune.parent is None or commune.parent.parent is None:
        raise RegistrationRejected("Phường/xã không thuộc thành phố / Unknown commune")
    receiver_path = commune.parent.path if unit_type.receiver == "district" else commune.path
    registration = Registration(
        reference=new_reference(now.date()), unit_name=data.unit_name, unit_type=unit_type.code,
        address=data.address, commune_path=commune.path, receiver=unit_type.receiver,
        receiver_path=receiver_path, tax_code=data.tax_code, contact_name=data.contact_name,
        contact_position=data.contact_position, contact_phone=data.contact_phone,
        contact_email=data.contact_email, venue_count=data.venue_count,
        late=deadline is not None and now.date() > deadline, submitted_at=now,
    )
    session.add(registration)
    await publish(session, RegistrationSubmitted(
        producer="intake", jurisdiction=commune.path,
        data=RegistrationSubmittedData(
            registration_id=registration.id, reference=registration.reference,
            unit_name=registration.unit_name, unit_type=registration.unit_type,
            address=registration.address, commune_path=registration.commune_path,
            receiver=unit_type.receiver, tax_code=registration.tax_code,
            contact_name=registration.contact_name, contact_position=registration.contact_position,
            contact_phone=registration.contact_phone, contact_email=registration.contact_email,
            venue_count=registration.venue_count, late=registration.late,
        ),
    ))
    return registration


async def list_registrations(session: AsyncSession, principal: Principal, *, limit: int = 200) -> list[Registration]:
    """Registrations of units located in the caller's jurisdiction, newest first."""
    rows = await session.execute(
        select(Registration).where(within(Registration.commune_path, principal.jurisdiction))
        .order_by(Registration.submitted_at.desc()).limit(limit)
    )
    return list(rows.scalars())
