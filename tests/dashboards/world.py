"""Events of a small, known world for the dashboard tests, and the counts a reader of the
events would make by hand (independently of the read models)."""
from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta, timezone
from uuid import UUID, uuid4

from libs.common.events.declaration import (
    DeclarationFlagged, DeclarationFlaggedData, DeclarationSubmitted, DeclarationSubmittedData, PersonDetails,
    SensitiveDetails,
    VenueRef,
)
from libs.common.events.envelope import Event
from libs.common.events.intake import (
    BatchForwarded, BatchForwardedData, ForwardedUnit, RegistrationAccepted, RegistrationExempted,
    RegistrationExemptedData, RegistrationReviewedData, RegistrationSubmitted, RegistrationSubmittedData,
)
from libs.common.events.notification import (
    AlertAcknowledged, AlertAcknowledgedData, AlertEscalated, AlertEscalatedData, AlertRaised, AlertRaisedData,
)
from libs.common.events.provisioning import (
    AccountIssued, CredentialsDeliveryData, SealedCredentials, VenueCreated, VenueCreatedData,
)

VIETNAM = timezone(timedelta(hours=7))
CAN_THANH, BINH_KHANH, CAN_GIO = "79/787/27664", "79/787/27667", "79/787"
BEN_NGHE, QUAN_1 = "79/760/26740", "79/760"
COMMUNES = (CAN_THANH, BINH_KHANH, BEN_NGHE)


def district_of(commune: str) -> str:
    return commune.rsplit("/", 1)[0]


@dataclass
class Unit:
    unit_id: UUID
    registration_id: UUID
    name: str
    commune: str
    venues: list[tuple[UUID, str, str]] = field(default_factory=list)  # (id, code, name)


@dataclass
class World:
    """The events, and what they say (counted by hand)."""

    day: date
    events: list[Event] = field(default_factory=list)
    units: list[Unit] = field(default_factory=list)
    funnel: dict[str, Counter] = field(default_factory=dict)  # commune -> step -> n
    declarations: Counter = field(default_factory=Counter)  # commune -> n
    flagged: Counter = field(default_factory=Counter)
    per_venue: Counter = field(default_factory=Counter)  # venue id -> n
    per_hour: Counter = field(default_factory=Counter)  # (commune, local hour) -> n
    alerts: Counter = field(default_factory=Counter)  # commune -> raised
    acked: Counter = field(default_factory=Counter)
    waits: list[float] = field(default_factory=list)  # minutes, per acknowledged alert (all communes)

    def step(self, commune: str, name: str) -> None:
        self.funnel.setdefault(commune, Counter())[name] += 1


def _person(name: str) -> PersonDetails:
    return PersonDetails(full_name=name, phone="0909000111")


