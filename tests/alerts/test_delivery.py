"""Alert e-mails and webhooks: with SMTP down the console alert is there at once and the
e-mail is retried until the server is back; a webhook is signed, retried and delivered."""
from __future__ import annotations

import asyncio

from prometheus_client import REGISTRY
from sqlalchemy import select

from services.notification.alert_models import AlertDispatch
from services.notification.delivery import BACKLOG_CHECK, report_backlog
from libs.common.auth import Role
from tests.accounts.support import MailServer
from tests.services.conftest import DEMO_COMMUNE, DEMO_DISTRICT, OTHER_COMMUNE, eventually, free_port_block

from .support import flagged, payload, signed_by


async def set_contacts(a, role: Role, where: str, *, emails: str = "", webhook_url: str = "") -> None:  # noqa: ANN001
    response = await a.client.post("/alerts/settings", headers=a.html(role, where),
                                    data={"emails": emails, "webhook_url": webhook_url})
    assert response.status_code == 303, response.text[:500]
    assert response.headers["location"].startswith("/alerts/settings?done=contacts_saved")


async def backlog(runtime) -> dict[str, float | None]:  # noqa: ANN001
    """khaibao_notification_backlog counted now (the loops count it every few seconds)."""
    runtime.extras.pop(BACKLOG_CHECK, None)
    await report_backlog(runtime)
    return {c: REGISTRY.get_sample_value("khaibao_notification_backlog", {"service": "notification", "channel": c})
            for c in ("credentials", "email", "webhook")}


async def test_smtp_down_the_alert_is_in_the_console_and_the_email_is_retried(alerts_factory):
    port = free_port_block(1)  # nothing listens here yet: the SMTP server is down
    async with alerts_factory(smtp_port=port) as a:
        await set_contacts(a, Role.HEALTH_OFFICER, DEMO_DISTRICT, emails="ttyt@cangio.example.vn")
        await set_contacts(a, Role.COMMUNE_FOCAL, DEMO_COMMUNE, emails="ubnd@canthanh.example.vn\nyte@canthanh.example.vn")
        alert = await a.arrives(flagged(DEMO_COMMUNE))  # in the console although no e-mail can leave

        async def retried():
            async with a.runtime.database.transaction(readonly=True) as session:
                rows = list((await session.execute(select(AlertDispatch))).scalars())
            return len(rows) == 2 and all(r.status == "queued" and r.attempts >= 2 and r.last_error for r in rows)

        await eventually(retried, what="the e-mails failing and retried")
        assert await backlog(a.runtime) == {"credentials": 0, "email": 2, "webhook": 0}
        page = await a.client.get(f"/alerts/{alert['id']}", headers=a.html(Role.HEALTH_OFFICER, DEMO_DISTRICT))
        assert page.text.count("Đang gửi, sẽ gửi lại") == 2
        server = MailServer(port).start()
        try:
            async def delivered():
                return len(server.inbox.messages()) >= 2 and server.inbox.messages()

            messages = await eventually(delivered, timeout=30, what="the alert e-mails once SMTP is back")
            await asyncio.sleep(0.5)
            assert len(server.inbox.messages()) == 2  # one e-mail per office, none lost, none doubled
            recipients = sorted(a for e in server.inbox.envelopes for a in e.rcpt_tos)
            assert recipients == ["ttyt@cangio.example.vn", "ubnd@canthanh.example.vn", "yte@canthanh.example.vn"]
            text = messages[0].get_body(preferencelist=("plain",)).get_content()
            assert "Cổng chính chợ Cần Thạnh" in text and f"/alerts/{alert['id']}" in text
            assert "Ngọc" not in text and "0909" not in text  # no personal data in e-mail
            assert "Cảnh báo" in str(messages[0]["Subject"])
        finally:
            server.stop()
        page = await a.client.get(f"/alerts/{alert['id']}", headers=a.html(Role.HEALTH_OFFICER, DEMO_DISTRICT))
        assert page.text.count("Đã gửi") >= 2
        assert (await backlog(a.runtime))["email"] == 0


