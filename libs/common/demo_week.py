"""``khaibao demo-week``: a realistic past week for the demo district, run by ``khaibao up``
once, on the first start of a fresh data folder, after every service is healthy.

Each step goes through the services' own code or HTTP APIs, so that every event reaches its
consumers as in real use (reporting's dashboards, notification's alerts and e-mails):

1. intake: seven units of various kinds (school, supermarket, ferry, market, company,
   hospital) registered eight days ago, accepted, listed and forwarded to the city;
2. provisioning: the city (``so.tttt``) issues the forwarded batches over the API: units,
   venues, accounts, and a credentials e-mail to each unit (the demo mailbox);
3. notification: the demo commune's alert contacts (its alerts are e-mailed);
4. declaration: about 3 000 people over the last seven days at every venue of the district
   (services/declaration/demo_week.py), stored by the hot path's own code with past times;
5. once reporting counted them and notification raised their alerts, the district health
   center acknowledges most alerts.

The services run in their own processes; this one reads the same environment (the
launcher's), opens the databases the steps write to and calls the APIs at
KHAIBAO_SERVICE_URLS. Its progress goes to stdout, under the launcher's banner.
"""
from __future__ import annotations

import asyncio
import json
import os
import sys
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from uuid import UUID

import httpx

from . import demo, fieldcrypt

AREA = demo.DISTRICT
ALERT_EMAILS = "yte.canthanh@canthanh.example"
WAIT_SECONDS = 90.0


def say(text: str) -> None:
    print(f"  [tuần mẫu / demo week] {text}", flush=True)


class DemoWeekFailed(RuntimeError):
    pass


async def _until(what: str, check, timeout: float = WAIT_SECONDS, interval: float = 0.3):  # noqa: ANN001, ANN202
    """Call ``check`` until it returns something true; that value."""
    deadline = time.monotonic() + timeout
    while True:
        value = await check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise DemoWeekFailed(f"timed out waiting for {what}")
        await asyncio.sleep(interval)


async def _token(client: httpx.AsyncClient, urls: dict[str, str], username: str) -> dict[str, str]:
    response = await client.post(f"{urls['provisioning']}/api/token",
                                 json={"username": username, "password": demo.DEMO_PASSWORD})
    if response.status_code != 200:
        raise DemoWeekFailed(f"sign-in of {username}: HTTP {response.status_code}")
    return {"authorization": f"Bearer {response.json()['access_token']}"}


async def _issue_batches(client: httpx.AsyncClient, urls: dict[str, str], city: dict[str, str], expected: int) -> int:
    """The city issues every forwarded batch of the district (as an official would from its
    console); the number of units issued."""
    async def batches() -> list | None:
        response = await client.get(f"{urls['provisioning']}/api/batches", headers=city)
        found = [b for b in response.json() if b["district_path"] == AREA] if response.status_code == 200 else []
        return found if sum(b["unit_count"] for b in found) >= expected else None

    issued = 0
    for batch in await _until("the forwarded batches in provisioning", batches):
        if not batch["pending"]:
            continue
        response = await client.post(f"{urls['provisioning']}/api/batches/{batch['id']}/issue", headers=city)
        if response.status_code != 202:
            raise DemoWeekFailed(f"issuing batch {batch['reference']}: HTTP {response.status_code}")
        job = response.json()["id"]

        async def finished(job: str = job) -> dict | None:
            found = (await client.get(f"{urls['provisioning']}/api/jobs/{job}", headers=city)).json()
            return found if found.get("status") in ("done", "failed", "finished", "completed") else None

        issued += (await _until(f"issuing job {job}", finished))["done"]
    return issued


