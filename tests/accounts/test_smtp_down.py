"""When the SMTP server is down: retries with backoff, then the Support Channel; nothing lost.

The retry period is cut to seconds by settings. Every issued account ends either e-mailed
or waiting in the district's Support Channel, where its password opens and signs in; the
retry state is in the database, so a restart of notification in the middle changes
nothing; a server that comes back within the period gets the e-mail.
"""
from __future__ import annotations

import time

from sqlalchemy import select

from libs.common.auth import Role

from .conftest import HTML, Accounts, eventually, start_accounts, wait_for_mail
from .support import DEMO_DISTRICT, BatchSender, MailServer, batch, credentials_in, unit
from tests.services.conftest import free_port_block, run_services


async def _deliveries(system):  # noqa: ANN001, ANN202
    from services.notification.models import Delivery

    async with system.runtime("notification").database.transaction(readonly=True) as session:
        return list((await session.execute(select(Delivery))).scalars())


async def test_credentials_land_in_the_support_channel_after_the_retry_period(make_settings, keys, mint):
    down = free_port_block(1)  # nothing listens there: every connection is refused
    settings = start_accounts(make_settings, keys, mail=None,
                                    notification={"smtp_port": down, "email_retry_period_seconds": 2.0})
    units = [unit(f"Trường Mẫu giáo Sơn Ca {i}", email=f"sonca{i}@example.vn") for i in range(1, 6)]
    units.append(unit("Tiệm thuốc tây Phước Thiện"))  # no e-mail: straight to the channel
    async with run_services(settings) as system:
        sender = await BatchSender.start(keys.data_dir, settings["provisioning"].bus_url)
        accounts = Accounts(system, sender, mint, None)
        try:
            batch_id = await accounts.batch_arrives(batch(units, reference="LO-SMTP-HONG"))
            started = time.monotonic()
            job = await accounts.issue(batch_id)
            assert job["done"] == 6

            # While the period runs, the e-mails are retried (attempts grow), not dropped.
            async def retried():
                rows = [d for d in await _deliveries(system) if d.contact_email]
                return rows if rows and all(d.attempts >= 2 for d in rows) else None

            rows = await eventually(retried, timeout=20, what="several attempts per e-mail")
            assert all(d.status in ("queued", "channel") for d in rows)
            assert all(d.last_error for d in rows)

            district = accounts.headers(Role.DISTRICT_FOCAL, DEMO_DISTRICT)

            async def all_in_channel():
                listed = (await accounts.notification.get("/api/support/threads/787/credentials",
                                                          headers=district)).json()
                return listed if len(listed) == 6 else None

            listed = await eventually(all_in_channel, timeout=30, what="every credential in the Support Channel")
            assert time.monotonic() - started >= 2.0, "the e-mails must be retried for the whole period first"
            reasons = sorted(d["channel_reason"] for d in listed)
            assert reasons == ["no_email"] + ["send_failed"] * 5
            deliveries = await _deliveries(system)
            assert len(deliveries) == 6 and {d.status for d in deliveries} == {"channel"}
            assert all(d.sealed for d in deliveries), "the sealed password must wait for the district"

            # The thread says why, in Vietnamese; each password opens once and signs in.
            page = await accounts.notification.get("/support/787", headers={**HTML, **district})
            assert "Không gửi được thư điện tử chứa thông tin đăng nhập của 5 đơn vị" in page.text
            assert "Thông tin đăng nhập của 1 đơn vị không có thư điện tử" in page.text
            html = accounts.html(Role.DISTRICT_FOCAL, DEMO_DISTRICT)
            signed_in = 0
            for row in listed:
                opened = await accounts.notification.post(f"/support/credentials/{row['id']}/open", headers=html,
                                                          data={"confirm": "yes"})
                assert opened.status_code == 200
                import re

                username = re.search(r'id="credential-username">([^<]+)<', opened.text).group(1)
                password = re.search(r'id="credential-password">([^<]+)<', opened.text).group(1)
                token = await accounts.provisioning.post("/api/token", json={"username": username,
                                                                             "password": password})
                signed_in += token.status_code == 200
            assert signed_in == 6
            assert all(d.sealed is None for d in await _deliveries(system)), "opened: no copy kept"
        finally:
            await sender.stop()


async def test_retries_survive_a_restart_and_deliver_when_the_server_is_back(make_settings, keys, mint):
    port = free_port_block(1)
    settings = start_accounts(make_settings, keys, mail=None,
                                    notification={"smtp_port": port, "email_retry_period_seconds": 120.0,
                                                  "email_retry_initial_seconds": 0.3,
                                                  "email_retry_max_seconds": 0.6})
    async with run_services(settings) as system:
        sender = await BatchSender.start(keys.data_dir, settings["provisioning"].bus_url)
        accounts = Accounts(system, sender, mint, None)
        try:
            batch_id = await accounts.batch_arrives(batch([unit("Nhà văn hóa Cần Thạnh", email="nvh@example.vn")]))
            await accounts.issue(batch_id)

            async def failing():
                rows = await _deliveries(system)
                return rows if rows and rows[0].attempts >= 1 else None

            await eventually(failing, what="a failed attempt")
        finally:
            await sender.stop()
    # notification stopped with the e-mail still queued; the server comes up; notification restarts.
    server = MailServer(port).start()
    try:
        only_notification = {"notification": settings["notification"]}
        async with run_services(only_notification) as system:
            [mail] = await wait_for_mail(server, 1)
            assert mail["Subject"] == "Tài khoản Hệ thống khai báo y tế điện tử – Nhà văn hóa Cần Thạnh"
            username, password = credentials_in(mail)
            assert username.startswith("dv27664-") and len(password) == 23

            async def sent():
                rows = await _deliveries(system)
                return rows if rows[0].status == "sent" else None

            [row] = await eventually(sent, what="the delivery marked sent")
            assert row.sealed is None and row.attempts >= 2
    finally:
        server.stop()
