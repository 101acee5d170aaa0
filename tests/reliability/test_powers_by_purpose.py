"""Powers by purpose (issue 16, item 7), replayed against the real services on both backends.

The finding: ``city_dic`` (the IT department) exported every declaration of the city through
``GET /api/fhir/QuestionnaireResponse`` with no case reference or reason, and published a
screening rule set alone, active at once.

* the city IT role keeps the directory and aggregate resources, and is refused the
  declarations (403, a message that says why in Vietnamese and English);
* an interoperability client issued by the operator gets a scoped token from provisioning
  (client-credentials grant) and exports declarations with a purpose on every call, each
  call in the access log (who, purpose, case reference, how many rows); without a purpose:
  422; a case investigation without a case reference: 422; a bad secret: 401;
* a district health officer exports its own district's declarations with a case reference;
* a rule set proposed by a city health officer is not active until a second, different
  city health officer approves; self-approval is refused, and so is a proposal by the IT role.
"""
from __future__ import annotations

import json
from datetime import timedelta

import pytest

from libs.common.auth import Role
from services.declaration.screening import DEFAULT_RULES
from services.reporting import directory, visits
from tests.declaration.conftest import declaration, make_venues, person, running_declaration
from tests.reporting.conftest import T0, apply, submitted, venue_created

from .conftest import CITY, DEMO_DISTRICT, OTHER_DISTRICT, OTHER_DISTRICT_COMMUNE, build_settings, run_services

pytestmark = pytest.mark.asyncio

HANDLERS = {**directory.HANDLERS, **visits.HANDLERS}
QR = "/api/fhir/QuestionnaireResponse"


async def _settings(backend, keys, service: str, **overrides):  # noqa: ANN001, ANN003, ANN202
    return build_settings(service, keys, database_url=await backend.database_url(service), bus_url=backend.bus_url,
                          bus_namespace=backend.bus_options().get("namespace", ""), **overrides)


@pytest.fixture
async def exchange(backend, keys):  # noqa: ANN001, ANN201
    """Provisioning (the client-credentials grant) and reporting with eight declarations:
    seven at a market of the demo district, one in another district."""
    settings = {"provisioning": await _settings(backend, keys, "provisioning"),
                "reporting": await _settings(backend, keys, "reporting", fhir_settle_seconds=0)}
    async with run_services(settings) as system:
        database = system.runtime("reporting").database
        market = venue_created(code="MARKET2345", name="Cổng chợ", unit_name="Chợ Cần Thạnh")
        far = venue_created(code="FARAWAY234", name="Cổng tòa nhà", unit_name="Tòa nhà Bến Nghé",
                            commune=OTHER_DISTRICT_COMMUNE)
        declared = [submitted(market, at=T0 + timedelta(minutes=m), name=f"Người {m}", phone=f"09000000{m:02d}")
                    for m in range(7)]
        await apply(database, HANDLERS, market, far, *declared, submitted(far, at=T0, name="Người xa"))
        yield system


async def _client_token(system, *, scopes=("fhir.read",), jurisdiction: str = CITY) -> str:  # noqa: ANN001
    """An interoperability client issued as the operator does, and a token for it."""
    from services.provisioning.operator.clients import create_interop_client

    created = await create_interop_client(system.settings["provisioning"], client_id="ncovi-sync",
                                          name="Đồng bộ NCOVI", jurisdiction=jurisdiction, scopes=list(scopes))
    assert created.secret and created.secret not in created.client_id
    response = await system["provisioning"].post("/api/oauth/token", data={
        "grant_type": "client_credentials", "client_id": created.client_id, "client_secret": created.secret})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["token_type"].lower() == "bearer" and body["scope"] == " ".join(scopes)
    assert created.secret not in response.text
    return body["access_token"]


async def _log(system, mint) -> list[dict]:  # noqa: ANN001
    response = await system["reporting"].get("/api/access-log?limit=1000", headers=mint.headers(Role.CITY_DIC, CITY))
    assert response.status_code == 200, response.text
    return response.json()


