"""Who receives a registration (circular point 1.2), the exemptions, and the states.

District-level bodies register with the district focal point (the Division of Culture
and Information); businesses, schools, markets and shops with their commune's People's
Committee, which sends its accepted list on to the district. The tables here are data:
labels in Vietnamese and English, and the receiver of each unit type.
"""
from __future__ import annotations

from dataclasses import dataclass

from libs.common.adminunits import AdminTree, AdminUnit

from .text import Msg, fold

DISTRICT = "district"
COMMUNE = "commune"


@dataclass(frozen=True)
class UnitType:
    code: str
    label_vi: str
    label_en: str
    receiver: str  # DISTRICT or COMMUNE (circular point 1.2)

    def label(self, lang: str = "vi") -> str:
        return self.label_en if lang == "en" else self.label_vi


UNIT_TYPES: dict[str, UnitType] = {t.code: t for t in (
    UnitType("state_agency", "Cơ quan nhà nước", "State agency", DISTRICT),
    UnitType("party_agency", "Cơ quan Đảng", "Party agency", DISTRICT),
    UnitType("socio_political", "Tổ chức chính trị - xã hội cấp huyện", "District socio-political organisation",
             DISTRICT),
    UnitType("district_board", "Ban, ngành cấp huyện", "District board or sector", DISTRICT),
    UnitType("public_service", "Đơn vị sự nghiệp công lập cấp huyện", "District public service unit", DISTRICT),
    UnitType("company", "Công ty, doanh nghiệp", "Company", COMMUNE),
    UnitType("factory", "Nhà máy, xí nghiệp", "Factory", COMMUNE),
    UnitType("business", "Cơ sở sản xuất, kinh doanh", "Production or business establishment", COMMUNE),
    UnitType("school", "Trường học", "School", COMMUNE),
    UnitType("supermarket", "Siêu thị", "Supermarket", COMMUNE),
    UnitType("market", "Chợ", "Market", COMMUNE),
    UnitType("essential_shop", "Cửa hàng cung cấp dịch vụ thiết yếu", "Essential-service shop", COMMUNE),
    UnitType("other", "Đơn vị khác", "Other unit", COMMUNE),
)}

_TYPE_KEYS = {fold(key): t for t in UNIT_TYPES.values() for key in (t.code, t.label_vi, t.label_en)}


def unit_type_by_label(value: str) -> UnitType | None:
    """A unit type from its code or its Vietnamese or English label (as in the list template)."""
    return _TYPE_KEYS.get(fold(value)) if value else None


@dataclass(frozen=True)
class Exemption:
    code: str
    label_vi: str
    label_en: str

    def label(self, lang: str = "vi") -> str:
        return self.label_en if lang == "en" else self.label_vi


# Circular 1.2 (not to be listed) and 2.2 (NCOVI users need not deploy again).
EXEMPTIONS: dict[str, Exemption] = {e.code: e for e in (
    Exemption("superior_qr", "Đã được cấp trên hoặc ngành dọc cấp mã QR",
              "QR code already issued by its superior or vertical sector"),
    Exemption("health_center_qr", "Đã được Trung tâm Y tế huyện lập danh sách và cấp mã QR",
              "Already listed and given a QR code by the District Health Center"),
    Exemption("ncovi", "Đã sử dụng ứng dụng NCOVI", "Already uses the NCOVI app"),
)}
_EXEMPTION_KEYS = {fold(key): e for e in EXEMPTIONS.values() for key in (e.code, e.label_vi, e.label_en)}


def exemption_by_label(value: str) -> Exemption | None:
    return _EXEMPTION_KEYS.get(fold(value)) if value else None


# Review outcomes. Being sent to the district or forwarded to the city are stages of an
# accepted registration, kept in their own columns.
SUBMITTED, ACCEPTED, RETURNED, DUPLICATE, EXEMPT = "submitted", "accepted", "returned", "duplicate", "exempt"
STATUSES = (SUBMITTED, ACCEPTED, RETURNED, DUPLICATE, EXEMPT)
STATUS_LABELS = {
    SUBMITTED: Msg("Chờ duyệt", "Awaiting review"),
    ACCEPTED: Msg("Đã duyệt", "Accepted"),
    RETURNED: Msg("Đã trả lại", "Returned"),
    DUPLICATE: Msg("Trùng lặp", "Duplicate"),
    EXEMPT: Msg("Không phải triển khai", "Exempt"),
}
STATUS_TONES = {SUBMITTED: "yellow", ACCEPTED: "green", RETURNED: "red", DUPLICATE: "grey", EXEMPT: "grey"}
# An outcome that no longer blocks a new registration of the same unit.
CLOSED = (RETURNED, DUPLICATE)


class NotACommune(ValueError):
    pass


def commune_and_district(tree: AdminTree, path_or_code: str) -> tuple[AdminUnit, AdminUnit]:
    """The commune (a leaf below a district) and its district, by path or GSO code."""
    unit = tree.get(path_or_code) if "/" in path_or_code else tree.by_code(path_or_code)
    if unit is None or unit.children or unit.parent is None or unit.parent.parent is None:
        raise NotACommune(path_or_code)
    return unit, unit.parent


def district_by_code(tree: AdminTree, code: str) -> AdminUnit | None:
    """A district (a node one level below the root) by its GSO code."""
    unit = tree.by_code(code)
    return unit if unit is not None and unit.parent is tree.root and unit.children else None


def receiver_path(unit_type: UnitType, commune: AdminUnit) -> str:
    """The office that receives this unit's registration (point 1.2)."""
    return commune.parent.path if unit_type.receiver == DISTRICT else commune.path


def district_path_of(path: str) -> str:
    """``79/787/27664`` -> ``79/787`` (the first two levels of a path)."""
    return "/".join(path.split("/")[:2])
