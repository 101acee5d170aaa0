from libs.common.settings import ServiceSettings, service_config


class DeclarationSettings(ServiceSettings):
    model_config = service_config("declaration")
    service_name: str = "declaration"
