"""The FHIR R4 interconnection API: every resource validated with fhir.resources (R4B
models: the R4 line's structures for these resources, on pydantic 2), incremental paging
that returns each declaration exactly once, jurisdiction and role checks, every access
in the access log, erased contact details not exported. The declarations go to an
interoperability client with a purpose (the client-credentials grant itself:
tests/reliability/test_powers_by_purpose.py); the directory to the city DIC too."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from fhir.resources.R4B.auditevent import AuditEvent
from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.capabilitystatement import CapabilityStatement
from fhir.resources.R4B.location import Location
from fhir.resources.R4B.organization import Organization
from fhir.resources.R4B.questionnaire import Questionnaire
from fhir.resources.R4B.questionnaireresponse import QuestionnaireResponse
from sqlalchemy import update

from libs.common.auth import Role
from services.reporting import directory, visits
from services.reporting.exposure import local_input

from .conftest import (
    CITY, DEMO_DISTRICT, OTHER_DISTRICT_COMMUNE, T0, apply, build_settings, run_services, submitted, venue_created,
)

HANDLERS = {**directory.HANDLERS, **visits.HANDLERS}
MODELS = {"QuestionnaireResponse": QuestionnaireResponse, "Organization": Organization, "Location": Location,
          "AuditEvent": AuditEvent, "Questionnaire": Questionnaire}


@pytest.fixture
async def reporting(keys):
    async with run_services({"reporting": build_settings("reporting", keys, fhir_settle_seconds=0)}) as running:
        yield running


@pytest.fixture
async def seeded(reporting):
    database = reporting.runtime("reporting").database
    market = venue_created(code="MARKET2345", name="Cổng chợ", unit_name="Chợ Cần Thạnh")
    far = venue_created(code="FARAWAY234", name="Cổng tòa nhà", unit_name="Tòa nhà Bến Nghé",
                        commune=OTHER_DISTRICT_COMMUNE)
    declared = [submitted(market, at=T0 + timedelta(minutes=m), name=f"Người {m}", phone=f"09000000{m:02d}",
                          result="red" if m == 3 else "green", channel="gate" if m == 4 else "self")
                for m in range(7)]
    await apply(database, HANDLERS, market, far, *declared, submitted(far, at=T0))
    return {"market": market, "far": far, "declared": declared, "db": database}


def exporter(mint, jurisdiction: str = CITY) -> dict:  # noqa: ANN001
    """An interoperability client's token (scope fhir.read) and the purpose of its calls."""
    return {**mint.headers(Role.INTEROP_CLIENT, jurisdiction, username="ncovi-sync"), "x-purpose": "ncovi_sync"}


def validate(bundle_json: dict) -> Bundle:
    """The Bundle and each of its resources against the FHIR models."""
    bundle = Bundle.model_validate(bundle_json)
    assert bundle.type == "searchset"
    for entry in bundle_json["entry"]:
        resource = entry["resource"]
        MODELS[resource["resourceType"]].model_validate(resource)
        assert entry["fullUrl"].endswith(f"/{resource['resourceType']}/{resource['id']}")
    return bundle


async def fetch_all(client, path, headers, count=3):  # noqa: ANN001, ANN201
    """Follow the next links; the resources and the number of pages."""
    url, found, pages = f"{path}{'&' if '?' in path else '?'}_count={count}", [], 0
    while url:
        response = await client.get(url, headers=headers)
        assert response.status_code == 200, response.text
        assert response.headers["content-type"].startswith("application/fhir+json")
        body = response.json()
        validate(body)
        found += [e["resource"] for e in body["entry"]]
        pages += 1
        url = next((link["url"] for link in body["link"] if link["relation"] == "next"), None)
    return found, pages


async def test_questionnaire_and_capability(reporting, mint):
    client = reporting["reporting"]
    headers = mint.headers(Role.CITY_DIC, CITY)
    response = await client.get("/api/fhir/Questionnaire/khaibao-declaration", headers=headers)
    assert response.status_code == 200
    questionnaire = Questionnaire.model_validate(response.json())
    assert questionnaire.status == "active"
    link_ids = {i.linkId for group in questionnaire.item for i in (group.item or [group])}
    assert {"full-name", "id-number", "phone", "symptoms", "exposures", "consent", "screening-result"} <= link_ids
    CapabilityStatement.model_validate((await client.get("/api/fhir/metadata", headers=headers)).json())
    missing = await client.get("/api/fhir/Questionnaire/other", headers=headers)
    assert missing.status_code == 404 and missing.json()["resourceType"] == "OperationOutcome"


