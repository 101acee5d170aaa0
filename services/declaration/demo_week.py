"""A past week of declarations for the demo district (``khaibao up`` on a fresh data folder).

The hot path's own code with a submitted time in the past: ``declare.prepare`` screens each
declaration with the active rule book, seals a red one's personal details to notification
and builds the same rows and outbox events a request would, and a ``GroupCommitter`` of the
service's writer stores them; the service's outbox relay then publishes the events, so
reporting counts them and notification raises the alerts exactly as for live traffic. The
public API stamps every declaration with the present moment, hence this loader (development
only: it runs under KHAIBAO_DEMO, which the settings refuse in production).

What it makes (seeded, so every demo looks the same): about 3 000 people over the last seven
days, a morning peak, schools empty on Sunday, families declaring together, a few percent
red (fever with a respiratory sign, or a close contact), a burst of reds at one market, and
a share of the market's declarations made at the gate by its gate staff.
"""
from __future__ import annotations

import asyncio
import random
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone

from sqlalchemy import func, select

from libs.common.auth import Principal, Role
from libs.common.db import Database

from .batcher import GroupCommitter
from .declare import prepare
from .directory import Directory, VenueInfo
from .models import Venue
from .passes import load_pass_keys
from .schemas import DeclarationIn
from .service import raise_case, record_entries
from .settings import DeclarationSettings
from .writers import PostgresWriter, SqliteWriter

VIETNAM = timezone(timedelta(hours=7))
DAYS = 7
# People declaring per local hour of a weekday (the morning peak at the gates).
HOURLY = {5: 3, 6: 10, 7: 16, 8: 13, 9: 8, 10: 6, 11: 6, 12: 3, 13: 3, 14: 4, 15: 6, 16: 7, 17: 8, 18: 5, 19: 3,
          20: 2, 21: 1}
PER_WEEKDAY = 420  # submissions on a weekday at every venue together (~1.2 people each)
# How busy a unit's gates are, by a word of its name; schools are closed on Sunday.
WEIGHTS = (("Chợ", 5), ("Bến phà", 4), ("Siêu thị", 3), ("Bệnh viện", 3), ("Trường", 2), ("Công ty", 1))
FAMILY = ("Nguyễn", "Trần", "Lê", "Phạm", "Hoàng", "Huỳnh", "Phan", "Vũ", "Võ", "Đặng", "Bùi", "Đỗ", "Hồ", "Ngô",
          "Dương", "Lý")
MIDDLE_M = ("Văn", "Minh", "Hữu", "Đức", "Quốc", "Thanh", "Công")
MIDDLE_F = ("Thị", "Ngọc", "Thu", "Kim", "Thanh", "Mỹ", "Bảo")
GIVEN_M = ("An", "Bình", "Dũng", "Hải", "Hiếu", "Hùng", "Khang", "Long", "Nam", "Phúc", "Quân", "Sơn", "Tâm",
           "Trung", "Tuấn", "Lộc", "Toàn")
GIVEN_F = ("Châu", "Giang", "Hà", "Hạnh", "Hoa", "Lan", "Linh", "Mai", "Nga", "Phương", "Thảo", "Trang", "Uyên",
           "Vy", "Yến", "Hương")
STREETS = ("Đường Duyên Hải", "Đường Lương Văn Nho", "Đường Rừng Sác", "Đường Thạnh Thới", "Đường Đào Cử",
           "Đường Tắc Xuất")
CAN_GIO_COMMUNES = ("27664", "27667", "27670", "27673", "27676", "27679", "27682")


@dataclass
class Person:
    name: str
    gender: str
    birth: str
    id_number: str | None
    phone: str
    commune: str
    street: str


def _person(rng: random.Random, *, child: bool = False, this_year: int = 2021) -> Person:
    gender = rng.choice(("male", "female"))
    middle, given = (MIDDLE_M, GIVEN_M) if gender == "male" else (MIDDLE_F, GIVEN_F)
    # A child under 14 declares without an ID document; an adult with one.
    year = this_year - (rng.randint(3, 12) if child else rng.randint(18, 75))
    return Person(name=f"{rng.choice(FAMILY)} {rng.choice(middle)} {rng.choice(given)}", gender=gender,
                  birth=f"{rng.randint(1, 28):02d}/{rng.randint(1, 12):02d}/{year}",
                  id_number=None if child else f"0790{rng.randint(0, 99_999_999):08d}",
                  phone=f"09{rng.randint(0, 99_999_999):08d}", commune=rng.choice(CAN_GIO_COMMUNES),
                  street=f"{rng.randint(1, 300)} {rng.choice(STREETS)}")


