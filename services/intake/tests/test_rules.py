"""Small rules: phone numbers as people and spreadsheets write them, the deadline in Ho Chi
Minh City time, matching communes by name, who may decide on a registration."""
from __future__ import annotations

import re
from datetime import UTC, date, datetime

import pytest

from libs.common.auth import Role
from services.intake.review import allowed_actions
from services.intake.service import register_units
from services.intake.text import fold, is_late, normalize_phone
from services.intake.validation import validate_unit

from .conftest import CITY, COMMUNE, DISTRICT, OTHER_COMMUNE, official


@pytest.mark.parametrize("raw,digits", [
    ("0909 123 456", "0909123456"), ("0909.123.456", "0909123456"), ("+84 909 123 456", "0909123456"),
    ("84909123456", "0909123456"), ("909123456", "0909123456"), ("028 3874 0001", "02838740001"),
    ("2838740001", "02838740001"), ("(028) 3874-0001", "02838740001"),
])
def test_phone_numbers(raw, digits):
    assert normalize_phone(raw) == digits


@pytest.mark.parametrize("raw", ["12345", "0909abc123", "", "++84", "0909 123 456 789 0", "٠٩٠٩١٢٣٤٥٦",
                                 "0909\x00123456", "0909\x85123456"])
def test_not_phone_numbers(raw):
    assert normalize_phone(raw) is None


def test_the_deadline_is_a_day_in_ho_chi_minh_city():
    deadline = date(2021, 6, 30)
    assert not is_late(datetime(2021, 6, 30, 16, 59, tzinfo=UTC), deadline)   # 23:59 in the city
    assert is_late(datetime(2021, 6, 30, 17, 0, tzinfo=UTC), deadline)       # 00:00 on 1 July
    assert not is_late(datetime(2030, 1, 1, tzinfo=UTC), None)


def test_communes_are_found_by_code_or_name(tree):
    district = tree.get("79/787")
    base = {"unit_name": "Chợ", "unit_type": "Chợ", "address": "1 Đường A", "contact_name": "An",
            "contact_phone": "0909123456"}
    for written in ("27667", "Xã Bình Khánh", "xã bình khánh", "Binh Khanh", "BÌNH KHÁNH"):
        details, errors = validate_unit({**base, "commune": written}, tree, district=district)
        assert errors == {} and details.commune.path == "79/787/27667", written
    _, errors = validate_unit({**base, "commune": "Bến Nghé"}, tree, district=district)
    assert errors["commune"].vi == "Phường/xã không thuộc Huyện Cần Giờ"
    assert fold("Đường Lương Văn Nho, Thị trấn") == "duong luong van nho thi tran"


async def test_who_may_decide(database, tree):
    rows = []
    for kind in ("school", "state_agency"):
        details, _ = validate_unit({"unit_name": kind, "unit_type": kind, "address": "1 Đường A", "commune": "27664",
                                    "contact_name": "An", "contact_phone": "0909123456"}, tree, district=None)
        rows.append(details)
    async with database.transaction() as session:
        school, agency = await register_units(session, rows, deadline=None)
    assert allowed_actions(COMMUNE, school) == ("accept", "return", "duplicate", "exempt")
    assert allowed_actions(COMMUNE, agency) == ()          # the district receives it
    assert allowed_actions(DISTRICT, agency) == ("accept", "return", "duplicate", "exempt")
    assert allowed_actions(DISTRICT, school) == ()         # not sent by the commune yet
    assert allowed_actions(OTHER_COMMUNE, school) == ()
    assert allowed_actions(CITY, school) == ()
    assert allowed_actions(official(Role.HEALTH_OFFICER, "79/787"), school) == ()
    school.list_id = agency.id                             # once sent, the district reviews it
    assert allowed_actions(COMMUNE, school) == ()
    assert allowed_actions(DISTRICT, school) == ("return", "duplicate", "exempt")
    school.batch_id = agency.id                            # once forwarded, nobody changes it
    assert allowed_actions(DISTRICT, school) == ()


async def test_references_carry_the_day_in_the_city(database, tree):
    """At 00:30 in Ho Chi Minh City the UTC date is still the day before: a registration's
    reference carries the city's day."""
    details, _ = validate_unit({"unit_name": "Chợ đêm", "unit_type": "Chợ", "address": "1 Đường A", "commune": "27664",
                                "contact_name": "An", "contact_phone": "0909123456"}, tree, district=None)
    after_midnight = datetime(2021, 6, 14, 17, 30, tzinfo=UTC)  # 00:30 on 15/06 in the city
    evening = datetime(2021, 6, 14, 16, 30, tzinfo=UTC)  # 23:30 on 14/06 in the city
    async with database.transaction() as session:
        [late] = await register_units(session, [details], deadline=None, now=after_midnight)
        [early] = await register_units(session, [details], deadline=None, now=evening)
    assert re.fullmatch(r"DK210615-[0-9A-Z]{6}", late.reference), late.reference
    assert re.fullmatch(r"DK210614-[0-9A-Z]{6}", early.reference), early.reference


@pytest.mark.parametrize(("field", "value", "message"), [
    ("contact_name", "Nguyễn\x00Văn An", "Người liên hệ có ký tự điều khiển"),
    ("contact_name", "𝕳𝖊𝖑𝖑𝖔", "Người liên hệ được viết bằng chữ trang trí"),
    ("contact_name", "An'; ( )", "Người liên hệ chỉ gồm chữ cái"),
    ("unit_name", "Chợ\u202e Bình Khánh", "Tên đơn vị có ký tự ẩn"),
    ("unit_name", "Chợ Bình Khánh\x85", "Tên đơn vị có ký tự điều khiển"),
    ("address", "1 Đường\ue000 A", "Địa chỉ (số nhà, đường) có ký tự không thuộc bảng chữ cái"),
    ("contact_position", "Hiệu\u2066 trưởng", "Chức vụ có ký tự ẩn"),
    ("notes", "Ghi chú\x1b[31m", "Ghi chú có ký tự điều khiển"),
])
def test_a_row_or_a_form_with_hostile_text_is_refused_naming_the_column(tree, field, value, message):
    """The form, the Excel import and the e-mailed lists share validate_unit: the text policy
    (libs/common/text.py) refuses, naming the field, in Vietnamese and English."""
    base = {"unit_name": "Chợ Bình Khánh", "unit_type": "Chợ", "address": "1 Đường A", "commune": "27667",
            "contact_name": "Lê Thị Hoa", "contact_phone": "0909123456"}
    details, errors = validate_unit({**base, field: value}, tree, district=tree.get("79/787"))
    assert details is None and list(errors) == [field]
    assert errors[field].vi.startswith(message), errors[field].vi
    assert errors[field].en


def test_a_row_keeps_ordinary_text_and_line_breaks_of_a_cell(tree):
    base = {"unit_name": "Chợ Bình Khánh\n(khu A)", "unit_type": "Chợ", "address": "1 Đường A\tấp 2",
            "commune": "27667", "contact_name": "O'Neil Lê-Hoa", "contact_phone": "0909123456",
            "notes": "Dòng 1\r\nDòng 2"}
    details, errors = validate_unit(base, tree, district=tree.get("79/787"))
    assert errors == {}
    assert (details.unit_name, details.address, details.contact_name) == (
        "Chợ Bình Khánh (khu A)", "1 Đường A ấp 2", "O'Neil Lê-Hoa")
