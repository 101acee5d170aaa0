from datetime import date
from pathlib import Path

from pydantic import Field, SecretStr

from libs.common.settings import ServiceSettings, service_config


class IntakeSettings(ServiceSettings):
    model_config = service_config("intake")
    service_name: str = "intake"
    # The last day (Ho Chi Minh City time) of the campaign; later registrations are taken
    # and marked late.
    campaign_deadline: date | None = None
    # The district information pages: focal points and their contacts (JSON; default:
    # services/intake/contacts.json).
    contacts_file: Path | None = None

    # Lists: the .xlsx template and the import (all or nothing, durable background work).
    max_upload_bytes: int = 10 * 1024 * 1024
    max_uncompressed_bytes: int = 50 * 1024 * 1024
    max_import_rows: int = 10_000
    worker_poll_interval: float = 1.0
    worker_lease_seconds: float = 120.0
    worker_max_attempts: int = 3

    # Lists by e-mail: an SMTP receiver inside the service process (off unless a port is
    # set); one address per district, danhsach.<district code>@<mail_domain>.
    smtp_port: int | None = None
    smtp_host: str = "127.0.0.1"
    mail_domain: str = "khaibao.hochiminhcity.gov.vn"
    mail_local_prefix: str = "danhsach"
    # Replies go out through this relay (none: they wait in the mail outbox).
    smtp_relay_host: str | None = None
    smtp_relay_port: int = 25
    smtp_relay_username: str | None = None
    smtp_relay_password: SecretStr | None = None
    smtp_relay_starttls: bool = False
    smtp_relay_tls: bool = False
    smtp_relay_timeout: float = 30.0
    mail_max_attempts: int = 12
    # Uploaded list files and sent (or given up) replies are kept this long after they
    # finished (retention.py); defaults to KHAIBAO_DATA_RETENTION_DAYS, may not exceed it.
    retention_days: float = Field(default=21, gt=0)
    retention_interval_seconds: float = Field(default=3600.0, gt=0)

    # Registration spam at the public form and API (services/intake/registration/spam.py; README
    # "Registration spam"). Counted in intake's database, so shared by every worker and
    # replica. Refusals are 429 with a Vietnamese message that says to contact the commune.
    # At most this many registrations per client address per hour (0: no limit).
    registrations_per_address_hour: int = 10
    # A tax code, or a contact e-mail, with this many registrations still awaiting review
    # from the last 24 hours takes no more until they are reviewed (0: no limit).
    pending_per_tax_code: int = 3
    pending_per_email: int = 5
    # Suspected spam (kept, shown apart in the review queue): the Nth registration from one
    # address within the burst window, and a venue count above the plausible maximum.
    spam_burst_count: int = 5
    spam_burst_seconds: int = 600
    spam_venue_count: int = 50
    # ... and the same unit name again in the commune within a day (awaiting review).
    spam_same_name: bool = True
    # The most venues the public form and API take for one unit (lists take up to 500).
    max_form_venues: int = 200

    @property
    def receives_mail(self) -> bool:
        """Whether the lists' e-mail addresses are live (and shown on the pages)."""
        return self.smtp_port is not None

    def inbound_address(self, district_code: str) -> str:
        return f"{self.mail_local_prefix}.{district_code}@{self.mail_domain}"
