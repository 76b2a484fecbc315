"""MemoryStore: an in-memory fake of the Store protocol with SqlStore's semantics, for unit tests only.

Nothing survives close(); it is not for production, and it is checked against SqlStore by the same
contract tests (tests/store) so the layers above can rely on it behaving alike.
"""

from __future__ import annotations

import dataclasses
import secrets
import time
from collections import Counter
from collections.abc import Sequence

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


class MemoryStore:
    """The Store protocol over a dict; every method behaves as SqlStore's does."""

    def __init__(self) -> None:
        self._rows: dict[str, StoredResponse] = {}
        self._leases: dict[str, float | None] = {}
        self._open = False
        self._secret = secrets.token_bytes(32)
        # The store's clock for leases (SqlStore uses the database's); tests may replace it.
        self.clock = time.time

    def _check(self) -> None:
        if not self._open:
            raise StoreError("store is not open")

    def _owned(self, response_id: str, tenant: str) -> StoredResponse | None:
        row = self._rows.get(response_id)
        return row if row is not None and row.tenant == tenant else None

    async def open(self) -> None:
        """Start accepting calls."""
        self._open = True

    async def close(self) -> None:
        """Stop accepting calls; the rows are kept so a reopen behaves like a durable store."""
        self._open = False

    async def insert(self, row: StoredResponse, lease_seconds: float | None = None) -> None:
        """Add a new row; raise Conflict if the id exists."""
        self._check()
        if row.id in self._rows:
            raise Conflict(f"response {row.id!r} already exists")
        self._rows[row.id] = row
        unfinished = row.status in UNFINISHED and lease_seconds is not None
        self._leases[row.id] = self.clock() + lease_seconds if unfinished and lease_seconds is not None else None

    async def finish(self, row: StoredResponse) -> bool:
        """Replace status, output_items, body and updated_at of an unfinished row; False if there is none."""
        self._check()
        old = self._owned(row.id, row.tenant)
        if old is None or old.status not in UNFINISHED:
            return False
        self._rows[row.id] = dataclasses.replace(
            old, status=row.status, output_items=row.output_items, body=row.body, updated_at=row.updated_at
        )
        if row.status not in UNFINISHED:
            self._leases[row.id] = None
        return True

    async def get(self, response_id: str, tenant: str) -> StoredResponse | None:
        """Return the row, or None if it is missing, deleted, or another tenant's."""
        self._check()
        return self._owned(response_id, tenant)

    async def chain(self, response_id: str, tenant: str, max_bytes: int | None = None) -> list[ChainLink] | None:
        """Return the row and its ancestors, oldest first; None if a link is missing; ChainTooLarge past max_bytes."""
        self._check()
        links: list[ChainLink] = []
        total = 0
        next_id: str | None = response_id
        while next_id is not None:
            row = self._owned(next_id, tenant)
            if row is None or len(links) >= MAX_CHAIN_DEPTH:
                return None
            total += len(row.input_items) + len(row.output_items)
            if max_bytes is not None and total > max_bytes:
                raise ChainTooLarge(total)
            links.append(ChainLink(row.id, row.previous_response_id, row.status, row.input_items, row.output_items))
            next_id = row.previous_response_id
        links.reverse()
        return links

    async def delete(self, response_id: str, tenant: str) -> bool:
        """Delete the row; False if it was not there for this tenant."""
        self._check()
        if self._owned(response_id, tenant) is None:
            return False
        del self._rows[response_id]
        del self._leases[response_id]
        return True

    async def request_cancel(self, response_id: str, tenant: str) -> StoredResponse | None:
        """Flag the row for cancellation if unfinished and return it (finished rows are returned unchanged)."""
        self._check()
        row = self._owned(response_id, tenant)
        if row is not None and row.status in UNFINISHED:
            row = self._rows[response_id] = dataclasses.replace(row, cancel_requested=True)
        return row

    async def renew_leases(self, response_ids: Sequence[str], lease_seconds: float) -> list[str]:
        """Extend the leases of unfinished rows; return the ids whose cancel was requested."""
        self._check()
        cancelled = []
        until = self.clock() + lease_seconds
        for rid in dict.fromkeys(response_ids):
            row = self._rows.get(rid)
            if row is not None and row.status in UNFINISHED:
                self._leases[rid] = until
                if row.cancel_requested:
                    cancelled.append(rid)
        return cancelled

    async def expire_leases(self) -> int:
        """Mark unfinished rows whose lease ran out as failed; return how many."""
        self._check()
        now = self.clock()
        expired = [
            rid
            for rid, row in self._rows.items()
            if row.status in UNFINISHED and (lease := self._leases[rid]) is not None and lease < now
        ]
        for rid in expired:
            self._rows[rid] = dataclasses.replace(self._rows[rid], status=FAILED, updated_at=now)
            self._leases[rid] = None
        return len(expired)

    async def prune(
        self, older_than: float | None, max_rows: int | None, max_rows_per_tenant: int | None = None
    ) -> int:
        """Delete finished rows by age, beyond each tenant's quota, then beyond max_rows from the largest tenant."""
        self._check()
        doomed = {
            rid
            for rid, r in self._rows.items()
            if older_than is not None and r.status not in UNFINISHED and r.created_at < older_than
        }

        def oldest_finished(tenant: str) -> list[str]:
            rows = [r for rid, r in self._rows.items() if r.tenant == tenant and rid not in doomed]
            return [r.id for r in sorted(rows, key=lambda r: (r.created_at, r.id)) if r.status not in UNFINISHED]

        def counts() -> Counter[str]:
            return Counter(r.tenant for rid, r in self._rows.items() if rid not in doomed)

        if max_rows_per_tenant is not None:
            for tenant, n in counts().items():
                doomed.update(oldest_finished(tenant)[: max(n - max(max_rows_per_tenant, 0), 0)])
        if max_rows is not None:
            while (excess := sum(counts().values()) - max(max_rows, 0)) > 0:
                ranked = counts().most_common()
                # The largest tenant gives up rows first, down to the next largest: a small tenant keeps its own.
                for tenant, n in ranked:
                    victims = oldest_finished(tenant)
                    if victims:
                        runner_up = next((m for t, m in ranked if t != tenant), 0)
                        doomed.update(victims[: min(excess, max(n - runner_up, 1))])
                        break
                else:
                    break
        for rid in doomed:
            del self._rows[rid]
            del self._leases[rid]
        return len(doomed)

    async def count(self) -> int:
        """How many rows are stored."""
        self._check()
        return len(self._rows)

    async def secret(self) -> bytes:
        """A random key made with this store."""
        self._check()
        return self._secret

    async def adopt_tenant(self, legacy: str, tenant: str) -> int:
        """Move every row of tenant `legacy` to `tenant`."""
        self._check()
        moved = [rid for rid, row in self._rows.items() if row.tenant == legacy]
        for rid in moved:
            self._rows[rid] = dataclasses.replace(self._rows[rid], tenant=tenant)
        return len(moved)

    def lease_of(self, response_id: str) -> float | None:
        """The current lease of a row, for tests of the lease-renewing layer."""
        return self._leases.get(response_id)
