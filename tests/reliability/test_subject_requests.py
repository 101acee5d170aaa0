"""Issue 17, item 5: a person can ask what is held about them, and have it erased early.

The five real services (SQLite + the embedded bus, PostgreSQL + Kafka): a person declares
twice at the demo venue (once red: an alert), another person once. A health officer of the
venue's district finds the person's declarations by ID number (an officer of another
district finds none), exports them for the person (.xlsx in Vietnamese), is refused an
erasure without the confirmation, then erases: within seconds the person's ID number, phone
and name are gone from declaration's, reporting's and notification's tables, the other
person is untouched, and every step (and the refusal) is in reporting's access log.
"""
from __future__ import annotations

import io
import uuid

from openpyxl import load_workbook

from libs.common.auth import Role

from .conftest import DEMO_DISTRICT, OTHER_DISTRICT, eventually, run_services
from .flows import backend_settings, demo_venue
from .test_retention_everywhere import ID_NUMBER, NAME, PHONE, _search_database

OTHER = {"full_name": "Lê Văn Khác", "id_number": "079088001122", "phone": "0987 111 222"}
REQUEST = {"id_number": ID_NUMBER.replace("0793", "0793 "), "reference": "YC-2026-0017",
           "reason": "Người dân yêu cầu bản sao và xóa dữ liệu khai báo"}
PERSONAL_TABLES = ("declarations.", "suspected_cases.", "visits.", "alerts.", "alert_declarations.")


def _person(**overrides) -> dict:  # noqa: ANN003
    return {"full_name": NAME, "id_number": ID_NUMBER, "birth": "03/04/2001", "gender": "female", "phone": PHONE,
            "province_code": "79", "district_code": "787", "commune_code": "27664", "street": "45 Duyên Hải",
            "symptoms": [], "exposures": [], **overrides}


async def _held(system) -> dict:  # noqa: ANN001
    """Where the person's ID number, phone or name lie in the tables holding personal data."""
    found = {}
    for service in ("declaration", "reporting", "notification"):
        for column, what in (await _search_database(system.runtime(service))).items():
            if column.startswith(PERSONAL_TABLES):
                found[f"{service}:{column}"] = what
    return found


async def test_find_export_and_erase_one_person(backend, keys, mint):
    settings = await backend_settings(backend, keys)
    async with run_services(settings) as system:
        officer = mint.headers(Role.HEALTH_OFFICER, DEMO_DISTRICT)
        code = (await demo_venue(system, mint))["code"]
        for people in ([_person(symptoms=["fever", "cough"])], [_person()], [_person(**OTHER)]):
            declared = await system["declaration"].post("/api/declarations", json={
                "venue_code": code, "consent": True, "idempotency_key": uuid.uuid4().hex, "people": people})
            assert declared.status_code == 201, declared.text

        async def copies():  # the visits in reporting and the alert in notification
            alerts = await system["notification"].get("/api/alerts", headers=officer)
            held = await _held(system)
            return alerts.status_code == 200 and alerts.json() and any(k.startswith("reporting:") for k in held)

        await eventually(copies, timeout=60, what="the copies in reporting and notification")
        assert any(k.startswith("notification:alerts.") for k in await _held(system))

        # Find: the two declarations of the person, only within the officer's jurisdiction.
        found = await system["declaration"].post("/api/subject/search", headers=officer, json=REQUEST)
        assert found.status_code == 200, found.text
        body = found.json()
        assert body["total"] == 2 and {d["id_number"] for d in body["declarations"]} == {ID_NUMBER}
        assert {d["full_name"] for d in body["declarations"]} == {NAME}
        elsewhere = await system["declaration"].post("/api/subject/search", json=REQUEST,
                                                     headers=mint.headers(Role.HEALTH_OFFICER, OTHER_DISTRICT))
        assert elsewhere.status_code == 200 and elsewhere.json()["total"] == 0
        # Only health officers.
        refused = await system["declaration"].post("/api/subject/search", json=REQUEST,
                                                   headers=mint.headers(Role.DISTRICT_FOCAL, DEMO_DISTRICT))
        assert refused.status_code == 403

        # Export for the person: the .xlsx holds both declarations.
        export = await system["declaration"].post("/api/subject/export", headers=officer, json=REQUEST)
        assert export.status_code == 200 and export.headers["content-type"].startswith("application/vnd.openxml")
        assert export.headers["cache-control"] == "no-store"
        cells = [c.value for row in load_workbook(io.BytesIO(export.content)).active.iter_rows() for c in row]
        assert cells.count(ID_NUMBER) == 3  # the request's line and both declarations
        assert {d["declaration_id"] for d in body["declarations"]} <= set(cells)
        assert "Họ và tên" in cells and "YC-2026-0017" in cells

        # Erase: refused without the confirmation, then done.
        unconfirmed = await system["declaration"].post("/api/subject/erase", headers=officer, json=REQUEST)
        assert unconfirmed.status_code == 422 and "confirm" in {e["field"] for e in unconfirmed.json()["errors"]}
        no_reference = await system["declaration"].post("/api/subject/erase", headers=officer,
                                                        json={**REQUEST, "reference": "", "confirm": True})
        assert no_reference.status_code == 422
        assert (await system["declaration"].post("/api/subject/search", headers=officer,
                                                 json=REQUEST)).json()["total"] == 2
        erased = await system["declaration"].post("/api/subject/erase", headers=officer,
                                                  json={**REQUEST, "confirm": True})
        assert erased.status_code == 200 and erased.json() == {"erased": 2}

        async def gone():
            return not await _held(system)

        await eventually(gone, timeout=10, what="the person erased in every service")
        # The other person is untouched; the counts stay (the rows are kept, erased).
        other = await system["declaration"].post("/api/subject/search", headers=officer,
                                                  json={**REQUEST, "id_number": OTHER["id_number"]})
        assert other.json()["total"] == 1 and other.json()["declarations"][0]["full_name"] == OTHER["full_name"]
        again = await system["declaration"].post("/api/subject/erase", headers=officer,
                                                 json={**REQUEST, "confirm": True})
        assert again.json() == {"erased": 0}

        # Every step in reporting's access log, done or refused; never the ID number.
        async def logged():
            response = await system["reporting"].get("/api/access-log", headers=mint.headers(Role.CITY_DIC, "79"))
            rows = [r for r in response.json() if r["action"].startswith("subject.")]
            return rows if len(rows) >= 10 else None

        rows = await eventually(logged, timeout=30, what="the subject requests in the access log")
        steps = sorted((r["action"], r["outcome"], r["detail"] or "", r["row_count"]) for r in rows)
        assert steps == sorted([
            ("subject.find", "ok", "", 2), ("subject.find", "ok", "", 0),
            ("subject.find", "refused", "role_not_permitted", 0), ("subject.export", "ok", "", 2),
            ("subject.erase", "refused", "not_confirmed", 0), ("subject.erase", "refused", "no_reference", 0),
            ("subject.find", "ok", "", 2), ("subject.erase", "ok", "", 2), ("subject.find", "ok", "", 1),
            ("subject.erase", "ok", "", 0)]), steps
        assert all(r["client_address"] == "127.0.0.1" for r in rows)
        assert {r["case_reference"] for r in rows if r["detail"] != "no_reference"} == {"YC-2026-0017"}
        assert ID_NUMBER not in str(rows)
