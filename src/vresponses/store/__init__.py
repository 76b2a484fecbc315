"""Durable response state: the Store protocol, its SQL implementation and an in-memory fake for tests."""

from __future__ import annotations

from vresponses.store.base import (
    CANCELLED,
    COMPLETED,
    FAILED,
    IN_PROGRESS,
    INCOMPLETE,
    MAX_CHAIN_DEPTH,
    QUEUED,
    UNFINISHED,
    ChainLink,
    ChainTooLarge,
    Conflict,
    Store,
    StoredResponse,
    StoreError,
)

__all__ = [
    "CANCELLED",
    "COMPLETED",
    "FAILED",
    "INCOMPLETE",
    "IN_PROGRESS",
    "MAX_CHAIN_DEPTH",
    "QUEUED",
    "UNFINISHED",
    "ChainLink",
    "ChainTooLarge",
    "Conflict",
    "Store",
    "StoreError",
    "StoredResponse",
    "make_store",
]


def make_store(url: str) -> Store:
    """The store for `url` (sqlite:///file, postgresql://..., or memory:// for tests), not yet opened.

    Raises ValueError for an unsupported URL.
    """
    if url.startswith("memory:"):
        from vresponses.store.memory import MemoryStore

        return MemoryStore()
    # Imported lazily so importing the protocol does not pull in SQLAlchemy and Alembic.
    from vresponses.store.sql import SqlStore

    return SqlStore(url)