def build_world(day: date, *, seed: int = 7, units_per_commune: int = 3, declarations: int = 120) -> World:
    """Registrations, issued accounts, venues, declarations on ``day`` (local), flags, alerts."""
    rng = random.Random(seed)
    world = World(day)
    base = datetime(day.year, day.month, day.day, 7, 0, tzinfo=VIETNAM).astimezone(UTC)
    for commune in COMMUNES:
        for n in range(units_per_commune):
            unit = Unit(uuid4(), uuid4(), f"Chợ Thử Nghiệm {commune[-5:]}-{n}", commune)
            world.units.append(unit)
            data = RegistrationSubmittedData(
                registration_id=unit.registration_id, reference=f"DK-{commune[-5:]}-{n}", unit_name=unit.name,
                unit_type="market", address="1 Đường Lê Lợi", commune_path=commune, receiver="commune",
                contact_name="Nguyễn Văn Bình", contact_phone="0909123456")
            world.events.append(RegistrationSubmitted(producer="intake", jurisdiction=commune,
                                                      occurred_at=base - timedelta(days=3), data=data))
            world.step(commune, "submitted")
            if n == 0:
                world.events.append(RegistrationExempted(
                    producer="intake", jurisdiction=commune, occurred_at=base - timedelta(days=2),
                    data=RegistrationExemptedData(registration_id=unit.registration_id, reference=data.reference,
                                                  commune_path=commune, reason="ncovi")))
                world.step(commune, "exempt")
                continue
            world.events.append(RegistrationAccepted(
                producer="intake", jurisdiction=commune, occurred_at=base - timedelta(days=2),
                data=RegistrationReviewedData(registration_id=unit.registration_id, reference=data.reference,
                                              commune_path=commune, reviewer_path=commune)))
            world.step(commune, "accepted")
            world.events.append(BatchForwarded(
                producer="intake", jurisdiction=district_of(commune), occurred_at=base - timedelta(days=1),
                data=BatchForwardedData(batch_id=uuid4(), reference="CS", district_path=district_of(commune),
                                        units=[ForwardedUnit(
                                            registration_id=unit.registration_id, reference=data.reference,
                                            unit_name=unit.name, unit_type="market", address="1 Đường Lê Lợi",
                                            commune_path=commune, contact_name="Nguyễn Văn Bình",
                                            contact_phone="0909123456")])))
            world.step(commune, "forwarded")
            world.events.append(AccountIssued(
                producer="provisioning", jurisdiction=commune, occurred_at=base - timedelta(hours=20),
                data=CredentialsDeliveryData(
                    account_id=uuid4(), username=f"u{unit.unit_id.hex[:8]}", role="unit_admin",
                    unit_id=unit.unit_id, unit_name=unit.name, unit_address="1 Đường Lê Lợi", commune_path=commune,
                    district_path=district_of(commune), registration_id=unit.registration_id,
                    credentials=SealedCredentials(credentials_id=uuid4(), key_id="k", sealed="x"),
                    signin_url="http://x/signin", guide_url="http://x/help", posters_url="http://x/posters")))
            world.step(commune, "issued")
            for v in range(2):
                venue_id, code = uuid4(), "".join(rng.choice("23456789ABCDEFGHJKLMNPQRSTUVWXYZ") for _ in range(10))
                name = f"Cổng {v + 1} – {unit.name}"
                unit.venues.append((venue_id, code, name))
                world.events.append(VenueCreated(
                    producer="provisioning", jurisdiction=commune, occurred_at=base - timedelta(hours=19),
                    data=VenueCreatedData(venue_id=venue_id, code=code, unit_id=unit.unit_id, unit_name=unit.name,
                                          name=name, address="1 Đường Lê Lợi", commune_path=commune)))
    live_units = [u for u in world.units if u.venues and not u.name.endswith("-2")]
    live: set[UUID] = set()
    for i in range(declarations):
        unit = rng.choice(live_units)
        venue_id, code, name = rng.choice(unit.venues)
        at = base + timedelta(minutes=rng.randrange(0, 14 * 60))
        result = rng.choices(["green", "yellow", "red"], [80, 15, 5])[0]
        declaration_id = uuid4()
        world.events.append(DeclarationSubmitted(
            producer="declaration", jurisdiction=unit.commune, occurred_at=at, data=DeclarationSubmittedData(
                declaration_id=declaration_id, submission_id=uuid4(), venue_id=venue_id, venue_code=code,
                unit_id=unit.unit_id, commune_path=unit.commune, submitted_at=at, valid_until=at + timedelta(days=1),
                result=result, rule_version="1", full_name=f"Người {i}", phone="0909000111")))
        world.declarations[unit.commune] += 1
        world.per_venue[venue_id] += 1
        world.per_hour[(unit.commune, at.astimezone(VIETNAM).hour)] += 1
        if unit.unit_id not in live:
            live.add(unit.unit_id)
            world.step(unit.commune, "live")
        if result != "red":
            continue
        venue = VenueRef(venue_id=venue_id, venue_code=code, venue_name=name, unit_id=unit.unit_id,
                         unit_name=unit.name, address="1 Đường Lê Lợi", commune_path=unit.commune)
        world.events.append(DeclarationFlagged(
            producer="declaration", jurisdiction=unit.commune, occurred_at=at, data=DeclarationFlaggedData(
                declaration_id=declaration_id, submission_id=uuid4(), venue=venue, commune_path=unit.commune,
                submitted_at=at, result="red", reasons=["fever"], rule_version="1",
                clear=SensitiveDetails(person=_person(f"Người {i}")))))
        world.flagged[unit.commune] += 1
        alert_id = uuid4()
        district = district_of(unit.commune)
        world.events.append(AlertRaised(producer="notification", jurisdiction=unit.commune, occurred_at=at,
                                        data=AlertRaisedData(alert_id=alert_id, source="flagged",
                                                             source_id=declaration_id, venue_id=venue_id,
                                                             venue_code=code, unit_id=unit.unit_id,
                                                             commune_path=unit.commune, district_path=district,
                                                             raised_at=at)))
        world.alerts[unit.commune] += 1
        if rng.random() < 0.7:
            wait = rng.randrange(2, 90)
            world.events.append(AlertAcknowledged(
                producer="notification", jurisdiction=unit.commune, occurred_at=at + timedelta(minutes=wait),
                data=AlertAcknowledgedData(alert_id=alert_id, commune_path=unit.commune, district_path=district,
                                           raised_at=at, acknowledged_at=at + timedelta(minutes=wait),
                                           by_role="commune_focal")))
            world.acked[unit.commune] += 1
            world.waits.append(float(wait))
        else:
            world.events.append(AlertEscalated(
                producer="notification", jurisdiction=unit.commune, occurred_at=at + timedelta(minutes=30),
                data=AlertEscalatedData(alert_id=alert_id, commune_path=unit.commune, district_path=district,
                                        raised_at=at, escalated_at=at + timedelta(minutes=30))))
    return world


def shuffled(events: list[Event], seed: int = 3) -> list[Event]:
    """The same events in another order (consumers must not depend on it)."""
    copy = list(events)
    random.Random(seed).shuffle(copy)
    return copy
