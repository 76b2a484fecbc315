"""Alembic environment: migrates the connection SqlStore.open() hands over, or `-x url=...` from the CLI."""

from __future__ import annotations

import asyncio

from alembic import context
from sqlalchemy import text
from sqlalchemy.engine import Connection

from vresponses.store.migrate import PG_MIGRATION_LOCK_KEY
from vresponses.store.schema import metadata
from vresponses.store.sql import async_url, create_engine

config = context.config


def _cli_url() -> str:
    url = context.get_x_argument(as_dictionary=True).get("url") or config.get_main_option("sqlalchemy.url")
    if not url:
        raise RuntimeError("give the database as: alembic -x url=sqlite:///path.db ...")
    return url


def _run(connection: Connection) -> None:
    # Batch mode lets future ALTERs work on SQLite, which cannot alter most column properties in place.
    context.configure(
        connection=connection,
        target_metadata=metadata,
        render_as_batch=connection.dialect.name == "sqlite",
    )
    # Inside SqlStore's transaction this is a no-op wrapper; the caller commits.
    with context.begin_transaction():
        context.run_migrations()


async def _run_cli() -> None:
    # The store's own engine, so the CLI gets the same SQLite pragmas and transactional DDL, and waits
    # for the same lock as servers opening the database.
    engine = create_engine(async_url(_cli_url()))
    try:
        async with engine.begin() as conn:
            if conn.dialect.name == "postgresql":
                await conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": PG_MIGRATION_LOCK_KEY})
            await conn.run_sync(_run)
    finally:
        await engine.dispose()


if context.is_offline_mode():
    context.configure(
        url=async_url(_cli_url()).render_as_string(hide_password=False), target_metadata=metadata, literal_binds=True
    )
    with context.begin_transaction():
        context.run_migrations()
elif (connection := config.attributes.get("connection")) is not None:
    _run(connection)
else:
    asyncio.run(_run_cli())
