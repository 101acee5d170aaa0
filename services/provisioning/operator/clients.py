"""``khaibao accounts create-client`` / ``disable-client`` / ``enable-client``: the
interoperability clients of national systems.

Run with provisioning's environment, like ``khaibao accounts create``: the migrations are
applied, the jurisdiction is checked against the admin-unit tree, and the client gets a
random secret, printed once (only its argon2 hash is kept).
"""
from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select

from libs.common import migrate
from libs.common.adminunits import AdminTree, load_tree
from libs.common.db import Database

from .. import audit
from ..interop.models import InteropClient
from ..interop.service import ClientRefused, create_client
from ..settings import ProvisioningSettings
from .bootstrap import MIGRATIONS, BootstrapRefused


@dataclass(frozen=True)
class CreatedClient:
    client_id: str
    name: str
    jurisdiction: str
    scopes: str
    secret: str


async def create_interop_client(settings: ProvisioningSettings, *, client_id: str, name: str, jurisdiction: str,
                                scopes: list[str], tree: AdminTree | None = None) -> CreatedClient:
    tree = tree or load_tree(str(settings.admin_units_file) if settings.admin_units_file else None,
                             settings.admin_units_root)
    node = tree.get(jurisdiction.strip())
    if node is None:
        raise BootstrapRefused(f"Địa bàn không tồn tại / unknown jurisdiction {jurisdiction!r}: a path in the "
                               f"admin-unit tree such as {tree.root.path} or {tree.root.path}/760")
    if not 2 <= len(" ".join(name.split())) <= 200:
        raise BootstrapRefused("Tên hiển thị cần 2 đến 200 ký tự / the name needs 2 to 200 characters")
    database = Database.for_settings(settings, pool_size=1)
    try:
        await migrate.upgrade(database, MIGRATIONS, settings.service_name)
        async with database.transaction() as session:
            try:
                client, secret = await create_client(session, client_id=client_id, name=name,
                                                     jurisdiction=node.path, scopes=scopes,
                                                     created_by="khaibao accounts create-client")
            except ClientRefused as exc:
                raise BootstrapRefused(str(exc)) from None
            audit.record(session, None, "interop_client_created", target=client.client_id, path=node.path,
                         detail=f"{client.name}; scope {client.scopes} (khaibao accounts create-client)")
    finally:
        await database.dispose()
    return CreatedClient(client.client_id, client.name, client.jurisdiction, client.scopes, secret)


async def set_client_disabled(settings: ProvisioningSettings, client_id: str, *, disabled: bool) -> str:
    """Refuse (or allow again) new tokens to a client; the tokens it holds end with their
    30 minutes. The client id, or BootstrapRefused if there is none."""
    database = Database.for_settings(settings, pool_size=1)
    try:
        await migrate.upgrade(database, MIGRATIONS, settings.service_name)
        async with database.transaction() as session:
            client = (await session.execute(select(InteropClient).where(
                InteropClient.client_id == client_id.strip().lower()))).scalar_one_or_none()
            if client is None:
                raise BootstrapRefused(f"Không có client này / no client {client_id!r}")
            client.disabled = disabled
            audit.record(session, None, "interop_client_disabled" if disabled else "interop_client_enabled",
                         target=client.client_id, path=client.jurisdiction, detail="khaibao accounts")
            return client.client_id
    finally:
        await database.dispose()
