"""The rules a unit's details must follow, shared by the form, the API and the list import.

``validate_unit`` takes raw text values (a form post or a spreadsheet row) and returns the
cleaned details or one message per field, in Vietnamese and English.
"""
from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from libs.common import text as typed
from libs.common.adminunits import AdminTree, AdminUnit

from .routing import EXEMPTIONS, Exemption, UnitType, exemption_by_label, unit_type_by_label
from .text import Msg, clean, fold, normalize_phone

EMAIL = re.compile(r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
                   r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)+$")
TAX_CODE = re.compile(r"^[0-9A-Za-z][0-9A-Za-z-]{0,19}$")
MAX_VENUES = 500


@dataclass(frozen=True)
class Field:
    name: str
    label_vi: str
    label_en: str
    required: bool = False
    max_length: int = 300
    hint_vi: str = ""

    @property
    def label(self) -> Msg:
        return Msg(self.label_vi, self.label_en)

    @property
    def labels(self) -> tuple[str, str]:
        return (self.label_vi, self.label_en)


FIELDS: dict[str, Field] = {f.name: f for f in (
    Field("unit_name", "Tên đơn vị", "Unit name", True, 300, "Tên đầy đủ, như trên con dấu hoặc giấy phép"),
    Field("unit_type", "Loại hình đơn vị", "Unit type", True, 100, "Chọn trong danh sách"),
    Field("address", "Địa chỉ (số nhà, đường)", "Address (house number, street)", True, 300, "Ví dụ: 12 Đường Lương Văn Nho"),
    Field("commune", "Phường/xã/thị trấn", "Commune or ward", True, 100, "Chọn trong danh sách"),
    Field("district", "Quận/huyện", "District", False, 100, "Có thể để trống"),
    Field("tax_code", "Mã số thuế hoặc mã đơn vị", "Tax code or unit code", False, 20, "Không bắt buộc"),
    Field("contact_name", "Người liên hệ", "Contact person", True, 120),
    Field("contact_position", "Chức vụ", "Position", False, 120, "Không bắt buộc"),
    Field("contact_phone", "Số điện thoại", "Phone", True, 20, "Ví dụ: 0909 123 456"),
    Field("contact_email", "E-mail", "E-mail", False, 254,
          "Không bắt buộc: có e-mail thì Sở gửi tài khoản qua e-mail, không có thì gửi qua quận/huyện"),
    Field("venue_count", "Số địa điểm / cổng", "Number of venues / gates", True, 10, "Số cổng cần dán mã QR, từ 1 đến 500"),
    Field("notes", "Ghi chú", "Notes", False, 500, "Không bắt buộc"),
    Field("exemption", "Không phải triển khai (lý do, nếu có)", "Exempt (reason, if any)", False, 200,
          "Chỉ điền nếu đơn vị thuộc trường hợp không phải triển khai"),
)}

# The kind of each field in the text policy (libs/common/text.py); the others are short texts.
KINDS = {"contact_name": typed.name, "notes": typed.free_text}

REQUIRED = Msg("Chưa điền {label}", "{label_en} is required")
TOO_LONG = Msg("{label} dài quá {max} ký tự", "{label_en} is longer than {max} characters")
TOO_SHORT = Msg("{label} quá ngắn", "{label_en} is too short")
BAD_TYPE = Msg("Loại hình đơn vị không có trong danh sách", "Unknown unit type")
BAD_COMMUNE = Msg("Phường/xã không thuộc {district}", "The commune is not in {district}")
BAD_COMMUNE_SCOPE = Msg("Chỉ nhập được đơn vị của {commune}", "Only units of {commune} can be listed here")
BAD_DISTRICT = Msg("Quận/huyện phải là {district}", "The district must be {district}")
BAD_PHONE = Msg("Số điện thoại không hợp lệ (9 đến 11 chữ số, ví dụ 0909 123 456)",
                "Invalid phone number (9 to 11 digits, e.g. 0909 123 456)")
