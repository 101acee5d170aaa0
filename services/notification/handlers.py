"""Event handlers of the notification service (each inside the consumer's transaction, DB only).

Sending e-mail is not done here: a handler only stores the delivery; the e-mail worker
sends it (a handler may run again on a batch retry, an e-mail could not be taken back).
"""
from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from libs.common.adminunits import load_tree
from libs.common.events import Event
from libs.common.events.declaration import CaseRaised, DeclarationFlagged
from libs.common.events.intake import BatchForwarded, RegistrationSubmitted
from libs.common.events.provisioning import IssuanceCompleted
from libs.common.events.reporting import ReportPublished
from libs.common.events.subject import PersonErased

from . import alerts, batches, credentials, support
from .models import Notice
from .settings import NotificationSettings


async def on_registration_submitted(session: AsyncSession, event: RegistrationSubmitted) -> None:
    """Tell the receiving focal point (district or commune, point 1.2) that a unit registered."""
    data = event.data
    recipient = data.commune_path.rsplit("/", 1)[0] if data.receiver == "district" else data.commune_path
    session.add(Notice(
        recipient_path=recipient, kind="registration.submitted", reference=data.reference,
        subject=f"Đăng ký mới: {data.unit_name}", source_event_id=event.id, created_at=event.occurred_at,
    ))


def build_handlers(settings: NotificationSettings) -> dict:
    def tree():  # noqa: ANN202 - the admin-unit tree of the settings (cached)
        return load_tree(str(settings.admin_units_file) if settings.admin_units_file else None,
                         settings.admin_units_root)

    async def on_batch_forwarded(session: AsyncSession, event: BatchForwarded) -> None:
        """The district's batch appears in its Support Channel thread, with its spreadsheet."""
        await batches.record(session, event, tree())

    async def on_credentials(session: AsyncSession, event: Event) -> None:
        """An issued or reset password to deliver (e-mail, else the district's Support Channel)."""
        await credentials.accept(session, settings, event)

    async def on_issuance_completed(session: AsyncSession, event: IssuanceCompleted) -> None:
        """The city tells the district that the accounts of its batch are issued."""
        data = event.data
        await support.post_system(
            session, data.district_path, kind="issuance", side="city", author=data.requested_by_name or "Sở",
            params={"reference": data.batch_reference or "", "issued": data.issued, "skipped": data.skipped,
                    "failed": data.failed, "with_email": data.with_email,
                    "batch_id": str(data.batch_id) if data.batch_id else ""},
            source_key=f"issuance:{data.job_id}", at=event.occurred_at)

    async def on_suspected_case(session: AsyncSession, event: DeclarationFlagged | CaseRaised) -> None:
        """A flagged declaration or a gate case becomes an alert (once, however often delivered)."""
        await alerts.raise_alert(session, settings, tree(), event)

    async def on_report_published(session: AsyncSession, event: ReportPublished) -> None:
        """The district's deployment report appears in its Support Channel thread, with its files."""
        data = event.data
        base = settings.service_urls.get("reporting", "").rstrip("/")

        def link(path: str) -> str:  # only a path on the reporting service becomes a link
            return base + path if path.startswith("/") and not path.startswith("//") else ""

        await support.post_system(
            session, data.district_path, kind="report", side="district", author=data.by_name or "Hệ thống",
            params={"title": data.title, "period_start": data.period_start.strftime("%d/%m/%Y"),
                    "period_end": data.period_end.strftime("%d/%m/%Y"), "trigger": data.trigger,
                    "summary": {k: int(v) for k, v in data.summary.items()},
                    "xlsx_url": link(data.xlsx_path), "pdf_url": link(data.pdf_path)},
            source_key=f"report:{data.report_id}", at=event.occurred_at)

    async def on_person_erased(session: AsyncSession, event: PersonErased) -> None:
        """A person's declarations erased early on their request: the person details of the
        alerts raised for them, and of their red declarations counted in other alerts."""
        await alerts.erase_person(session, event.data.declaration_ids, event.data.case_ids)

    return {
        "declaration.person.erased": on_person_erased,
        "declaration.flagged": on_suspected_case,
        "declaration.case_raised": on_suspected_case,
        "reporting.report.published": on_report_published,
        "intake.registration.submitted": on_registration_submitted,
        "intake.batch.forwarded": on_batch_forwarded,
        "provisioning.account.issued": on_credentials,
        "provisioning.account.password_reset": on_credentials,
        "provisioning.issuance.completed": on_issuance_completed,
    }

