from libs.common.settings import ServiceSettings, service_config


class NotificationSettings(ServiceSettings):
    model_config = service_config("notification")
    service_name: str = "notification"
    smtp_host: str = "127.0.0.1"
    smtp_port: int = 1025
