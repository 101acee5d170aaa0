"""Issue 17, item 6: removing or changing an alert webhook cancels its queued retries.

An office's webhook is down (503), so the alert's call is queued and retried. When the
office then removes the webhook, or points it at another address, the queued call is
cancelled: the old address is called no more, and the new address never receives the
payloads queued for the old one (they were signed for, and meant for, another receiver).
Real notification service, real webhook receivers on loopback, both backends.
"""
from __future__ import annotations

import asyncio

from sqlalchemy import select

from libs.common.auth import Role
from services.notification.alert_models import AlertDispatch
from tests.alerts.conftest import alerts_factory, hook  # noqa: F401 - fixtures
from tests.alerts.support import Hook, flagged, payload
from tests.services.conftest import DEMO_COMMUNE, eventually


async def _set_webhook(a, url: str) -> None:  # noqa: ANN001
    response = await a.client.post("/alerts/settings", headers=a.html(Role.COMMUNE_FOCAL, DEMO_COMMUNE),
                                    data={"emails": "", "webhook_url": url})
    assert response.status_code == 303, response.text[:500]


async def _dispatches(a) -> list[AlertDispatch]:  # noqa: ANN001
    async with a.runtime.database.transaction(readonly=True) as session:
        return list((await session.execute(select(AlertDispatch).where(AlertDispatch.channel == "webhook"))).scalars())


async def _failing_call(a, receiver: Hook) -> dict:  # noqa: ANN001
    """An alert whose webhook call to ``receiver`` (answering 503) is queued and retried."""
    receiver.status = 503
    alert = await a.arrives(flagged(DEMO_COMMUNE))

    async def retried():
        return len([r for r in receiver.received if payload(r)["alert"]["alert_id"] == alert["id"]]) >= 2

    await eventually(retried, what="the webhook call retried")
    return alert


async def _quiet(receiver: Hook, alert_id: str, seconds: float = 1.5) -> list[dict]:
    """What ``receiver`` got for ``alert_id`` during ``seconds`` (retries are 0.2 to 0.5 s apart here)."""
    before = len(receiver.received)
    await asyncio.sleep(seconds)
    return [r for r in receiver.received[before:] if payload(r)["alert"]["alert_id"] == alert_id]


async def test_removing_the_webhook_cancels_its_queued_retries(alerts_factory, hook):  # noqa: F811
    async with alerts_factory(webhook_allow_private=True) as a:
        await _set_webhook(a, hook.url)
        alert = await _failing_call(a, hook)
        await _set_webhook(a, "")  # the office removes its webhook
        await asyncio.sleep(0.3)  # a call already under way may still end
        assert await _quiet(hook, alert["id"]) == []
        rows = await _dispatches(a)
        assert [(r.status, r.last_error) for r in rows] == [("cancelled", "webhook_removed")]
        page = await a.client.get(f"/alerts/{alert['id']}", headers=a.html(Role.COMMUNE_FOCAL, DEMO_COMMUNE))
        assert "Đã hủy" in page.text
        english = await a.client.get(f"/alerts/{alert['id']}?lang=en",
                                     headers=a.html(Role.COMMUNE_FOCAL, DEMO_COMMUNE))
        assert "Cancelled" in english.text


async def test_changing_the_webhook_cancels_the_old_calls_and_the_new_address_gets_none(alerts_factory, hook):  # noqa: F811
    other = Hook().start()
    try:
        async with alerts_factory(webhook_allow_private=True) as a:
            await _set_webhook(a, hook.url)
            alert = await _failing_call(a, hook)
            await _set_webhook(a, other.url)
            hook.status = 200  # the old receiver would now accept: it must not be called again
            await asyncio.sleep(0.3)
            assert await _quiet(hook, alert["id"]) == []
            assert [r for r in other.received if payload(r)["alert"]["alert_id"] == alert["id"]] == []
            rows = await _dispatches(a)
            assert [(r.status, r.last_error) for r in rows] == [("cancelled", "webhook_changed")]
            # The new address receives the alerts raised from now on.
            later = await a.arrives(flagged(DEMO_COMMUNE, name="Cổng phụ chợ Cần Thạnh", code="CT7K2M9R"))

            async def delivered():
                return [r for r in other.received if payload(r)["alert"]["alert_id"] == later["id"]]

            await eventually(delivered, what="the new webhook called for a new alert")
    finally:
        other.stop()