async def test_incremental_export_of_declarations(reporting, seeded, mint):
    client = reporting["reporting"]
    headers = exporter(mint)
    found, pages = await fetch_all(client, "/api/fhir/QuestionnaireResponse", headers)
    assert len(found) == 8 and pages == 3 and len({r["id"] for r in found}) == 8
    first = next(r for r in found if r["id"] == str(seeded["declared"][0].data.declaration_id))
    assert first["contained"][0]["name"][0]["text"] == "Người 0" and first["source"]["reference"] == "#declarant"
    assert first["subject"]["reference"] == f"Location/{seeded['market'].data.venue_id}"
    assert first["status"] == "completed" and first["authored"].startswith("2021-06-20T08:00")
    red = next(r for r in found if r["id"] == str(seeded["declared"][3].data.declaration_id))
    screening = next(i for i in red["item"] if i["linkId"] == "screening")["item"]
    assert screening[0]["answer"][0]["valueCoding"]["code"] == "red"

    # the last page's cursor: later declarations only, nothing twice
    last = await client.get("/api/fhir/QuestionnaireResponse?_count=100", headers=headers)
    assert not any(link["relation"] == "next" for link in last.json()["link"])
    more = submitted(seeded["market"], at=T0 + timedelta(hours=1), name="Người đến sau")
    await apply(seeded["db"], HANDLERS, more, more)
    since = last.json()["timestamp"]
    newer = await client.get("/api/fhir/QuestionnaireResponse", headers=headers, params={"_since": since})
    assert [r["resource"]["id"] for r in newer.json()["entry"]] == [str(more.data.declaration_id)]

    # erasure is a change: with _since, erased declarations come again (without the Patient), page after page
    async with seeded["db"].transaction() as session:
        await session.execute(update(visits.visits).where(visits.visits.c.seq <= 3).values(
            full_name=None, phone=None, erased_at=datetime.now(UTC) + timedelta(seconds=1)))
    changed, pages = await fetch_all(client, f"/api/fhir/QuestionnaireResponse?_since={since}&x=1", headers, count=2)
    assert len(changed) == 4 and pages == 2
    assert sum("contained" not in r for r in changed) == 3

    # a district sees its own declarations only
    district, _ = await fetch_all(client, "/api/fhir/QuestionnaireResponse", exporter(mint, DEMO_DISTRICT), count=100)
    assert len(district) == 8


async def test_erased_contact_details_are_not_exported(reporting, seeded, mint):
    database = seeded["db"]
    async with database.transaction() as session:
        await session.execute(update(visits.visits).values(full_name=None, phone=None, erased_at=T0 + timedelta(days=21)))
    response = await reporting["reporting"].get("/api/fhir/QuestionnaireResponse?_count=100", headers=exporter(mint))
    body = response.json()
    validate(body)
    assert "Người" not in response.text and "0900000001" not in response.text
    assert all("contained" not in e["resource"] for e in body["entry"])


async def test_directory_and_audit_events(reporting, seeded, mint):
    client = reporting["reporting"]
    headers = mint.headers(Role.CITY_DIC, CITY)
    locations, _ = await fetch_all(client, "/api/fhir/Location", headers, count=1)
    assert {loc["identifier"][0]["value"] for loc in locations} == {"MARKET2345", "FARAWAY234"}
    market = next(loc for loc in locations if loc["identifier"][0]["value"] == "MARKET2345")
    assert market["managingOrganization"]["reference"] == f"Organization/{seeded['market'].data.unit_id}"
    assert market["address"]["district"] == "Huyện Cần Giờ"
    organizations, _ = await fetch_all(client, "/api/fhir/Organization", headers, count=1)
    assert {o["name"] for o in organizations} == {"Chợ Cần Thạnh", "Tòa nhà Bến Nghé"}

    # an exposure query by a health officer becomes an AuditEvent with its reason
    officer = mint.headers(Role.HEALTH_OFFICER, DEMO_DISTRICT)
    query = await client.post("/api/exposure", headers=officer, json={
        "venue": "MARKET2345", "case_reference": "CG-2021-0153", "reason": "Ca dương tính đã đến chợ",
        "start": local_input(T0), "end": local_input(T0 + timedelta(hours=1))})
    assert query.status_code == 200
    events, _ = await fetch_all(client, "/api/fhir/AuditEvent", headers, count=2)
    exposure = [e for e in events if e["subtype"][0]["code"] == "exposure.query"]
    assert len(exposure) == 1
    assert exposure[0]["agent"][0]["purposeOfUse"][0]["text"] == "Ca dương tính đã đến chợ"
    assert "Người 1" not in str(events)
    # every FHIR read is itself in the access log
    log = (await client.get("/api/access-log?limit=1000", headers=headers)).json()
    reads = [e for e in log if e["action"] == "fhir.read"]
    assert {e["detail"] for e in reads} >= {"Location", "Organization", "AuditEvent"}


async def test_refusals(reporting, seeded, mint):
    client = reporting["reporting"]
    assert (await client.get("/api/fhir/QuestionnaireResponse")).status_code == 401
    for role in (Role.CITY_DIC, Role.DISTRICT_FOCAL, Role.UNIT_ADMIN):
        response = await client.get("/api/fhir/QuestionnaireResponse", headers=mint.headers(role, DEMO_DISTRICT))
        assert response.status_code == 403, role
    # a health officer without a case investigation's purpose and reference
    response = await client.get("/api/fhir/QuestionnaireResponse", headers=mint.headers(Role.HEALTH_OFFICER,
                                                                                         DEMO_DISTRICT))
    assert response.status_code == 422 and response.json()["resourceType"] == "OperationOutcome"
    headers = exporter(mint)
    for query in ("_count=abc", "_since=hôm-qua", "_cursor=%%%", "_cursor=bm90LWEtbnVtYmVy"):
        response = await client.get(f"/api/fhir/QuestionnaireResponse?{query}", headers=headers)
        assert response.status_code == 400, query
        assert response.json()["resourceType"] == "OperationOutcome"
