"""The demo data of ``khaibao up``: registrations in Cần Giờ at every stage, loaded once."""
from __future__ import annotations

from libs.common.auth import Role

from .conftest import CITY, DEMO_COMMUNE, DEMO_DISTRICT, FAST, build_settings, headers, run_services


async def test_demo_registrations_are_loaded_once(keys, mint):
    settings = {"intake": build_settings("intake", keys, demo=True, **FAST)}
    for _ in range(2):  # a restart does not load them again
        async with run_services(settings) as system:
            client = system["intake"]
            district = headers(mint, Role.DISTRICT_FOCAL, DEMO_DISTRICT)
            registrations = (await client.get("/api/registrations", headers=district)).json()
            assert len(registrations) == 8
            assert {r["status"] for r in registrations} == {"submitted", "accepted", "returned", "exempt"}
            assert len((await client.get("/api/lists", headers=district)).json()) == 1
            [batch] = (await client.get("/api/batches", headers=district)).json()
            assert batch["count"] == 2
            ready = (await client.get("/api/forwardable", headers=district)).json()
            assert [r["unit_name"] for r in ready] == ["Trường THCS Bình Khánh"]
            progress = (await client.get("/api/progress", headers=district)).json()
            assert sum(r["registered"] for r in progress["rows"]) == 8
            # The demo commune's own queue starts empty; the city sees the same eight.
            assert (await client.get("/api/registrations", headers=headers(mint, Role.COMMUNE_FOCAL, DEMO_COMMUNE))
                    ).json() == []
            assert len((await client.get("/api/registrations", headers=headers(mint, Role.CITY_DIC, CITY))).json()) == 8