async def load(urls: dict[str, str]) -> Counter:
    from services.declaration import demo_week as declaration_week
    from services.declaration.settings import DeclarationSettings
    from services.intake import demo_week as intake_week
    from services.intake.settings import IntakeSettings
    from services.notification import demo_week as notification_week
    from services.notification.settings import NotificationSettings

    from .adminunits import load_tree
    from .db import Database

    started = time.monotonic()
    now = datetime.now(UTC)
    intake = IntakeSettings()
    notification = NotificationSettings()
    declaration = DeclarationSettings()
    # Written through the services' own code, in this process: with their key rings, as
    # their running processes would (the personal fields and outbox payloads sealed at rest).
    for settings in (intake, notification, declaration):
        fieldcrypt.register(settings.service_name, settings.field_ring())
    tree = load_tree(str(intake.admin_units_file) if intake.admin_units_file else None, intake.admin_units_root)
    say("đăng ký đơn vị / registering units ...")
    database = Database.for_settings(intake)
    try:
        units = await intake_week.register_week(database, tree, deadline=intake.campaign_deadline,
                                                start=now - timedelta(days=8))
    finally:
        await database.dispose()
    await notification_week.set_contacts(notification, demo.COMMUNE, ALERT_EMAILS, "UBND thị trấn Cần Thạnh")
    async with httpx.AsyncClient(timeout=30) as client:
        city = await _token(client, urls, "so.tttt")
        # The week's batch, and the intake demo's own (two units, forwarded at its start).
        say("Sở TT&TT cấp tài khoản / the city issues the accounts ...")
        issued = await _issue_batches(client, urls, city, units)
        venues = (await client.get(f"{urls['provisioning']}/api/venues", headers=city)).json()
        expected = len([v for v in venues if v["commune_path"].startswith(f"{AREA}/")])
        gate = await _token(client, urls, "cong.chocanthanh")
        me = (await client.get(f"{urls['provisioning']}/api/me", headers=gate)).json()

        async def venues_known() -> bool:
            return await declaration_week.venue_count(declaration, AREA) >= expected

        await _until("the venues in the declaration service", venues_known)
        say(f"{issued} đơn vị được cấp tài khoản, {expected} địa điểm / {issued} units issued, {expected} venues")

        def progress(done: int, total: int) -> None:
            if done == total or done % 1000 < 250:
                say(f"khai báo / declarations: {done}/{total} lượt / submissions")

        counts = await declaration_week.declare_week(
            declaration, AREA, gate_staff_id=me.get("account_id"), gate_staff_name=me.get("name", ""),
            gate_unit=UUID(me["unit_id"]) if me.get("unit_id") else None, now=now, progress=progress)
        people = counts["green"] + counts["yellow"] + counts["red"]
        district = await _token(client, urls, "vhtt.cangio")

        async def counted() -> bool:
            response = await client.get(f"{urls['reporting']}/api/dashboard", headers=district)
            totals = response.json()["totals"] if response.status_code == 200 else {}
            return totals.get("declarations", 0) >= people

        say("báo cáo đang tổng hợp / reporting counts them ...")
        await _until("reporting's counts", counted, timeout=120)
        last = [-1]

        async def alerts_settled() -> int:
            # Raised once the flagged events are handled: the count stops growing.
            count = await notification_week.alert_count(notification, AREA)
            settled = count > 0 and count == last[0]
            last[0] = count
            return count if settled else 0

        await _until("the alerts in notification", alerts_settled, interval=1.0)
        alerts, acknowledged = await notification_week.acknowledge_most(notification, AREA)
    counts["alerts"], counts["acknowledged"], counts["units"] = alerts, acknowledged, issued
    say(f"{people} người khai báo ({counts['red']} đỏ, {counts['gate']} tại cổng), {alerts} cảnh báo "
        f"({acknowledged} đã xác nhận), {counts['cases']} ca báo tại cổng / {people} people declared ({counts['red']} red, {counts['gate']} at the "
        f"gate), {alerts} alerts ({acknowledged} acknowledged), {counts['cases']} cases reported at the gate, "
        f"in {time.monotonic() - started:.0f} s")
    return counts


def main() -> int:
    urls = json.loads(os.environ.get("KHAIBAO_SERVICE_URLS") or "{}")
    if os.environ.get("KHAIBAO_DEMO", "").lower() != "true" or not urls:
        print("khaibao demo-week runs under `khaibao up` (KHAIBAO_DEMO and KHAIBAO_SERVICE_URLS)", file=sys.stderr)
        return 2
    try:
        asyncio.run(load(urls))
    except (DemoWeekFailed, httpx.HTTPError) as exc:
        print(f"demo week: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    return 0
