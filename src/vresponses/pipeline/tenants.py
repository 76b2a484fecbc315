"""Tenants: the id stored with each response and the prefix-cache salt, both keyed digests of the API key.

The key is the store's own random secret (made once with its schema, shared by every process on it), so
neither a tenant id nor a salt can be computed, or matched against a guessed key, without the database.
Rows written before ids were keyed (an unsalted, truncated SHA-256 of the key) are moved to the keyed id the
first time this process sees their key, so nothing stored is lost.
"""

from __future__ import annotations

import hashlib
import hmac

from vresponses.store.base import Store

# The open server (no keys) is one tenant.
ANONYMOUS = ""


def legacy_tenant(key: str) -> str:
    """The tenant id of a key before ids were keyed (schema revision 0001): only to find old rows."""
    return hashlib.sha256(key.encode()).hexdigest()[:32]


class Tenants:
    """Derives tenant ids and cache salts from the store's secret, and adopts each key's legacy rows once."""

    def __init__(self, store: Store, secret: bytes) -> None:
        self.store = store
        self._secret = secret
        self._adopted: set[str] = set()

    @classmethod
    async def open(cls, store: Store) -> Tenants:
        """Tenants keyed by the secret of an opened store."""
        return cls(store, await store.secret())

    def _digest(self, purpose: bytes, value: str) -> str:
        return hmac.new(self._secret, purpose + b"\0" + value.encode(), hashlib.sha256).hexdigest()

    def of(self, key: str | None) -> str:
        """The tenant id for an API key (the anonymous tenant when there is none); never the key itself."""
        return self._digest(b"tenant", key) if key else ANONYMOUS

    async def resolve(self, key: str | None) -> str:
        """The tenant id for a key, after moving rows stored under its legacy id (once per key and process)."""
        tenant = self.of(key)
        if key and tenant not in self._adopted:
            await self.store.adopt_tenant(legacy_tenant(key), tenant)
            self._adopted.add(tenant)
        return tenant

    def cache_salt(self, tenant: str) -> str:
        """The prefix-cache salt of a tenant: the same for all its requests, different for every other tenant."""
        return self._digest(b"cache-salt", tenant)