async def test_webhook_is_signed_retried_and_only_for_its_office(alerts_factory, hook):
    async with alerts_factory(webhook_allow_private=True) as a:  # the receiver is on 127.0.0.1
        await set_contacts(a, Role.COMMUNE_FOCAL, DEMO_COMMUNE, webhook_url=hook.url)
        page = await a.client.get("/alerts/settings", headers=a.html(Role.COMMUNE_FOCAL, DEMO_COMMUNE))
        secret = page.text.split('id="webhook-secret">', 1)[1].split("<", 1)[0]
        assert len(secret) >= 32
        hook.status = 503  # the SMS gateway is down at first
        alert = await a.arrives(flagged(OTHER_COMMUNE), Role.HEALTH_OFFICER, DEMO_DISTRICT)  # not this commune's
        await a.arrives(flagged(DEMO_COMMUNE))
        await eventually(lambda: _async(len(hook.received) >= 2), what="webhook retries")
        hook.status = 200

        async def accepted():
            return [r for r in hook.received if r["answered"] == 200]

        ok = (await eventually(accepted, what="the webhook delivered"))[0]
        assert signed_by(secret, ok) and not signed_by("another-secret", ok)
        body = payload(ok)
        assert body["type"] == "alert.raised" and body["alert"]["commune_path"] == DEMO_COMMUNE
        assert "Cổng chính" in body["alert"]["text"] and "0909" not in ok["body"].decode()
        # Retries carry the same delivery id (the receiver deduplicates on it); the other
        # commune's alert never went to this webhook.
        assert {r["headers"]["x-khaibao-delivery"] for r in hook.received} == {ok["headers"]["x-khaibao-delivery"]}
        assert all(payload(r)["alert"]["alert_id"] != alert["id"] for r in hook.received)
        await asyncio.sleep(0.6)
        assert len([r for r in hook.received if r["answered"] == 200]) == 1


async def _async(value):  # noqa: ANN001, ANN202
    return value


async def test_contact_settings_validate_input(alerts_factory):
    async with alerts_factory() as a:
        officer = a.html(Role.HEALTH_OFFICER, DEMO_DISTRICT)
        bad = await a.client.post("/alerts/settings", headers=officer, data={"emails": "ttyt@cangio, khong-phai-email"})
        assert bad.status_code == 422 and "không hợp lệ" in bad.text and "khong-phai-email" in bad.text
        many = "\n".join(f"a{i}@example.vn" for i in range(11))
        assert "tối đa 10" in (await a.client.post("/alerts/settings", headers=officer, data={"emails": many})).text
        for url in ("ftp://example.vn/x", "https://user:pass@example.vn/hook", "không phải địa chỉ", "https://"):
            response = await a.client.post("/alerts/settings", headers=officer, data={"webhook_url": url})
            assert response.status_code == 422 and "webhook" in response.text, url
        english = await a.client.post("/alerts/settings?lang=en", headers=officer, data={"webhook_url": "ftp://x"})
        assert "The webhook address is not valid" in english.text
        # Unit roles and the city have no alert contacts; a commune edits only its own.
        for role, where in ((Role.UNIT_ADMIN, DEMO_COMMUNE), (Role.CITY_DIC, "79"), (Role.GATE_STAFF, DEMO_COMMUNE)):
            response = await a.client.post("/alerts/settings", headers=a.html(role, where), data={"emails": "x@y.vn"})
            assert response.status_code in (303, 403), role
            if response.status_code == 303:
                assert "error=not_allowed" in response.headers["location"]
        await set_contacts(a, Role.COMMUNE_FOCAL, OTHER_COMMUNE, emails="binhkhanh@example.vn")
        mine = await a.client.get("/alerts/settings", headers=a.html(Role.COMMUNE_FOCAL, DEMO_COMMUNE))
        assert "binhkhanh@example.vn" not in mine.text
