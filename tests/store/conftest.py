"""Store backends for the contract tests: memory and SQLite always, PostgreSQL when VRESPONSES_TEST_PG_URL is set.

PostgreSQL tests run in a database created for this session (and dropped after it) through the admin URL,
so they never touch existing data; run `.ci/postgres.sh` to get a server and its URL.
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import asyncpg
import pytest
from sqlalchemy import delete
from sqlalchemy.engine import make_url

from vresponses.store import COMPLETED, Store, StoredResponse, make_store
from vresponses.store.schema import responses
from vresponses.store.sql import SqlStore

PG_ENV = "VRESPONSES_TEST_PG_URL"
PG_SKIP = f"{PG_ENV} is not set; run .ci/postgres.sh and export the URL it prints to test PostgreSQL"


def _libpq_url(url: str, database: str | None = None) -> str:
    parsed = make_url(url).set(drivername="postgresql")
    if database is not None:
        parsed = parsed.set(database=database)
    return parsed.render_as_string(hide_password=False)


async def _admin_async(admin_url: str, sql: str) -> None:
    conn = await asyncpg.connect(_libpq_url(admin_url))
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


def _admin(admin_url: str, sql: str) -> None:
    # A thread of its own, so this works from sync fixtures and from inside a running test loop alike.
    with ThreadPoolExecutor(1) as pool:
        pool.submit(asyncio.run, _admin_async(admin_url, sql)).result()


def create_pg_database(admin_url: str) -> str:
    """Create a uniquely named database and return its URL."""
    name = f"vresponses_test_{uuid.uuid4().hex[:12]}"
    _admin(admin_url, f'CREATE DATABASE "{name}"')
    return _libpq_url(admin_url, name)


def drop_pg_database(admin_url: str, url: str) -> None:
    """Drop a database made by create_pg_database, closing whatever is still connected to it."""
    name = make_url(url).database
    _admin(admin_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def pg_admin_url() -> str:
    """The admin URL from the environment, or skip."""
    url = os.environ.get(PG_ENV)
    if not url:
        pytest.skip(PG_SKIP)
    return url


@pytest.fixture(scope="session")
def pg_url(pg_admin_url: str) -> Iterator[str]:
    """A database of this test session's own, dropped at the end."""
    url = create_pg_database(pg_admin_url)
    yield url
    drop_pg_database(pg_admin_url, url)


@pytest.fixture
def fresh_pg_url(pg_admin_url: str) -> Iterator[str]:
    """A brand-new database for one test (never migrated), dropped after it."""
    url = create_pg_database(pg_admin_url)
    yield url
    drop_pg_database(pg_admin_url, url)


@pytest.fixture(params=["memory", "sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def backend(request: pytest.FixtureRequest) -> str:
    """Backend name for the contract tests."""
    return str(request.param)


@pytest.fixture
def store_url(backend: str, request: pytest.FixtureRequest, tmp_path: os.PathLike[str]) -> str:
    """The URL for `backend`."""
    if backend == "memory":
        return "memory://"
    if backend == "sqlite":
        return f"sqlite:///{tmp_path}/store/responses.db"
    return str(request.getfixturevalue("pg_url"))


@pytest.fixture
async def store(store_url: str) -> AsyncIterator[Store]:
    """An opened, empty store; closed after the test."""
    s = make_store(store_url)
    await s.open()
    if isinstance(s, SqlStore) and s.dialect == "postgresql":
        # The session database is shared by all PostgreSQL tests.
        async with s.engine.begin() as conn:
            await conn.execute(delete(responses))
    try:
        yield s
    finally:
        await s.close()


@pytest.fixture
def row() -> Callable[..., StoredResponse]:
    """Build a StoredResponse with defaults; keyword arguments override fields."""

    def build(response_id: str, **fields: Any) -> StoredResponse:
        base = StoredResponse(
            id=response_id,
            tenant="t1",
            previous_response_id=None,
            status=COMPLETED,
            created_at=1000.0,
            updated_at=1000.0,
            input_items=b'[{"type":"message"}]',
            output_items=b"[]",
            body=b'{"id":"%s"}' % response_id.encode(),
        )
        return dataclasses.replace(base, **fields)

    return build