def _answers(rng: random.Random, red_share: float) -> tuple[list[str], list[str]]:
    roll = rng.random()
    if roll < red_share * 0.7:
        return ["cough", "fever"], []
    if roll < red_share:
        return [], ["close_contact"]
    if roll < red_share + 0.03:
        return ["fatigue"], []
    if roll < red_share + 0.06:
        return [], [rng.choice(("outbreak_area", "household_fever", "from_abroad"))]
    return [], []


def _person_in(person: Person, symptoms: list[str], exposures: list[str]) -> dict:
    return {"full_name": person.name, "birth": person.birth, "gender": person.gender, "id_number": person.id_number,
            "phone": person.phone, "province_code": "79", "district_code": "787", "commune_code": person.commune,
            "street": person.street, "symptoms": symptoms, "exposures": exposures}


@dataclass
class Planned:
    when: datetime
    venue: VenueInfo
    people: list[dict]
    channel: str = "self"


def plan_week(venues: list[VenueInfo], *, now: datetime, seed: int = 2021, gate_unit: uuid.UUID | None = None,
              red_share: float = 0.03) -> list[Planned]:
    """The week's submissions, oldest first (pure: the same seed and venues give the same week)."""
    rng = random.Random(seed)
    this_year = now.astimezone(VIETNAM).year
    regulars = [_person(rng, this_year=this_year) for _ in range(900)]
    weights = [next((w for word, w in WEIGHTS if venue.unit_name.startswith(word)), 1) for venue in venues]
    planned: list[Planned] = []
    first_day = (now.astimezone(VIETNAM) - timedelta(days=DAYS - 1)).date()
    for offset in range(DAYS):
        day = first_day + timedelta(days=offset)
        sunday = day.weekday() == 6
        total = int(PER_WEEKDAY * (0.7 if sunday else 1.0) * rng.uniform(0.9, 1.1))
        day_weights = [0 if sunday and v.unit_name.startswith("Trường") else w for v, w in zip(venues, weights)]
        hours = rng.choices(list(HOURLY), weights=list(HOURLY.values()), k=total)
        for hour, venue in zip(hours, rng.choices(venues, weights=day_weights, k=total)):
            when = datetime(day.year, day.month, day.day, hour, rng.randint(0, 59), rng.randint(0, 59),
                            tzinfo=VIETNAM).astimezone(UTC)
            if when >= now:
                continue
            lead = rng.choice(regulars) if rng.random() < 0.6 else _person(rng, this_year=this_year)
            members = [lead]
            if rng.random() < 0.12:  # a family: adults and children declare together
                members += [_person(rng, child=rng.random() < 0.6, this_year=this_year)
                            for _ in range(rng.randint(1, 3))]
            people = [_person_in(p, *_answers(rng, red_share)) for p in members]
            channel = "gate" if venue.unit_id == gate_unit and rng.random() < 0.3 else "self"
            planned.append(Planned(when, venue, people, channel))
    # One morning of an unusual burst: six reds at the busiest market within ten minutes.
    markets = [v for v in venues if v.unit_name.startswith("Chợ")] or venues
    burst_day = first_day + timedelta(days=DAYS - 3)
    start = datetime(burst_day.year, burst_day.month, burst_day.day, 7, 5, tzinfo=VIETNAM).astimezone(UTC)
    for minute in range(6):
        planned.append(Planned(start + timedelta(minutes=minute, seconds=rng.randint(0, 50)), markets[-1],
                               [_person_in(_person(rng, this_year=this_year), ["cough", "fever"], [])]))
    planned.sort(key=lambda p: p.when)
    return planned


async def venue_count(settings: DeclarationSettings, area: str) -> int:
    """How many venues of ``area`` the declaration service knows (from provisioning's events)."""
    database = Database.for_settings(settings)
    try:
        async with database.transaction(readonly=True) as session:
            return (await session.execute(select(func.count()).select_from(Venue).where(
                Venue.commune_path.like(f"{area}/%")))).scalar_one()
    finally:
        await database.dispose()


