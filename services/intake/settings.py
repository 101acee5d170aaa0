from datetime import date

from libs.common.settings import ServiceSettings, service_config


class IntakeSettings(ServiceSettings):
    model_config = service_config("intake")
    service_name: str = "intake"
    campaign_deadline: date | None = None
