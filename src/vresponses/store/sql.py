"""SqlStore: the Store protocol on SQLite (aiosqlite) or PostgreSQL (asyncpg) with SQLAlchemy async Core.

Every write is one transaction (`engine.begin()`), so a crash mid-request leaves either the old row or the
new one, never half of it. Driver and SQLAlchemy errors are translated here, and only here, into
StoreError (Conflict for a duplicate id).

Deleting a response leaves its children in place (previous_response_id is not a foreign key); their
`chain()` then returns None because a link is missing, which the api answers with 404. We chose this over
cascading deletes, which would silently remove other responses, and over re-parenting, which would
silently change the conversation a child continues.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import secrets
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from alembic.util import CommandError
from sqlalchemy import (
    BigInteger,
    ColumnElement,
    Double,
    Integer,
    Row,
    Select,
    bindparam,
    case,
    cast,
    delete,
    event,
    func,
    literal,
    literal_column,
    null,
    select,
    text,
    update,
)
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import IntegrityError, OperationalError, SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.pool import StaticPool

from vresponses.store import migrate
from vresponses.store.base import (
    FAILED,
    MAX_CHAIN_DEPTH,
    UNFINISHED,
    ChainLink,
    ChainTooLarge,
    Conflict,
    StoredResponse,
    StoreError,
)
from vresponses.store.schema import responses as t
from vresponses.store.schema import store_secrets

# How long a SQLite writer waits for another process's write lock before failing with "database is locked".
SQLITE_BUSY_TIMEOUT_MS = 5_000

_SQLITE_DRIVERS = {"sqlite", "sqlite+aiosqlite", "sqlite+pysqlite"}
_PG_DRIVERS = {"postgres", "postgresql", "postgresql+asyncpg", "postgresql+psycopg", "postgresql+psycopg2"}

_TENANT_KEY = "tenant_key"

# Execution option that picks how the SQLite "begin" hook opens a transaction.
_BEGIN = "vresponses_sqlite_begin"


def async_url(url: str) -> URL:
    """Map a plain sqlite:// or postgresql:// URL to its async driver; ValueError for anything else."""
    try:
        parsed = make_url(url)
    except Exception:  # SQLAlchemy raises ArgumentError, but any parse failure is a config error
        # Not `from exc`: SQLAlchemy's message repeats the URL, password included.
        raise ValueError(f"not a database URL: {redact(url)!r}") from None
    if parsed.drivername in _SQLITE_DRIVERS:
        return parsed.set(drivername="sqlite+aiosqlite")
    if parsed.drivername in _PG_DRIVERS:
        return parsed.set(drivername="postgresql+asyncpg")
    raise ValueError(f"unsupported store URL scheme {parsed.drivername!r}: use sqlite:/// or postgresql://")


# user:password@ at the start or after the scheme; the password runs to the last '@' before the path.
_PASSWORD = re.compile(r"(?P<head>(?:^|://)[^/@:]*:)[^/]*@")


def redact(url: str) -> str:
    """The URL with any password replaced by '***', for messages and logs (also when it does not parse)."""
    return _PASSWORD.sub(lambda m: m.group("head") + "***@", url)


@contextlib.contextmanager
def _translated(action: str) -> Iterator[None]:
    try:
        yield
    except StoreError:
        raise
    # OSError covers refused connections and timeouts that asyncpg raises before SQLAlchemy can wrap them.
    except (SQLAlchemyError, OSError, CommandError) as exc:
        # The driver's own error, not SQLAlchemy's wrapper, whose text repeats the SQL and its parameters
        # (response bodies) into whatever logs the message.
        cause = getattr(exc, "orig", None) or exc
        raise StoreError(f"store {action} failed: {type(cause).__name__}: {cause}") from exc


# Unbounded chains still stop at a cap this large (a corrupt cycle stops at MAX_CHAIN_DEPTH anyway).
_NO_BYTE_CAP = 2**62