async def test_the_city_it_role_cannot_export_people(exchange, mint):
    reporting = exchange["reporting"]
    city = {**mint.headers(Role.CITY_DIC, CITY), "x-purpose": "ncovi_sync"}
    response = await reporting.get(f"{QR}?_count=1000", headers=city)
    assert response.status_code == 403, response.text[:300]
    message = response.json()["detail"]
    assert "Sở Thông tin và Truyền thông chỉ xem số liệu tổng hợp" in message, message
    assert "Người" not in response.text and "0900000001" not in response.text
    # the directory and the access log's own export stay open to it
    for resource in ("Organization", "Location", "Questionnaire"):
        assert (await reporting.get(f"/api/fhir/{resource}", headers=city)).status_code == 200, resource
    reads = [e for e in await _log(exchange, mint) if e["action"] == "fhir.read"]
    # the refused declarations are in the access log too (issue 17)
    assert sorted((e["detail"], e["outcome"]) for e in reads) == [
        ("Location", "ok"), ("Organization", "ok"), ("Questionnaire", "ok"),
        ("QuestionnaireResponse:role_not_permitted", "refused")]
    assert all(e["actor_role"] == "city_dic" and e["purpose"] == "ncovi_sync" for e in reads)


async def test_an_interoperability_client_exports_with_a_purpose_logged(exchange, mint):
    reporting = exchange["reporting"]
    bearer = {"authorization": f"Bearer {await _client_token(exchange)}"}
    response = await reporting.get(f"{QR}?_count=1000", headers={**bearer, "x-purpose": "ncovi_sync"})
    assert response.status_code == 200, response.text[:300]
    assert len(response.json()["entry"]) == 8 and "Người 3" in response.text

    investigation = await reporting.get(f"{QR}?_count=2", headers={
        **bearer, "x-purpose": "case_investigation", "x-case-reference": "HCM-2021-0042"})
    assert investigation.status_code == 200 and len(investigation.json()["entry"]) == 2

    reads = [e for e in await _log(exchange, mint) if e["action"] == "fhir.read" and e["outcome"] == "ok"]
    assert {(e["actor_role"], e["actor_username"], e["purpose"], e["case_reference"], e["row_count"])
            for e in reads} == {("interop_client", "ncovi-sync", "ncovi_sync", None, 8),
                                ("interop_client", "ncovi-sync", "case_investigation", "HCM-2021-0042", 2)}


async def test_no_purpose_no_export(exchange, mint):
    reporting = exchange["reporting"]
    bearer = {"authorization": f"Bearer {await _client_token(exchange)}"}
    for headers in ({}, {"x-purpose": "curiosity"}, {"x-purpose": "case_investigation"}):
        response = await reporting.get(QR, headers={**bearer, **headers})
        assert response.status_code == 422, (headers, response.text[:300])
        assert response.json()["resourceType"] == "OperationOutcome" and "Người" not in response.text
    refused = [e for e in await _log(exchange, mint) if e["action"] == "fhir.read"]
    assert sorted(e["detail"] for e in refused) == [
        "QuestionnaireResponse:no_case_reference", "QuestionnaireResponse:no_purpose",
        "QuestionnaireResponse:unknown_purpose"]
    assert all(e["outcome"] == "refused" and e["actor_role"] == "interop_client" and e["row_count"] == 0
               for e in refused)
    # a wrong secret
    bad = await exchange["provisioning"].post("/api/oauth/token", data={
        "grant_type": "client_credentials", "client_id": "ncovi-sync", "client_secret": "not-the-secret"})
    assert bad.status_code == 401 and bad.json()["error"] == "invalid_client"


