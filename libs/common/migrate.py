"""Alembic, one migration tree per service, applied on start.

Each service keeps ``migrations/`` with an ``env.py`` that calls ``run_env`` below and
revision files under ``versions/``. No alembic.ini: the configuration is built here.
"""
from __future__ import annotations

import zlib
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import text
from sqlalchemy.engine import Connection

from .db import Database


def alembic_config(migrations_dir: Path, service: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(migrations_dir))
    config.attributes["version_table"] = f"alembic_version_{service}"
    return config


async def upgrade(database: Database, migrations_dir: Path, service: str, revision: str = "heads") -> None:
    """Apply every migration; a service may have several branches (``heads``)."""
    config = alembic_config(migrations_dir, service)

    def _run(connection: Connection) -> None:
        config.attributes["connection"] = connection
        command.upgrade(config, revision)

    # Migrations are DDL: run them in a plain (deferred) transaction of their own.
    async with database.engine.connect() as connection:
        connection = await connection.execution_options(khaibao_readonly=True)
        if not database.sqlite:
            # Replicas of one service start together: one migrates, the others wait.
            lock_key = zlib.crc32(f"khaibao-migrate-{service}".encode())
            await connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": lock_key})
        await connection.run_sync(_run)
        await connection.commit()


def run_env(context) -> None:  # noqa: ANN001 - alembic's context module
    """The body of every service's migrations/env.py."""
    config = context.config
    connection = config.attributes["connection"]
    context.configure(
        connection=connection,
        target_metadata=None,
        version_table=config.attributes["version_table"],
        render_as_batch=connection.dialect.name == "sqlite",
        transaction_per_migration=False,
    )
    with context.begin_transaction():
        context.run_migrations()
