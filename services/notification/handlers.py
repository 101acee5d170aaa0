"""Event handlers of the notification service."""
from sqlalchemy.ext.asyncio import AsyncSession

from libs.common.events.intake import RegistrationSubmitted

from .models import Notice


async def on_registration_submitted(session: AsyncSession, event: RegistrationSubmitted) -> None:
    """Tell the receiving focal point (district or commune, point 1.2) that a unit registered."""
    data = event.data
    recipient = data.commune_path.rsplit("/", 1)[0] if data.receiver == "district" else data.commune_path
    session.add(Notice(
        recipient_path=recipient, kind="registration.submitted", reference=data.reference,
        subject=f"Đăng ký mới: {data.unit_name}", source_event_id=event.id, created_at=event.occurred_at,
    ))


HANDLERS = {"intake.registration.submitted": on_registration_submitted}
