"""Notification's part of the demo week (``khaibao up`` on a fresh data folder), through its
own use cases: the alert contacts of the demo commune (so that its alerts are e-mailed to the
demo mailbox) and, once the week's red declarations became alerts, the health center's
acknowledgement of most of them, each some minutes after it was raised.
"""
from __future__ import annotations

import random
from datetime import UTC, timedelta

from sqlalchemy import func, select

from libs.common.auth import Principal, Role
from libs.common.db import Database

from . import alert_contacts
from .alert_models import Alert
from .alerts import acknowledge, aware
from .settings import NotificationSettings

HEALTH_CENTER = ("Trung tâm Y tế huyện Cần Giờ", "ttyt.cangio")


def _official(role: Role, path: str, name: str, username: str) -> Principal:
    return Principal(account_id="demo-week", username=username, name=name, role=role, jurisdiction=path,
                     claims={"jti": "demo-week"})


async def set_contacts(settings: NotificationSettings, commune: str, emails: str, commune_name: str) -> None:
    """The e-mail addresses that receive the commune's alerts."""
    database = Database.for_settings(settings)
    try:
        async with database.transaction() as session:
            await alert_contacts.save(session, _official(Role.COMMUNE_FOCAL, commune, commune_name, "demo"), commune,
                                      emails=emails, webhook_url="", new_secret=False,
                                      allow_private=settings.webhook_allow_private)
    finally:
        await database.dispose()


async def alert_count(settings: NotificationSettings, area: str) -> int:
    database = Database.for_settings(settings)
    try:
        async with database.transaction(readonly=True) as session:
            return (await session.execute(select(func.count()).select_from(Alert).where(
                Alert.commune_path.like(f"{area}/%")))).scalar_one()
    finally:
        await database.dispose()


async def acknowledge_most(settings: NotificationSettings, district: str, *, share: float = 0.75,
                           seed: int = 2021) -> tuple[int, int]:
    """The district health center acknowledges ``share`` of the district's alerts (the oldest
    first, each 3 to 40 minutes after it was raised); (alerts, acknowledged)."""
    rng = random.Random(seed)
    officer = _official(Role.HEALTH_OFFICER, district, *HEALTH_CENTER)
    database = Database.for_settings(settings)
    acknowledged = 0
    try:
        async with database.transaction(readonly=True) as session:
            alerts = list((await session.execute(select(Alert.id, Alert.raised_at).where(
                Alert.commune_path.like(f"{district}/%"), Alert.status == "new").order_by(Alert.raised_at))).all())
        keep_open = max(1, round(len(alerts) * (1 - share)))
        for alert_id, raised_at in alerts[:-keep_open] if len(alerts) > 1 else []:
            async with database.transaction() as session:
                await acknowledge(session, officer, alert_id,
                                  now=aware(raised_at).astimezone(UTC) + timedelta(minutes=rng.uniform(3, 40)))
            acknowledged += 1
    finally:
        await database.dispose()
    return len(alerts), acknowledged
