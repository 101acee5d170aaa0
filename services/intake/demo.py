"""Demo registrations in Cần Giờ for the one-command run (KHAIBAO_DEMO), loaded once.

They go through the real use cases, so their events reach reporting and notification
like any others: some wait for review, one was returned, one is exempt, a commune sent
its list, and the district forwarded a first batch to the city. None is in Thị trấn
Cần Thạnh, whose demo focal point starts with an empty queue.
"""
from __future__ import annotations

import logging
from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from libs.common.auth import Principal, Role
from libs.common.runtime import Runtime

from .lists import forward_batch, send_list
from .models import Registration
from .review import review
from .routing import UNIT_TYPES, commune_and_district
from .service import register_units
from .text import fold, now_utc
from .validation import UnitDetails

log = logging.getLogger(__name__)
DISTRICT = "79/787"
BINH_KHANH, LONG_HOA, AN_THOI_DONG, TAM_THON_HIEP = "79/787/27667", "79/787/27679", "79/787/27673", "79/787/27670"

UNITS = (
    # key, name, type, address, commune, tax code, contact, position, phone, e-mail, venues
    ("company", "Công ty TNHH Thủy sản Bình Khánh", "company", "15 Đường Rừng Sác, ấp Bình Thạnh", BINH_KHANH,
     "0300000101", "Trần Thị Mai", "Giám đốc", "0909000101", "lienhe@thuysanbk.example", 2),
    ("school", "Trường THCS Bình Khánh", "school", "Ấp Bình Phước", BINH_KHANH, None, "Lê Văn Hùng", "Hiệu trưởng",
     "0909000102", "thcs.binhkhanh@truonghoc.example", 2),
    ("market", "Chợ Bình Khánh", "market", "Ấp Bình Thạnh", BINH_KHANH, None, "Phạm Văn Tư", "Trưởng ban quản lý chợ",
     "0909000103", None, 3),
    ("supermarket", "Siêu thị Long Hòa", "supermarket", "Đường Duyên Hải, ấp Long Thạnh", LONG_HOA, "0300000104",
     "Nguyễn Thị Lan", "Cửa hàng trưởng", "0909000104", "sieuthi.longhoa@example.com", 1),
    ("pharmacy", "Nhà thuốc Long Hòa", "essential_shop", "12 Đường Duyên Hải, ấp Long Thạnh", LONG_HOA, None,
     "Võ Minh Tâm", "Chủ nhà thuốc", "0909000105", None, 1),
    ("factory", "Xưởng nước đá An Thới Đông", "factory", "Ấp An Hòa", AN_THOI_DONG, "0300000106", "Huỳnh Văn Sáu",
     "Quản đốc", "0909000106", None, 1),
    ("agency", "Phòng Kinh tế huyện Cần Giờ", "state_agency", "Đường Lương Văn Nho, ấp An Lộc", TAM_THON_HIEP, None,
     "Đặng Quốc Việt", "Chánh Văn phòng", "0909000107", "phongkinhte@cangio.example", 1),
    ("union", "Hội Liên hiệp Phụ nữ huyện Cần Giờ", "socio_political", "Ấp An Lộc", TAM_THON_HIEP, None,
     "Lý Thị Hoa", "Phó Chủ tịch", "0909000108", None, 1),
)


def _official(role: Role, path: str, name: str) -> Principal:
    return Principal(account_id="demo-seed", username="demo", name=name, role=role,
                     jurisdiction=path, claims={"jti": "demo"})


async def seed_demo(runtime: Runtime) -> None:
    tree = runtime.tree
    first = UNITS[0]
    async with runtime.database.transaction() as session:
        exists = (await session.execute(select(Registration.id).where(
            Registration.commune_path == first[4], Registration.name_key == fold(first[1])))).first()
    if exists:
        return
    details = []
    for _key, name, kind, address, commune_path, tax, contact, position, phone, email, venues in UNITS:
        commune, district = commune_and_district(tree, commune_path)
        details.append(UnitDetails(unit_name=name, unit_type=UNIT_TYPES[kind], address=address, commune=commune,
                                   district=district, tax_code=tax, contact_name=contact, contact_position=position,
                                   contact_phone=phone, contact_email=email, venue_count=venues))
    binh_khanh = _official(Role.COMMUNE_FOCAL, BINH_KHANH, "UBND xã Bình Khánh")
    long_hoa = _official(Role.COMMUNE_FOCAL, LONG_HOA, "UBND xã Long Hòa")
    an_thoi_dong = _official(Role.COMMUNE_FOCAL, AN_THOI_DONG, "UBND xã An Thới Đông")
    district = _official(Role.DISTRICT_FOCAL, DISTRICT, "Phòng Văn hóa và Thông tin huyện Cần Giờ")
    start = now_utc() - timedelta(days=2)
    try:
        async with runtime.database.transaction() as session:
            made = await register_units(session, details, deadline=runtime.settings.campaign_deadline, now=start)
            by_key = {unit[0]: await session.get(Registration, registration.id)
                      for unit, registration in zip(UNITS, made, strict=True)}
            later = start + timedelta(hours=20)
            await review(session, binh_khanh, by_key["company"], "accept", now=later)
            await review(session, binh_khanh, by_key["school"], "accept", now=later)
            await review(session, long_hoa, by_key["pharmacy"], "exempt", reason="ncovi",
                         note="Nhà thuốc đã dùng NCOVI từ tháng 5", now=later)
            await review(session, an_thoi_dong, by_key["factory"], "return", now=later,
                         reason="Số điện thoại người liên hệ không liên lạc được; đề nghị kiểm tra lại")
            await review(session, district, by_key["agency"], "accept", now=later)
            await session.flush()
            await send_list(session, binh_khanh, now=later + timedelta(hours=1))
            await session.flush()
            await forward_batch(session, district, [by_key["company"].id, by_key["agency"].id],
                                now=later + timedelta(hours=3))
    except IntegrityError:
        log.info("demo registrations were loaded by another process")
        return
    log.info("demo registrations loaded: %d in Cần Giờ", len(UNITS))
