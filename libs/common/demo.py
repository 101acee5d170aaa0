"""The demo data of the local one-command run, shared by the launcher and provisioning.

Only used when KHAIBAO_DEMO is on, which the settings refuse in production. The district
is Cần Giờ, whose circular this system implements.
"""
from __future__ import annotations

from .auth import Role

DEMO_PASSWORD = "khaibao-demo-2021"
DISTRICT = "79/787"          # Huyện Cần Giờ
COMMUNE = "79/787/27664"     # Thị trấn Cần Thạnh
UNIT_NAME = "Chợ Cần Thạnh"
UNIT_ADDRESS = "Đường Lương Văn Nho, thị trấn Cần Thạnh"
VENUE_NAMES = ("Cổng chính", "Cổng phụ")

DEMO_ACCOUNTS = (
    ("so.tttt", "Sở Thông tin và Truyền thông", Role.CITY_DIC, "79"),
    ("vhtt.cangio", "Phòng Văn hóa và Thông tin huyện Cần Giờ", Role.DISTRICT_FOCAL, DISTRICT),
    ("ubnd.canthanh", "UBND thị trấn Cần Thạnh", Role.COMMUNE_FOCAL, COMMUNE),
    ("ttyt.cangio", "Trung tâm Y tế huyện Cần Giờ", Role.HEALTH_OFFICER, DISTRICT),
    ("donvi.chocanthanh", "Ban quản lý chợ Cần Thạnh", Role.UNIT_ADMIN, COMMUNE),
    ("cong.chocanthanh", "Nhân viên cổng chợ Cần Thạnh", Role.GATE_STAFF, COMMUNE),
    # Two officers of the city health department: one proposes a screening rule set, the other approves it.
    ("syt.nghiepvu", "Sở Y tế — Phòng Nghiệp vụ Y", Role.HEALTH_OFFICER, "79"),
    ("syt.phogiamdoc", "Sở Y tế — Phó Giám đốc", Role.HEALTH_OFFICER, "79"),
)
