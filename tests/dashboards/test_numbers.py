"""The dashboards' numbers equal the events, counted by hand, on both backends; events
arrive in any order and redelivery never counts twice."""
from __future__ import annotations

import math
import statistics
from datetime import timedelta

from libs.common.auth import Role
from services.reporting.service import today

from .conftest import eventually, feed, processed, reporting_on
from .world import BEN_NGHE, BINH_KHANH, CAN_GIO, CAN_THANH, COMMUNES, QUAN_1, build_world, shuffled

DEADLINE = 60


async def test_dashboard_numbers_equal_the_events(backend, keys, mint):
    day = today() - timedelta(days=1)
    world = build_world(day)
    async with reporting_on(backend, keys) as running:
        events = shuffled(world.events)
        await feed(running, events)
        await eventually(lambda: processed(running, events), timeout=DEADLINE, what="events projected")
        # The same events again (a redelivery, a relay retry): nothing changes.
        await feed(running, events[:40])
        client = running["reporting"]
        params = {"start": day.isoformat(), "end": day.isoformat()}

        city = (await client.get("/api/dashboard", params=params, headers=mint.headers(Role.CITY_DIC, "79"))).json()
        rows = {r["path"]: r for r in city["rows"]}
        assert rows[CAN_GIO]["declarations"] == world.declarations[CAN_THANH] + world.declarations[BINH_KHANH]
        assert rows[QUAN_1]["declarations"] == world.declarations[BEN_NGHE]
        assert city["totals"]["declarations"] == sum(world.declarations.values())
        assert city["totals"]["flagged"] == sum(world.flagged.values())
        assert city["alerts"]["raised"] == sum(world.alerts.values())
        assert city["alerts"]["acknowledged"] == sum(world.acked.values())
        assert city["alerts"]["median_minutes"] == round(statistics.median(world.waits), 1)
        ordered = sorted(world.waits)  # the 90th percentile by nearest rank
        assert city["alerts"]["p90_minutes"] == round(ordered[math.ceil(0.9 * len(ordered)) - 1], 1)
        assert city["alerts"]["open"] == city["alerts"]["raised"] - city["alerts"]["acknowledged"]
        # The totals row counts the whole area's alerts, like its rows count their communes'.
        assert (city["totals"]["alerts"], city["totals"]["acknowledged"]) == (
            sum(world.alerts.values()), sum(world.acked.values()))
        assert city["venues"][0]["declarations"] == max(world.per_venue.values())
        assert sum(city["per_hour"]) == sum(world.declarations.values())
        assert [d["declarations"] for d in city["per_day"]] == [sum(world.declarations.values())]
        for step in ("submitted", "accepted", "exempt", "forwarded", "issued", "live"):
            assert city["totals"]["funnel"][step] == sum(c[step] for c in world.funnel.values()), step

        district = (await client.get("/api/dashboard", params=params,
                                     headers=mint.headers(Role.DISTRICT_FOCAL, CAN_GIO))).json()
        assert {r["path"] for r in district["rows"]} >= {CAN_THANH, BINH_KHANH}
        assert all(r["path"].startswith(CAN_GIO + "/") for r in district["rows"])
        by_commune = {r["path"]: r for r in district["rows"]}
        for commune in (CAN_THANH, BINH_KHANH):
            row = by_commune[commune]
            assert row["declarations"] == world.declarations[commune]
            assert row["flagged"] == world.flagged[commune]
            assert row["alerts"] == world.alerts[commune]
            assert row["acknowledged"] == world.acked[commune]
            assert row["funnel"] == {s: world.funnel[commune][s] for s in row["funnel"]}
        hours = [0] * 24
        for (commune, hour), n in world.per_hour.items():
            if commune != BEN_NGHE:
                hours[hour] += n
        assert district["per_hour"] == hours
        assert all(v["commune_path"].startswith(CAN_GIO + "/") for v in district["venues"])
        top = district["venues"][0]
        assert top["declarations"] == max(n for v, n in world.per_venue.items()
                                          if any(v == x[0] for u in world.units if u.commune != BEN_NGHE
                                                 for x in u.venues))
        assert top["name"].startswith("Cổng ")  # from the venue directory, not the code

        commune = (await client.get("/api/dashboard", params=params,
                                    headers=mint.headers(Role.COMMUNE_FOCAL, CAN_THANH))).json()
        assert [r["path"] for r in commune["rows"]] == [CAN_THANH]
        assert commune["totals"]["declarations"] == world.declarations[CAN_THANH]
        assert all(v["commune_path"] == CAN_THANH for v in commune["venues"])

        # A unit administrator sees its own venues only.
        unit = next(u for u in world.units if u.commune == CAN_THANH and u.venues)
        mine = (await client.get("/api/unit/dashboard", params=params,
                                 headers=mint.headers(Role.UNIT_ADMIN, CAN_THANH, unit_id=str(unit.unit_id)))).json()
        assert {v["venue_id"] for v in mine["venues"]} <= {str(v[0]) for v in unit.venues}
        assert mine["totals"]["declarations"] == sum(world.per_venue[v[0]] for v in unit.venues)

        # Outside the period: nothing.
        before = {"start": (day - timedelta(days=5)).isoformat(), "end": (day - timedelta(days=1)).isoformat()}
        empty = (await client.get("/api/dashboard", params=before, headers=mint.headers(Role.CITY_DIC, "79"))).json()
        assert empty["totals"]["declarations"] == 0 and empty["alerts"]["raised"] == 0
        assert set(COMMUNES)
