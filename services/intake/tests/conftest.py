"""Fixtures of the intake unit tests: a real SQLite database migrated by the service's own
Alembic tree, the admin-unit tree, and principals of each office."""
from __future__ import annotations

from pathlib import Path

import pytest

from libs.common import migrate
from libs.common.adminunits import load_tree
from libs.common.auth import Principal, Role
from libs.common.db import Database

MIGRATIONS = Path(__file__).resolve().parents[1] / "migrations"
CAN_THANH, BINH_KHANH, CAN_GIO = "79/787/27664", "79/787/27667", "79/787"
BEN_NGHE, QUAN_1 = "79/760/26740", "79/760"


@pytest.fixture
async def database(tmp_path):
    db = Database(f"sqlite+aiosqlite:///{tmp_path / 'intake.db'}", sqlite_synchronous="OFF")
    await migrate.upgrade(db, MIGRATIONS, "intake")
    try:
        yield db
    finally:
        await db.dispose()


@pytest.fixture(scope="session")
def tree():
    return load_tree(None, "79")


def official(role: Role, path: str, name: str = "Cán bộ kiểm thử") -> Principal:
    return Principal(account_id=f"acc-{role}-{path}", username=f"{role}.{path}", name=name, role=role,
                     jurisdiction=path, claims={"jti": "t"})


COMMUNE = official(Role.COMMUNE_FOCAL, CAN_THANH, "UBND thị trấn Cần Thạnh")
OTHER_COMMUNE = official(Role.COMMUNE_FOCAL, BINH_KHANH, "UBND xã Bình Khánh")
DISTRICT = official(Role.DISTRICT_FOCAL, CAN_GIO, "Phòng VH-TT huyện Cần Giờ")
OTHER_DISTRICT = official(Role.DISTRICT_FOCAL, QUAN_1, "Phòng VH-TT Quận 1")
CITY = official(Role.CITY_DIC, "79", "Sở TT&TT")