BAD_EMAIL = Msg("E-mail không hợp lệ", "Invalid e-mail address")
BAD_TAX = Msg("Mã số thuế chỉ gồm chữ số, chữ cái và dấu gạch ngang", "A tax code has only digits, letters and hyphens")
BAD_VENUES = Msg("Số địa điểm phải là số nguyên từ 1 đến {max}", "The number of venues must be a whole number from 1 to {max}")
BAD_FORM_VENUES = Msg("Biểu mẫu nhận tối đa {max} địa điểm cho một đơn vị. Đơn vị có nhiều địa điểm hơn xin liên hệ "
                      "UBND phường/xã để được nhập theo danh sách.",
                      "The form takes at most {max} venues for one unit. A unit with more should contact its commune "
                      "to be entered from a list.")
BAD_EXEMPTION = Msg("Lý do không phải triển khai không có trong danh sách", "Unknown exemption reason")


@dataclass(frozen=True)
class UnitDetails:
    unit_name: str
    unit_type: UnitType
    address: str
    commune: AdminUnit
    district: AdminUnit
    tax_code: str | None
    contact_name: str
    contact_position: str | None
    contact_phone: str
    contact_email: str | None
    venue_count: int
    notes: str | None = None
    exemption: Exemption | None = None

    @property
    def name_key(self) -> str:
        return fold(self.unit_name)[:300]

    @property
    def address_key(self) -> str:
        return fold(self.address)[:300]


@dataclass(frozen=True)
class Identity:
    """What the duplicate checks compare, read even from a row with other errors (every
    problem of every row is reported, a duplicate too): the tax code, and the name and
    address within the commune (``commune`` None when it cannot be read)."""
    tax_code: str | None
    commune: AdminUnit | None
    name_key: str
    address_key: str


def identity_of(values: Mapping[str, object], tree: AdminTree, *, district: AdminUnit | None,
                commune_scope: AdminUnit | None = None) -> Identity:
    text = {name: clean(values.get(name)) for name in ("tax_code", "commune", "unit_name", "address")}
    tax_code = text["tax_code"] if text["tax_code"] and TAX_CODE.match(text["tax_code"]) else None
    if commune_scope is not None and not text["commune"]:
        commune = commune_scope
    else:
        commune = _match_commune(text["commune"], district, tree) if text["commune"] else None
        if commune is not None and commune_scope is not None and commune.path != commune_scope.path:
            commune = None
    named = len(text["unit_name"]) >= 2 and len(text["address"]) >= 2
    return Identity(tax_code=tax_code.upper() if tax_code else None, commune=commune if named else None,
                    name_key=fold(text["unit_name"])[:300], address_key=fold(text["address"])[:300])


def _message(template: Msg, field: Field, **params: object) -> Msg:
    return template.format(label=field.label_vi, label_en=field.label_en, **params)


def short_name(unit: AdminUnit) -> str:
    """``Xã Bình Khánh`` -> ``Bình Khánh`` (the name without its division type)."""
    kind = unit.division_type
    if kind and fold(unit.name).startswith(fold(kind) + " "):
        return unit.name[len(kind):].strip()
    return unit.name


def _match_commune(value: str, district: AdminUnit | None, tree: AdminTree) -> AdminUnit | None:
    """A commune by GSO code, path or name (with or without "Xã", "Phường", "Thị trấn")."""
    candidates = district.children if district is not None else [
        u for u in tree.walk() if not u.children and u.parent is not None and u.parent.parent is not None]
    key = fold(value)
    for unit in candidates:
        if value in (unit.code, unit.path) or key == fold(unit.name):
            return unit
    matches = [u for u in candidates if key == fold(short_name(u))]
    return matches[0] if len(matches) == 1 else None