async def declare_week(settings: DeclarationSettings, area: str, *, gate_staff_id: str | None = None,
                       gate_unit: uuid.UUID | None = None, gate_staff_name: str = "", now: datetime | None = None,
                       progress: Callable[[int, int], None] = lambda done, total: None) -> Counter:
    """Store the planned week at the venues of ``area``; the declarations by result (and
    ``gate``). Today's visitors of the gate staff's unit were also let in at its gates
    (scanned), and its gate staff reported two suspected cases by hand this morning."""
    now = now or datetime.now(UTC)
    database = Database.for_settings(settings)
    directory = Directory(database, cache_seconds=0)
    await directory.load()
    venues = sorted((v for v in directory.venues.values() if v.active and v.commune_path.startswith(f"{area}/")),
                    key=lambda v: (v.unit_name, v.name))
    book = await directory.rules()
    keys = load_pass_keys(settings.pass_private_key_file, settings.pass_previous_public_key_files,
                          data_dir=settings.data_dir, create=False)
    url = settings.resolved_database_url()
    writer = (SqliteWriter(url, settings.sqlite_synchronous, settings.batch_timeout_seconds) if database.sqlite
              else PostgresWriter(url, settings.batch_timeout_seconds, password=settings.database_password()))
    committer = GroupCommitter([writer], max_rows=settings.batch_max_rows, max_pending=10**6)
    committer.start()
    seal_to = settings.sealing_key()
    valid_for = timedelta(hours=settings.pass_valid_hours)
    counts: Counter = Counter()
    planned = plan_week(venues, now=now, gate_unit=gate_unit)
    today = now.astimezone(VIETNAM).date()
    scanned: list[dict] = []
    try:
        for start in range(0, len(planned), 250):
            chunk = []
            for item in planned[start:start + 250]:
                data = DeclarationIn.model_validate({"venue_code": item.venue.code, "people": item.people,
                                                     "consent": True})
                chunk.append(prepare(data, item.venue, book, keys, now=item.when, valid_for=valid_for,
                                     seal_to=seal_to, channel=item.channel,
                                     declared_by=gate_staff_id if item.channel == "gate" else None))
                counts.update(d["result"] for d in chunk[-1].declarations)
                if item.channel == "gate":
                    counts["gate"] += len(chunk[-1].declarations)
                if item.venue.unit_id == gate_unit and item.when.astimezone(VIETNAM).date() == today:
                    scanned += [{"venue": item.venue, "nonce": uuid.uuid4(), "declaration_id": d["id"],
                                 "result": d["result"], "at": (item.when + timedelta(minutes=1)).timestamp()}
                                for d in chunk[-1].declarations if d["result"] != "red"]
            await asyncio.gather(*(committer.submit(p.submission, p.declarations, p.outbox, urgent=p.urgent)
                                   for p in chunk))
            progress(min(start + 250, len(planned)), len(planned))
        if gate_staff_id and scanned:
            counts["entries"], counts["cases"] = await _at_the_gate(database, scanned, seal_to, Principal(
                account_id=gate_staff_id, username="gate", name=gate_staff_name, role=Role.GATE_STAFF,
                jurisdiction=scanned[0]["venue"].commune_path, unit_id=str(gate_unit)))
    finally:
        await committer.stop()
        await directory.close()
        await database.dispose()
    return counts


async def _at_the_gate(database: Database, scanned: list[dict], seal_to: bytes, staff: Principal) -> tuple[int, int]:
    """Today's scans at the gates of the gate staff's unit, and two cases it reported by hand
    (one of them a visitor it had let in); (entries, cases)."""
    entries = 0
    async with database.transaction() as session:
        for venue in {id(s["venue"]): s["venue"] for s in scanned}.values():
            entries += await record_entries(session, venue, staff, [s for s in scanned if s["venue"] is venue])
        first = scanned[0]
        await raise_case(session, first["venue"], staff, full_name="Khách không khai báo", phone=None,
                         id_number=None, symptoms=["cough", "fever"], note="Ho nhiều, sốt cao; đã mời ra khu "
                         "cách ly tạm thời của chợ và báo Trạm Y tế", declaration_id=None, seal_to=seal_to)
        await raise_case(session, scanned[-1]["venue"], staff, full_name="Người bán hàng rau", phone="0909000301",
                         id_number=None, symptoms=["breathless"], note="Khó thở khi bốc hàng",
                         declaration_id=scanned[-1]["declaration_id"], seal_to=seal_to)
    return entries, 2
