"""Issue 18 item 6: ``khaibao up`` loaded accounts and one unit but no declaration, so a
newcomer's dashboards were all zeros.

The week's plan (services/declaration/demo_week.py) is realistic on its own: every submission
in the last seven days and none in the future, a morning peak, a few percent red, schools
closed on Sunday, families, gate declarations at the gate staff's unit, one burst of reds.
Each declaration passes the public form's own validation. The whole week through the
running system is checked in tests/browser/test_demo.py.
"""
from __future__ import annotations

import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta

from services.declaration.demo_week import VIETNAM, plan_week
from services.declaration.directory import VenueInfo
from services.declaration.schemas import DeclarationIn
from services.declaration.screening import answer_codes

MARKET_UNIT = uuid.uuid4()


def _venue(unit_name: str, name: str, unit_id: uuid.UUID | None = None) -> VenueInfo:
    return VenueInfo(uuid.uuid4(), uuid.uuid4().hex[:10].upper(), unit_id or uuid.uuid4(), unit_name, name,
                     "Cần Giờ", "79/787/27664", True)


VENUES = [_venue("Chợ Cần Thạnh", "Cổng chính", MARKET_UNIT), _venue("Chợ Cần Thạnh", "Cổng phụ", MARKET_UNIT),
          _venue("Trường Tiểu học Cần Thạnh", "Cổng 1"), _venue("Bến phà Bình Khánh", "Cổng 1"),
          _venue("Công ty TNHH Du lịch Sinh thái Cần Giờ", "Cổng 1")]


def test_a_week_with_a_morning_peak_a_few_reds_and_gate_declarations():
    now = datetime(2026, 12, 8, 3, 0, tzinfo=UTC)  # 10:00 in Ho Chi Minh City, a Tuesday
    planned = plan_week(VENUES, now=now, gate_unit=MARKET_UNIT)
    assert planned == sorted(planned, key=lambda p: p.when)
    assert all(now - timedelta(days=7) < p.when < now for p in planned)
    people = [person for p in planned for person in p.people]
    assert 2500 <= len(people) <= 4000
    days = Counter(p.when.astimezone(VIETNAM).date() for p in planned)
    assert len(days) == 7
    hours = Counter(p.when.astimezone(VIETNAM).hour for p in planned)
    assert max(hours, key=hours.get) in (6, 7, 8)
    assert hours[7] > 2 * hours[13] and not hours[2]
    # a few percent red, by the rule book's own answers (fever with a cough, a close contact)
    red = sum(1 for person in people if {"fever", "cough"} <= set(person["symptoms"])
              or "close_contact" in person["exposures"])
    assert 0.015 < red / len(people) < 0.06
    # schools are closed on Sunday
    sunday = [p for p in planned if p.when.astimezone(VIETNAM).weekday() == 6]
    assert sunday and not [p for p in sunday if p.venue.unit_name.startswith("Trường")]
    # families, and the market's gate staff declaring for visitors
    assert any(len(p.people) > 1 for p in planned)
    gate = [p for p in planned if p.channel == "gate"]
    assert gate and all(p.venue.unit_id == MARKET_UNIT for p in gate)
    # the same seed makes the same week
    assert [p.when for p in plan_week(VENUES, now=now, gate_unit=MARKET_UNIT)] == [p.when for p in planned]


def test_every_planned_declaration_passes_the_forms_validation():
    now = datetime.now(UTC)
    planned = plan_week(VENUES, now=now, gate_unit=MARKET_UNIT)
    for item in planned:
        data = DeclarationIn.model_validate({"venue_code": item.venue.code, "people": item.people, "consent": True})
        assert len(data.people) == len(item.people)
    burst = [p for p in planned if p.venue.unit_name.startswith("Chợ") and len(p.people) == 1
             and answer_codes(tuple(p.people[0]["symptoms"]), (), None) >= {"fever", "cough"}]
    # six reds within ten minutes at one market: an "unusual burst"
    assert any(sum(1 for q in burst if q.venue == p.venue and timedelta(0) <= q.when - p.when <= timedelta(minutes=10))
               >= 6 for p in burst)
