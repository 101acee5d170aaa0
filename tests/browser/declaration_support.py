"""Helpers of the declaration browser tests: the demo venues as the declaration service knows them."""
from __future__ import annotations

import time

import httpx

from tests.services.conftest import UpProcess, demo_token


def demo_venues(system: UpProcess, timeout: float = 60) -> list[dict]:
    """The demo unit's venues, once the declaration service has copied them from the events."""
    token = demo_token(system, "donvi.chocanthanh")
    venues = httpx.get(system.urls["provisioning"] + "/api/venues", headers={"authorization": f"Bearer {token}"},
                       timeout=10).json()
    deadline = time.monotonic() + timeout
    for venue in venues:
        while httpx.get(f"{system.urls['declaration']}/api/venues/{venue['code']}", timeout=10).status_code != 200:
            assert time.monotonic() < deadline, f"venue {venue['code']} not in the declaration service"
            time.sleep(0.3)
    return venues


def fill_person(page, index: int, *, name: str, birth: str, gender: int, id_number: str | None = None,  # noqa: ANN001
                phone: str | None = None, address: bool = True) -> None:
    prefix = f"#f-p{index}-"
    page.fill(prefix + "full_name", name)
    if id_number:
        page.fill(prefix + "id_number", id_number)
    page.fill(prefix + "birth", birth)
    page.check(f"{prefix}gender-{gender}")
    if phone:
        page.fill(prefix + "phone", phone)
    if address:
        page.select_option(prefix + "district_code", "787")
        page.wait_for_function(f"() => document.querySelector('{prefix}commune_code').options.length > 1")
        page.select_option(prefix + "commune_code", "27664")
        page.fill(prefix + "street", "12 Lương Văn Nho")
