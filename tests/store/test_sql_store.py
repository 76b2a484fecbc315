"""What only SqlStore promises: URLs, durability, migrations, SQLite pragmas, concurrency and error translation."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import text
from sqlalchemy.engine import Connection

from vresponses.store import IN_PROGRESS, StoredResponse, StoreError, make_store, migrate
from vresponses.store.memory import MemoryStore
from vresponses.store.schema import metadata
from vresponses.store.sql import SqlStore, async_url

Row = Callable[..., StoredResponse]


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def backend(request: pytest.FixtureRequest) -> str:
    """Only the SQL backends here (overrides conftest's, which includes the memory fake)."""
    return str(request.param)


@pytest.fixture
def fresh_url(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> str:
    """A database no store has opened yet."""
    return f"sqlite:///{tmp_path}/fresh.db" if backend == "sqlite" else request.getfixturevalue("fresh_pg_url")


def _schema_diff(conn: Connection) -> list[object]:
    return list(compare_metadata(MigrationContext.configure(conn), metadata))


async def test_migrations_are_idempotent_and_match_schema(store_url: str) -> None:
    for _ in range(2):
        s = SqlStore(store_url)
        await s.open()
        await s.open()  # a second open on the same instance is a no-op
        try:
            async with s.engine.connect() as conn:
                assert await conn.run_sync(migrate.current_revision) == migrate.head_revision() == "0002"
                versions = (await conn.execute(text("SELECT count(*) FROM alembic_version"))).scalar_one()
                assert versions == 1
                # schema.py must describe exactly what the migrations build.
                assert await conn.run_sync(_schema_diff) == []
        finally:
            await s.close()


async def test_two_stores_on_one_database_see_each_others_writes(store_url: str, row: Row) -> None:
    a, b = SqlStore(store_url), SqlStore(store_url)
    await a.open()
    await b.open()
    try:
        await a.insert(row("from_a", tenant="shared_x"))
        await b.insert(row("from_b", tenant="shared_x", previous_response_id="from_a"))
        assert [r.id for r in await a.chain("from_b", "shared_x") or []] == ["from_a", "from_b"]
        assert await b.get("from_a", "shared_x") is not None
        assert await b.delete("from_a", "shared_x")
        assert await a.get("from_a", "shared_x") is None
    finally:
        await b.delete("from_b", "shared_x")
        await a.close()
        await b.close()


async def test_concurrent_writers_from_two_stores_do_not_lock_out(store_url: str, row: Row) -> None:
    # Separate engines stand in for separate server processes sharing one database.
    a, b = SqlStore(store_url), SqlStore(store_url)
    await a.open()
    await b.open()
    try:
        ids = [f"conc_{i}" for i in range(60)]
        await asyncio.gather(
            *((a if i % 2 else b).insert(row(rid, tenant="conc", status=IN_PROGRESS)) for i, rid in enumerate(ids))
        )
        await asyncio.gather(a.renew_leases(ids[::2], 10.0), b.renew_leases(ids[1::2], 10.0), a.expire_leases())
        assert all([await a.get(rid, "conc") for rid in ids])
    finally:
        await asyncio.gather(*(a.delete(rid, "conc") for rid in ids))
        await a.close()
        await b.close()


async def test_concurrent_prunes_from_two_stores_never_over_delete(store_url: str, row: Row) -> None:
    stores = [SqlStore(store_url) for _ in range(3)]
    for s in stores:
        await s.open()
    try:
        async with stores[0].engine.begin() as conn:
            await conn.execute(text("DELETE FROM responses"))
        for i in range(300):
            await stores[0].insert(row(f"p{i}", tenant=f"t{i % 3}", created_at=float(i)))
        for _ in range(3):
            await asyncio.gather(*(s.prune(None, 120) for s in stores), *(s.prune(None, None, 50) for s in stores))
            assert await stores[0].count() == 120
    finally:
        for s in stores:
            await s.close()


async def test_concurrent_first_opens_migrate_once(fresh_url: str) -> None:
    stores = [SqlStore(fresh_url) for _ in range(4)]
    try:
        await asyncio.gather(*(s.open() for s in stores))
        async with stores[0].engine.connect() as conn:
            assert await conn.run_sync(migrate.current_revision) == "0002"
        # Every process on one database keys tenant ids with the same secret, made once.
        secrets = await asyncio.gather(*(s.secret() for s in stores))
        assert len(set(secrets)) == 1 and len(secrets[0]) == 32
    finally:
        await asyncio.gather(*(s.close() for s in stores))


async def test_processes_opening_a_new_sqlite_file_together_all_start(tmp_path: Path) -> None:
    # Switching a new file to WAL is refused at once (SQLite's busy handler does not wait for it) while another
    # opener holds a lock: before use_wal retried, about one round in ten failed one of its four opens.
    for round_ in range(30):
        stores = [SqlStore(f"sqlite:///{tmp_path}/new-{round_}.db") for _ in range(4)]
        try:
            results = await asyncio.gather(*(s.open() for s in stores), return_exceptions=True)
            assert [r for r in results if r is not None] == [], f"round {round_}"
            async with stores[0].engine.connect() as conn:
                assert (await conn.exec_driver_sql("PRAGMA journal_mode")).scalar() == "wal"
        finally:
            await asyncio.gather(*(s.close() for s in stores))


async def test_secret_survives_reopen_and_is_remade_if_deleted(fresh_url: str) -> None:
    store = SqlStore(fresh_url)
    await store.open()
    first = await store.secret()
    await store.close()
    await store.open()
    try:
        assert await store.secret() == first
        async with store.engine.begin() as conn:
            await conn.execute(text("DELETE FROM store_secrets"))
        remade = await store.secret()
        assert remade != first and await store.secret() == remade
    finally:
        await store.close()


def test_a_bad_url_never_shows_its_password() -> None:
    for url in ("postgresql://me:s3cr3t@db:notaport/x", "me:s3cr3t@db", "postgresql://me:s3:cr@t@db:bad/x"):
        with pytest.raises(ValueError) as info:
            async_url(url)
        assert "s3" not in str(info.value) and "s3" not in repr(info.value.__cause__ or "")


async def test_unreachable_database_raises_store_error(backend: str, tmp_path: Path) -> None:
    if backend == "sqlite":
        (tmp_path / "a_file").write_text("not a directory")
        url = f"sqlite:///{tmp_path}/a_file/responses.db"
    else:
        url = "postgresql://postgres@127.0.0.1:1/postgres"  # nothing listens on port 1
    s = SqlStore(url)
    with pytest.raises(StoreError):
        await s.open()
    with pytest.raises(StoreError):
        await s.get("x", "t1")


async def test_lost_database_raises_store_error(fresh_url: str) -> None:
    s = SqlStore(fresh_url)
    await s.open()
    try:
        async with s.engine.begin() as conn:
            await conn.execute(text("DROP TABLE responses"))
        with pytest.raises(StoreError) as info:
            await s.get("x", "t1")
        assert not isinstance(info.value.__cause__, StoreError)
    finally:
        await s.close()


def test_urls_pick_the_backend() -> None:
    assert isinstance(make_store("memory://"), MemoryStore)
    assert async_url("sqlite:///rel/x.db").drivername == "sqlite+aiosqlite"
    assert async_url("sqlite+aiosqlite:////abs/x.db").database == "/abs/x.db"
    for url in ("postgresql://u:p@h:5/db", "postgres://u@h/db", "postgresql+asyncpg://u@h/db"):
        s = make_store(url)
        assert isinstance(s, SqlStore) and s.dialect == "postgresql"
    for bad in ("mysql://u@h/db", "not a url", "redis://h"):
        with pytest.raises(ValueError):
            make_store(bad)


async def test_sqlite_creates_directory_and_sets_pragmas(tmp_path: Path) -> None:
    s = SqlStore(f"sqlite:///{tmp_path}/nested/deeper/responses.db")
    await s.open()
    try:
        assert (tmp_path / "nested" / "deeper" / "responses.db").is_file()
        async with s.engine.connect() as conn:
            pragmas = {
                name: (await conn.exec_driver_sql(f"PRAGMA {name}")).scalar_one()
                for name in ("journal_mode", "synchronous", "busy_timeout", "foreign_keys")
            }
        assert pragmas == {"journal_mode": "wal", "synchronous": 1, "busy_timeout": 5000, "foreign_keys": 1}
    finally:
        await s.close()


async def test_sqlite_in_memory_url_works_across_calls(row: Row) -> None:
    s = SqlStore("sqlite://")
    await s.open()
    try:
        await s.insert(row("m"))
        assert await s.get("m", "t1") is not None
    finally:
        await s.close()
