"""Alert storms: a flood of red declarations at one venue reaches the district health center
as a handful of alerts with counts, and nothing is dropped.

100 red declarations at one market (4 people, then one person 30 times with the same
phone or the same ID number, then 66 different people) and one genuine red at another
venue of the district, with the burst threshold at 5: the officer's inbox holds exactly 7
alerts (at the market: 5 alerts of their own, one of them counting the 30 declarations of
the repeated person, and 1 "unusual burst" alert counting the 66 others; 1 at the other
venue), the district's webhook is called 7 times, and reporting counts all 101 declarations
and marks the market's burst."""
from __future__ import annotations

import asyncio
import contextlib
import re
from datetime import datetime, timedelta

from sqlalchemy import func, select

from libs.common.auth import Role
from libs.common.events.declaration import DeclarationSubmitted, DeclarationSubmittedData, PersonDetails
from services.notification import alerts
from services.notification.alert_models import Alert, AlertDeclaration
from tests.services.conftest import DEMO_COMMUNE, DEMO_DISTRICT, OTHER_COMMUNE, build_settings, eventually, run_services

from .conftest import Alerts, start_alerts
from .support import EventSender, flagged, opened, payload
from .test_delivery import set_contacts

MARKET = {"code": "CT7K2M9Q", "name": "Chợ Cần Thạnh"}
OTHER = {"code": "BK3H8N2P", "name": "Nhà văn hoá Bình Khánh"}
THRESHOLD = 5


def red(commune: str, place: dict, n: int, *, phone: str | None = None, id_number: str | None = None):  # noqa: ANN201
    """A red declaration of person ``n`` (their own phone and ID number unless given)."""
    who = PersonDetails(full_name=f"Người khai số {n}", id_type="cccd", id_number=id_number or f"0792{n:08d}",
                        phone=phone or f"0908{n:06d}", birth_year=1990)
    return flagged(commune, who=who, **place)


def submitted(event) -> DeclarationSubmitted:  # noqa: ANN001
    """The ``declaration.submitted`` event of a flagged declaration (reporting counts these)."""
    data, person = event.data, opened(event).person
    return DeclarationSubmitted(producer="declaration", jurisdiction=data.commune_path, data=DeclarationSubmittedData(
        declaration_id=data.declaration_id, submission_id=data.submission_id, venue_id=data.venue.venue_id,
        venue_code=data.venue.venue_code, unit_id=data.venue.unit_id, commune_path=data.commune_path,
        submitted_at=data.submitted_at, valid_until=data.submitted_at + timedelta(days=1), result="red",
        reasons=data.reasons, rule_version=data.rule_version, full_name=person.full_name,
        phone=person.phone))


@contextlib.asynccontextmanager
async def notification_and_reporting(backend, keys, mint, tmp_path, **overrides):  # noqa: ANN001, ANN201
    notification = await start_alerts(backend, keys, mint, **overrides)
    reporting = build_settings(
        "reporting", keys, database_url=await backend.database_url("reporting"), bus_url=backend.bus_url,
        bus_namespace=backend.bus_options().get("namespace", ""), kafka_partitions=2, relay_poll_interval=0.05)
    sender = await EventSender.start(tmp_path, backend.bus_url, backend.bus_options().get("namespace", ""))
    try:
        async with run_services({"notification": notification, "reporting": reporting}) as system:
            yield Alerts(system, sender, mint)
    finally:
        await sender.stop()


