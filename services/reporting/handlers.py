"""Event handlers: one function per event type. Each runs inside the consumer's transaction."""
from sqlalchemy.ext.asyncio import AsyncSession

from libs.common.events.intake import RegistrationSubmitted

from .models import RegistrationFact


async def on_registration_submitted(session: AsyncSession, event: RegistrationSubmitted) -> None:
    data = event.data
    await session.merge(RegistrationFact(
        registration_id=data.registration_id, commune_path=data.commune_path, unit_type=data.unit_type,
        receiver=data.receiver, late=data.late, submitted_at=event.occurred_at,
    ))


HANDLERS = {
    "intake.registration.submitted": on_registration_submitted,
}
