"""``khaibao accounts create``: the first officials' accounts of a deployment.

Run with provisioning's environment (its settings, hence its database): the migrations are
applied as the service applies them on start, the jurisdiction is checked against the
admin-unit tree, and the account gets a random one-time password that must be changed at
the first sign-in. Production-safe: nothing else is created, nothing is seeded.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from libs.common import migrate
from libs.common.adminunits import AdminTree, load_tree
from libs.common.auth import Role
from libs.common.db import Database

from .. import audit
from ..models import Account
from ..passwords import new_password
from ..service import create_account
from ..settings import ProvisioningSettings

MIGRATIONS = Path(__file__).parents[1] / "migrations"  # provisioning's own tree
# The officials' roles and the depths of the admin-unit tree their jurisdiction may be at
# (0: the city, 1: a district, 2: a commune).
OFFICIAL_DEPTHS = {
    Role.CITY_DIC: (0,),
    Role.DISTRICT_FOCAL: (1,),
    Role.COMMUNE_FOCAL: (2,),
    Role.HEALTH_OFFICER: (0, 1),
}
USERNAME = re.compile(r"^[a-z0-9][a-z0-9._-]{2,79}$")
LEVELS = {0: "thành phố / city", 1: "quận, huyện / district", 2: "phường, xã / commune"}


class BootstrapRefused(Exception):
    """A refusal with a message for the operator."""


@dataclass(frozen=True)
class CreatedAccount:
    username: str
    role: Role
    jurisdiction: str
    jurisdiction_name: str
    password: str


def validate(tree: AdminTree, *, username: str, name: str, role: str, jurisdiction: str) -> tuple[str, str, Role]:
    """(username, name, role) normalised, or BootstrapRefused with the reason."""
    username = username.strip().lower()
    if not USERNAME.match(username):
        raise BootstrapRefused(
            f"Tên đăng nhập không hợp lệ / invalid username {username!r}: 3 to 80 characters among "
            "a-z, 0-9, '.', '_', '-', starting with a letter or digit")
    name = " ".join(name.split())
    if not 2 <= len(name) <= 200:
        raise BootstrapRefused("Tên hiển thị cần 2 đến 200 ký tự / the name needs 2 to 200 characters")
    try:
        chosen = Role(role)
    except ValueError:
        chosen = None
    if chosen not in OFFICIAL_DEPTHS:
        raise BootstrapRefused(f"Vai trò không hợp lệ / invalid role {role!r}; one of: "
                               f"{', '.join(str(r) for r in OFFICIAL_DEPTHS)}")
    node = tree.get(jurisdiction.strip())
    if node is None:
        raise BootstrapRefused(f"Địa bàn không tồn tại / unknown jurisdiction {jurisdiction!r}: a path in the "
                               f"admin-unit tree such as {tree.root.path} or {tree.root.path}/760")
    if node.depth not in OFFICIAL_DEPTHS[chosen]:
        levels = " or ".join(LEVELS.get(d, str(d)) for d in OFFICIAL_DEPTHS[chosen])
        raise BootstrapRefused(f"Vai trò {chosen} cần địa bàn cấp {levels} / role {chosen} needs a jurisdiction "
                               f"at the level: {levels}; {node.path} is {node.name}")
    return username, name, chosen


def _duplicate(username: str) -> BootstrapRefused:
    return BootstrapRefused(f"Tên đăng nhập đã có / the username {username!r} already exists; nothing was created")


async def create_official(settings: ProvisioningSettings, *, username: str, name: str, role: str,
                          jurisdiction: str, tree: AdminTree | None = None) -> CreatedAccount:
    tree = tree or load_tree(str(settings.admin_units_file) if settings.admin_units_file else None,
                             settings.admin_units_root)
    username, name, chosen = validate(tree, username=username, name=name, role=role, jurisdiction=jurisdiction)
    node = tree.get(jurisdiction.strip())
    database = Database.for_settings(settings, pool_size=1)
    try:
        await migrate.upgrade(database, MIGRATIONS, settings.service_name)
        password = new_password()
        try:
            async with database.transaction() as session:
                if (await session.execute(select(Account.id).where(Account.username == username))).first():
                    raise _duplicate(username)
                account = await create_account(session, username=username, name=name, role=chosen,
                                               jurisdiction=node.path, password=password,
                                               must_change_password=True)
                audit.record(session, None, "account_created", target=account.username, path=node.path,
                             detail=f"{chosen} {name} (khaibao accounts create)")
        except IntegrityError:  # created by someone else between the check and the insert
            raise _duplicate(username) from None
    finally:
        await database.dispose()
    return CreatedAccount(username, chosen, node.path, node.name, password)
