"""The interoperability clients' table (provisioning owns it)."""
from datetime import datetime
from uuid import UUID, uuid4

from sqlmodel import Field

from ..models import ProvisioningTable


class InteropClient(ProvisioningTable, table=True):
    """A machine client: its id, the argon2 hash of its secret (the secret is shown once),
    the scopes and the jurisdiction its tokens carry."""

    __tablename__ = "interop_clients"

    id: UUID = Field(default_factory=uuid4, primary_key=True)
    client_id: str = Field(max_length=80, unique=True)
    name: str = Field(max_length=200)
    jurisdiction: str = Field(max_length=60)
    scopes: str = Field(max_length=200)
    secret_hash: str = Field(max_length=200)
    disabled: bool = False
    created_at: datetime
    created_by: str | None = Field(default=None, max_length=200)
    last_token_at: datetime | None = None