def _chain_statement() -> Select[Any]:
    # length() of a blob is read from the row header (SQLite) or the TOAST pointer (PostgreSQL): the walk
    # totals sizes without loading items, and stops one link past the byte cap.
    size = cast(func.length(t.c.input_items), BigInteger) + cast(func.length(t.c.output_items), BigInteger)
    cap = bindparam("max_bytes", type_=BigInteger)
    start = (
        select(
            t.c.id,
            t.c.previous_response_id.label("prev"),
            literal(0, Integer).label("depth"),
            size.label("total"),
        )
        .where(t.c.id == bindparam("id"), t.c.tenant == bindparam("tenant"))
        .cte("chain", recursive=True)
    )
    # The tenant filter on each step turns another tenant's ancestor into a missing link.
    step = (
        select(t.c.id, t.c.previous_response_id, start.c.depth + 1, start.c.total + size)
        .join(start, t.c.id == start.c.prev)
        .where(
            t.c.tenant == bindparam("tenant"),
            start.c.depth < bindparam("last_depth"),
            start.c.total <= cap,
        )
    )
    walk = start.union_all(step)
    within = walk.c.total <= cap
    # Only what rendering needs, and items only of the links within the cap: never the response bodies.
    return (
        select(
            t.c.id,
            t.c.previous_response_id,
            t.c.status,
            walk.c.total,
            case((within, t.c.input_items), else_=null()).label("input_items"),
            case((within, t.c.output_items), else_=null()).label("output_items"),
        )
        .join(walk, t.c.id == walk.c.id)
        .order_by(walk.c.depth.desc())
    )


# Built once: constructing this CTE costs more Python time than running it (SQLAlchemy caches only the
# compiled SQL, not the construct).
_CHAIN = _chain_statement()
_GET = select(t).where(t.c.id == bindparam("id"), t.c.tenant == bindparam("tenant"))


def _row(r: Row[Any]) -> StoredResponse:
    return StoredResponse(
        id=r.id,
        tenant=r.tenant,
        previous_response_id=r.previous_response_id,
        status=r.status,
        created_at=r.created_at,
        updated_at=r.updated_at,
        input_items=bytes(r.input_items),
        output_items=bytes(r.output_items),
        body=bytes(r.body),
        cancel_requested=bool(r.cancel_requested),
    )


def _in_memory(url: URL) -> bool:
    return url.database in (None, "", ":memory:")


def _sqlite_engine(url: URL) -> AsyncEngine:
    memory = _in_memory(url)
    if not memory and not url.query.get("uri"):
        Path(url.database or "").parent.mkdir(parents=True, exist_ok=True)
    # hide_parameters: a logged traceback must not carry response bodies (user content) along.
    options: dict[str, Any] = {"hide_parameters": True}
    if memory:
        # One shared connection, else every pooled connection would see its own empty database.
        options["poolclass"] = StaticPool
    engine = create_async_engine(url, **options)

    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        # Take BEGIN away from the sqlite3 module: it skips BEGIN before DDL (so migrations would not be
        # atomic) and only ever issues a deferred BEGIN; the "begin" hook below issues ours instead.
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        # NORMAL skips the fsync per commit that WAL (set once per file by use_wal) makes unnecessary for
        # integrity: a power cut may lose the last commits, never corrupt the file.
        for pragma in (
            f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}",
            "PRAGMA synchronous=NORMAL",
            "PRAGMA foreign_keys=ON",
        ):
            cur.execute(pragma)
        cur.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(conn: Any) -> None:
        # Writers take the write lock up front (IMMEDIATE), so busy_timeout applies; a deferred transaction
        # that reads first and then writes fails at once with SQLITE_BUSY when another process wrote.
        # Single-statement reads need no transaction at all.
        begin = conn.get_execution_options().get(_BEGIN, "BEGIN IMMEDIATE")
        if begin:
            conn.exec_driver_sql(begin)

    return engine


async def use_wal(engine: AsyncEngine) -> None:
    """Put the SQLite file in WAL mode (readers beside the writer), waiting out other processes doing the same."""
    if _in_memory(engine.url):
        return
    # The switch needs the file to itself, and SQLite refuses it at once, without its busy handler, while another
    # connection holds a lock: processes opening a new file together must retry. The mode then stays with the file.
    deadline = time.monotonic() + SQLITE_BUSY_TIMEOUT_MS / 1000
    while True:
        try:
            async with engine.execution_options(**{_BEGIN: None}).connect() as conn:
                await conn.exec_driver_sql("PRAGMA journal_mode=WAL")
            return
        except OperationalError as exc:
            if "locked" not in str(exc.orig) or time.monotonic() > deadline:
                raise
        await asyncio.sleep(0.02)


