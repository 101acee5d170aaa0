"""POST /api/declarations: stored durably, answered with signed passes, each event on the bus.

Real SQLite, the real embedded bus, real HTTP through ASGI.
"""
from __future__ import annotations

import uuid

from sqlalchemy import func, select

from libs.common.events import parse_event
from services.declaration.models import Declaration, Submission

from .conftest import declaration, person, read_events


async def _rows(service, model) -> int:  # noqa: ANN001
    async with service.runtime.database.transaction(readonly=True) as session:
        return (await session.execute(select(func.count()).select_from(model))).scalar_one()


async def test_one_person_is_stored_and_gets_a_signed_pass(declaration_app):
    service = declaration_app
    venue = service.venues["main"]
    response = await service.client.post("/api/declarations", json=declaration(venue.code))
    assert response.status_code == 201, response.text
    answer = response.json()
    assert answer["duplicate"] is False and answer["rule_version"] == "2021-06" and answer["venue_code"] == venue.code
    [item] = answer["declarations"]
    assert item["result"] == "green" and item["reasons"] == [] and item["full_name"] == "Nguyễn Văn An"
    # The pass carries the id, the colour and the expiry, signed; no personal data in clear.
    assert item["qr"].startswith("KB1.") and "079099012345" not in item["qr"] and "NGUY" not in item["qr"]
    found = service.runtime.extras["declaration"].keys.verify(item["qr"])
    assert (found.outcome, found.result, str(found.declaration_id)) == ("valid", "green", item["id"])
    async with service.runtime.database.transaction(readonly=True) as session:
        row = await session.get(Declaration, uuid.UUID(item["id"]))
    assert row is not None and row.venue_id == venue.venue_id and row.commune_path == venue.commune_path
    assert (row.id_type, row.id_number, row.phone, row.birth_year) == ("cccd", "079099012345", "0909123456", 1990)
    assert row.rule_version == "2021-06" and row.channel == "self"


async def test_a_family_declares_together_each_screened(declaration_app):
    service = declaration_app
    body = declaration(service.venues["main"].code,
                       person(),
                       person(full_name="Nguyễn Thị Bé", id_number=None, birth="2016", gender="female", phone=None,
                              symptoms=["fever", "cough"]),
                       person(full_name="Trần Văn Cường", id_number="123456789", birth="1950", exposures=["from_abroad"]))
    response = await service.client.post("/api/declarations", json=body)
    assert response.status_code == 201, response.text
    results = [(d["full_name"], d["result"], d["reasons"]) for d in response.json()["declarations"]]
    assert results == [("Nguyễn Văn An", "green", []),
                       ("Nguyễn Thị Bé", "red", ["fever_with_respiratory_sign"]),
                       ("Trần Văn Cường", "yellow", ["exposure"])]
    async with service.runtime.database.transaction(readonly=True) as session:
        rows = (await session.execute(select(Declaration).order_by(Declaration.member))).scalars().all()
    assert [r.member for r in rows] == [0, 1, 2] and len({r.submission_id for r in rows}) == 1
    # The child has no ID document; the group's phone reaches everyone.
    assert (rows[1].id_number, rows[1].phone) == (None, "0909123456")
    assert rows[2].id_type == "cmnd"


async def test_the_same_key_twice_is_stored_once_and_answered_the_same(declaration_app):
    service = declaration_app
    body = declaration(service.venues["main"].code, key="form-" + uuid.uuid4().hex)
    first = await service.client.post("/api/declarations", json=body)
    again = await service.client.post("/api/declarations", json=body)
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json()["duplicate"] is True
    assert again.json()["declarations"] == first.json()["declarations"]  # the same ids and the same passes
    assert await _rows(service, Declaration) == 1 and await _rows(service, Submission) == 1