async def test_health_officers_export_their_district_with_a_case_reference(exchange, mint):
    reporting = exchange["reporting"]
    officer = mint.headers(Role.HEALTH_OFFICER, DEMO_DISTRICT)
    assert (await reporting.get(QR, headers={**officer, "x-purpose": "ncovi_sync"})).status_code in (403, 422)
    found = await reporting.get(f"{QR}?_count=1000", headers={
        **officer, "x-purpose": "case_investigation", "x-case-reference": "CG-2021-0153"})
    assert found.status_code == 200 and len(found.json()["entry"]) == 7 and "Người xa" not in found.text
    other = await reporting.get(f"{QR}?_count=1000", headers={
        **mint.headers(Role.HEALTH_OFFICER, OTHER_DISTRICT), "x-purpose": "case_investigation",
        "x-case-reference": "Q1-2021-0001"})
    assert other.status_code == 200 and len(other.json()["entry"]) == 1
    for role in (Role.DISTRICT_FOCAL, Role.COMMUNE_FOCAL, Role.UNIT_ADMIN):
        response = await reporting.get(QR, headers={**mint.headers(role, DEMO_DISTRICT),
                                                    "x-purpose": "case_investigation", "x-case-reference": "X-1"})
        assert response.status_code == 403, role


# --- the two-person rule for screening rule sets ------------------------------------------

def stricter(version: str) -> dict:
    doc = json.loads(DEFAULT_RULES.read_text(encoding="utf-8"))
    doc["version"] = version
    doc["rules"].insert(0, {"id": "fatigue_wave", "result": "red", "any": ["fatigue"],
                            "label": {"vi": "Mệt mỏi trong đợt dịch", "en": "Fatigue during the wave"}})
    return doc


@pytest.fixture
async def screening(backend, keys):  # noqa: ANN001, ANN201
    settings = await _settings(backend, keys, "declaration", kafka_partitions=2, cache_seconds=0)
    async with running_declaration(settings, make_venues()) as service:
        yield service


async def _result(service, symptoms: list[str]) -> tuple[str, str]:  # noqa: ANN001
    code = service.venues["main"].code
    answer = (await service.client.post("/api/declarations", json=declaration(code, person(symptoms=symptoms)))).json()
    return answer["rule_version"], answer["declarations"][0]["result"]


async def test_a_rule_set_needs_a_second_official(screening, mint):
    client = screening.client
    body = {"content-type": "application/json"}
    proposer = {**mint.headers(Role.HEALTH_OFFICER, CITY, username="syt.nghiepvu"), **body}
    second = {**mint.headers(Role.HEALTH_OFFICER, CITY, username="syt.phogiamdoc"), **body}

    refused = await client.post("/api/rule-sets", content=json.dumps(stricter("2021-07")),
                                headers={**mint.headers(Role.CITY_DIC, CITY), **body})
    assert refused.status_code == 403 and "Sở Y tế" in refused.text

    proposed = await client.post("/api/rule-sets", content=json.dumps(stricter("2021-07")), headers=proposer)
    assert proposed.status_code == 201, proposed.text
    assert proposed.json()["active"] is False and proposed.json()["proposed_by"]
    assert await _result(screening, ["fatigue"]) == ("2021-06", "yellow")   # not active yet

    own = await client.post("/api/rule-sets/2021-07/approve", headers=proposer)
    assert own.status_code == 403 and "người khác" in own.json()["detail"], own.text
    for outsider in (mint.headers(Role.CITY_DIC, CITY), mint.headers(Role.HEALTH_OFFICER, DEMO_DISTRICT)):
        assert (await client.post("/api/rule-sets/2021-07/approve", headers=outsider)).status_code == 403
    assert await _result(screening, ["fatigue"]) == ("2021-06", "yellow")

    approved = await client.post("/api/rule-sets/2021-07/approve", headers=second)
    assert approved.status_code == 200, approved.text
    row = approved.json()
    assert row["active"] is True and row["approved_by"] and row["approved_by"] != row["proposed_by"]
    assert row["approved_at"] and row["activated_at"]
    assert await _result(screening, ["fatigue"]) == ("2021-07", "red")
    again = await client.post("/api/rule-sets/2021-07/approve", headers=second)
    assert again.status_code == 409