async def test_a_flood_of_reds_makes_a_few_alerts_with_counts_and_every_declaration_counts(
        backend, keys, mint, tmp_path, hook):  # noqa: ANN001
    async with notification_and_reporting(backend, keys, mint, tmp_path, webhook_allow_private=True,
                                          alert_burst_threshold=THRESHOLD, alert_burst_window_seconds=600,
                                          alert_dedup_window_seconds=3600) as a:
        await set_contacts(a, Role.HEALTH_OFFICER, DEMO_DISTRICT, webhook_url=hook.url)

        async def inbox() -> list[dict]:
            return await a.listed(Role.HEALTH_OFFICER, DEMO_DISTRICT)

        async def at_market() -> list[dict]:
            return [x for x in await inbox() if x["venue_code"] == MARKET["code"]]

        async def holds(count: int, *, declarations: int) -> list[dict] | None:
            rows = await at_market()
            return rows if len(rows) == count and sum(r["declarations"] for r in rows) == declarations else None

        # 4 people, each once: 4 alerts.
        first = [red(DEMO_COMMUNE, MARKET, n) for n in range(4)]
        # One person 30 times: the same phone and ID number, then the same phone with
        # another ID number, then the same ID number with another phone.
        person = [red(DEMO_COMMUNE, MARKET, 100, phone="0909 555 123", id_number="079190001234")]
        person += [red(DEMO_COMMUNE, MARKET, 100 + n, phone="0909555123") for n in range(1, 15)]
        person += [red(DEMO_COMMUNE, MARKET, 100 + n, id_number="079190001234") for n in range(15, 30)]
        # 66 different people.
        others = [red(DEMO_COMMUNE, MARKET, 200 + n) for n in range(66)]
        genuine = red(OTHER_COMMUNE, OTHER, 999)
        everything = [*first, *person, *others, genuine]
        assert len(everything) == 101

        await a.sender.send(*(submitted(e) for e in everything))  # every declaration, for reporting
        await a.sender.send(*first)
        await eventually(lambda: holds(4, declarations=4), what="the first 4 alerts")
        await a.sender.send(person[0])
        await eventually(lambda: holds(5, declarations=5), what="the person's alert")
        await a.sender.send(*person[1:])
        await eventually(lambda: holds(5, declarations=34), what="the person's repeats counted")
        await a.sender.send(*others)
        await eventually(lambda: holds(6, declarations=100), what="the burst")
        await a.sender.send(genuine)
        await eventually(lambda: len_is(inbox, 7), what="the genuine alert at the other venue")
        await asyncio.sleep(0.5)  # nothing more arrives

        # The officer's inbox: exactly 7 alerts.
        rows = await inbox()
        assert len(rows) == 7
        market = [r for r in rows if r["venue_code"] == MARKET["code"]]
        singles = sorted((r for r in market if r["kind"] == "single"), key=lambda r: r["declarations"])
        bursts = [r for r in market if r["kind"] == "burst"]
        assert [r["declarations"] for r in singles] == [1, 1, 1, 1, 30]
        assert len(bursts) == 1 and bursts[0]["declarations"] == 66
        assert {r["source_id"] for r in singles[:4]} == {str(e.data.declaration_id) for e in first}
        assert singles[4]["source_id"] == str(person[0].data.declaration_id)
        newest = max(e.data.submitted_at for e in others)
        assert datetime.fromisoformat(bursts[0]["latest_at"]) == newest
        elsewhere = [r for r in rows if r["venue_code"] == OTHER["code"]]
        assert [(r["kind"], r["declarations"], r["source_id"]) for r in elsewhere] == [
            ("single", 1, str(genuine.data.declaration_id))]

        # The inbox page shows the same 7 rows, the burst marked.
        page = await a.client.get("/alerts", headers=a.html(Role.HEALTH_OFFICER, DEMO_DISTRICT))
        assert page.status_code == 200
        kinds = re.findall(r'data-kind="(\w+)" data-declarations="(\d+)"', page.text)
        assert sorted(kinds) == sorted([("single", "1")] * 5 + [("single", "30"), ("burst", "66")])

        # The burst's page: its count, its time span, and each of its 66 declarations.
        burst = await a.client.get(f"/alerts/{bursts[0]['id']}", headers=a.html(Role.HEALTH_OFFICER, DEMO_DISTRICT))
        assert burst.status_code == 200 and 'id="storm"' in burst.text
        assert burst.text.count('class="red-declaration"') == 66
        for e in (others[0], others[-1]):
            assert opened(e).person.phone in burst.text and opened(e).person.full_name in burst.text
        assert "079190001234" not in burst.text and opened(first[0]).person.phone not in burst.text  # only its own
        repeated = await a.client.get(f"/alerts/{singles[4]['id']}",
                                      headers=a.html(Role.HEALTH_OFFICER, DEMO_DISTRICT))
        assert repeated.text.count('class="red-declaration"') == 30
        # The unit sees the count, never who.
        unit = await a.client.get(f"/alerts/{bursts[0]['id']}",
                                  headers=a.html(Role.UNIT_ADMIN, DEMO_COMMUNE))
        assert unit.status_code == 200 and opened(others[0]).person.phone not in unit.text
        city = await a.client.get(f"/alerts/{bursts[0]['id']}", headers=a.html(Role.CITY_DIC, "79"))
        assert city.status_code == 200 and 'id="storm"' in city.text
        assert opened(others[0]).person.phone not in city.text and "Người khai" not in city.text

        # One webhook call per alert: 7, not 101.
        await eventually(lambda: _gte(len(hook.received), 7), what="the 7 webhook calls")
        await asyncio.sleep(0.5)
        assert len(hook.received) == 7
        sent = [payload(r)["alert"] for r in hook.received]
        assert sorted(p["alert_kind"] for p in sent) == ["burst"] + ["single"] * 6
        assert len({p["alert_id"] for p in sent}) == 7

        # Reporting: all 101 declarations counted, 7 alerts, the market's burst marked.
        reporting = a.system["reporting"]
        headers = a.headers(Role.HEALTH_OFFICER, DEMO_DISTRICT)

        async def board():
            response = await reporting.get("/api/dashboard", headers=headers)
            assert response.status_code == 200, response.text
            body = response.json()
            return body if (body["totals"]["declarations"] == 101 and body["totals"]["flagged"] == 101
                            and body["alerts"]["raised"] == 7) else None

        body = await eventually(board, what="reporting's counts")
        assert body["totals"]["by_result"]["red"] == 101
        venues = {v["code"]: (v["declarations"], v["red"], v["burst"]) for v in body["venues"]}
        assert venues == {MARKET["code"]: (100, 100, True), OTHER["code"]: (1, 1, False)}
        html = await reporting.get("/", headers={"accept": "text/html", **headers})
        assert html.status_code == 200 and "Đợt tăng bất thường" in html.text