def create_engine(url: URL) -> AsyncEngine:
    """An async engine for an async_url() result, with the SQLite pragmas and transaction hooks installed."""
    return _sqlite_engine(url) if url.get_backend_name() == "sqlite" else _pg_engine(url)


def _pg_engine(url: URL) -> AsyncEngine:
    # pre_ping costs one round trip per checkout but survives server restarts and idle-timeouts without
    # surfacing a StoreError on the first request afterwards.
    return create_async_engine(url, pool_size=10, max_overflow=10, pool_pre_ping=True, hide_parameters=True)


# The database's clock in Unix seconds (julianday has millisecond precision).
_SQLITE_NOW: ColumnElement[float] = literal_column("((julianday('now') - 2440587.5) * 86400.0)", Double)
_PG_NOW: ColumnElement[float] = literal_column("extract(epoch from clock_timestamp())::double precision", Double)

PRUNE_BATCH = 1000
# One prune pass deletes at most this many batches; the next pass (a minute later) goes on.
PRUNE_MAX_BATCHES = 100
# Transaction-scoped advisory lock that serializes prune batches across processes on one PostgreSQL database.
PG_PRUNE_LOCK_KEY = 0x7672_6573_7073_0002
_FINISHED = t.c.status.not_in(UNFINISHED)


async def _delete_oldest(conn: AsyncConnection, tenant: str | None, limit: int, before: float | None = None) -> int:
    """Delete up to `limit` of the oldest finished rows (of one tenant, or created before `before`)."""
    oldest = select(t.c.id).where(_FINISHED)
    if tenant is not None:
        oldest = oldest.where(t.c.tenant == tenant)
    if before is not None:
        oldest = oldest.where(t.c.created_at < before)
    oldest = oldest.order_by(t.c.created_at, t.c.id).limit(limit)
    return int((await conn.execute(delete(t).where(t.c.id.in_(oldest)))).rowcount)


async def _prune_batch(
    conn: AsyncConnection, older_than: float | None, max_rows: int | None, per_tenant: int | None
) -> int:
    """One batch of the first retention rule that has work, counted and deleted in the caller's transaction."""
    if older_than is not None and (n := await _delete_oldest(conn, None, PRUNE_BATCH, older_than)):
        return n
    by_size = select(t.c.tenant, func.count().label("n")).group_by(t.c.tenant).order_by(func.count().desc())
    if per_tenant is not None:
        quota = max(per_tenant, 0)
        for tenant, n in (await conn.execute(by_size.having(func.count() > quota))).all():
            if deleted := await _delete_oldest(conn, tenant, min(PRUNE_BATCH, n - quota)):
                return deleted
    if max_rows is not None:
        total = (await conn.execute(select(func.count()).select_from(t))).scalar_one()
        excess = total - max(max_rows, 0)
        # The tenant holding the most rows gives them up first, down to the next largest; one whose rows are
        # all unfinished is passed over.
        ranked = (await conn.execute(by_size)).all() if excess > 0 else []
        for i, (tenant, n) in enumerate(ranked):
            runner_up = ranked[i + 1].n if i + 1 < len(ranked) else 0
            if deleted := await _delete_oldest(conn, tenant, min(PRUNE_BATCH, excess, max(n - runner_up, 1))):
                return deleted
    return 0


