from pathlib import Path

from pydantic import Field

from libs.common import sealed
from libs.common.settings import ServiceSettings, service_config


class NotificationSettings(ServiceSettings):
    model_config = service_config("notification")
    service_name: str = "notification"
    # The SMTP relay (KHAIBAO_NOTIFICATION_SMTP_* or the shared KHAIBAO_SMTP_*).
    smtp_host: str = "127.0.0.1"
    smtp_port: int = 1025
    smtp_username: str = ""
    smtp_password: str = ""
    smtp_starttls: bool = False
    smtp_use_tls: bool = False
    smtp_timeout: float = Field(default=20.0, gt=0)
    mail_from: str = "Sở Thông tin và Truyền thông TP.HCM <khaibao@tphcm.gov.vn>"
    # Credentials e-mails are retried with exponential backoff (initial, doubling, capped)
    # for this long; after it they go to the district's Support Channel.
    email_retry_period_seconds: float = Field(default=6 * 3600, ge=0)
    email_retry_initial_seconds: float = Field(default=30.0, gt=0)
    email_retry_max_seconds: float = Field(default=900.0, gt=0)
    delivery_poll_interval: float = Field(default=1.0, gt=0)
    delivery_batch_size: int = Field(default=20, ge=1, le=500)
    delivery_lease_seconds: float = Field(default=120.0, gt=0)
    # The X25519 private key that opens the credentials provisioning seals for us.
    credentials_private_key_file: Path | None = None
    # Private keys of before a rotation (`khaibao keys rotate credentials`): a box sealed to
    # one of them (its key id says which) is opened with it.
    credentials_previous_private_key_files: list[Path] = Field(default_factory=list)
    attachment_max_bytes: int = Field(default=10 * 1024 * 1024, ge=1024)
    help_line: str = "1022"
    # Suspected-case alerts: unacknowledged after this many seconds, an alert escalates to
    # the district; the escalation loop looks every ``alert_check_interval`` seconds.
    alert_escalate_after: float = Field(default=900.0, gt=0)
    alert_check_interval: float = Field(default=5.0, gt=0)
    # Alert e-mails and webhook calls are retried with backoff (initial, doubling, capped)
    # until sent, for at most ``alert_give_up_seconds``.
    alert_retry_initial_seconds: float = Field(default=5.0, gt=0)
    alert_retry_max_seconds: float = Field(default=300.0, gt=0)
    alert_give_up_seconds: float = Field(default=7 * 24 * 3600, gt=0)
    alert_poll_interval: float = Field(default=1.0, gt=0)
    webhook_timeout: float = Field(default=10.0, gt=0)
    # Webhooks may call http:// and addresses inside internal networks (loopback, private,
    # link-local...) only when this is true: development and tests with a local receiver.
    webhook_allow_private: bool = False
    # How often the alert inbox page asks for new alerts (milliseconds, for its script).
    alert_refresh_ms: int = Field(default=500, ge=250, le=60000)
    # Alert storms (README "Alert storms"): the red declarations of one person (same phone
    # or same ID number) at one venue within ``alert_dedup_window_seconds`` of the person's
    # latest red make one alert with a count; beyond ``alert_burst_threshold`` reds at one
    # venue within ``alert_burst_window_seconds``, the further reds make one "unusual burst"
    # alert of the venue instead of an alert each.
    alert_dedup_window_seconds: float = Field(default=4 * 3600, ge=0)
    alert_burst_threshold: int = Field(default=5, ge=1)
    alert_burst_window_seconds: float = Field(default=600, gt=0)
    # Person details of alerts older than this are erased (issue 7); checked hourly.
    retention_days: float = Field(default=21, gt=0)
    retention_check_interval: float = Field(default=3600.0, gt=0)

    def credentials_key_paths(self) -> tuple[Path, Path]:
        private, public = sealed.default_paths(self.data_dir)
        return self.credentials_private_key_file or private, public
