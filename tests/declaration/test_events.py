"""The declaration events as contracts, on both backends (SQLite + embedded bus, PostgreSQL + Kafka).

Venues arrive from provisioning's events; every declaration leaves a ``declaration.submitted``
(reporting counts them), a red one also a ``declaration.flagged`` (notification alerts the
health center and the commune), with what those consumers need and no more.
"""
from __future__ import annotations

from libs.common import sealed
from libs.common.events import parse_event
from libs.common.events.provisioning import VenueDisabled, VenueDisabledData, VenueUpdated
from services.notification.alerts import open_person

from .conftest import declaration, eventually, person, read_events


async def test_submitted_and_flagged_events_carry_what_their_consumers_need(declaration_on):
    service = declaration_on
    venue = service.venues["main"]
    body = declaration(venue.code, person(),
                       person(full_name="Lê Thị Cúc", id_number="079190054321", birth="10/10/1990",
                              gender="female", phone="0918 765 432", district_code="760", commune_code="26740",
                              street="5 Nguyễn Huệ", symptoms=["fever", "taste_smell"], symptom_other="đau đầu",
                              exposures=["outbreak_area"]))
    response = await service.client.post("/api/declarations", json=body)
    assert response.status_code == 201, response.text
    first, second = response.json()["declarations"]

    def complete(events: list[dict]) -> bool:
        return sum(e["type"] == "declaration.submitted" for e in events) >= 2 and any(
            e["type"] == "declaration.flagged" for e in events)

    events = await read_events(service.bus_url, service.namespace, complete)
    typed = [parse_event(e) for e in events]  # valid contracts, as consumers read them
    submitted = {str(e.data.declaration_id): e for e in typed if e.type == "declaration.submitted"}
    [flagged] = [e for e in typed if e.type == "declaration.flagged"]

    green = submitted[first["id"]]
    assert green.jurisdiction == venue.commune_path == green.data.commune_path
    assert (green.data.venue_id, green.data.venue_code, green.data.unit_id) == (venue.venue_id, venue.code,
                                                                                venue.unit_id)
    assert (green.data.result, green.data.rule_version, green.data.group_size) == ("green", "2021-06", 2)
    assert green.data.valid_until > green.data.submitted_at
    # Only what an exposure query returns to a contact tracer: a name and a phone.
    raw = next(e for e in events if e["data"].get("declaration_id") == first["id"]
               and e["type"] == "declaration.submitted")
    assert set(raw["data"]) == {"declaration_id", "submission_id", "venue_id", "venue_code", "unit_id",
                                "commune_path", "submitted_at", "valid_until", "result", "reasons", "rule_version",
                                "channel", "group_size", "full_name", "phone"}
    assert "079099012345" not in str(raw) and "Lương Văn Nho" not in str(raw)

    red = submitted[second["id"]]
    assert red.data.result == "red" and red.data.reasons == ["fever_with_respiratory_sign"]
    assert flagged.data.declaration_id == red.data.declaration_id
    assert flagged.partition_key() == red.partition_key()  # same partition: submitted before flagged
    assert flagged.jurisdiction == venue.commune_path
    assert flagged.data.venue.unit_name == "Chợ Cần Thạnh" and flagged.data.venue.venue_name == "Cổng chính"
    # The rest travels sealed to notification's key (the development pair of the data folder).
    raw_flagged = next(e for e in events if e["type"] == "declaration.flagged")
    assert set(raw_flagged["data"]) == {"declaration_id", "submission_id", "venue", "commune_path", "submitted_at",
                                        "result", "reasons", "rule_version", "channel", "sealed_person"}
    assert "079190054321" not in str(raw_flagged) and "Nguyễn Huệ" not in str(raw_flagged)
    private = sealed.load_private(sealed.default_paths(service.runtime.settings.data_dir)[0])
    details = open_person(flagged, [private])
    assert details.symptoms == ["fever", "taste_smell"] and details.symptom_other == "đau đầu"
    assert details.exposures == ["outbreak_area"]
    person_data = details.person
    assert (person_data.full_name, person_data.id_number, person_data.phone) == (
        "Lê Thị Cúc", "079190054321", "0918765432")
    assert person_data.address_label == "5 Nguyễn Huệ, Phường Bến Nghé, Quận 1, Thành phố Hồ Chí Minh"
    assert str(person_data.birth_date) == "1990-10-10"


async def test_venue_changes_from_provisioning_apply_to_declarations(declaration_on):
    service = declaration_on
    venue = service.venues["main"]
    client = service.client
    await service.announce(VenueUpdated(producer="provisioning", jurisdiction=venue.commune_path,
                                        data=dict(venue.state(), name="Cổng chính (đường Rừng Sác)")))

    async def renamed():
        return (await client.get(f"/api/venues/{venue.code}")).json()["name"] == "Cổng chính (đường Rừng Sác)"

    await eventually(renamed, what="venue renamed")
    await service.announce(VenueDisabled(producer="provisioning", jurisdiction=venue.commune_path,
                                         data=VenueDisabledData(**venue.state(active=False))))

    async def closed():
        return (await client.post("/api/declarations", json=declaration(venue.code))).status_code == 410

    await eventually(closed, what="venue closed")