class SqlStore:
    """The Store protocol on SQLite or PostgreSQL, chosen by URL; call open() before use and close() after."""

    def __init__(self, url: str) -> None:
        self._url = async_url(url)
        self._engine: AsyncEngine | None = None
        self._reader: AsyncEngine | None = None

    @property
    def dialect(self) -> str:
        """'sqlite' or 'postgresql'."""
        return self._url.get_backend_name()

    @property
    def engine(self) -> AsyncEngine:
        """The open engine, for tests and the benchmark; StoreError if not open."""
        if self._engine is None:
            raise StoreError("store is not open")
        return self._engine

    async def open(self) -> None:
        """Connect and apply pending schema migrations; a second call is a no-op."""
        if self._engine is not None:
            return
        with _translated("open"):
            engine = create_engine(self._url)
            try:
                if self.dialect == "sqlite":
                    await use_wal(engine)
                await migrate.upgrade(engine)
            except BaseException:
                await engine.dispose()
                raise
        self._engine = engine
        self._reader = engine.execution_options(**{_BEGIN: None}) if self.dialect == "sqlite" else engine

    async def close(self) -> None:
        """Release connections (and aiosqlite's threads); the store can be opened again."""
        engine, self._engine, self._reader = self._engine, None, None
        if engine is not None:
            with _translated("close"):
                await engine.dispose()

    def _read_engine(self) -> AsyncEngine:
        if self._reader is None:
            raise StoreError("store is not open")
        return self._reader

    async def insert(self, row: StoredResponse, lease_seconds: float | None = None) -> None:
        """Write a new row in one transaction; raise Conflict if the id exists (leases by the database's clock)."""
        values = {
            "id": row.id,
            "tenant": row.tenant,
            "previous_response_id": row.previous_response_id,
            "status": row.status,
            "created_at": row.created_at,
            "updated_at": row.updated_at,
            # Only in-flight work holds a lease; a final row never expires.
            "lease_until": None
            if row.status not in UNFINISHED or lease_seconds is None
            else self._now() + lease_seconds,
            "cancel_requested": row.cancel_requested,
            "input_items": row.input_items,
            "output_items": row.output_items,
            "body": row.body,
        }
        with _translated("insert"):
            try:
                async with self.engine.begin() as conn:
                    await conn.execute(t.insert().values(values))
            except IntegrityError as exc:
                raise Conflict(f"response {row.id!r} already exists") from exc

    async def finish(self, row: StoredResponse) -> bool:
        """Replace status, output_items, body and updated_at of a row still unfinished; a final status also drops
        the lease. False when there is no such row: it was deleted meanwhile (it stays deleted), or it is final
        already (a final row never flips back)."""
        values: dict[str, Any] = {
            "status": row.status,
            "output_items": row.output_items,
            "body": row.body,
            "updated_at": row.updated_at,
        }
        if row.status not in UNFINISHED:
            values["lease_until"] = None
        stmt = update(t).where(t.c.id == row.id, t.c.tenant == row.tenant, t.c.status.in_(UNFINISHED)).values(values)
        with _translated("finish"):
            async with self.engine.begin() as conn:
                result = await conn.execute(stmt)
        return bool(result.rowcount)

    async def get(self, response_id: str, tenant: str) -> StoredResponse | None:
        """Return the row, or None if it is missing, deleted, or another tenant's."""
        with _translated("get"):
            async with self._read_engine().connect() as conn:
                r = (await conn.execute(_GET, {"id": response_id, "tenant": tenant})).first()
        return None if r is None else _row(r)

    async def chain(self, response_id: str, tenant: str, max_bytes: int | None = None) -> list[ChainLink] | None:
        """Return the row and all its ancestors, oldest first; None if any link is missing or not the tenant's.

        One recursive query; more than MAX_CHAIN_DEPTH rows (only possible with a corrupt cycle) is None, and
        items adding up to more than max_bytes raise ChainTooLarge, having loaded only those within it.
        """
        cap = _NO_BYTE_CAP if max_bytes is None else max_bytes
        params = {"id": response_id, "tenant": tenant, "last_depth": MAX_CHAIN_DEPTH - 1, "max_bytes": cap}
        with _translated("chain"):
            async with self._read_engine().connect() as conn:
                rows = list(await conn.execute(_CHAIN, params))
        if rows and rows[0].total > cap:
            raise ChainTooLarge(int(rows[0].total))
        # The walk stops at a missing or foreign link (or the depth cap), leaving a dangling oldest row.
        if not rows or rows[0].previous_response_id is not None:
            return None
        return [
            ChainLink(r.id, r.previous_response_id, r.status, bytes(r.input_items), bytes(r.output_items)) for r in rows
        ]

    async def delete(self, response_id: str, tenant: str) -> bool:
        """Delete the row; False if it was not there for this tenant. Children keep their (broken) link."""
        stmt = delete(t).where(t.c.id == response_id, t.c.tenant == tenant)
        with _translated("delete"):
            async with self.engine.begin() as conn:
                result = await conn.execute(stmt)
        return result.rowcount > 0

    async def request_cancel(self, response_id: str, tenant: str) -> StoredResponse | None:
        """Flag the row for cancellation if unfinished and return it (finished rows are returned unchanged)."""
        flag = (
            update(t)
            .where(t.c.id == response_id, t.c.tenant == tenant, t.c.status.in_(UNFINISHED))
            .values(cancel_requested=True)
        )
        read = select(t).where(t.c.id == response_id, t.c.tenant == tenant)
        with _translated("request_cancel"):
            async with self.engine.begin() as conn:
                await conn.execute(flag)
                r = (await conn.execute(read)).first()
        return None if r is None else _row(r)

    def _now(self) -> ColumnElement[float]:
        """The database's clock in Unix seconds: every process's leases are measured by this one clock."""
        return _PG_NOW if self.dialect == "postgresql" else _SQLITE_NOW

    async def renew_leases(self, response_ids: Sequence[str], lease_seconds: float) -> list[str]:
        """Extend the leases of unfinished rows in one UPDATE; return the ids whose cancel was requested."""
        if not response_ids:
            return []
        stmt = (
            update(t)
            .where(t.c.id.in_(list(response_ids)), t.c.status.in_(UNFINISHED))
            .values(lease_until=self._now() + lease_seconds)
            .returning(t.c.id, t.c.cancel_requested)
        )
        with _translated("renew_leases"):
            async with self.engine.begin() as conn:
                result = await conn.execute(stmt)
                return [r.id for r in result if r.cancel_requested]

    async def expire_leases(self) -> int:
        """Mark unfinished rows whose lease ran out by the database's clock as failed; return how many.

        Only the status column changes; `body` still says in_progress, so readers must trust `status`.
        """
        now = self._now()
        stmt = (
            update(t)
            .where(t.c.status.in_(UNFINISHED), t.c.lease_until < now)
            .values(status=FAILED, updated_at=now, lease_until=None)
        )
        with _translated("expire_leases"):
            async with self.engine.begin() as conn:
                result = await conn.execute(stmt)
        return result.rowcount

    async def prune(
        self, older_than: float | None, max_rows: int | None, max_rows_per_tenant: int | None = None
    ) -> int:
        """Delete finished rows created before older_than, beyond each tenant's quota, then beyond max_rows from
        the tenant holding the most rows; unfinished rows are never deleted and still count.

        Works in batches of PRUNE_BATCH rows, each one transaction that counts and deletes under a lock all
        processes share (PostgreSQL's advisory lock; SQLite's write lock), so concurrent prunes never
        over-delete and no transaction holds its locks for long.
        """
        deleted = 0
        for _ in range(PRUNE_MAX_BATCHES):
            with _translated("prune"):
                async with self.engine.begin() as conn:
                    if self.dialect == "postgresql":
                        await conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": PG_PRUNE_LOCK_KEY})
                    batch = await _prune_batch(conn, older_than, max_rows, max_rows_per_tenant)
            deleted += batch
            if batch == 0:
                break
        return deleted

    async def secret(self) -> bytes:
        """The random key migration 0002 stored (made again, once, if someone deleted it)."""
        read = select(store_secrets.c.value).where(store_secrets.c.name == _TENANT_KEY)
        with _translated("secret"):
            async with self.engine.begin() as conn:
                value = (await conn.execute(read)).scalar_one_or_none()
                if value is None:
                    insert = sqlite_insert if self.dialect == "sqlite" else pg_insert
                    fresh = {"name": _TENANT_KEY, "value": secrets.token_bytes(32)}
                    await conn.execute(insert(store_secrets).values(fresh).on_conflict_do_nothing())
                    value = (await conn.execute(read)).scalar_one()
        return bytes(value)

    async def adopt_tenant(self, legacy: str, tenant: str) -> int:
        """Move every row of tenant `legacy` to `tenant` in one UPDATE; return how many moved."""
        stmt = update(t).where(t.c.tenant == legacy).values(tenant=tenant)
        with _translated("adopt_tenant"):
            async with self.engine.begin() as conn:
                result = await conn.execute(stmt)
        return result.rowcount

    async def count(self) -> int:
        """How many rows are stored."""
        with _translated("count"):
            async with self._read_engine().connect() as conn:
                return int((await conn.execute(select(func.count()).select_from(t))).scalar_one())
