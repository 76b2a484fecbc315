"""The narrow store protocol: responses as rows, chains by previous_response_id, leases for in-flight work."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from vresponses.status import Status

# Row statuses as the plain strings the database holds (drivers bind str, not enum subclasses).
QUEUED = Status.QUEUED.value
IN_PROGRESS = Status.IN_PROGRESS.value
COMPLETED = Status.COMPLETED.value
FAILED = Status.FAILED.value
CANCELLED = Status.CANCELLED.value
INCOMPLETE = Status.INCOMPLETE.value
UNFINISHED = (QUEUED, IN_PROGRESS)

# chain() gives up (returns None) beyond this many rows, so a corrupt cycle cannot spin forever.
MAX_CHAIN_DEPTH = 10_000


class StoreError(Exception):
    """The store failed (connection lost, migration failed); the api maps this to a 503."""


class Conflict(StoreError):
    """A row with that id already exists."""


class ChainTooLarge(Exception):
    """A chain's stored items add up to more than the bytes the caller allowed; `total` is how far the walk got."""

    def __init__(self, total: int) -> None:
        super().__init__(f"chain holds more than {total} bytes of items")
        self.total = total


@dataclass(frozen=True, slots=True)
class StoredResponse:
    """One response as stored: ids and status as columns, items and the full response as JSON bytes.

    `input_items` holds only the items this turn added (after previous_response_id resolution);
    `output_items` the items it produced; `body` the whole response object as served by GET.
    """

    id: str
    tenant: str
    previous_response_id: str | None
    status: str
    created_at: float
    updated_at: float
    input_items: bytes
    output_items: bytes
    body: bytes
    cancel_requested: bool = False


@dataclass(frozen=True, slots=True)
class ChainLink:
    """What rendering needs of one response in a chain: its link, status and items (never its body)."""

    id: str
    previous_response_id: str | None
    status: str
    input_items: bytes
    output_items: bytes


class Store(Protocol):
    """Durable response state; every read is scoped to the tenant (API key) that wrote the row."""

    async def open(self) -> None:
        """Connect and apply pending schema migrations."""

    async def close(self) -> None:
        """Release connections."""

    async def insert(self, row: StoredResponse, lease_seconds: float | None = None) -> None:
        """Write a new row in one transaction; raise Conflict if the id exists.

        An unfinished row gets a lease of lease_seconds from now by the store's clock (None: no lease).
        """

    async def finish(self, row: StoredResponse) -> bool:
        """Replace status, output_items, body and updated_at of a row that is still unfinished; False if none is.

        A final row (completed, failed, cancelled, incomplete) never changes again, so a lease that expired
        while its job still ran cannot flip back.
        """
        ...

    async def get(self, response_id: str, tenant: str) -> StoredResponse | None:
        """Return the row, or None if it is missing, deleted, or another tenant's."""
        ...

    async def chain(self, response_id: str, tenant: str, max_bytes: int | None = None) -> list[ChainLink] | None:
        """Return the row and all its ancestors, oldest first; None if any link is missing or not the tenant's.

        Raise ChainTooLarge, having loaded no more than about max_bytes, once the links' items add up to more.
        """
        ...

    async def delete(self, response_id: str, tenant: str) -> bool:
        """Delete the row; False if it was not there for this tenant."""
        ...

    async def request_cancel(self, response_id: str, tenant: str) -> StoredResponse | None:
        """Flag an unfinished row for cancellation and return it (None if not found)."""
        ...

    async def renew_leases(self, response_ids: Sequence[str], lease_seconds: float) -> list[str]:
        """Extend the leases of rows this process works on to lease_seconds from now by the store's clock;
        return those whose cancel was requested."""
        ...

    async def expire_leases(self) -> int:
        """Mark unfinished rows whose lease ran out by the store's clock (their process died) as failed."""
        ...

    async def prune(
        self, older_than: float | None, max_rows: int | None, max_rows_per_tenant: int | None = None
    ) -> int:
        """Delete finished rows created before older_than, beyond a tenant's max_rows_per_tenant, and beyond
        max_rows (from the tenant holding the most rows first); return how many.

        Concurrent prunes (other processes) never delete more than the limits ask: each batch counts and
        deletes in one locked transaction.
        """
        ...

    async def count(self) -> int:
        """How many rows are stored."""
        ...

    async def secret(self) -> bytes:
        """The store's random key, created once with its schema and the same for every process that opens it."""
        ...

    async def adopt_tenant(self, legacy: str, tenant: str) -> int:
        """Move every row stored under the tenant id `legacy` to `tenant`; return how many moved."""
        ...