def validate_unit(values: Mapping[str, object], tree: AdminTree, *, district: AdminUnit | None,
                  commune_scope: AdminUnit | None = None, allow_exemption: bool = False,
                  ) -> tuple[UnitDetails | None, dict[str, Msg]]:
    """Clean and check one unit. ``district`` limits the communes (None: any of the city);
    ``commune_scope`` limits them to one commune (a commune focal point's own list)."""
    errors: dict[str, Msg] = {}
    typed_values = {}
    for name, field in FIELDS.items():
        raw = values.get(name)
        if isinstance(raw, str):  # the text policy (libs/common/text.py) on what was typed
            try:
                raw = KINDS.get(name, typed.short_text)(raw, field.labels)
            except typed.TextRefused as exc:
                errors[name], raw = Msg(exc.vi, exc.en), ""
        typed_values[name] = raw
    text = {name: clean(typed_values[name]) for name in FIELDS}
    for name, field in FIELDS.items():
        if name in errors:
            continue
        if field.required and not text[name] and name != "venue_count":
            if name == "commune" and commune_scope is not None:
                continue  # a commune's own list may leave its commune out
            errors[name] = _message(REQUIRED, field)
        elif len(text[name]) > field.max_length:
            errors[name] = _message(TOO_LONG, field, max=field.max_length)
    for name in ("unit_name", "address", "contact_name"):
        if name not in errors and len(text[name]) < 2:
            errors[name] = _message(TOO_SHORT, FIELDS[name])

    unit_type = unit_type_by_label(text["unit_type"]) if "unit_type" not in errors else None
    if unit_type is None and "unit_type" not in errors:
        errors["unit_type"] = BAD_TYPE

    commune = None
    if commune_scope is not None and not text["commune"]:
        commune = commune_scope
    elif "commune" not in errors:
        commune = _match_commune(text["commune"], district, tree)
        if commune is None:
            errors["commune"] = BAD_COMMUNE.format(district=district.name if district else tree.root.name)
        elif commune_scope is not None and commune.path != commune_scope.path:
            errors["commune"] = BAD_COMMUNE_SCOPE.format(commune=commune_scope.name)
            commune = None
    if text["district"] and district is not None and "district" not in errors and fold(text["district"]) not in (
            fold(district.name), district.code, fold(short_name(district))):
        errors["district"] = BAD_DISTRICT.format(district=district.name)

    phone = None
    if "contact_phone" not in errors:
        phone = normalize_phone(text["contact_phone"])
        if phone is None:
            errors["contact_phone"] = BAD_PHONE
    email = text["contact_email"] or None
    if email and "contact_email" not in errors and not EMAIL.match(email):
        errors["contact_email"] = BAD_EMAIL
    tax_code = text["tax_code"] or None
    if tax_code and "tax_code" not in errors and not TAX_CODE.match(tax_code):
        errors["tax_code"] = BAD_TAX

    venue_count = 1
    if text["venue_count"] and "venue_count" not in errors:
        try:
            venue_count = int(text["venue_count"])
        except ValueError:
            venue_count = 0
        if not 1 <= venue_count <= MAX_VENUES:
            errors["venue_count"] = BAD_VENUES.format(max=MAX_VENUES)

    exemption = None
    if allow_exemption and text["exemption"] and "exemption" not in errors:
        exemption = exemption_by_label(text["exemption"]) or EXEMPTIONS.get(text["exemption"])
        if exemption is None:
            errors["exemption"] = BAD_EXEMPTION

    if errors or unit_type is None or commune is None or phone is None:
        return None, errors
    return UnitDetails(
        unit_name=text["unit_name"], unit_type=unit_type, address=text["address"], commune=commune,
        district=commune.parent, tax_code=tax_code.upper() if tax_code else None,
        contact_name=text["contact_name"], contact_position=text["contact_position"] or None,
        contact_phone=phone, contact_email=email.lower() if email else None, venue_count=venue_count,
        notes=text["notes"] or None, exemption=exemption,
    ), {}
