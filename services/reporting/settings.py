from pydantic import Field, field_validator

from libs.common.settings import ServiceSettings, service_config


class ReportingSettings(ServiceSettings):
    model_config = service_config("reporting")
    service_name: str = "reporting"
    # Deployment reports of every district to the city, e.g. "daily@17:00" or
    # "weekly:mon@08:00" (Vietnam time); empty: on demand only.
    report_schedule: str = ""
    report_poll_interval: float = 2.0

    @field_validator("report_schedule")
    @classmethod
    def _valid_schedule(cls, value: str) -> str:
        from .reports import Schedule  # noqa: PLC0415

        Schedule.parse(value)
        return value

    # Retention (issue 7): the name and phone of a visit are erased this many days after
    # it was declared (counts are kept); the loop runs every ``retention_interval_seconds``.
    retention_days: int = Field(default=21, ge=1, le=3650)
    retention_interval_seconds: float = Field(default=900.0, gt=0)
    retention_batch_size: int = Field(default=5000, ge=1)
    # FHIR interconnection: rows younger than this are not exported yet, so that a
    # transaction still committing cannot be skipped by an incremental reader.
    fhir_settle_seconds: float = Field(default=2.0, ge=0)
