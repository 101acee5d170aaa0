from libs.common.settings import ServiceSettings, service_config


class ReportingSettings(ServiceSettings):
    model_config = service_config("reporting")
    service_name: str = "reporting"
