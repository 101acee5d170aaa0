"""Powers by purpose: who may read person-level data through the FHIR export, and why.

A person-level export (the declarations, ``QuestionnaireResponse``) is open to:

- an interoperability client (role ``interop_client``, a token of provisioning's
  client-credentials grant) whose token carries the scope ``fhir.read``, with a purpose on
  every call of the export (also the directory resources);
- a health officer, within its jurisdiction, for a case investigation with a case reference
  (as the exposure queries).

The city DIC (IT) keeps the directory and aggregate resources only. The purpose travels in
the ``X-Purpose`` header and the case reference in ``X-Case-Reference`` (headers, so that
no case reference is written in a URL or a proxy's log); both go to the access log.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from fastapi import Request

from libs.common.auth import Principal, Role

PURPOSE_HEADER = "x-purpose"
CASE_HEADER = "x-case-reference"
FHIR_SCOPE = "fhir.read"
# The purposes a caller may give; True: a case reference is required with it.
PURPOSES = {
    "case_investigation": True,   # tracing around a confirmed or suspected case
    "ncovi_sync": False,          # the national systems' copy (NCOVI, national data center)
}
CASE_REFERENCE = re.compile(r"^[\w./:#-]{3,80}$")
PERSON_LEVEL_REFUSAL = (
    "Chỉ hệ thống liên thông được cấp quyền và cán bộ y tế (kèm mã ca bệnh) mới được xuất dữ liệu cá nhân; "
    "Sở Thông tin và Truyền thông chỉ xem số liệu tổng hợp và danh mục / Only an authorised interoperability "
    "client and health officers (with a case reference) may export personal data; the city DIC reads "
    "aggregate figures and the directory only")


class PurposeProblem(Exception):
    """A refusal: ``status`` (403 or 422), a short ``code`` for the access log, a bilingual message."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


@dataclass(frozen=True)
class Purpose:
    code: str | None
    case_reference: str | None


def _both(vi: str, en: str) -> str:
    return f"{vi} / {en}"


def purpose_of(request: Request, principal: Principal, *, person_level: bool) -> Purpose:
    """The request's purpose, checked for the caller; ``PurposeProblem`` if it may not read."""
    code = request.headers.get(PURPOSE_HEADER, "").strip().lower() or None
    case = " ".join(request.headers.get(CASE_HEADER, "").split()) or None
    known = ", ".join(PURPOSES)
    if principal.role == Role.INTEROP_CLIENT and FHIR_SCOPE not in principal.scopes:
        raise PurposeProblem(403, "no_scope", _both(f"Mã truy cập không có phạm vi {FHIR_SCOPE}",
                                                    f"the token lacks the scope {FHIR_SCOPE}"))
    if code is None:
        if principal.role in (Role.INTEROP_CLIENT, Role.HEALTH_OFFICER) or person_level:
            raise PurposeProblem(422, "no_purpose", _both(f"Thiếu mục đích truy cập (tiêu đề X-Purpose: {known})",
                                                          f"the purpose is required (header X-Purpose: {known})"))
        return Purpose(None, None)
    if code not in PURPOSES:
        raise PurposeProblem(422, "unknown_purpose", _both(f"Mục đích không hợp lệ; dùng một trong: {known}",
                                                           f"unknown purpose; one of: {known}"))
    if principal.role == Role.HEALTH_OFFICER and code != "case_investigation":
        raise PurposeProblem(403, "purpose_not_allowed", _both(
            "Cán bộ y tế chỉ xuất dữ liệu cá nhân để điều tra ca bệnh",
            "health officers export personal data for a case investigation only"))
    if PURPOSES[code] and (case is None or not CASE_REFERENCE.match(case)):
        raise PurposeProblem(422, "no_case_reference", _both(
            "Cần mã ca bệnh (tiêu đề X-Case-Reference, 3-80 ký tự) cho mục đích điều tra ca bệnh",
            "a case reference (header X-Case-Reference, 3-80 characters) is required for a case investigation"))
    return Purpose(code, case if PURPOSES[code] else None)
