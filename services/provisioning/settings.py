import os
from pathlib import Path

from pydantic import Field

from libs.common import sealed
from libs.common.settings import ServiceSettings, service_config


class ProvisioningSettings(ServiceSettings):
    model_config = service_config("provisioning")
    service_name: str = "provisioning"
    auth_private_key_file: Path | None = None
    token_ttl_seconds: int = 1800
    # Sign-in throttling (signins/throttle.py): failed attempts slow down the pair (user name, client
    # address) and the address alone with doubling delays after a few free failures; an
    # account-wide cap on failures per hour refuses only addresses that failed themselves.
    signin_pair_free_failures: int = Field(default=3, ge=1)
    signin_pair_delay_seconds: float = Field(default=30.0, gt=0)
    signin_address_free_failures: int = Field(default=10, ge=1)
    signin_address_delay_seconds: float = Field(default=10.0, gt=0)
    signin_max_delay_seconds: float = Field(default=900.0, gt=0)
    signin_account_failures_per_hour: int = Field(default=60, ge=1)
    # Password hashing off the event loop (signins/hashing.py): argon2 in a thread pool of this size,
    # at most ``signin_hash_queue`` more waiting, at most ``signin_hash_per_address`` in flight
    # from one client address; beyond that sign-in answers 503 with Retry-After at once.
    # Twice the cores: a sign-in that arrives starts at once beside the running ones (the
    # CPU is shared) instead of waiting behind them; the queue bounds the rest.
    signin_hash_threads: int = Field(default_factory=lambda: 2 * max(1, os.cpu_count() or 1), ge=1)
    signin_hash_queue: int = Field(default_factory=lambda: 2 * max(1, os.cpu_count() or 1), ge=0)
    signin_hash_per_address: int = Field(default=2, ge=1)
    # Niceness of the hashing threads (Linux): above 0 the event loop's thread runs first
    # when hashing fills the cores, but hashing, so sign-in, starves when other processes
    # keep the host busy. 0 (measured best here: the loop, mostly asleep, is scheduled
    # promptly when it wakes); raise it on a host where pages matter more than sign-ins.
    signin_hash_niceness: int = Field(default=0, ge=0, le=19)
    # The notification service's X25519 public key: initial passwords are sealed with it.
    credentials_public_key_file: Path | None = None
    # Where visitors reach the declaration form: a poster's QR code is <this>/v/<code>.
    # Empty: the declaration service's URL of service_urls.
    declaration_public_url: str = ""
    help_line: str = "1022"
    # Initial passwords are random (99 bits); see passwords.py for why a lighter argon2id
    # cost is enough for them. Chosen passwords always get the library's default cost.
    initial_password_time_cost: int = Field(default=1, ge=1)
    initial_password_memory_kib: int = Field(default=12288, ge=8192)
    hash_workers: int = Field(default_factory=lambda: max(1, os.cpu_count() or 1), ge=1)
    issue_chunk_size: int = Field(default=200, ge=1, le=2000)
    issue_poll_interval: float = 1.0
    job_lease_seconds: float = 60.0
    # The sign-in history (signins/) keeps this many days; the pruning runs this often.
    signin_history_days: int = Field(default=180, ge=1, le=3650)
    signin_retention_interval_seconds: float = Field(default=3600.0, gt=0)

    def problems(self) -> list[str]:
        problems = super().problems()
        if self.environment == "production" and self.auth_private_key_file is None:
            problems.append(f"{self.env_name('auth_private_key_file')}: required in production "
                            "(the token signing key)")
        return problems

    def credentials_public_key_path(self) -> Path:
        # Production never generates it: without the file, issuing refuses with a message.
        return self.credentials_public_key_file or sealed.default_paths(self.data_dir)[1]

    def declaration_base(self) -> str:
        return (self.declaration_public_url or self.service_urls.get("declaration", "")).rstrip("/")

    def own_url(self) -> str:
        return self.service_urls.get("provisioning", "").rstrip("/")
