"""The columns of the list template (DOMAIN.md: registration list columns) and their headers."""
from __future__ import annotations

from openpyxl.cell.cell import Cell

from ..text import fold, neutralise
from ..validation import FIELDS

DATA_SHEET = {"vi": "Danh sách", "en": "List"}
HELP_SHEET = {"vi": "Hướng dẫn", "en": "Instructions"}
LOOKUP_SHEET = "DanhMuc"
NUMBER = ("no", "STT", "No.")
ORDER = ("unit_name", "unit_type", "address", "commune", "district", "tax_code", "contact_name", "contact_position",
         "contact_phone", "contact_email", "venue_count", "notes", "exemption")
TEXT_COLUMNS = ("tax_code", "contact_phone")  # typed as text: keep leading zeros
WIDTHS = {"no": 6, "unit_name": 36, "unit_type": 30, "address": 34, "commune": 24, "district": 18, "tax_code": 18,
          "contact_name": 24, "contact_position": 18, "contact_phone": 16, "contact_email": 28, "venue_count": 12,
          "notes": 28, "exemption": 40}
ERROR_HEADER = {"vi": "LỖI CẦN SỬA", "en": "ERRORS TO FIX"}
REFERENCE_HEADER = {"vi": "Mã đăng ký", "en": "Reference"}
STATUS_URL_HEADER = {"vi": "Trang theo dõi", "en": "Status page"}


def header(name: str, lang: str) -> str:
    if name == "no":
        return NUMBER[2] if lang == "en" else NUMBER[1]
    field = FIELDS[name]
    label = field.label_en if lang == "en" else field.label_vi
    return f"{label} *" if field.required else label


_HEADER_KEYS: dict[str, str] = {}
for _name in ORDER:
    for _key in (FIELDS[_name].label_vi, FIELDS[_name].label_en, _name):
        _HEADER_KEYS[fold(_key)] = _name
for _key in NUMBER:
    _HEADER_KEYS[fold(_key)] = "no"
# Short forms people type instead of the template's headers.
for _alias, _name in {"ten": "unit_name", "loai hinh": "unit_type", "loai don vi": "unit_type", "dia chi": "address",
                      "phuong xa": "commune", "xa phuong": "commune", "phuong xa thi tran": "commune",
                      "quan huyen": "district", "ma so thue": "tax_code", "mst": "tax_code",
                      "dien thoai": "contact_phone", "sdt": "contact_phone", "so dt": "contact_phone",
                      "email": "contact_email", "so dia diem": "venue_count", "so cong": "venue_count",
                      "so tt": "no", "tt": "no"}.items():
    _HEADER_KEYS.setdefault(_alias, _name)


def field_for_header(text: object) -> str | None:
    if text is None:
        return None
    return _HEADER_KEYS.get(fold(str(text).replace("*", "")))


def write_text(cell: Cell, value: object) -> None:
    """Write a value so that a spreadsheet never evaluates it (formula-looking text is neutralised)."""
    value = neutralise(value)
    cell.value = value
    if isinstance(value, str):
        cell.data_type = "s"
