"""Issue 17, item 4: the access log sees refusals too.

Every exposure query and export, granted or refused, leaves one access-log row with who,
when, from where (the client address), the reason given and the outcome: a query without
a case reference (422), at an unknown venue (404), at a venue outside the caller's
jurisdiction (answered 404 like an unknown one, so that nothing leaks its existence; logged
as ``outside_jurisdiction``), by a role not permitted (403), with bad input (422). The
refusal is logged in a transaction of its own, although the request fails. On SQLite + the
embedded bus and on PostgreSQL + Kafka.
"""
from __future__ import annotations

import re
from datetime import timedelta

import pytest

from libs.common.auth import SESSION_COOKIE, Role
from services.reporting import directory, visits
from services.reporting.exposure import local_input
from tests.reporting.conftest import T0, apply, submitted, venue_created

from .conftest import DEMO_DISTRICT, OTHER_DISTRICT_COMMUNE, build_settings, run_services

HANDLERS = {**directory.HANDLERS, **visits.HANDLERS}
REASON = "Ca dương tính đã đến chợ sáng 20/6"


@pytest.fixture
async def reporting(backend, keys):
    settings = build_settings("reporting", keys, database_url=await backend.database_url("reporting"),
                              bus_url=backend.bus_url, bus_namespace=backend.bus_options().get("namespace", ""))
    async with run_services({"reporting": settings}) as running:
        market = venue_created(code="MARKET2345", name="Cổng chợ", unit_name="Chợ Cần Thạnh")
        far = venue_created(code="FARAWAY234", name="Cổng tòa nhà", unit_name="Tòa nhà Bến Nghé",
                            commune=OTHER_DISTRICT_COMMUNE)
        await apply(running.runtime("reporting").database, HANDLERS, market, far, submitted(market), submitted(far))
        running.extra.update(market=market, far=far)
        yield running


def window() -> dict:
    return {"start": local_input(T0 - timedelta(minutes=30)), "end": local_input(T0 + timedelta(hours=1))}


async def entries(running, mint) -> list[dict]:  # noqa: ANN001
    response = await running["reporting"].get("/api/access-log", headers=mint.headers(Role.CITY_DIC))
    assert response.status_code == 200, response.text
    return response.json()


def only(rows: list[dict]) -> dict:
    assert len(rows) == 1, rows
    return rows[0]


async def test_no_case_reference_is_logged(reporting, mint):
    client = reporting["reporting"]
    response = await client.post("/api/exposure", headers=mint.headers(Role.HEALTH_OFFICER, DEMO_DISTRICT),
                                 json={"venue": "MARKET2345", "reason": REASON, **window()})
    assert response.status_code == 422
    row = only(await entries(reporting, mint))
    assert row["action"] == "exposure.query" and row["outcome"] == "refused"
    assert row["detail"] == "no_case_reference"
    assert row["actor_role"] == "health_officer" and row["reason"] == REASON
    assert row["client_address"] == "127.0.0.1"
    assert row["row_count"] == 0


async def test_unknown_venue_is_logged(reporting, mint):
    client = reporting["reporting"]
    response = await client.post("/api/exposure", headers=mint.headers(Role.HEALTH_OFFICER, DEMO_DISTRICT),
                                 json={"venue": "NOSUCH2345", "case_reference": "CG-2021-0153", "reason": REASON,
                                       **window()})
    assert response.status_code == 404
    row = only(await entries(reporting, mint))
    assert (row["outcome"], row["detail"], row["case_reference"]) == ("refused", "unknown_venue", "CG-2021-0153")
    assert row["client_address"] == "127.0.0.1"


async def test_outside_jurisdiction_is_logged(reporting, mint):
    client = reporting["reporting"]
    response = await client.post("/api/exposure", headers=mint.headers(Role.HEALTH_OFFICER, DEMO_DISTRICT),
                                 json={"venue": "FARAWAY234", "case_reference": "CG-2021-0154", "reason": REASON,
                                       **window()})
    # Answered like an unknown venue: the caller learns nothing of another district's venues.
    assert response.status_code == 404
    row = only(await entries(reporting, mint))
    assert (row["outcome"], row["detail"]) == ("refused", "outside_jurisdiction")
    assert row["scope_path"] == OTHER_DISTRICT_COMMUNE and row["client_address"] == "127.0.0.1"


