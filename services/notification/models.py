"""Tables owned by the notification service: the inbox of each office."""
from datetime import datetime
from uuid import UUID, uuid4

from sqlalchemy.orm import registry
from sqlmodel import Field, SQLModel


class NotificationTable(SQLModel, registry=registry()):
    pass


class Notice(NotificationTable, table=True):
    """A message in the console inbox of the office at ``recipient_path``."""

    __tablename__ = "notices"

    id: UUID = Field(default_factory=uuid4, primary_key=True)
    recipient_path: str = Field(max_length=60, index=True)
    kind: str = Field(max_length=40)
    subject: str = Field(max_length=300)
    reference: str | None = Field(default=None, max_length=40)
    source_event_id: UUID = Field(unique=True)
    created_at: datetime
    read_at: datetime | None = None
