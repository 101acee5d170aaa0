"""Issue 17, item 3: the files intake stores follow their own retention.

An uploaded list (a file of unit contacts) and a reply sent through the mail outbox are
kept while they are needed; ``retention_days`` (KHAIBAO_DATA_RETENTION_DAYS by default)
after they finished, intake's retention job empties the file and deletes the sent reply.
The registrations the list created stay (they are the campaign's record). Real intake
(its worker, its reply sender, a real SMTP relay on loopback), both backends.
"""
from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email.message import EmailMessage

from sqlalchemy import func, select

from libs.common.auth import Role
from services.intake.models import MailOut, Registration, Upload
from services.intake.retention import erase_expired
from services.intake.tests.sheets import fill_template, unit_row
from tests.accounts.support import MailServer
from tests.intake.conftest import DEMO_COMMUNE, headers, template, upload, wait_upload  # noqa: F401 - fixture
from tests.services.conftest import build_settings, eventually, run_services


async def test_list_files_and_sent_replies_are_erased_after_the_period(backend, keys, mint, template):  # noqa: F811
    relay = MailServer().start()
    try:
        settings = build_settings("intake", keys, database_url=await backend.database_url("intake"),
                                  bus_url=backend.bus_url, bus_namespace=backend.bus_options().get("namespace", ""),
                                  worker_poll_interval=0.05, smtp_relay_host="127.0.0.1",
                                  smtp_relay_port=relay.port)
        assert settings.retention_days == settings.data_retention_days == 21
        async with run_services({"intake": settings}) as running:
            client, runtime = running["intake"], running.runtime("intake")
            auth = headers(mint, Role.COMMUNE_FOCAL, DEMO_COMMUNE)
            created = await upload(client, auth, fill_template(template, [unit_row(i) for i in range(1, 4)]))
            assert created.status_code == 202, created.text
            assert (await wait_upload(client, auth, created.json()["id"]))["status"] == "imported"
            # A reply, queued as intake queues them, sent by its worker through the relay.
            reply = EmailMessage()
            reply["From"], reply["To"], reply["Subject"] = "danhsach@example.vn", "ubnd@example.vn", "Kết quả"
            reply.set_content("Danh sách đã được nhập: Nguyễn Văn An, 0909000001")
            async with runtime.database.transaction() as session:
                runtime.extras["worker"].replies.queue(session, reply)

            async def sent():
                async with runtime.database.transaction(readonly=True) as session:
                    return (await session.execute(select(MailOut.sent_at))).scalar_one_or_none()

            await eventually(sent, what="the reply sent")

            async def state():
                async with runtime.database.transaction(readonly=True) as session:
                    files = (await session.execute(select(func.length(Upload.content), Upload.status))).one()
                    mails = (await session.execute(select(func.count()).select_from(MailOut))).scalar_one()
                    units = (await session.execute(select(func.count()).select_from(Registration))).scalar_one()
                return files[0] > 0, files[1], mails, units

            now = datetime.now(UTC)
            async with runtime.database.transaction() as session:  # 20 days later: all kept
                assert await erase_expired(session, retention_days=settings.retention_days,
                                           now=now + timedelta(days=20)) == 0
            assert await state() == (True, "imported", 1, 3)
            async with runtime.database.transaction() as session:  # 22 days later: file and reply gone
                assert await erase_expired(session, retention_days=settings.retention_days,
                                           now=now + timedelta(days=22)) == 2
            assert await state() == (False, "imported", 0, 3)
            page = await client.get(f"/api/imports/{created.json()['id']}", headers=auth)
            assert page.status_code == 200 and page.json()["status"] == "imported"
    finally:
        relay.stop()
