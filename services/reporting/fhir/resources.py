"""HL7 FHIR R4 resources built from the read models (interconnection, circular 2.2).

- ``Questionnaire`` ``khaibao-declaration``: the 2021 domestic declaration form (DOMAIN.md)
  plus a read-only ``screening`` group the system fills in;
- ``QuestionnaireResponse`` per declaration (from the visits read model): ``authored`` is
  the time declared, ``identifier`` the declaration id, the venue as
  ``subject`` (``Location/<venue id>``), the screening result, its reasons and the
  channel as answers. The declarant (name and phone, the only personal data reporting
  holds) is a *contained* ``Patient`` referenced as ``source`` — contained because
  reporting has no person registry to point to and the national side matches people by
  its own means; once retention erased the contact details the Patient is omitted;
- ``Organization`` per unit and ``Location`` per venue (from the directory read model;
  ``managingOrganization`` links them), a unit imported from NCOVI carries the NCOVI
  identifier;
- ``AuditEvent`` per access-log entry (who, when, what, why; never visitors' data).

Codes of this system use ``CODE_SYSTEM`` URIs below ``SYSTEM_BASE``.
"""
from __future__ import annotations

import json
from datetime import datetime

from libs.common.adminunits import AdminTree

from ..accesslog import AccessEntry
from ..directory import UnitInfo, VenueInfo, utc

SYSTEM_BASE = "https://khaibao.hochiminhcity.gov.vn/fhir"
QUESTIONNAIRE_ID = "khaibao-declaration"
QUESTIONNAIRE_URL = f"{SYSTEM_BASE}/Questionnaire/{QUESTIONNAIRE_ID}"
QUESTIONNAIRE_VERSION = "2021-06"
CODE_SYSTEM = {
    "declaration": f"{SYSTEM_BASE}/sid/declaration",
    "venue-code": f"{SYSTEM_BASE}/sid/venue-code",
    "unit": f"{SYSTEM_BASE}/sid/unit",
    "ncovi": "https://ncovi.moh.gov.vn/sid/unit",
    "tax-code": "https://gdt.gov.vn/sid/tax-code",
    "screening": f"{SYSTEM_BASE}/CodeSystem/screening-result",
    "reason": f"{SYSTEM_BASE}/CodeSystem/screening-reason",
    "channel": f"{SYSTEM_BASE}/CodeSystem/declaration-channel",
    "role": f"{SYSTEM_BASE}/CodeSystem/official-role",
    "action": f"{SYSTEM_BASE}/CodeSystem/access-action",
    "purpose": f"{SYSTEM_BASE}/CodeSystem/access-purpose",
    "admin-unit": "https://www.gso.gov.vn/dmhc",
}
DICOM = "http://dicom.nema.org/resources/ontology/DCM"
SCREENING = {"green": "Xanh — không có dấu hiệu", "yellow": "Vàng — cần lưu ý", "red": "Đỏ — nghi ngờ"}
CHANNELS = {"self": "Tự khai báo", "gate": "Khai hộ tại cổng"}


def instant(moment: datetime) -> str:
    return utc(moment).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _item(link_id: str, text: str, kind: str, **extra: object) -> dict:
    return {"linkId": link_id, "text": text, "type": kind, **extra}


def _choices(system: str, pairs: list[tuple[str, str]]) -> list[dict]:
    return [{"valueCoding": {"system": system, "code": code, "display": display}} for code, display in pairs]


SYMPTOMS = [("fever", "Sốt"), ("cough", "Ho"), ("breath", "Khó thở"), ("sore_throat", "Đau họng"),
            ("taste_smell", "Mất vị giác / khứu giác"), ("fatigue", "Mệt mỏi"), ("other", "Khác")]
EXPOSURES = [("contact", "Tiếp xúc gần với ca bệnh hoặc nghi ngờ mắc COVID-19"),
             ("abroad", "Đến từ quốc gia / vùng lãnh thổ khác"),
             ("outbreak_area", "Đi qua tỉnh/thành có dịch"),
             ("household", "Trong gia đình / cơ quan có người sốt hoặc ho")]


