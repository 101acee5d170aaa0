"""The units of the demo week (``khaibao up`` on a fresh data folder), registered eight days
ago through intake's own use cases: each accepted by its focal point, the communes' lists
sent and the district's batch forwarded to the city, whose issuing then creates the units'
accounts and venues (libs/common/demo_week.py). Their events reach reporting and
provisioning like any others.
"""
from __future__ import annotations

from datetime import datetime, timedelta

from libs.common.adminunits import AdminTree
from libs.common.auth import Principal, Role
from libs.common.db import Database

from .lists import forward_batch, send_list
from .models import Registration
from .review import review
from .routing import DISTRICT as DISTRICT_LEVEL
from .routing import UNIT_TYPES, commune_and_district
from .service import register_units
from .validation import UnitDetails

DISTRICT = "79/787"
CAN_THANH, BINH_KHANH, LONG_HOA, LY_NHON = "79/787/27664", "79/787/27667", "79/787/27679", "79/787/27682"
COMMUNE_NAMES = {CAN_THANH: "UBND thị trấn Cần Thạnh", BINH_KHANH: "UBND xã Bình Khánh",
                 LONG_HOA: "UBND xã Long Hòa", LY_NHON: "UBND xã Lý Nhơn"}

UNITS = (
    # name, type, address, commune, tax code, contact, position, phone, e-mail, venues
    ("Trường Tiểu học Cần Thạnh", "school", "Đường Lương Văn Nho, khu phố Miễu Ba", CAN_THANH, None,
     "Ngô Thị Thu", "Hiệu trưởng", "0909000201", "th.canthanh@truonghoc.example", 2),
    ("Siêu thị Cần Thạnh", "supermarket", "Đường Thạnh Thới, khu phố Giồng Ao", CAN_THANH, "0300000202",
     "Bùi Văn Nam", "Cửa hàng trưởng", "0909000202", "sieuthi.canthanh@example.com", 1),
    ("Bến phà Bình Khánh", "business", "Đường Rừng Sác, ấp Bình Trường", BINH_KHANH, "0300000203",
     "Trương Văn Lộc", "Trưởng bến", "0909000203", "benpha.binhkhanh@example.com", 2),
    ("Chợ Long Hòa", "market", "Đường Duyên Hải, ấp Long Hòa", LONG_HOA, None,
     "Đỗ Thị Hạnh", "Trưởng ban quản lý chợ", "0909000204", "cho.longhoa@example.com", 2),
    ("Công ty TNHH Du lịch Sinh thái Cần Giờ", "company", "Ấp Long Thạnh", LONG_HOA, "0300000205",
     "Phan Minh Khoa", "Giám đốc", "0909000205", "lienhe@dulichcangio.example", 1),
    ("Trường THCS Lý Nhơn", "school", "Ấp Lý Hòa Hiệp", LY_NHON, None,
     "Vũ Thị Kim", "Hiệu trưởng", "0909000206", "thcs.lynhon@truonghoc.example", 1),
    ("Bệnh viện huyện Cần Giờ", "public_service", "Đường Duyên Hải, thị trấn Cần Thạnh", CAN_THANH, None,
     "Hồ Văn Thành", "Phó Giám đốc", "0909000207", "benhvien.cangio@example.com", 2),
)


def official(role: Role, path: str, name: str) -> Principal:
    return Principal(account_id="demo-week", username="demo", name=name, role=role,
                     jurisdiction=path, claims={"jti": "demo-week"})


async def register_week(database: Database, tree: AdminTree, *, deadline, start: datetime) -> int:  # noqa: ANN001
    """Register, accept, send and forward the demo week's units (one transaction); how many."""
    details = []
    for name, kind, address, commune_path, tax, contact, position, phone, email, venues in UNITS:
        commune, district = commune_and_district(tree, commune_path)
        details.append(UnitDetails(unit_name=name, unit_type=UNIT_TYPES[kind], address=address, commune=commune,
                                   district=district, tax_code=tax, contact_name=contact, contact_position=position,
                                   contact_phone=phone, contact_email=email, venue_count=venues))
    district = official(Role.DISTRICT_FOCAL, DISTRICT, "Phòng Văn hóa và Thông tin huyện Cần Giờ")
    async with database.transaction() as session:
        made = await register_units(session, details, deadline=deadline, now=start)
        reviewed = start + timedelta(hours=5)
        for unit, registration in zip(UNITS, made, strict=True):
            row = await session.get(Registration, registration.id)
            by_district = UNIT_TYPES[unit[1]].receiver == DISTRICT_LEVEL
            reviewer = district if by_district else official(Role.COMMUNE_FOCAL, unit[3], COMMUNE_NAMES[unit[3]])
            await review(session, reviewer, row, "accept", now=reviewed)
        await session.flush()
        for commune_path in dict.fromkeys(u[3] for u in UNITS):
            await send_list(session, official(Role.COMMUNE_FOCAL, commune_path, COMMUNE_NAMES[commune_path]),
                            now=reviewed + timedelta(hours=2))
            await session.flush()
        await forward_batch(session, district, [r.id for r in made], now=reviewed + timedelta(hours=6))
    return len(UNITS)
