from pathlib import Path

from pydantic import model_validator

from libs.common.settings import ServiceSettings, service_config


class ProvisioningSettings(ServiceSettings):
    model_config = service_config("provisioning")
    service_name: str = "provisioning"
    auth_private_key_file: Path | None = None
    token_ttl_seconds: int = 1800
    max_failed_signins: int = 5
    lockout_seconds: int = 900

    @model_validator(mode="after")
    def _private_key_in_production(self) -> "ProvisioningSettings":
        if self.environment == "production" and self.auth_private_key_file is None:
            raise ValueError("KHAIBAO_PROVISIONING_AUTH_PRIVATE_KEY_FILE is required in production")
        return self