async def test_concurrent_requests_are_stored_and_every_event_reaches_the_bus(declaration_app):
    import asyncio

    service = declaration_app
    code = service.venues["side"].code
    bodies = [declaration(code, person(full_name=f"Người Thứ {chr(65 + i % 26)}",
                                       symptoms=["fever", "breathless"] if i % 10 == 0 else []))
              for i in range(60)]
    responses = await asyncio.gather(*(service.client.post("/api/declarations", json=b) for b in bodies))
    assert [r.status_code for r in responses] == [201] * 60
    ids = {r.json()["declarations"][0]["id"] for r in responses}
    assert service.runtime.extras["declaration"].committer.rows == 60  # through the group committer
    assert await _rows(service, Declaration) == 60

    def complete(events: list[dict]) -> bool:
        return ids <= {e["data"]["declaration_id"] for e in events if e["type"] == "declaration.submitted"}

    events = await read_events(service.bus_url, service.namespace, complete)
    submitted = [e for e in events if e["type"] == "declaration.submitted"]
    flagged = [e for e in events if e["type"] == "declaration.flagged"]
    assert len(submitted) == 60 and len(flagged) == 6
    for event in events:
        parse_event(event)  # each is a valid contract
        assert event["jurisdiction"] == service.venues["side"].commune_path


async def test_public_venue_and_places_and_keys(declaration_app):
    client = declaration_app.client
    venue = (await client.get(f"/api/venues/{declaration_app.venues['main'].code.lower()}")).json()
    assert venue["name"] == "Cổng chính" and venue["active"] is True
    places = await client.get("/api/places/79.json")
    assert places.status_code == 200 and "max-age" in places.headers["cache-control"]
    districts = {d["code"]: d for d in places.json()["districts"]}
    assert ["27664", "Thị trấn Cần Thạnh"] in districts["787"]["communes"]
    cached = await client.get("/api/places/79.json", headers={"if-none-match": places.headers["etag"]})
    assert cached.status_code == 304
    assert (await client.get("/api/places/1000.json")).status_code == 422
    assert (await client.get("/api/places/99.json")).status_code == 404
    keys = (await client.get("/api/pass-keys")).json()["keys"]
    assert keys and keys[0]["kty"] == "OKP" and keys[0]["crv"] == "Ed25519" and "d" not in keys[0]


async def test_the_openapi_document_describes_the_declaration_body(declaration_app):
    document = (await declaration_app.client.get("/api/openapi.json")).json()
    body = document["paths"]["/api/declarations"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert body == {"$ref": "#/components/schemas/DeclarationIn"}
    schemas = document["components"]["schemas"]
    assert {"people", "venue_code", "consent"} <= set(schemas["DeclarationIn"]["properties"])
    assert "PersonIn" in schemas and "/api/bench/validate" not in document["paths"]


async def test_the_hot_door_gives_what_the_common_middleware_gives(declaration_app):
    """POST /api/declarations is answered in front of the middleware stack (fastpath.py): its
    answers still carry the security headers and the trace id, and are counted in the metrics
    (the latency histogram under the route label the DeclarationSlow alert selects)."""
    from prometheus_client import REGISTRY

    from libs.common.observability import HTTP_REQUESTS

    service = declaration_app
    counted = HTTP_REQUESTS.labels("declaration", "POST", "/api/declarations", "201")
    before = counted._value.get()
    timed = {"service": "declaration", "method": "POST", "route": "/api/declarations"}
    timed_before = REGISTRY.get_sample_value("khaibao_http_request_duration_seconds_count", timed) or 0
    response = await service.client.post("/api/declarations", json=declaration(service.venues["main"].code),
                                         headers={"x-trace-id": "trace-from-the-gate-42"})
    assert response.status_code == 201
    assert response.headers["x-trace-id"] == "trace-from-the-gate-42"
    assert response.headers["content-type"] == "application/json"
    assert "script-src 'self'" in response.headers["content-security-policy"]
    assert response.headers["x-content-type-options"] == "nosniff" and response.headers["x-frame-options"] == "DENY"
    assert counted._value.get() == before + 1
    assert REGISTRY.get_sample_value("khaibao_http_request_duration_seconds_count", timed) == timed_before + 1
    made = await service.client.post("/api/declarations", json=declaration(service.venues["main"].code),
                                     headers={"x-trace-id": "<script>"})
    assert made.status_code == 201 and made.headers["x-trace-id"].isalnum()  # a bad one is replaced
    # Other methods and paths still go through the ordinary stack.
    assert (await service.client.get("/api/declarations")).status_code == 405
