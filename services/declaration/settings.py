from pathlib import Path

from pydantic import Field

from libs.common import sealed
from libs.common.settings import ServiceSettings, service_config


class DeclarationSettings(ServiceSettings):
    """``KHAIBAO_DECLARATION_*``: the public declaration endpoint and the gate consoles."""

    model_config = service_config("declaration")
    service_name: str = "declaration"

    # The personal QR code: Ed25519 key (generated under data_dir/keys in development),
    # older public keys still accepted by the gates after a rotation, and how long a pass lasts.
    pass_private_key_file: Path | None = None
    pass_previous_public_key_files: list[Path] = Field(default_factory=list)
    pass_valid_hours: float = Field(default=24.0, gt=0, le=24 * 14)
    # The notification service's X25519 public key (the credentials pair, ``khaibao keys``):
    # the personal details of flagged declarations and gate cases are sealed to it on the
    # bus. Development: the pair of data_dir/keys, created on first use.
    sealing_public_key_file: Path | None = None
    # The screening rule set loaded into an empty database (later versions live in the table).
    rules_file: Path | None = None
    # Bad input: the largest request body, and the largest family or group in one form.
    max_body_bytes: int = Field(default=32 * 1024, ge=1024)
    max_group_size: int = Field(default=10, ge=1, le=50)
    # Group commit: requests wait for a shared transaction of at most batch_max_rows
    # declarations; beyond max_pending waiting requests the service answers 503.
    batch_max_rows: int = Field(default=1000, ge=1)
    batch_max_pending: int = Field(default=20000, ge=1)
    batch_writers: int = Field(default=1, ge=1, le=8)
    batch_timeout_seconds: float = Field(default=15.0, gt=0, description="a batch write slower than this fails")
    # Under load (the last batch held more than one request) a free writer waits this long
    # for the requests on their way, so that one commit carries more of them (0: never).
    batch_linger_ms: float = Field(default=3.0, ge=0, le=50)
    # How long a web worker trusts its in-memory venue list and active rule set.
    cache_seconds: float = Field(default=2.0, ge=0)
    # The outbox relay moves declaration events in batches (woken at once for a red one).
    relay_batch_size: int = 1000
    relay_poll_interval: float = 0.5
    # A red declaration wakes the relay at once, but at most once per this many ms (under
    # load most group commits hold a red one: a relay cycle each would cost more than the
    # events it moves). An alert is on the bus within this time plus the publish.
    relay_urgent_ms: float = Field(default=250.0, ge=0, le=2000)
    # Retention: the personal fields of declarations older than this are erased (the rows
    # stay, so counts by venue, day and colour do not change), in batches, every interval.
    retention_days: float = Field(default=21.0, gt=0, description="days a declaration's personal data is kept")
    retention_batch_size: int = Field(default=500, ge=1, le=10000)
    retention_interval_seconds: float = Field(default=300.0, gt=0)
    # People declared per venue, whatever their addresses (the API and both forms): a flood
    # at one venue is refused with 429 before anything is stored. Sized on a large market's
    # morning peak (README.md "Public edge"): 10 people/s sustained is 600/min, several
    # times what its gates can let in; the burst holds a few minutes of a crowd at opening.
    rate_limit_venue: str = "10/s burst 600"
    # bench/declare.py only: /api/bench/validate (the validation ceiling) and
    # /api/bench/naive (an ORM session per request).
    bench_routes: bool = False

    def sealing_public_key_path(self) -> Path:
        return self.sealing_public_key_file or sealed.default_paths(self.data_dir)[1]

    def sealing_key(self) -> bytes:
        """The raw public key personal details are sealed to; created in development, never
        in production (a missing file there is an error: nothing goes out in clear)."""
        path = self.sealing_public_key_path()
        if not path.exists() and self.environment != "production" and self.sealing_public_key_file is None:
            sealed.ensure_key_pair(*sealed.default_paths(self.data_dir))
        return sealed.raw_public(sealed.load_public(path))

    def problems(self) -> list[str]:
        problems = super().problems()
        if self.retention_days * 24 <= self.pass_valid_hours:
            problems.append(f"{self.env_name('retention_days')}: must be longer than a pass is valid "
                            f"({self.env_name('pass_valid_hours')}): a valid pass would point to erased data")
        if self.environment == "production":
            if self.pass_private_key_file is None:
                problems.append(f"{self.env_name('pass_private_key_file')}: required in production "
                                "(the pass signing key)")
            if self.bench_routes:
                problems.append(f"{self.env_name('bench_routes')}: must be off in production")
        return problems