async def _gte(value: int, bound: int) -> bool:
    return value >= bound


async def len_is(fetch, count: int) -> bool:  # noqa: ANN001
    return len(await fetch()) == count


async def test_concurrent_reds_at_one_venue_make_one_burst(alerts_factory):
    """20 reds of 20 people at one venue placed by 20 concurrent transactions (as replicas
    sharing the partitions would): the venue's lock decides them one at a time, so exactly
    the threshold's alerts of their own and one burst counting the rest."""
    async with alerts_factory(alert_burst_threshold=3) as a:
        runtime = a.runtime
        reds = [red(DEMO_COMMUNE, MARKET, n) for n in range(20)]

        async def place(event) -> None:  # noqa: ANN001
            async with runtime.database.transaction() as session:
                await alerts.raise_alert(session, runtime.settings, runtime.tree, event)

        await asyncio.gather(*(place(e) for e in reds))
        await asyncio.gather(*(place(e) for e in reds[:5]))  # delivered again: nothing changes
        async with runtime.database.transaction(readonly=True) as session:
            rows = sorted((k, n) for k, n in await session.execute(select(Alert.kind, Alert.declarations)))
            counted = (await session.execute(select(func.count()).select_from(AlertDeclaration))).scalar_one()
        assert rows == [("burst", 17), ("single", 1), ("single", 1), ("single", 1)]
        assert counted == 20