def questionnaire() -> dict:
    """The declaration form as a FHIR Questionnaire (Vietnamese wording of the 2021 form)."""
    personal = _item("personal", "Thông tin cá nhân", "group", item=[
        _item("full-name", "Họ tên", "string", required=True),
        _item("id-number", "Số CCCD / CMND / hộ chiếu", "string"),
        _item("birth-date", "Ngày sinh", "date"),
        _item("birth-year", "Năm sinh", "integer"),
        _item("gender", "Giới tính", "choice", answerOption=_choices(
            "http://hl7.org/fhir/administrative-gender", [("male", "Nam"), ("female", "Nữ"), ("other", "Khác")])),
        _item("nationality", "Quốc tịch", "string"),
        _item("phone", "Điện thoại", "string"),
        _item("address", "Địa chỉ liên lạc (tỉnh/thành, quận/huyện, phường/xã, số nhà, đường)", "string"),
    ])
    last14 = _item("last-14-days", "Trong vòng 14 ngày qua", "group", item=[
        _item("symptoms", "Anh/Chị có các dấu hiệu sau không?", "choice", repeats=True,
              answerOption=_choices(f"{SYSTEM_BASE}/CodeSystem/symptom", SYMPTOMS)),
        _item("symptom-other", "Dấu hiệu khác", "string"),
        _item("exposures", "Tiếp xúc và di chuyển", "choice", repeats=True,
              answerOption=_choices(f"{SYSTEM_BASE}/CodeSystem/exposure", EXPOSURES)),
        _item("vaccine-doses", "Số mũi vắc-xin đã tiêm (không bắt buộc)", "integer"),
    ])
    consent = _item("consent", "Tôi cam kết thông tin khai là đúng sự thật (khai báo sai là vi phạm pháp luật) "
                    "và đồng ý cho xử lý dữ liệu để phòng, chống dịch", "boolean", required=True)
    screening = _item("screening", "Kết quả sàng lọc (hệ thống điền)", "group", readOnly=True, item=[
        _item("screening-result", "Kết quả", "choice", readOnly=True,
              answerOption=_choices(CODE_SYSTEM["screening"], list(SCREENING.items()))),
        _item("screening-reasons", "Lý do", "string", readOnly=True, repeats=True),
        _item("rule-version", "Phiên bản bộ quy tắc", "string", readOnly=True),
        _item("channel", "Hình thức khai báo", "choice", readOnly=True,
              answerOption=_choices(CODE_SYSTEM["channel"], list(CHANNELS.items()))),
        _item("group-size", "Số người khai cùng", "integer", readOnly=True),
    ])
    return {
        "resourceType": "Questionnaire", "id": QUESTIONNAIRE_ID, "url": QUESTIONNAIRE_URL,
        "version": QUESTIONNAIRE_VERSION, "name": "KhaiBaoYTeNoiDia", "language": "vi",
        "title": "Tờ khai y tế nội địa (Hệ thống khai báo y tế điện tử TP. Hồ Chí Minh)",
        "status": "active", "subjectType": ["Location"], "publisher": "Sở Thông tin và Truyền thông TP. Hồ Chí Minh",
        "item": [personal, last14, consent, screening],
    }


def questionnaire_response(row) -> dict:  # noqa: ANN001 - a visits row
    """One declaration. ``row`` has the visits table's columns."""
    reasons = json.loads(row.reasons or "[]")
    screening_items = [
        {"linkId": "screening-result", "answer": [{"valueCoding": {
            "system": CODE_SYSTEM["screening"], "code": row.result, "display": SCREENING.get(row.result, row.result)}}]},
        {"linkId": "rule-version", "answer": [{"valueString": row.rule_version}]},
        {"linkId": "channel", "answer": [{"valueCoding": {
            "system": CODE_SYSTEM["channel"], "code": row.channel, "display": CHANNELS.get(row.channel, row.channel)}}]},
        {"linkId": "group-size", "answer": [{"valueInteger": int(row.group_size)}]},
    ]
    if reasons:
        screening_items.insert(1, {"linkId": "screening-reasons", "answer": [{"valueString": r} for r in reasons]})
    resource: dict = {
        "resourceType": "QuestionnaireResponse", "id": str(row.declaration_id),
        "meta": {"lastUpdated": instant(row.erased_at or row.received_at)},
        "identifier": {"system": CODE_SYSTEM["declaration"], "value": str(row.declaration_id)},
        "questionnaire": f"{QUESTIONNAIRE_URL}|{QUESTIONNAIRE_VERSION}", "status": "completed",
        "subject": {"reference": f"Location/{row.venue_id}"}, "authored": instant(row.submitted_at),
        "item": [],
    }
    if row.full_name is not None:
        patient: dict = {"resourceType": "Patient", "id": "declarant", "name": [{"text": row.full_name}]}
        if row.phone:
            patient["telecom"] = [{"system": "phone", "value": row.phone, "use": "mobile"}]
        resource["contained"] = [patient]
        resource["source"] = {"reference": "#declarant"}
        personal = [{"linkId": "full-name", "answer": [{"valueString": row.full_name}]}]
        if row.phone:
            personal.append({"linkId": "phone", "answer": [{"valueString": row.phone}]})
        resource["item"].append({"linkId": "personal", "item": personal})
    resource["item"].append({"linkId": "screening", "item": screening_items})
    return resource


