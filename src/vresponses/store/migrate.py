"""Apply pending Alembic revisions when a SqlStore opens, one process at a time."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

MIGRATIONS_DIR = Path(__file__).with_name("migrations")

# Every vresponses process takes this transaction-scoped advisory lock before migrating, so concurrent
# open()s on one PostgreSQL database run the upgrade one after another; the later ones find it done.
PG_MIGRATION_LOCK_KEY = 0x7672_6573_7073_0001


def alembic_config(connection: Connection | None = None) -> Config:
    """An Alembic config for the packaged migrations, bound to `connection` when given."""
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    if connection is not None:
        cfg.attributes["connection"] = connection
    return cfg


def head_revision() -> str | None:
    """The newest revision shipped with this package."""
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def current_revision(connection: Connection) -> str | None:
    """The revision the database is at, None if never migrated."""
    return MigrationContext.configure(connection).get_current_revision()


def _upgrade(connection: Connection) -> None:
    command.upgrade(alembic_config(connection), "head")


async def upgrade(engine: AsyncEngine) -> None:
    """Bring the schema to head in one transaction; concurrent callers wait rather than collide.

    The database lock is taken before Alembic runs, and must be: Alembic's `context` and `op` are
    process-global proxies, so two upgrades interleaving on one event loop corrupt each other (and then
    hang on each other's row locks). On SQLite the engine's BEGIN IMMEDIATE (see sql.py) is that lock.
    """
    async with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            await conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": PG_MIGRATION_LOCK_KEY})
        await conn.run_sync(_upgrade)