async def test_role_not_permitted_is_logged(reporting, mint):
    client = reporting["reporting"]
    response = await client.post("/api/exposure", headers=mint.headers(Role.CITY_DIC),
                                 json={"venue": "MARKET2345", "case_reference": "CG-2021-0155", "reason": REASON,
                                       **window()})
    assert response.status_code == 403
    row = only(await entries(reporting, mint))
    assert (row["actor_role"], row["outcome"], row["detail"]) == ("city_dic", "refused", "role_not_permitted")
    assert row["client_address"] == "127.0.0.1"


async def test_bad_input_and_export_refusals_are_logged(reporting, mint):
    """The console's export with a window longer than 14 days (bad input, 422) is logged;
    the access-log page shows the outcome column and filters on it."""
    client = reporting["reporting"]
    officer = {"accept": "text/html", "cookie": f"{SESSION_COOKIE}={mint.token(Role.HEALTH_OFFICER, DEMO_DISTRICT)}"}
    page = await client.get("/exposure", headers=officer)
    token = re.search(r'name="csrf_token" value="([^"]*)"', page.text).group(1)
    export = await client.post("/exposure/export", headers=officer, data={
        "csrf_token": token, "venue_code": "MARKET2345", "case_reference": "CG-2021-0156", "reason": REASON,
        "start": local_input(T0 - timedelta(days=20)), "end": local_input(T0)})
    assert export.status_code == 422
    dic = {"accept": "text/html", "cookie": f"{SESSION_COOKIE}={mint.token(Role.CITY_DIC)}"}
    rows = await entries(reporting, mint)
    bad = [r for r in rows if r["case_reference"] == "CG-2021-0156"]
    assert only(bad)["action"] == "exposure.export" and bad[0]["detail"] == "bad_input"
    assert bad[0]["outcome"] == "refused" and bad[0]["client_address"] == "127.0.0.1"

    granted = await client.post("/api/exposure", headers=mint.headers(Role.HEALTH_OFFICER, DEMO_DISTRICT),
                                json={"venue": "MARKET2345", "case_reference": "CG-2021-0158", "reason": REASON,
                                      **window()})
    assert granted.status_code == 200
    listing = await client.get("/access-log?outcome=refused", headers=dic)
    assert listing.status_code == 200
    assert "CG-2021-0156" in listing.text and "CG-2021-0158" not in listing.text
    assert "bad_input" in listing.text or "Dữ liệu không hợp lệ" in listing.text
    allowed = await client.get("/access-log?outcome=ok", headers=dic)
    assert "CG-2021-0158" in allowed.text and "CG-2021-0156" not in allowed.text


async def test_registrations_export_outside_jurisdiction_is_logged(reporting, mint):
    """The list of registered units with their contact persons is a personal-data export: a
    district official asking for another district's list is refused (403) and logged."""
    from .conftest import OTHER_DISTRICT

    client = reporting["reporting"]
    response = await client.get(f"/exports/registrations.csv?area={OTHER_DISTRICT}",
                                headers=mint.headers(Role.DISTRICT_FOCAL, DEMO_DISTRICT))
    assert response.status_code == 403
    row = only(await entries(reporting, mint))
    assert (row["action"], row["outcome"], row["detail"]) == ("registrations.export", "refused",
                                                             "outside_jurisdiction")
    assert row["actor_role"] == "district_focal" and row["client_address"] == "127.0.0.1"


async def test_fhir_declarations_refused_to_the_city_dic_is_logged(reporting, mint):
    """The person-level FHIR export, asked by a role not permitted (the city DIC): 403 and a row."""
    client = reporting["reporting"]
    response = await client.get("/api/fhir/QuestionnaireResponse", headers={
        **mint.headers(Role.CITY_DIC), "x-purpose": "case_investigation", "x-case-reference": "CG-2021-0160"})
    assert response.status_code == 403
    row = only(await entries(reporting, mint))
    assert (row["action"], row["outcome"], row["detail"]) == ("fhir.read", "refused",
                                                             "QuestionnaireResponse:role_not_permitted")
    assert row["case_reference"] == "CG-2021-0160" and row["client_address"] == "127.0.0.1"