def _address(tree: AdminTree, street: str, commune_path: str) -> dict:
    chain = tree.ancestors(commune_path)
    address: dict = {"use": "work", "country": "VN"}
    if street:
        address["line"] = [street]
    if chain:
        address["city"] = chain[0].name
    if len(chain) > 1:
        address["district"] = chain[1].name
    if len(chain) > 2:
        address["line"] = [*address.get("line", []), chain[-1].name]
    address["text"] = ", ".join(p for p in [street, tree.label(commune_path)] if p)
    return address


def organization(unit: UnitInfo, tree: AdminTree, ncovi: dict | None = None) -> dict:
    """A participating unit; ``ncovi`` (from the NCOVI list) adds its identifiers."""
    identifiers = [{"system": CODE_SYSTEM["unit"], "value": str(unit.unit_id)}]
    resource = {
        "resourceType": "Organization", "id": str(unit.unit_id), "meta": {"lastUpdated": instant(unit.changed_at)},
        "identifier": identifiers, "active": True, "name": unit.name,
        "address": [_address(tree, "", unit.commune_path)],
    }
    if ncovi:
        if ncovi.get("ncovi_id"):
            identifiers.append({"system": CODE_SYSTEM["ncovi"], "value": ncovi["ncovi_id"]})
        if ncovi.get("tax_code"):
            identifiers.append({"system": CODE_SYSTEM["tax-code"], "value": ncovi["tax_code"]})
    return resource


def location(venue: VenueInfo, tree: AdminTree) -> dict:
    return {
        "resourceType": "Location", "id": str(venue.venue_id), "meta": {"lastUpdated": instant(venue.changed_at)},
        "identifier": [{"system": CODE_SYSTEM["venue-code"], "value": venue.code}],
        "status": "active" if venue.active else "inactive", "name": f"{venue.unit_name} — {venue.name}",
        "alias": [venue.name], "mode": "instance", "address": _address(tree, venue.address, venue.commune_path),
        "managingOrganization": {"reference": f"Organization/{venue.unit_id}", "display": venue.unit_name},
    }


def audit_event(entry: AccessEntry) -> dict:
    """An access-log entry. Export of personal data is DICOM 110106 (Export), a query 110112."""
    exported = entry.action.endswith("export") or entry.action == "fhir.read"
    detail = [{"type": "case-reference", "valueString": entry.case_reference}] if entry.case_reference else []
    if entry.window_start and entry.window_end:
        detail.append({"type": "window", "valueString": f"{instant(entry.window_start)}/{instant(entry.window_end)}"})
    detail.append({"type": "rows", "valueString": str(entry.row_count)})
    if entry.detail:
        detail.append({"type": "detail", "valueString": entry.detail})
    what = ({"reference": f"Location/{entry.venue_id}", "display": entry.venue_name or None} if entry.venue_id
            else {"identifier": {"system": CODE_SYSTEM["admin-unit"], "value": entry.scope_path}})
    if what.get("display") is None:
        what.pop("display", None)
    agent = {
        "type": {"coding": [{"system": CODE_SYSTEM["role"], "code": entry.actor_role}]},
        "who": {"identifier": {"system": CODE_SYSTEM["role"] + "/account", "value": entry.actor_username},
                "display": entry.actor_name or entry.actor_username},
        "requestor": True,
    }
    if entry.reason or entry.purpose:
        use: dict = {"text": entry.reason or entry.purpose}
        if entry.purpose:
            use["coding"] = [{"system": CODE_SYSTEM["purpose"], "code": entry.purpose}]
        agent["purposeOfUse"] = [use]
    return {
        "resourceType": "AuditEvent", "id": str(entry.entry_id),
        "type": {"system": DICOM, "code": "110106" if exported else "110112",
                 "display": "Export" if exported else "Query"},
        "subtype": [{"system": CODE_SYSTEM["action"], "code": entry.action}],
        "action": "R" if exported else "E", "recorded": instant(entry.at),
        "outcome": "0" if entry.outcome == "ok" else "4",
        **({"outcomeDesc": entry.detail} if entry.outcome != "ok" and entry.detail else {}),
        "agent": [agent],
        "source": {"site": entry.actor_jurisdiction, "observer": {"display": "khaibao reporting"}},
        "entity": [{"what": what, "detail": detail}],
    }


def bundle(resource_type: str, resources: list[dict], base_url: str, self_url: str, next_url: str | None,
           now: datetime) -> dict:
    result = {
        "resourceType": "Bundle", "type": "searchset", "timestamp": instant(now),
        "link": [{"relation": "self", "url": self_url}],
        "entry": [{"fullUrl": f"{base_url}/{resource_type}/{r['id']}", "resource": r, "search": {"mode": "match"}}
                  for r in resources],
    }
    if next_url:
        result["link"].append({"relation": "next", "url": next_url})
    return result
